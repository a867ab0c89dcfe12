// The server's transport end to end inside one process: a real gRPC server with the TLS
// credentials of ServerTlsCredentials on 127.0.0.1 and a plaintext Unix socket, real clients
// with SpiffeTlsChannelCredentials, and IdentifyCaller in the handler. The Workload API's
// ValidateJWTSVID stands in for any unary RPC: it answers with who the caller is.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/api/authorizer.h"
#include "server/api/caller.h"
#include "server/api/credentials.h"
#include "server/api/grpc_status.h"
#include "server/api/tls_files.h"
#include "spiffe/grpc_tls.h"
#include "spiffe/workload/workload.grpc.pb.h"
#include "spiffe/x509_test_util.h"

namespace tessera::server {
namespace {

namespace fs = std::filesystem;
using namespace tessera::spiffe;           // NOLINT: test vocabulary
using namespace tessera::spiffe::testing;  // NOLINT: PKI helpers
using std::chrono::system_clock;

// Roles from in-memory sets, and an agent check that accepts exactly the listed agents.
class FakeRoles final : public CallerRoles {
 public:
  bool IsAdminEntry(const SpiffeId& id) const override { return admins.contains(id.str()); }
  bool IsDownstreamEntry(const SpiffeId& id) const override {
    return downstream.contains(id.str());
  }
  absl::Status CheckAgent(const SpiffeId& id, const Certificate&,
                          system_clock::time_point) const override {
    if (agents.contains(id.str())) return absl::OkStatus();
    return PermissionDeniedWithReason(
        "agent \"" + id.str() + "\" is not attested",
        spire::api::types::PermissionDeniedDetails::AGENT_NOT_ATTESTED);
  }
  std::set<std::string> admins, downstream, agents;
};

// Answers with who the caller is, after authorizing it for the Access named in `audience`.
class WhoAmI final : public SpiffeWorkloadAPI::Service {
 public:
  explicit WhoAmI(const Authorizer& authorizer) : authorizer_(authorizer) {}
  grpc::Status ValidateJWTSVID(grpc::ServerContext* context, const ValidateJWTSVIDRequest* request,
                               ValidateJWTSVIDResponse* response) override {
    static const std::map<std::string, Access> kAccess = {{"", Access::kAny},
                                                          {"admin", Access::kAdmin},
                                                          {"agent", Access::kAgent},
                                                          {"admin_or_agent", Access::kAdminOrAgent},
                                                          {"downstream", Access::kDownstream}};
    absl::StatusOr<Caller> caller =
        authorizer_.Authorize(*context, "/test/Method", kAccess.at(request->audience()));
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    response->set_spiffe_id(caller->local ? "local" : caller->id ? caller->id->str() : "anonymous");
    return grpc::Status::OK;
  }

 private:
  const Authorizer& authorizer_;
};

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "tessera-transport-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto now = system_clock::now();
    ca_.emplace(*MakeRootCa(Td("example.org"), now));
    other_ca_.emplace(*MakeRootCa(Td("other.org"), now));
    server_.emplace(*MakeLeaf(*ca_, Id("spiffe://example.org/spire/server"), now));
    files_ = std::make_unique<TlsFiles>(dir_ / "tls");
    std::vector<Certificate> chain{server_->cert};
    std::vector<Certificate> roots{ca_->cert, other_ca_->cert};
    ASSERT_TRUE(files_->Publish(server_->key, chain, roots).ok());

    authorizer_ = std::make_unique<Authorizer>(
        std::vector<SpiffeId>{Id("spiffe://other.org/ops")},
        [this](const TrustDomain& td) -> std::optional<std::vector<Certificate>> {
          if (td.name() == "example.org") return std::vector<Certificate>{ca_->cert};
          if (td.name() == "other.org") return std::vector<Certificate>{other_ca_->cert};
          return std::nullopt;
        },
        roles_, RealClock::Get());
    service_ = std::make_unique<WhoAmI>(*authorizer_);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", ServerTlsCredentials(*files_), &port_);
    socket_ = dir_ / "api.sock";
    builder.AddListeningPort("unix:" + socket_.string(), grpc::InsecureServerCredentials());
    builder.RegisterService(service_.get());
    grpc_server_ = builder.BuildAndStart();
    ASSERT_NE(grpc_server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  void TearDown() override {
    grpc_server_->Shutdown();
    fs::remove_all(dir_);
  }

  // Calls the server over TLS: returns the caller it saw, or the status code as "code:N".
  std::string Call(std::vector<Certificate> bundle, std::string_view expected_server,
                   std::optional<ClientIdentity> identity, std::string* server_cert_pem = nullptr,
                   std::string access = "") {
    auto creds = SpiffeTlsChannelCredentials(bundle, Id(expected_server), identity);
    EXPECT_TRUE(creds.ok()) << creds.status();
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), *creds);
    return Invoke(channel, server_cert_pem, access);
  }

