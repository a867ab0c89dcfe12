// The agent's server client against a real in-process tessera-server: entry sync in both of its
// shapes (one page, and revisions then entries in pages past 500) with unchanged entries kept,
// X509-SVID batches past 500 with per-item errors in request order, JWT-SVIDs (blocking and
// callback), bundles, the push stream, failover past a dead address, rejection reporting and
// shutdown; plus the entry checks spire-agent makes on what it receives.
#include "agent/server_client.h"

#include <future>
#include <thread>

#include "agent/agent_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/csr.h"
#include "spiffe/x509_test_util.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"

namespace tessera::agent {
namespace {

namespace entryv1 = ::spire::api::server::entry::v1;
namespace agentv1 = ::spire::api::server::agent::v1;
namespace types = ::spire::api::types;
using spiffe::testing::Id;
using spiffe::testing::Td;
using spiffe::testing::TempDir;
using testing::Eventually;
using testing::FixedAgentIdentity;
using ::testing::HasSubstr;
using testing::TestEntry;
using testing::TestServer;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

class NoIdentity final : public AgentIdentitySource {
 public:
  std::shared_ptr<const AgentState> CurrentAgentState() const override { return nullptr; }
  void OnAgentStateChange(std::function<void(std::shared_ptr<const AgentState>)>) override {}
  void ReportRejected(const absl::Status&) override {}
};

class ServerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Start();
    auto state = server_.AttestAgent(&token_);
    ASSERT_TRUE(state.ok()) << state.status();
    identity_ = std::make_unique<FixedAgentIdentity>(*std::move(state));
    client_ = MakeClient({Address()});
  }

  ServerAddress Address() const { return *ParseServerAddress(server_.target()); }
  std::unique_ptr<ServerClient> MakeClient(std::vector<ServerAddress> servers) {
    return std::make_unique<ServerClient>(
        ServerClientOptions{.trust_domain = Td("example.org"),
                            .servers = std::move(servers),
                            .rpc_timeout = std::chrono::seconds(10)},
        *identity_);
  }
  std::string AgentPath() const { return "/spire/agent/join_token/" + token_; }

  // `count` entries under the agent, created in one BatchCreateEntry; returns their IDs in order.
  std::vector<std::string> CreateEntries(int count) {
    entryv1::BatchCreateEntryRequest req;
    for (int i = 0; i < count; ++i) {
      types::Entry* e = req.add_entries();
      e->mutable_spiffe_id()->set_trust_domain("example.org");
      e->mutable_spiffe_id()->set_path("/w/" + std::to_string(i));
      e->mutable_parent_id()->set_trust_domain("example.org");
      e->mutable_parent_id()->set_path(AgentPath());
      types::Selector* sel = e->add_selectors();
      sel->set_type("unix");
      sel->set_value("uid:" + std::to_string(i));
    }
    grpc::ClientContext ctx;
    entryv1::BatchCreateEntryResponse resp;
    grpc::Status status =
        entryv1::Entry::NewStub(server_.Admin())->BatchCreateEntry(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<std::string> ids;
    for (const auto& result : resp.results()) {
      EXPECT_EQ(result.status().code(), 0) << result.status().message();
      ids.push_back(result.entry().id());
    }
    return ids;
  }

  // Replaces the selectors of entry `id` (which bumps its revision).
  void UpdateSelector(const std::string& id, const std::string& value) {
    entryv1::BatchUpdateEntryRequest req;
    types::Entry* e = req.add_entries();
    e->set_id(id);
    types::Selector* sel = e->add_selectors();
    sel->set_type("unix");
    sel->set_value(value);
    req.mutable_input_mask()->set_selectors(true);
    grpc::ClientContext ctx;
    entryv1::BatchUpdateEntryResponse resp;
    grpc::Status status =
        entryv1::Entry::NewStub(server_.Admin())->BatchUpdateEntry(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
  }

  TempDir tmp_;
  TestServer server_{tmp_.path()};
  std::string token_;
  std::unique_ptr<FixedAgentIdentity> identity_;
  std::unique_ptr<ServerClient> client_;
};

TEST_F(ServerClientTest, SmallSyncReturnsAuthorizedEntriesAndKeepsUnchangedOnes) {
  std::string web = server_.CreateEntry(
      {.spiffe_path = "/web", .parent_path = AgentPath(), .federates_with = {}, .hint = "web"});
  std::string db = server_.CreateEntry({.spiffe_path = "/db",
                                        .parent_path = AgentPath(),
                                        .selectors = {"unix:uid:0", "unix:gid:0"}});
  // Another agent's entry is not ours.
  server_.CreateEntry({.spiffe_path = "/other", .parent_path = "/spire/agent/join_token/x"});

  auto first = client_->SyncAuthorizedEntries({});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 2u);
  const CachedEntry& w = *first->at(web);
  EXPECT_EQ(w.spiffe_id, Id("spiffe://example.org/web"));
  EXPECT_EQ(w.selectors.Strings(), std::vector<std::string>{"unix:uid:1000"});
  EXPECT_EQ(w.hint, "web");
  EXPECT_GT(w.created_at, 0);
  EXPECT_EQ(first->at(db)->selectors.Strings(),
            (std::vector<std::string>{"unix:gid:0", "unix:uid:0"}));
  EntrySyncStats stats = client_->last_entry_sync_stats();
  EXPECT_FALSE(stats.paged);
  EXPECT_EQ(stats.received, 2u);

  auto second = client_->SyncAuthorizedEntries(*first);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->at(web), first->at(web));  // the same pointer: nothing changed

