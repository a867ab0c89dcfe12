// The attestation manager against a real in-process tessera-server: first start with a join
// token (stored 0600), restart from the stored state without the server, renewal at half-life
// with a short agent TTL, a server that comes up late, eviction (join token: an operator must
// act; x509pop: re-attests, also after a ban is lifted), stale rejections, refused tokens, the
// stored bundle trusted over the bootstrap file, SPIFFE-format and insecure bootstrap.
#include "agent/attestation_manager.h"

#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "absl/strings/cord.h"
#include "agent/agent_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/bundle.h"
#include "spiffe/bundle_json.h"
#include "spiffe/x509_test_util.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"

namespace tessera::agent {
namespace {

namespace agentv1 = ::spire::api::server::agent::v1;
using spiffe::testing::Id;
using spiffe::testing::Td;
using spiffe::testing::TempDir;
using testing::Eventually;
using ::testing::HasSubstr;

constexpr auto kTestTimeout = std::chrono::seconds(15);

std::string Message(const absl::Status& status) { return std::string(status.message()); }
std::string Serial(const std::shared_ptr<const AgentState>& state) {
  return state == nullptr ? "" : state->svid.chain[0].SerialDecimal();
}

class AttestationManagerTest : public ::testing::Test {
 protected:
  AgentConfig Config() {
    AgentConfig config(Td("example.org"));
    config.server_addresses = {{.host = "127.0.0.1", .port = server_.port()}};
    config.data_dir = dir_ / "agent";
    config.trust_bundle_path = dir_ / "bootstrap.pem";
    std::ofstream(config.trust_bundle_path) << spiffe::ChainToPem(server_.Roots());
    return config;
  }
  static AttestationOptions Fast() {
    return {.initial_backoff = std::chrono::milliseconds(50),
            .max_backoff = std::chrono::milliseconds(200),
            .server_timeout = std::chrono::seconds(5)};
  }
  std::unique_ptr<AttestationManager> Manager(const AgentConfig& config, std::string token,
                                              std::shared_ptr<const Clock> clock = nullptr) {
    auto manager = AttestationManager::Create(config, std::move(token), Fast(), std::move(clock));
    EXPECT_TRUE(manager.ok()) << manager.status();
    return manager.ok() ? *std::move(manager) : nullptr;
  }

  // The x509pop PKI: a node CA the server trusts, and (below) a node certificate from it.
  void ServeX509Pop(std::chrono::seconds agent_ttl = std::chrono::hours(1)) {
    auto now = std::chrono::system_clock::now();
    node_ca_ = spiffe::testing::MakeRootCa(Td("nodes.example"), now).value();
    std::ofstream(dir_ / "node-ca.pem") << node_ca_->cert.ToPem();
    server_.set_tweak([this, agent_ttl](server::ServerConfig& c) {
      c.x509pop = server::X509PopConfig{.ca_bundle_paths = {(dir_ / "node-ca.pem").string()}};
      c.agent_ttl = agent_ttl;
    });
    server_.Start();
  }
  void ConfigureX509PopAgent(AgentConfig& config) {
    auto node = spiffe::testing::MakeLeaf(*node_ca_, Id("spiffe://nodes.example/host-1"),
                                          std::chrono::system_clock::now());
    std::ofstream(dir_ / "node.pem") << node->cert.ToPem();
    std::ofstream(dir_ / "node.key") << node->key.ToPkcs8Pem().value();
    config.node_attestor = NodeAttestorType::kX509Pop;
    config.x509pop = X509PopAgentConfig{.certificate_path = dir_ / "node.pem",
                                        .private_key_path = dir_ / "node.key"};
  }

  grpc::Status AgentAdmin(const std::string& method, const spiffe::SpiffeId& id) {
    auto stub = agentv1::Agent::NewStub(server_.Admin());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    google::protobuf::Empty empty;
    if (method == "delete") {
      agentv1::DeleteAgentRequest req;
      req.mutable_id()->set_trust_domain("example.org");
      req.mutable_id()->set_path(std::string(id.path()));
      return stub->DeleteAgent(&ctx, req, &empty);
    }
    if (method == "ban") {
      agentv1::BanAgentRequest req;
      req.mutable_id()->set_trust_domain("example.org");
      req.mutable_id()->set_path(std::string(id.path()));
      return stub->BanAgent(&ctx, req, &empty);
    }
    agentv1::GetAgentRequest req;
    req.mutable_id()->set_trust_domain("example.org");
    req.mutable_id()->set_path(std::string(id.path()));
    spire::api::types::Agent agent;
    return stub->GetAgent(&ctx, req, &agent);
  }

