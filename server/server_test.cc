// Server, the composition root, in one process with real listeners: it serves on the admin
// socket and on TLS with its own SVID, its health endpoint follows its state, and a restart
// keeps the CA, the bundle and the registry.
#include "server/server.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <filesystem>
#include <fstream>

#include "attestors/x509pop/x509pop.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "server/api/convert.h"
#include "spiffe/csr.h"
#include "spiffe/grpc_tls.h"
#include "spiffe/x509_test_util.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"
#include "tessera/server/v1/notify.grpc.pb.h"

namespace tessera::server {
namespace {

namespace fs = std::filesystem;
namespace agentv1 = ::spire::api::server::agent::v1;
namespace bundlev1 = ::spire::api::server::bundle::v1;
namespace entryv1 = ::spire::api::server::entry::v1;
namespace types = ::spire::api::types;
using spiffe::testing::Id;
using spiffe::testing::Td;
using ::testing::HasSubstr;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "tessera-server-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  ServerConfig Config() {
    ServerConfig config(Td("example.org"));
    config.bind_address = "127.0.0.1";
    config.bind_port = 0;
    config.data_dir = dir_ / "data";
    config.socket_path = dir_ / "run" / "api.sock";
    config.datastore.sqlite_path = config.data_dir / "datastore.sqlite3";
    config.key_manager.directory = config.data_dir / "keys";
    config.health = HealthConfig{.bind_address = "127.0.0.1", .bind_port = 0};
    return config;
  }