  server_.DeleteEntry(db);
  auto third = client_->SyncAuthorizedEntries(*second);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->size(), 1u);
  EXPECT_FALSE(third->contains(db));
}

TEST_F(ServerClientTest, LargeSyncPagesAndAsksOnlyForChangedEntriesThenMintsInBatches) {
  std::vector<std::string> ids = CreateEntries(510);
  ASSERT_EQ(ids.size(), 510u);

  auto first = client_->SyncAuthorizedEntries({});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->size(), 510u);
  EntrySyncStats stats = client_->last_entry_sync_stats();
  EXPECT_TRUE(stats.paged);
  EXPECT_EQ(stats.revisions, 510u);
  EXPECT_EQ(stats.requested, 510u);
  EXPECT_EQ(stats.received, 510u);

  UpdateSelector(ids[3], "uid:9003");
  UpdateSelector(ids[507], "uid:9507");
  server_.DeleteEntry(ids[100]);
  auto second = client_->SyncAuthorizedEntries(*first);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->size(), 509u);
  stats = client_->last_entry_sync_stats();
  EXPECT_EQ(stats.requested, 2u);
  EXPECT_EQ(stats.received, 2u);
  EXPECT_EQ(second->at(ids[3])->selectors.Strings(), std::vector<std::string>{"unix:uid:9003"});
  EXPECT_EQ(second->at(ids[3])->revision_number, first->at(ids[3])->revision_number + 1);
  EXPECT_EQ(second->at(ids[507])->selectors.Strings(), std::vector<std::string>{"unix:uid:9507"});
  EXPECT_EQ(second->at(ids[4]), first->at(ids[4]));
  EXPECT_FALSE(second->contains(ids[100]));

  // 512 requests in two calls: the server's per-item errors stay at their positions.
  std::vector<X509SvidRequest> requests;
  std::vector<spiffe::PrivateKey> keys;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i == 100) continue;  // deleted
    auto key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256);
    ASSERT_TRUE(key.ok());
    auto csr = spiffe::CreateCsr(*key, second->at(ids[i])->spiffe_id);
    ASSERT_TRUE(csr.ok());
    requests.push_back({ids[i], *csr});
    keys.push_back(*key);
  }
  requests.insert(requests.begin() + 1, X509SvidRequest{"no-such-entry", requests[0].csr_der});
  keys.insert(keys.begin() + 1, keys[0]);
  requests.insert(requests.begin() + 505, X509SvidRequest{ids[0], "not a CSR"});
  keys.insert(keys.begin() + 505, keys[0]);
  std::vector<X509SvidRequest> sent = requests;
  auto results = client_->BatchNewX509Svid(std::move(requests));
  ASSERT_EQ(results.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    if (i == 1) {
      EXPECT_EQ(results[i].status().code(), absl::StatusCode::kNotFound);
      EXPECT_THAT(Message(results[i].status()), HasSubstr("entry not found or not authorized"));
      continue;
    }
    if (i == 505) {
      EXPECT_EQ(results[i].status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(Message(results[i].status()), HasSubstr("malformed CSR"));
      continue;
    }
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    const spiffe::Certificate& leaf = results[i]->front();
    EXPECT_EQ(leaf.UriSans(),
              std::vector<std::string>{second->at(sent[i].entry_id)->spiffe_id.str()});
    EXPECT_TRUE(leaf.public_key().Equals(keys[i].public_key())) << i;
  }
}