  TempDir tmp_;
  std::filesystem::path dir_ = tmp_.path();
  testing::TestServer server_{dir_ / "srv"};
  std::optional<spiffe::testing::Ca> node_ca_;
};

TEST_F(AttestationManagerTest, FirstStartAttestsAndStoresARestartNeedsNeitherTokenNorServer) {
  server_.Start();
  AgentConfig config = Config();
  const std::string token = server_.NewToken();
  std::string first_serial;
  {
    auto manager = Manager(config, token);
    int notified = 0;
    manager->OnAgentStateChange([&](std::shared_ptr<const AgentState> s) {
      ++notified;
      EXPECT_NE(s, nullptr);
    });
    EXPECT_EQ(manager->Health().code(), absl::StatusCode::kUnavailable);
    ASSERT_TRUE(manager->Start(std::stop_token()).ok()) << manager->Health();
    auto state = manager->CurrentAgentState();
    ASSERT_NE(state, nullptr);
    EXPECT_EQ(state->svid.id.str(), "spiffe://example.org/spire/agent/join_token/" + token);
    EXPECT_FALSE(state->reattestable);
    EXPECT_EQ(state->bundle[0].ToDer(), server_.Roots()[0].ToDer());
    EXPECT_EQ(notified, 1);
    EXPECT_TRUE(manager->Health().ok());
    first_serial = Serial(state);

    struct stat st {};
    ASSERT_EQ(::stat(manager->state_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto stored = StateStore(config.data_dir).Load();
    ASSERT_TRUE(stored.ok() && stored->has_value());
    EXPECT_EQ((*stored)->svid.chain[0].SerialDecimal(), first_serial);
  }

  // Restart: no token, server down, and a bootstrap file that no longer parses (it is not read).
  server_.Stop();
  std::ofstream(config.trust_bundle_path) << "garbage";
  auto restarted = Manager(config, "");
  auto begin = std::chrono::steady_clock::now();
  ASSERT_TRUE(restarted->Start(std::stop_token()).ok()) << restarted->Health();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(2));
  EXPECT_EQ(Serial(restarted->CurrentAgentState()), first_serial);
  EXPECT_TRUE(restarted->Health().ok());
}

TEST_F(AttestationManagerTest, RenewsAtHalfLifeStoresAndNotifies) {
  server_.set_tweak([](server::ServerConfig& c) { c.agent_ttl = std::chrono::seconds(4); });
  server_.Start();
  AgentConfig config = Config();
  auto manager = Manager(config, server_.NewToken());
  std::mutex mu;
  std::vector<std::string> serials;
  manager->OnAgentStateChange([&](std::shared_ptr<const AgentState> s) {
    std::lock_guard lock(mu);
    serials.push_back(Serial(s));
  });
  ASSERT_TRUE(manager->Start(std::stop_token()).ok());
  const auto id = manager->CurrentAgentState()->svid.id;
  manager->StartRenewal();
  // Not before half-life (4 s TTL: at 1.6 s at the earliest).
  std::this_thread::sleep_for(std::chrono::seconds(1));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(serials.size(), 1u);
  }
  // Two renewals: the second authenticates with the SVID the first one produced.
  ASSERT_TRUE(Eventually(
      [&] {
        std::lock_guard lock(mu);
        return serials.size() >= 3;
      },
      kTestTimeout));
  auto state = manager->CurrentAgentState();
  {
    std::lock_guard lock(mu);
    EXPECT_NE(serials[1], serials[0]);
    EXPECT_NE(serials[2], serials[1]);
  }
  EXPECT_EQ(state->svid.id, id);
  EXPECT_TRUE(manager->Health().ok());
  manager->Shutdown();
  manager->Shutdown();  // idempotent
  auto stored = StateStore(config.data_dir).Load();
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->svid.chain[0].SerialDecimal(), Serial(manager->CurrentAgentState()));
}

TEST_F(AttestationManagerTest, RetriesUntilTheServerComesUp) {
  server_.Start();
  AgentConfig config = Config();
  const std::string token = server_.NewToken();
  server_.Stop();
  auto manager = Manager(config, token);
  std::atomic<bool> done = false;
  absl::Status started;
  std::jthread starter([&] {
    started = manager->Start(std::stop_token());
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_FALSE(done);
  EXPECT_EQ(manager->Health().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(manager->Health()), HasSubstr("not attested yet: attestation to 127.0.0.1:"));
  server_.Start();
  ASSERT_TRUE(Eventually([&] { return done.load(); }, kTestTimeout));
  starter.join();
  EXPECT_TRUE(started.ok()) << started;
  EXPECT_NE(manager->CurrentAgentState(), nullptr);
}

TEST_F(AttestationManagerTest, StartIsCancelledByItsStopToken) {
  server_.Start();
  AgentConfig config = Config();
  const std::string token = server_.NewToken();
  server_.Stop();
  auto manager = Manager(config, token);
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop.request_stop();
  });
  absl::Status started = manager->Start(stop.get_token());
  EXPECT_EQ(started.code(), absl::StatusCode::kCancelled) << started;
}

TEST_F(AttestationManagerTest, EvictedJoinTokenAgentTellsTheOperatorToActAndForgetsItsState) {
  server_.set_tweak([](server::ServerConfig& c) { c.agent_ttl = std::chrono::seconds(4); });
  server_.Start();
  AgentConfig config = Config();
  auto manager = Manager(config, server_.NewToken());
  ASSERT_TRUE(manager->Start(std::stop_token()).ok());
  const spiffe::SpiffeId id = manager->CurrentAgentState()->svid.id;
  manager->StartRenewal();
  ASSERT_TRUE(AgentAdmin("delete", id).ok());
  // The next renewal (half-life, ~2 s) is refused.
  ASSERT_TRUE(Eventually([&] { return !manager->Health().ok(); }, kTestTimeout));
  absl::Status health = manager->Health();
  EXPECT_EQ(health.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(health), HasSubstr("agent " + id.str() + " was evicted or its SVID expired"));
  EXPECT_THAT(Message(health), HasSubstr("generate a new join token"));
  EXPECT_THAT(Message(health), HasSubstr("restart with --join-token"));
  EXPECT_EQ(manager->CurrentAgentState(), nullptr);
  EXPECT_FALSE(std::filesystem::exists(manager->state_path()));
  // A rejection reported now changes nothing.
  manager->ReportRejected(absl::PermissionDeniedError("denied"));
  EXPECT_EQ(manager->Health(), health);
}

TEST_F(AttestationManagerTest, AJoinTokenAgentWhoseSvidExpiredNeedsANewToken) {
  server_.Start();
  auto clock = std::make_shared<FakeClock>(std::chrono::system_clock::now());
  auto manager = Manager(Config(), server_.NewToken(), clock);
  ASSERT_TRUE(manager->Start(std::stop_token()).ok());
  const auto state = manager->CurrentAgentState();
  manager->StartRenewal();
  // Asleep (or the server unreachable) past the SVID's expiry: RenewAgent cannot work any more.
  clock->Set(state->svid.chain[0].NotAfter() + std::chrono::seconds(1));
  ASSERT_TRUE(Eventually([&] { return !manager->Health().ok(); }, kTestTimeout));
  EXPECT_EQ(manager->Health().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(manager->Health()), HasSubstr("its SVID expired at"));
  EXPECT_THAT(Message(manager->Health()), HasSubstr("restart with --join-token"));
  EXPECT_EQ(manager->CurrentAgentState(), nullptr);
}

TEST_F(AttestationManagerTest, AStaleRejectionIsCheckedWithTheServerAndRenews) {
  server_.Start();
  auto manager = Manager(Config(), server_.NewToken());
  ASSERT_TRUE(manager->Start(std::stop_token()).ok());
  const std::string serial = Serial(manager->CurrentAgentState());
  manager->StartRenewal();
  // Not a refusal: ignored.
  manager->ReportRejected(absl::UnavailableError("socket closed"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Serial(manager->CurrentAgentState()), serial);
  // NOT_ACTIVE about an SVID that is no longer ours (a call made before a renewal): ignored.
  spire::api::types::PermissionDeniedDetails details;
  details.set_reason(spire::api::types::PermissionDeniedDetails::AGENT_NOT_ACTIVE);
  absl::Status old_serial = absl::PermissionDeniedError(
      "authorization denied: agent \"x\" expected to have serial number \"" + serial +
      "\"; has \"12345\"");
  old_serial.SetPayload(kPermissionDeniedDetailsUrl, absl::Cord(details.SerializeAsString()));
  manager->ReportRejected(old_serial);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Serial(manager->CurrentAgentState()), serial);
  // A refusal the server does not confirm: RenewAgent still works, the agent carries on.
  manager->ReportRejected(absl::PermissionDeniedError("agent is not active"));
  ASSERT_TRUE(Eventually([&] { return Serial(manager->CurrentAgentState()) != serial; }));
  EXPECT_TRUE(manager->Health().ok());
}

TEST_F(AttestationManagerTest, RefusedJoinTokensFailStartAtOnceWithWhatToDo) {
  server_.Start();
  AgentConfig config = Config();
  std::string used;
  ASSERT_TRUE(server_.AttestAgent(&used).ok());
  for (const std::string& token : {used, std::string("no-such-token")}) {
    auto manager = Manager(config, token);
    absl::Status started = manager->Start(std::stop_token());
    EXPECT_EQ(started.code(), absl::StatusCode::kFailedPrecondition) << started;
    EXPECT_THAT(Message(started), HasSubstr("join token does not exist or has already been used"));
    EXPECT_THAT(Message(started), HasSubstr("generate a new join token"));
    EXPECT_EQ(manager->Health(), started);
    EXPECT_FALSE(std::filesystem::exists(manager->state_path()));
  }
  auto expired = Manager(config, server_.NewToken(-std::chrono::seconds(60)));
  absl::Status started = expired->Start(std::stop_token());
  EXPECT_EQ(started.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(started), HasSubstr("join token expired"));

  auto none = Manager(config, "");
  started = none->Start(std::stop_token());
  EXPECT_EQ(started.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(started), HasSubstr("no join token"));
  EXPECT_THAT(Message(started), HasSubstr("--join-token"));
}

TEST_F(AttestationManagerTest, AnExpiredStoredSvidReattestsTrustingTheStoredBundle) {
  server_.Start();
  AgentConfig config = Config();
  auto first = Manager(config, server_.NewToken());
  ASSERT_TRUE(first->Start(std::stop_token()).ok());
  const Clock::TimePoint not_after = first->CurrentAgentState()->svid.chain[0].NotAfter();
  first.reset();

  // The bootstrap file now names an unrelated CA: only the stored bundle can work.
  auto other = spiffe::testing::MakeRootCa(Td("example.org"), std::chrono::system_clock::now());
  std::ofstream(config.trust_bundle_path) << other->cert.ToPem();
  auto clock = std::make_shared<FakeClock>(not_after + std::chrono::seconds(1));

  auto without_token = Manager(config, "", clock);
  absl::Status started = without_token->Start(std::stop_token());
  EXPECT_EQ(started.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(started), HasSubstr("has expired"));

  const std::string token = server_.NewToken();
  auto second = Manager(config, token, clock);
  std::stop_source stop;
  std::jthread guard([&](std::stop_token done) {
    // Fails the test instead of hanging if the bootstrap file were used.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done.stop_requested() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop.request_stop();
  });
  started = second->Start(stop.get_token());
  ASSERT_TRUE(started.ok()) << started;
  EXPECT_EQ(second->CurrentAgentState()->svid.id.str(),
            "spiffe://example.org/spire/agent/join_token/" + token);
}

TEST_F(AttestationManagerTest, BootstrapsFromASpiffeBundleOrInsecurely) {
  server_.Start();
  AgentConfig config = Config();
  spiffe::Bundle bundle(Td("example.org"));
  bundle.SetX509Authorities(server_.Roots());
  config.trust_bundle_path = dir_ / "bootstrap.json";
  std::ofstream(config.trust_bundle_path) << spiffe::SpiffeBundleToJson(bundle).value();
  config.trust_bundle_format = TrustBundleFormat::kSpiffe;
  auto spiffe_format = Manager(config, server_.NewToken());
  ASSERT_TRUE(spiffe_format->Start(std::stop_token()).ok()) << spiffe_format->Health();

  // The same file read as PEM is a configuration error, reported at once.
  config.data_dir = dir_ / "agent-pem";
  config.trust_bundle_format = TrustBundleFormat::kPem;
  auto wrong_format = Manager(config, server_.NewToken());
  absl::Status started = wrong_format->Start(std::stop_token());
  EXPECT_EQ(started.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(started), HasSubstr("not a PEM bundle"));
  EXPECT_THAT(Message(started), HasSubstr("fix trust_bundle_path"));

  config.data_dir = dir_ / "agent-insecure";
  config.trust_bundle_path.clear();
  config.insecure_bootstrap = true;
  auto insecure = Manager(config, server_.NewToken());
  ASSERT_TRUE(insecure->Start(std::stop_token()).ok()) << insecure->Health();
  // The bundle came from GetBundle; it is what the next start will trust.
  auto state = insecure->CurrentAgentState();
  ASSERT_EQ(state->bundle.size(), 1u);
  EXPECT_EQ(state->bundle[0].ToDer(), server_.Roots()[0].ToDer());
}

TEST_F(AttestationManagerTest, X509PopAgentReattestsAfterEvictionAndAfterABanIsLifted) {
  ServeX509Pop();
  AgentConfig config = Config();
  ConfigureX509PopAgent(config);
  auto manager = Manager(config, "");
  ASSERT_TRUE(manager->Start(std::stop_token()).ok()) << manager->Health();
  auto state = manager->CurrentAgentState();
  EXPECT_TRUE(state->reattestable);
  const spiffe::SpiffeId id = state->svid.id;
  EXPECT_THAT(id.str(), HasSubstr("/spire/agent/x509pop/"));
  manager->StartRenewal();

  // Evicted: the server client's next call is refused and reported.
  ASSERT_TRUE(AgentAdmin("delete", id).ok());
  absl::Status refused = RenewAgentSvid(server_.Connection(), *state).status();
  ASSERT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
  EXPECT_EQ(AgentDeniedReason(refused),
            spire::api::types::PermissionDeniedDetails::AGENT_NOT_ATTESTED);
  manager->ReportRejected(refused);
  ASSERT_TRUE(Eventually([&] { return Serial(manager->CurrentAgentState()) != Serial(state); },
                         kTestTimeout));
  EXPECT_EQ(manager->CurrentAgentState()->svid.id, id);
  EXPECT_TRUE(manager->Health().ok());
  EXPECT_TRUE(AgentAdmin("get", id).ok());

  // Banned: attesting again is refused; the operator is told how to lift the ban.
  ASSERT_TRUE(AgentAdmin("ban", id).ok());
  manager->ReportRejected(absl::PermissionDeniedError("agent is banned"));
  ASSERT_TRUE(Eventually([&] { return !manager->Health().ok(); }, kTestTimeout));
  EXPECT_EQ(manager->Health().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(manager->Health()), HasSubstr("agent " + id.str() + " was refused"));
  EXPECT_THAT(Message(manager->Health()), HasSubstr("tessera-server agent evict"));
  EXPECT_EQ(manager->CurrentAgentState(), nullptr);
  EXPECT_FALSE(std::filesystem::exists(manager->state_path()));

  // Lifting the ban (evict) lets the agent back in by itself.
  ASSERT_TRUE(AgentAdmin("delete", id).ok());
  ASSERT_TRUE(Eventually([&] { return manager->Health().ok(); }, kTestTimeout));
  ASSERT_NE(manager->CurrentAgentState(), nullptr);
  EXPECT_TRUE(std::filesystem::exists(manager->state_path()));
}

TEST_F(AttestationManagerTest, X509PopAgentRenewsByAttestingAgain) {
  ServeX509Pop(std::chrono::seconds(4));
  AgentConfig config = Config();
  ConfigureX509PopAgent(config);
  auto manager = Manager(config, "");
  ASSERT_TRUE(manager->Start(std::stop_token()).ok());
  auto first = manager->CurrentAgentState();
  manager->StartRenewal();
  ASSERT_TRUE(Eventually([&] { return Serial(manager->CurrentAgentState()) != Serial(first); },
                         kTestTimeout));
  auto renewed = manager->CurrentAgentState();
  EXPECT_TRUE(renewed->reattestable);
  EXPECT_EQ(renewed->svid.id, first->svid.id);
  EXPECT_NE(renewed->svid.key.ToPkcs8Der().value(), first->svid.key.ToPkcs8Der().value());
}

}  // namespace
}  // namespace tessera::agent