  void StartServer() {
    ServerConfig config = Config();
    if (tweak_) tweak_(config);
    auto server = Server::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::shared_ptr<grpc::Channel> Admin() {
    return grpc::CreateChannel("unix:" + Config().socket_path.string(),
                               grpc::InsecureChannelCredentials());
  }

  types::Bundle GetBundle(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    types::Bundle out;
    grpc::Status s = bundlev1::Bundle::NewStub(channel)->GetBundle(&ctx, {}, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  // spiffe://example.org/web under `parent_path`, selector unix:uid:1000, over the admin socket.
  void CreateWebEntry(const std::string& parent_path) {
    entryv1::BatchCreateEntryRequest req;
    types::Entry* e = req.add_entries();
    e->mutable_spiffe_id()->set_trust_domain("example.org");
    e->mutable_spiffe_id()->set_path("/web");
    e->mutable_parent_id()->set_trust_domain("example.org");
    e->mutable_parent_id()->set_path(parent_path);
    auto* sel = e->add_selectors();
    sel->set_type("unix");
    sel->set_value("uid:1000");
    grpc::ClientContext ctx;
    entryv1::BatchCreateEntryResponse resp;
    ASSERT_TRUE(entryv1::Entry::NewStub(Admin())->BatchCreateEntry(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
  }

  // The trust bundle as a client bootstraps it (from the admin socket here).
  std::vector<spiffe::Certificate> Roots() {
    auto parsed = BundleFromProto(GetBundle(Admin()));
    EXPECT_TRUE(parsed.ok());
    return parsed.ok() ? parsed->x509_authorities() : std::vector<spiffe::Certificate>{};
  }
  std::shared_ptr<grpc::Channel> Tls(const std::optional<spiffe::ClientIdentity>& identity) {
    auto creds = spiffe::SpiffeTlsChannelCredentials(
        Roots(), Id("spiffe://example.org/spire/server"), identity);
    EXPECT_TRUE(creds.ok());
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(server_->port()), *creds, args);
  }

  // Runs AttestAgent as an agent would: a fresh key and CSR, `type`/`payload`, then answers
  // each challenge with `respond`. Returns the agent's identity, or the failure.
  absl::StatusOr<spiffe::ClientIdentity> Attest(
      std::string type, std::string payload,
      const std::function<std::string(const std::string&)>& respond = nullptr) {
    auto key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
    agentv1::AttestAgentRequest first;
    auto* params = first.mutable_params();
    params->mutable_data()->set_type(std::move(type));
    params->mutable_data()->set_payload(std::move(payload));
    params->mutable_params()->set_csr(
        spiffe::CreateCsr(key, Id("spiffe://example.org/ignored")).value());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = agentv1::Agent::NewStub(Tls(std::nullopt))->AttestAgent(&ctx);
    stream->Write(first);
    agentv1::AttestAgentResponse response;
    std::vector<spiffe::Certificate> chain;
    while (stream->Read(&response)) {
      if (response.has_result()) {
        for (const auto& der : response.result().svid().cert_chain()) {
          chain.push_back(spiffe::Certificate::FromDer(der).value());
        }
        break;
      }
      agentv1::AttestAgentRequest answer;
      answer.set_challenge_response(respond ? respond(response.challenge()) : "");
      stream->Write(answer);
    }
    stream->WritesDone();
    grpc::Status status = stream->Finish();
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return spiffe::ClientIdentity{key, chain};
  }

  // An agent-only RPC: NOT_FOUND (no such federated bundle) means the agent check passed.
  grpc::StatusCode AgentCall(const spiffe::ClientIdentity& identity) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    bundlev1::GetFederatedBundleRequest req;
    req.set_trust_domain("other.org");
    types::Bundle out;
    return bundlev1::Bundle::NewStub(Tls(identity))
        ->GetFederatedBundle(&ctx, req, &out)
        .error_code();
  }

  fs::path dir_;
  std::function<void(ServerConfig&)> tweak_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, ServesTheBundleOnTheAdminSocketAndOverTlsAsTheServerId) {
  StartServer();
  ASSERT_TRUE(server_->Ready().ok()) << server_->Ready();
  types::Bundle bundle = GetBundle(Admin());
  ASSERT_EQ(bundle.trust_domain(), "example.org");
  ASSERT_EQ(bundle.x509_authorities_size(), 1);
  EXPECT_GE(bundle.sequence_number(), 1u);
  auto parsed = BundleFromProto(bundle);
  ASSERT_TRUE(parsed.ok()) << parsed.status();

  // Over TLS the client checks that the server is spiffe://example.org/spire/server.
  auto creds = spiffe::SpiffeTlsChannelCredentials(parsed->x509_authorities(),
                                                   Id("spiffe://example.org/spire/server"));
  ASSERT_TRUE(creds.ok());
  auto tls = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()), *creds);
  EXPECT_EQ(GetBundle(tls).x509_authorities(0).asn1(), bundle.x509_authorities(0).asn1());

  // A client expecting another server identity refuses the handshake.
  auto wrong = spiffe::SpiffeTlsChannelCredentials(parsed->x509_authorities(),
                                                   Id("spiffe://example.org/not-the-server"));
  ASSERT_TRUE(wrong.ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  types::Bundle out;
  grpc::Status s = bundlev1::Bundle::NewStub(
                       grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()), *wrong))
                       ->GetBundle(&ctx, {}, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(ServerTest, HealthEndpointReportsLiveAndReady) {
  StartServer();
  ASSERT_GT(server_->health_port(), 0);
  httplib::Client client("127.0.0.1", server_->health_port());
  auto live = client.Get("/live");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  auto ready = client.Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  server_->Shutdown();
  EXPECT_FALSE(server_->Ready().ok());
}

TEST_F(ServerTest, RestartKeepsCaBundleAndEntries) {
  StartServer();
  types::Bundle before = GetBundle(Admin());
  CreateWebEntry("/spire/agent/join_token/t");
  server_->Shutdown();
  EXPECT_FALSE(fs::exists(Config().socket_path));
  server_.reset();

  StartServer();
  types::Bundle after = GetBundle(Admin());
  ASSERT_EQ(after.x509_authorities_size(), 1);
  EXPECT_EQ(after.x509_authorities(0).asn1(), before.x509_authorities(0).asn1());
  ASSERT_EQ(after.jwt_authorities_size(), before.jwt_authorities_size());
  EXPECT_EQ(after.jwt_authorities(0).key_id(), before.jwt_authorities(0).key_id());
  EXPECT_GE(after.sequence_number(), before.sequence_number());

  grpc::ClientContext ctx;
  entryv1::ListEntriesResponse list;
  ASSERT_TRUE(entryv1::Entry::NewStub(Admin())->ListEntries(&ctx, {}, &list).ok());
  ASSERT_EQ(list.entries_size(), 1);
  EXPECT_EQ(list.entries(0).spiffe_id().path(), "/web");
}

TEST_F(ServerTest, ReplacesAStaleSocketAndRefusesAFileInItsPlace) {
  // A socket file left behind by a crashed server.
  fs::create_directories(Config().socket_path.parent_path());
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, Config().socket_path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  StartServer();
  EXPECT_EQ(GetBundle(Admin()).trust_domain(), "example.org");
  server_.reset();

  std::ofstream(Config().socket_path) << "not a socket";
  auto server = Server::Start(Config());
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("exists and is not a socket"));
}

TEST_F(ServerTest, PortInUseIsAClearError) {
  StartServer();
  ServerConfig second = Config();
  second.bind_port = static_cast<uint16_t>(server_->port());
  second.data_dir = dir_ / "data2";
  second.datastore.sqlite_path = second.data_dir / "datastore.sqlite3";
  second.key_manager.directory = second.data_dir / "keys";
  second.socket_path = dir_ / "run2" / "api.sock";
  second.health.reset();
  auto server = Server::Start(second);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("cannot listen on 127.0.0.1:"));
}