TEST_F(ServerClientTest, JwtSvidsBlockingAndAsync) {
  std::string web = server_.CreateEntry({.spiffe_path = "/web", .parent_path = AgentPath()});
  auto jwt = client_->NewJwtSvid(web, {"aud-1", "aud-2"});
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_EQ(jwt->svid.subject, Id("spiffe://example.org/web"));
  EXPECT_EQ(jwt->svid.audience, (std::vector<std::string>{"aud-1", "aud-2"}));
  EXPECT_LE(jwt->issued_at, jwt->expires_at);
  EXPECT_EQ(jwt->expires_at, jwt->svid.expiry);

  auto unknown = client_->NewJwtSvid("no-such-entry", {"aud"});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(unknown.status()), HasSubstr("new JWT-SVID: entry not found"));

  auto fetch_async = [&](std::string entry, std::vector<std::string> audience) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<IssuedJwtSvid>>>();
    auto calls = std::make_shared<std::atomic<int>>(0);
    client_->NewJwtSvidAsync(std::move(entry), std::move(audience),
                             [promise, calls](absl::StatusOr<IssuedJwtSvid> result) {
                               if (++*calls == 1) promise->set_value(std::move(result));
                             });
    auto result = promise->get_future().get();
    EXPECT_EQ(calls->load(), 1);
    return result;
  };
  auto async = fetch_async(web, {"spiffe://example.org/db"});
  ASSERT_TRUE(async.ok()) << async.status();
  EXPECT_EQ(async->svid.audience, std::vector<std::string>{"spiffe://example.org/db"});
  auto no_audience = fetch_async(web, {});
  EXPECT_EQ(no_audience.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(no_audience.status()), HasSubstr("at least one audience is required"));
}