  // Calls as `identity` (a leaf of example.org's CA when it is a path) for `access`.
  std::string CallAs(std::optional<std::string> id, std::string access) {
    std::optional<ClientIdentity> identity;
    if (id.has_value()) {
      Leaf leaf = *MakeLeaf(*ca_, Id(*id), system_clock::now());
      identity = ClientIdentity{leaf.key, {leaf.cert}};
    }
    return Call({ca_->cert}, "spiffe://example.org/spire/server", identity, nullptr, access);
  }

  std::string Invoke(std::shared_ptr<grpc::Channel> channel, std::string* server_cert_pem,
                     const std::string& access = "") {
    auto stub = SpiffeWorkloadAPI::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(system_clock::now() + std::chrono::seconds(10));
    ValidateJWTSVIDRequest req;
    req.set_audience(access);
    ValidateJWTSVIDResponse resp;
    grpc::Status status = stub->ValidateJWTSVID(&ctx, req, &resp);
    if (server_cert_pem != nullptr && ctx.auth_context() != nullptr) {
      auto values = ctx.auth_context()->FindPropertyValues("x509_pem_cert");
      if (!values.empty()) server_cert_pem->assign(values[0].data(), values[0].size());
    }
    if (!status.ok()) {
      last_error_ = status.error_message();
      last_details_ = status.error_details();
      return "code:" + std::to_string(status.error_code());
    }
    return resp.spiffe_id();
  }

  fs::path dir_;
  std::optional<Ca> ca_, other_ca_;
  std::optional<Leaf> server_;
  std::unique_ptr<TlsFiles> files_;
  FakeRoles roles_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<WhoAmI> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  fs::path socket_;
  std::string last_error_;
  std::string last_details_;
};

const std::string kUnavailable = "code:" + std::to_string(grpc::StatusCode::UNAVAILABLE);
const std::string kUnauthenticated = "code:" + std::to_string(grpc::StatusCode::UNAUTHENTICATED);
const std::string kPermissionDenied = "code:" + std::to_string(grpc::StatusCode::PERMISSION_DENIED);

TEST_F(TransportTest, ClientWithoutCertificateIsAnonymous) {
  EXPECT_EQ(Call({ca_->cert}, "spiffe://example.org/spire/server", std::nullopt), "anonymous");
}

TEST_F(TransportTest, ClientCertificateGivesItsSpiffeId) {
  Leaf agent =
      *MakeLeaf(*ca_, Id("spiffe://example.org/spire/agent/join_token/abc"), system_clock::now());
  EXPECT_EQ(Call({ca_->cert}, "spiffe://example.org/spire/server",
                 ClientIdentity{agent.key, {agent.cert}}),
            "spiffe://example.org/spire/agent/join_token/abc")
      << last_error_;
}

TEST_F(TransportTest, FederatedCaCannotVouchForOurTrustDomain) {
  // other.org's CA is among the server's roots (so the TLS handshake passes), but it signed an
  // identity in example.org: only example.org's bundle may vouch for that.
  Leaf forged = *MakeLeaf(*other_ca_, Id("spiffe://example.org/admin"), system_clock::now());
  EXPECT_EQ(Call({ca_->cert}, "spiffe://example.org/spire/server",
                 ClientIdentity{forged.key, {forged.cert}}),
            kUnauthenticated);
  EXPECT_THAT(last_error_, ::testing::HasSubstr("verify X509-SVID"));
  // The same CA for its own trust domain is fine.
  Leaf remote_admin = *MakeLeaf(*other_ca_, Id("spiffe://other.org/ops"), system_clock::now());
  EXPECT_EQ(Call({ca_->cert}, "spiffe://example.org/spire/server",
                 ClientIdentity{remote_admin.key, {remote_admin.cert}}),
            "spiffe://other.org/ops");
}

TEST_F(TransportTest, ClientRejectsServerWithAnotherSpiffeId) {
  EXPECT_EQ(Call({ca_->cert}, "spiffe://example.org/not-the-server", std::nullopt), kUnavailable);
}

TEST_F(TransportTest, ClientRejectsServerOutsideItsBundle) {
  EXPECT_EQ(Call({other_ca_->cert}, "spiffe://example.org/spire/server", std::nullopt),
            kUnavailable);
}

TEST_F(TransportTest, UnixSocketCallersAreLocal) {
  auto channel =
      grpc::CreateChannel("unix:" + socket_.string(), grpc::InsecureChannelCredentials());
  EXPECT_EQ(Invoke(channel, nullptr), "local");
}