TEST_F(ServerTest, JoinTokenAgentAttestsOnceAndThenPassesTheAgentCheck) {
  tweak_ = [](ServerConfig& c) { c.join_token_enabled = true; };
  StartServer();
  agentv1::CreateJoinTokenRequest req;
  req.set_ttl(600);
  grpc::ClientContext ctx;
  types::JoinToken token;
  ASSERT_TRUE(agentv1::Agent::NewStub(Admin())->CreateJoinToken(&ctx, req, &token).ok());

  auto agent = Attest("join_token", token.value());
  ASSERT_TRUE(agent.ok()) << agent.status();
  auto verified = spiffe::VerifyX509Svid(
      agent->chain,
      [&](const spiffe::TrustDomain&) -> std::optional<std::vector<spiffe::Certificate>> {
        return Roots();
      },
      std::chrono::system_clock::now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->id.str(), "spiffe://example.org/spire/agent/join_token/" + token.value());
  EXPECT_EQ(AgentCall(*agent), grpc::StatusCode::NOT_FOUND);

  auto again = Attest("join_token", token.value());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kInvalidArgument);
  // x509pop is not configured here.
  EXPECT_EQ(Attest("x509pop", "{}").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ServerTest, X509PopAgentAttestsWithItsNodeCertificate) {
  auto now = std::chrono::system_clock::now();
  auto node_ca = spiffe::testing::MakeRootCa(Td("nodes.example"), now).value();
  auto node = spiffe::testing::MakeLeaf(node_ca, Id("spiffe://nodes.example/host-1"), now).value();
  fs::create_directories(dir_ / "pki");
  std::ofstream(dir_ / "pki" / "ca.pem") << node_ca.cert.ToPem();
  std::ofstream(dir_ / "pki" / "node.pem") << node.cert.ToPem();
  std::ofstream(dir_ / "pki" / "node.key") << node.key.ToPkcs8Pem().value();
  tweak_ = [&](ServerConfig& c) {
    c.x509pop = X509PopConfig{.ca_bundle_paths = {dir_ / "pki" / "ca.pem"}};
  };
  StartServer();

  auto agent_half = attestors::x509pop::NewAgentAttestor(
      {.certificate_path = (dir_ / "pki" / "node.pem").string(),
       .private_key_path = (dir_ / "pki" / "node.key").string(),
       .intermediates_path = ""});
  ASSERT_TRUE(agent_half.ok()) << agent_half.status();
  auto agent = Attest("x509pop", (*agent_half)->Payload().value(), [&](const std::string& c) {
    return (*agent_half)->RespondToChallenge(c).value();
  });
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_EQ(AgentCall(*agent), grpc::StatusCode::NOT_FOUND);
  // join_token is not enabled here.
  EXPECT_EQ(Attest("join_token", "whatever").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ServerTest, EntryCreatedForAnAgentIsPushedToItsWatchStream) {
  tweak_ = [](ServerConfig& c) { c.join_token_enabled = true; };
  StartServer();
  agentv1::CreateJoinTokenRequest token_req;
  token_req.set_ttl(600);
  grpc::ClientContext token_ctx;
  types::JoinToken token;
  ASSERT_TRUE(
      agentv1::Agent::NewStub(Admin())->CreateJoinToken(&token_ctx, token_req, &token).ok());
  auto agent = Attest("join_token", token.value());
  ASSERT_TRUE(agent.ok()) << agent.status();

  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto watch = ::tessera::server::v1::Notifier::NewStub(Tls(*agent))->Watch(&watch_ctx, {});
  ::tessera::server::v1::Notification first;
  ASSERT_TRUE(watch->Read(&first));
  EXPECT_TRUE(first.entries_changed());
  EXPECT_TRUE(first.bundle_changed());
  EXPECT_GE(first.bundle_sequence_number(), 1u);

  CreateWebEntry("/spire/agent/join_token/" + token.value());

  ::tessera::server::v1::Notification pushed;
  ASSERT_TRUE(watch->Read(&pushed));
  EXPECT_TRUE(pushed.entries_changed());
  EXPECT_FALSE(pushed.bundle_changed());
  EXPECT_GT(pushed.revision(), first.revision());
  watch_ctx.TryCancel();
}

}  // namespace
}  // namespace tessera::server
