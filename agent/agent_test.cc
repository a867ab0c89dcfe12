// The whole agent in one process against a real tessera-server: the composition root attests
// with a join token, syncs, and serves the Workload API on its Unix socket to the real client
// library. Covers what no component test can: rotation seen on an open stream, a restart that
// needs no new token, and the server going away and coming back.
#include "agent/agent.h"

#include <unistd.h>

#include <fstream>
#include <mutex>
#include <set>
#include <stop_token>
#include <thread>

#include "agent/agent_test_util.h"
#include "agent/attestation_manager.h"
#include "agent/cache/cache.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/workload_client.h"
#include "spiffe/x509_test_util.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"

namespace tessera::agent {
namespace {

using spiffe::testing::Id;
using spiffe::testing::Td;
using spiffe::testing::TempDir;
using testing::Eventually;
using ::testing::HasSubstr;
using testing::TestEntry;
using testing::TestServer;

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Start();
    if (HasFatalFailure()) return;
    std::ofstream(dir_ / "bootstrap.pem") << X509AuthoritiesPem();
    token_ = server_.NewToken();
    parent_ = "/spire/agent/join_token/" + token_;
  }

  std::string X509AuthoritiesPem() {
    std::string pem;
    for (const spiffe::Certificate& cert : server_.Roots()) pem += cert.ToPem();
    return pem;
  }

  AgentConfig Config() {
    AgentConfig config(Td("example.org"));
    config.server_addresses = {ServerAddress{.host = "127.0.0.1", .port = server_.port()}};
    config.socket_path = dir_ / "agent-run" / "api.sock";
    config.data_dir = dir_ / "agent-data";
    config.trust_bundle_path = dir_ / "bootstrap.pem";
    config.unix_attestor = UnixAttestorConfig{};
    // Only the push stream can bring changes in time.
    config.sync_interval = std::chrono::hours(1);
    return config;
  }

  void StartAgent(std::string join_token) {
    auto agent = Agent::Start(Config(), {.join_token = std::move(join_token)});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    ASSERT_TRUE(agent_->WaitForFirstSync(std::chrono::seconds(20)));
  }