TEST_F(TransportTest, RotatedServerCertificateIsServedWithoutRestart) {
  std::string before;
  ASSERT_EQ(Call({ca_->cert}, "spiffe://example.org/spire/server", std::nullopt, &before),
            "anonymous");
  EXPECT_EQ(before, server_->cert.ToPem());

  Leaf rotated = *MakeLeaf(*ca_, Id("spiffe://example.org/spire/server"), system_clock::now());
  std::vector<Certificate> chain{rotated.cert};
  std::vector<Certificate> roots{ca_->cert, other_ca_->cert};
  ASSERT_TRUE(files_->Publish(rotated.key, chain, roots).ok());
  // The provider re-reads once a second; new connections then get the new certificate.
  std::string after;
  for (int i = 0; i < 50 && after != rotated.cert.ToPem(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    after.clear();
    ASSERT_EQ(Call({ca_->cert}, "spiffe://example.org/spire/server", std::nullopt, &after),
              "anonymous");
  }
  EXPECT_EQ(after, rotated.cert.ToPem());
}

TEST_F(TransportTest, AdminMethodsAdmitLocalCallersAdminIdsAndAdminEntries) {
  auto uds = grpc::CreateChannel("unix:" + socket_.string(), grpc::InsecureChannelCredentials());
  EXPECT_EQ(Invoke(uds, nullptr, "admin"), "local");
  roles_.admins.insert("spiffe://example.org/ci");
  EXPECT_EQ(CallAs("spiffe://example.org/ci", "admin"), "spiffe://example.org/ci");
  EXPECT_EQ(CallAs("spiffe://example.org/web", "admin"), kPermissionDenied);
  EXPECT_EQ(last_error_, "authorization denied for method /test/Method");
  EXPECT_EQ(CallAs(std::nullopt, "admin"), kPermissionDenied);
  // admin_ids may name another trust domain (verified against that domain's bundle).
  Leaf ops = *MakeLeaf(*other_ca_, Id("spiffe://other.org/ops"), system_clock::now());
  EXPECT_EQ(Call({ca_->cert}, "spiffe://example.org/spire/server",
                 ClientIdentity{ops.key, {ops.cert}}, nullptr, "admin"),
            "spiffe://other.org/ops");
}

TEST_F(TransportTest, AgentMethodsNeedAnActiveAgentAndCarryTheReason) {
  roles_.agents.insert("spiffe://example.org/spire/agent/join_token/a");
  EXPECT_EQ(CallAs("spiffe://example.org/spire/agent/join_token/a", "agent"),
            "spiffe://example.org/spire/agent/join_token/a");
  EXPECT_EQ(CallAs(std::nullopt, "agent"), kPermissionDenied);
  EXPECT_EQ(last_error_, "caller does not have an X509-SVID");

  EXPECT_EQ(CallAs("spiffe://example.org/spire/agent/join_token/b", "agent"), kPermissionDenied);
  EXPECT_THAT(last_error_, ::testing::HasSubstr("authorization denied for method /test/Method"));
  EXPECT_THAT(last_error_, ::testing::HasSubstr("is not attested"));
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(last_details_));
  EXPECT_EQ(details.code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(),
            "type.googleapis.com/spire.api.types.PermissionDeniedDetails");
  spire::api::types::PermissionDeniedDetails reason;
  ASSERT_TRUE(details.details(0).UnpackTo(&reason));
  EXPECT_EQ(reason.reason(), spire::api::types::PermissionDeniedDetails::AGENT_NOT_ATTESTED);

  // A local caller is never an agent.
  auto uds = grpc::CreateChannel("unix:" + socket_.string(), grpc::InsecureChannelCredentials());
  EXPECT_EQ(Invoke(uds, nullptr, "agent"), kPermissionDenied);
}

TEST_F(TransportTest, AdminOrAgentAndDownstream) {
  roles_.agents.insert("spiffe://example.org/spire/agent/x");
  roles_.downstream.insert("spiffe://example.org/nested");
  EXPECT_EQ(CallAs("spiffe://example.org/spire/agent/x", "admin_or_agent"),
            "spiffe://example.org/spire/agent/x");
  auto uds = grpc::CreateChannel("unix:" + socket_.string(), grpc::InsecureChannelCredentials());
  EXPECT_EQ(Invoke(uds, nullptr, "admin_or_agent"), "local");
  EXPECT_EQ(CallAs("spiffe://example.org/nested", "downstream"), "spiffe://example.org/nested");
  EXPECT_EQ(CallAs("spiffe://example.org/spire/agent/x", "downstream"), kPermissionDenied);
}

}  // namespace
}  // namespace tessera::server