TEST_F(ServerClientTest, BundlesOwnAndFederated) {
  auto own = client_->GetBundle();
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->trust_domain(), Td("example.org"));
  EXPECT_EQ(own->x509_authorities(), server_.Roots());
  EXPECT_FALSE(own->jwt_authorities().empty());

  auto missing = client_->GetFederatedBundle(Td("other.org"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  auto ca = spiffe::testing::MakeRootCa(Td("other.org"), std::chrono::system_clock::now());
  ASSERT_TRUE(ca.ok());
  ASSERT_NO_FATAL_FAILURE(server_.CreateFederatedBundle("other.org", ca->cert));

  auto federated = client_->GetFederatedBundle(Td("other.org"));
  ASSERT_TRUE(federated.ok()) << federated.status();
  EXPECT_EQ(federated->x509_authorities(), std::vector<spiffe::Certificate>{ca->cert});
}

TEST_F(ServerClientTest, WatchDeliversNotificationsUntilStopped) {
  std::mutex mu;
  std::vector<PushNotification> got;
  std::stop_source stop;
  std::future<absl::Status> watch = std::async(std::launch::async, [&] {
    return client_->Watch(
        [&](const PushNotification& n) {
          std::lock_guard lock(mu);
          got.push_back(n);
        },
        stop.get_token());
  });
  auto count = [&] {
    std::lock_guard lock(mu);
    return got.size();
  };
  ASSERT_TRUE(Eventually([&] { return count() >= 1; }));
  {
    std::lock_guard lock(mu);
    EXPECT_TRUE(got[0].entries_changed);  // the stream's first message: sync once
    EXPECT_TRUE(got[0].bundle_changed);
  }
  server_.CreateEntry({.spiffe_path = "/web", .parent_path = AgentPath()});
  ASSERT_TRUE(Eventually([&] { return count() >= 2; }));
  {
    std::lock_guard lock(mu);
    EXPECT_TRUE(got[1].entries_changed);
    EXPECT_GT(got[1].revision, got[0].revision);
  }
  stop.request_stop();
  ASSERT_EQ(watch.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(watch.get().ok());
}

TEST_F(ServerClientTest, FailsOverPastADeadAddress) {
  // Nothing listens on port 1: connection refused, UNAVAILABLE.
  auto client = MakeClient({*ParseServerAddress("127.0.0.1:1"), Address()});
  auto bundle = client->GetBundle();
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(client->current_server(), Address());
  // It stays on the address that works.
  EXPECT_TRUE(client->SyncAuthorizedEntries({}).ok());
  EXPECT_EQ(client->current_server(), Address());

  auto dead = MakeClient({*ParseServerAddress("127.0.0.1:1")});
  auto failed = dead->GetBundle();
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(failed.status()), HasSubstr("get bundle: "));
}

TEST_F(ServerClientTest, ReportsRejectionWhenTheAgentIsDeleted) {
  agentv1::DeleteAgentRequest req;
  req.mutable_id()->set_trust_domain("example.org");
  req.mutable_id()->set_path(AgentPath());
  grpc::ClientContext ctx;
  google::protobuf::Empty resp;
  ASSERT_TRUE(agentv1::Agent::NewStub(server_.Admin())->DeleteAgent(&ctx, req, &resp).ok());

  auto entries = client_->SyncAuthorizedEntries({});
  EXPECT_EQ(entries.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(entries.status()), HasSubstr("is not attested"));
  ASSERT_EQ(identity_->rejections().size(), 1u);
  EXPECT_EQ(identity_->rejections()[0].code(), absl::StatusCode::kPermissionDenied);
  // Not an agent RPC's refusal: GetBundle is open to anyone.
  EXPECT_TRUE(client_->GetBundle().ok());
  EXPECT_EQ(identity_->rejections().size(), 1u);
}

TEST_F(ServerClientTest, WithoutIdentityOrAfterShutdownCallsFail) {
  NoIdentity none;
  ServerClient unattested({.trust_domain = Td("example.org"), .servers = {Address()}}, none);
  auto bundle = unattested.GetBundle();
  EXPECT_EQ(bundle.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(bundle.status()), HasSubstr("not attested"));

  std::stop_source never;
  std::future<absl::Status> watch = std::async(std::launch::async, [&] {
    return client_->Watch([](const PushNotification&) {}, never.get_token());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  client_->Shutdown();
  ASSERT_EQ(watch.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(watch.get().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(client_->GetBundle().status().code(), absl::StatusCode::kUnavailable);
  std::promise<absl::Status> async;
  client_->NewJwtSvidAsync("x", {"a"},
                           [&](absl::StatusOr<IssuedJwtSvid> r) { async.set_value(r.status()); });
  EXPECT_EQ(async.get_future().get().code(), absl::StatusCode::kUnavailable);
}

TEST(EntryFromAgentProtoTest, ChecksWhatSpireAgentChecks) {
  types::Entry good;
  good.set_id("e1");
  good.mutable_spiffe_id()->set_trust_domain("example.org");
  good.mutable_spiffe_id()->set_path("/web");
  auto* sel = good.add_selectors();
  sel->set_type("unix");
  sel->set_value("uid:1000");
  good.add_federates_with("spiffe://other.org");
  good.add_federates_with("third.org");
  good.set_revision_number(7);
  good.set_created_at(1700000000);
  good.set_admin(true);
  auto parsed = EntryFromAgentProto(good);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spiffe_id, Id("spiffe://example.org/web"));
  EXPECT_EQ(parsed->federates_with,
            (std::vector<spiffe::TrustDomain>{Td("other.org"), Td("third.org")}));
  EXPECT_EQ(parsed->revision_number, 7);
  EXPECT_EQ(parsed->created_at, 1700000000);
  EXPECT_TRUE(parsed->admin);

  auto expect_bad = [](types::Entry entry, std::string_view message) {
    auto result = EntryFromAgentProto(entry);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_THAT(Message(result.status()), HasSubstr(std::string(message)));
  };
  types::Entry e = good;
  e.clear_id();
  expect_bad(e, "missing entry ID");
  e = good;
  e.mutable_spiffe_id()->set_path("no-slash");
  expect_bad(e, "invalid SPIFFE ID");
  e = good;
  e.mutable_spiffe_id()->set_trust_domain("Bad Domain");
  expect_bad(e, "invalid SPIFFE ID");
  e = good;
  e.clear_selectors();
  expect_bad(e, "selector list is empty");
  e = good;
  e.mutable_selectors(0)->set_type("un:ix");
  expect_bad(e, "selector type contains ':'");
  e = good;
  e.mutable_selectors(0)->set_value("");
  expect_bad(e, "missing selector value");
  e = good;
  e.add_federates_with("not a td");
  expect_bad(e, "invalid federates_with value");

  types::EntryMask mask = AgentEntryMask();
  EXPECT_TRUE(mask.revision_number());
  EXPECT_TRUE(mask.created_at());
  EXPECT_FALSE(mask.parent_id());
  EXPECT_FALSE(mask.x509_svid_ttl());
  EXPECT_FALSE(mask.dns_names());
}

}  // namespace
}  // namespace tessera::agent