  std::unique_ptr<spiffe::WorkloadApiClient> Client() {
    auto client = spiffe::WorkloadApiClient::Create(
        {.address = "unix://" + (dir_ / "agent-run" / "api.sock").string(),
         .timeout = std::chrono::seconds(5),
         .initial_backoff = std::chrono::milliseconds(50),
         .max_backoff = std::chrono::milliseconds(200)});
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // An entry for this test process's uid, parented to the agent's join-token ID.
  std::string CreateOwnEntry(std::string path, int32_t x509_ttl = 0) {
    return server_.CreateEntry(TestEntry{.spiffe_path = std::move(path),
                                         .parent_path = parent_,
                                         .selectors = {"unix:uid:" + std::to_string(getuid())},
                                         .x509_svid_ttl = x509_ttl});
  }

  // Whether the caller's X.509 context currently includes `id`.
  bool Serves(spiffe::WorkloadApiClient& client, std::string_view id) {
    auto context = client.FetchX509Context();
    if (!context.ok()) return false;
    for (const auto& svid : context->svids) {
      if (svid.svid.id.str() == id) return true;
    }
    return false;
  }

  TempDir tmp_;
  std::filesystem::path dir_ = tmp_.path();
  TestServer server_{dir_};
  std::string token_;
  std::string parent_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(AgentTest, AttestsSyncsAndServesX509AndJwtSvids) {
  CreateOwnEntry("/workload");
  ASSERT_NO_FATAL_FAILURE(StartAgent(token_));
  EXPECT_TRUE(agent_->Ready().ok()) << agent_->Ready();
  EXPECT_EQ(std::filesystem::status(dir_ / "agent-run" / "api.sock").type(),
            std::filesystem::file_type::socket);

  auto client = Client();
  ASSERT_NE(client, nullptr);
  auto context = client->FetchX509Context();
  ASSERT_TRUE(context.ok()) << context.status();
  ASSERT_EQ(context->svids.size(), 1u);
  const spiffe::X509Svid& svid = context->default_svid().svid;
  EXPECT_EQ(svid.id.str(), "spiffe://example.org/workload");
  const spiffe::Bundle* bundle = context->bundles.Find(Td("example.org"));
  ASSERT_NE(bundle, nullptr);
  std::vector<spiffe::Certificate> roots = bundle->x509_authorities();
  auto verified = spiffe::VerifyX509Svid(
      svid.chain,
      [&](const spiffe::TrustDomain& td) -> std::optional<std::vector<spiffe::Certificate>> {
        if (td != Td("example.org")) return std::nullopt;
        return roots;
      },
      std::chrono::system_clock::now());
  EXPECT_TRUE(verified.ok()) << verified.status();

  auto jwt = client->FetchJwtSvid({"audience-a"});
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_EQ(jwt->svid.subject.str(), "spiffe://example.org/workload");
  auto validated = client->ValidateJwtSvid(jwt->svid.token, "audience-a");
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->spiffe_id.str(), "spiffe://example.org/workload");
  auto wrong_audience = client->ValidateJwtSvid(jwt->svid.token, "audience-b");
  EXPECT_EQ(wrong_audience.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AgentTest, OpenStreamSeesNewEntriesAndRotation) {
  ASSERT_NO_FATAL_FAILURE(StartAgent(token_));
  CreateOwnEntry("/short-lived", /*x509_ttl=*/4);
  auto client = Client();
  ASSERT_NE(client, nullptr);

  std::mutex mu;
  std::set<std::string> serials;
  std::stop_source stop;
  std::jthread watcher([&] {
    (void)client->WatchX509Context(
        [&](const absl::StatusOr<spiffe::X509Context>& context) {
          if (!context.ok()) return;
          std::lock_guard lock(mu);
          serials.insert(context->default_svid().svid.chain.front().SerialHex());
        },
        stop.get_token());
  });
  // The entry arrives on the open stream (push), then its 4 s SVID is replaced before expiry.
  EXPECT_TRUE(Eventually(
      [&] {
        std::lock_guard lock(mu);
        return serials.size() >= 3;
      },
      std::chrono::seconds(15)));
  stop.request_stop();
}

TEST_F(AgentTest, OpenStreamSeesATrustBundleChange) {
  CreateOwnEntry("/workload");
  ASSERT_NO_FATAL_FAILURE(StartAgent(token_));
  auto client = Client();
  ASSERT_NE(client, nullptr);

  std::mutex mu;
  std::vector<size_t> authority_counts;
  std::stop_source stop;
  std::jthread watcher([&] {
    (void)client->WatchX509Context(
        [&](const absl::StatusOr<spiffe::X509Context>& context) {
          if (!context.ok()) return;
          const spiffe::Bundle* own = context->bundles.Find(Td("example.org"));
          std::lock_guard lock(mu);
          authority_counts.push_back(own == nullptr ? 0 : own->x509_authorities().size());
        },
        stop.get_token());
  });
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(mu);
    return !authority_counts.empty();
  }));

  // An operator appends an authority (as during a planned CA migration): the server pushes, the
  // agent re-reads the bundle, and the open stream gets the complete new state.
  auto ca = spiffe::testing::MakeRootCa(Td("example.org"), std::chrono::system_clock::now());
  ASSERT_TRUE(ca.ok());
  namespace bundlev1 = ::spire::api::server::bundle::v1;
  bundlev1::AppendBundleRequest req;
  req.add_x509_authorities()->set_asn1(ca->cert.ToDer());
  grpc::ClientContext ctx;
  ::spire::api::types::Bundle resp;
  grpc::Status status = bundlev1::Bundle::NewStub(server_.Admin())->AppendBundle(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();

  EXPECT_TRUE(Eventually(
      [&] {
        std::lock_guard lock(mu);
        return authority_counts.back() == authority_counts.front() + 1;
      },
      std::chrono::seconds(5)));
  stop.request_stop();
}

TEST_F(AgentTest, RestartsWithoutANewTokenAndSurvivesTheServerGoingAway) {
  CreateOwnEntry("/workload");
  ASSERT_NO_FATAL_FAILURE(StartAgent(token_));
  std::string agent_id = agent_->attestation().CurrentAgentState()->svid.id.str();
  agent_->Shutdown();
  EXPECT_FALSE(std::filesystem::exists(dir_ / "agent-run" / "api.sock"));
  agent_.reset();

  // The token was used once; the stored agent SVID is what lets the agent back in.
  ASSERT_NO_FATAL_FAILURE(StartAgent(""));
  EXPECT_EQ(agent_->attestation().CurrentAgentState()->svid.id.str(), agent_id);
  auto client = Client();
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(Eventually([&] { return Serves(*client, "spiffe://example.org/workload"); }));

  // The server goes away: what the agent holds is still served.
  server_.Stop();
  EXPECT_TRUE(Serves(*client, "spiffe://example.org/workload"));

  // It comes back on the same port: the agent reconnects by itself and picks up a new entry.
  server_.Start();
  CreateOwnEntry("/after-restart");
  EXPECT_TRUE(Eventually([&] { return Serves(*client, "spiffe://example.org/after-restart"); },
                         std::chrono::seconds(30)));
}

TEST_F(AgentTest, ABadTokenFailsStartWithAMessageForTheOperator) {
  auto agent = Agent::Start(Config(), {.join_token = "not-a-token"});
  ASSERT_FALSE(agent.ok());
  EXPECT_THAT(std::string(agent.status().message()), HasSubstr("join token"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "agent-run" / "api.sock"));
}

}  // namespace
}  // namespace tessera::agent
