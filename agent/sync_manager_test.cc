// The sync manager against a real in-process tessera-server: entries reach the cache with SVIDs
// that verify against the cache's bundle (by push, with polling set to an hour), deleted entries
// go, short-lived SVIDs rotate by themselves, a server outage keeps what is valid and drops what
// expires, a restart on the same port is recovered from, JWT-SVIDs are cached to half-life, and
// federated bundles follow the entries. The JWT-SVID cache's rules are also checked on their own
// with a fake clock and a fake fetcher.
#include "agent/sync_manager.h"

#include <future>

#include "agent/agent_test_util.h"
#include "agent/jwt_svid_cache.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/grpc_tls.h"
#include "spiffe/x509_test_util.h"
#include "tessera/server/v1/notify.grpc.pb.h"

namespace tessera::agent {
namespace {

using spiffe::testing::Id;
using spiffe::testing::Td;
using spiffe::testing::TempDir;
using testing::Eventually;
using testing::FixedAgentIdentity;
using ::testing::HasSubstr;
using testing::TestServer;

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

class SyncManagerTest : public ::testing::Test {
 protected:
  void StartAll(milliseconds sync_interval) {
    server_.Start();
    auto state = server_.AttestAgent(&token_);
    ASSERT_TRUE(state.ok()) << state.status();
    identity_ = std::make_unique<FixedAgentIdentity>(*std::move(state));
    manager_ = std::make_unique<SyncManager>(
        SyncOptions{.trust_domain = Td("example.org"),
                    .servers = {*ParseServerAddress(server_.target())},
                    .sync_interval = sync_interval,
                    .rpc_timeout = seconds(5),
                    .max_backoff = seconds(2)},
        *identity_, cache_);
    manager_->Start();
    ASSERT_TRUE(Eventually([&] { return manager_->status().has_synced; }))
        << manager_->status().last_error;
  }

  std::string AgentPath() const { return "/spire/agent/join_token/" + token_; }

  // The identity for SPIFFE ID path `path` in the current snapshot.
  std::optional<CachedIdentity> Find(std::string_view path) const {
    for (const CachedIdentity& identity : cache_.Current()->identities()) {
      if (identity.entry->spiffe_id.path() == path) return identity;
    }
    return std::nullopt;
  }
  bool HasSvid(std::string_view path) const {
    auto identity = Find(path);
    return identity.has_value() && identity->svid != nullptr;
  }

  absl::StatusOr<std::string> FetchJwt(std::shared_ptr<const CachedEntry> entry,
                                       std::vector<std::string> audience) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<std::string>>>();
    manager_->FetchJwtSvid(
        std::move(entry), std::move(audience),
        [promise](absl::StatusOr<std::string> token) { promise->set_value(std::move(token)); });
    return promise->get_future().get();
  }

  TempDir tmp_;
  TestServer server_{tmp_.path()};
  std::string token_;
  std::unique_ptr<FixedAgentIdentity> identity_;
  Cache cache_{Td("example.org")};
  std::unique_ptr<SyncManager> manager_;
};

TEST_F(SyncManagerTest, EntriesArriveByPushWithVerifiedSvidsAndGoWhenDeleted) {
  // Polling once an hour: only the push stream can bring the entry in time.
  StartAll(std::chrono::hours(1));
  EXPECT_TRUE(cache_.HasSynced());
  ASSERT_NE(cache_.Current()->own_bundle(), nullptr);
  EXPECT_EQ(cache_.Current()->own_bundle()->x509_authorities(), server_.Roots());

  std::string id = server_.CreateEntry({.spiffe_path = "/web", .parent_path = AgentPath()});
  ASSERT_TRUE(Eventually([&] { return HasSvid("/web"); }, seconds(3)));
  auto snapshot = cache_.Current();
  const CachedIdentity& web = *snapshot->FindEntry(id);
  EXPECT_EQ(web.entry->selectors.Strings(), std::vector<std::string>{"unix:uid:1000"});
  EXPECT_EQ(web.svid->id, Id("spiffe://example.org/web"));
  EXPECT_TRUE(web.svid->chain.front().public_key().Equals(web.svid->key.public_key()));
  auto verified = spiffe::VerifyX509Svid(
      web.svid->chain,
      [&](const spiffe::TrustDomain& td) -> std::optional<std::vector<spiffe::Certificate>> {
        const spiffe::Bundle* bundle = snapshot->bundles().Find(td);
        if (bundle == nullptr) return std::nullopt;
        return bundle->x509_authorities();
      },
      std::chrono::system_clock::now());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->id, Id("spiffe://example.org/web"));
  // Published already encoded for the Workload API, and encoded right.
  ASSERT_NE(web.encoded, nullptr);
  EXPECT_EQ(web.encoded->chain_der, spiffe::ChainToDer(web.svid->chain));
  auto key = spiffe::PrivateKey::FromPkcs8Der(web.encoded->key_pkcs8_der);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_TRUE(key->public_key().Equals(web.svid->key.public_key()));
  EXPECT_EQ(snapshot->own_x509_authorities_der(),
            spiffe::X509AuthoritiesToDer(*snapshot->own_bundle()));

  server_.DeleteEntry(id);
  ASSERT_TRUE(Eventually([&] { return !Find("/web").has_value(); }, seconds(3)));
  SyncStatus status = manager_->status();
  EXPECT_EQ(status.consecutive_failures, 0);
  EXPECT_TRUE(status.last_error.ok());
  EXPECT_TRUE(status.last_success.has_value());
}

TEST_F(SyncManagerTest, PollsWhenTheServerHasNoPushStream) {
  // As against a SPIRE server: Watch is UNIMPLEMENTED, so only polling brings changes, and that
  // is not a failure.
  server_.set_tweak([](server::ServerConfig& config) { config.push_notifications = false; });
  StartAll(milliseconds(300));
  {
    // The premise: the agent's own Watch call is refused as unimplemented.
    std::shared_ptr<const AgentState> agent = identity_->CurrentAgentState();
    auto creds = spiffe::SpiffeTlsChannelCredentials(
        server_.Roots(), Id("spiffe://example.org/spire/server"),
        spiffe::ClientIdentity{.key = agent->svid.key, .chain = agent->svid.chain});
    ASSERT_TRUE(creds.ok()) << creds.status();
    auto stub =
        ::tessera::server::v1::Notifier::NewStub(grpc::CreateChannel(server_.target(), *creds));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    ::tessera::server::v1::WatchRequest request;
    auto reader = stub->Watch(&ctx, request);
    ::tessera::server::v1::Notification notification;
    EXPECT_FALSE(reader->Read(&notification));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  std::string id = server_.CreateEntry({.spiffe_path = "/polled", .parent_path = AgentPath()});
  ASSERT_TRUE(Eventually([&] { return HasSvid("/polled"); }, seconds(10)));
  server_.DeleteEntry(id);
  ASSERT_TRUE(Eventually([&] { return !Find("/polled").has_value(); }, seconds(10)));
  SyncStatus status = manager_->status();
  EXPECT_EQ(status.consecutive_failures, 0);
  EXPECT_TRUE(status.last_error.ok()) << status.last_error;
}

TEST_F(SyncManagerTest, FollowsARenewedAgentSvid) {
  StartAll(std::chrono::hours(1));
  auto renewed = RenewAgentSvid(server_.Connection(), *identity_->CurrentAgentState());
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  const uint64_t syncs = manager_->sync_count();
  identity_->Set(*std::move(renewed));
  // The new SVID is used at once (a sync, and the push stream reopened with it): the server
  // then retires the old serial, yet entries keep arriving by push.
  ASSERT_TRUE(Eventually([&] { return manager_->sync_count() > syncs; }, seconds(3)));
  server_.CreateEntry({.spiffe_path = "/web", .parent_path = AgentPath()});
  ASSERT_TRUE(Eventually([&] { return HasSvid("/web"); }, seconds(3)));
  EXPECT_TRUE(identity_->rejections().empty());
  EXPECT_EQ(manager_->status().consecutive_failures, 0);
}

TEST_F(SyncManagerTest, ShortLivedSvidsRotateWithANewKey) {
  StartAll(std::chrono::hours(1));
  server_.CreateEntry({.spiffe_path = "/short", .parent_path = AgentPath(), .x509_svid_ttl = 4});
  ASSERT_TRUE(Eventually([&] { return HasSvid("/short"); }, seconds(3)));
  std::shared_ptr<const spiffe::X509Svid> first = Find("/short")->svid;
  const auto lifetime = first->chain.front().NotAfter() - std::chrono::system_clock::now();
  EXPECT_LE(lifetime, seconds(5));

  // Rotation at 40-50% of about 4 s: well before the first one expires.
  ASSERT_TRUE(Eventually([&] { return Find("/short")->svid != first; }, seconds(4)));
  const CachedIdentity rotated = *Find("/short");
  std::shared_ptr<const spiffe::X509Svid> second = rotated.svid;
  ASSERT_NE(second, nullptr);
  // The encoding the Workload API sends is the new SVID's, not the old one's.
  ASSERT_NE(rotated.encoded, nullptr);
  EXPECT_EQ(rotated.encoded->chain_der, spiffe::ChainToDer(second->chain));
  EXPECT_NE(second->chain.front().SerialHex(), first->chain.front().SerialHex());
  EXPECT_FALSE(second->key.public_key().Equals(first->key.public_key()));
  EXPECT_GT(first->chain.front().NotAfter(), std::chrono::system_clock::now());
}

TEST_F(SyncManagerTest, ServerOutageKeepsValidSvidsDropsExpiredOnesAndRecovers) {
  StartAll(milliseconds(300));
  server_.CreateEntry({.spiffe_path = "/long", .parent_path = AgentPath()});
  server_.CreateEntry({.spiffe_path = "/brief", .parent_path = AgentPath(), .x509_svid_ttl = 3});
  ASSERT_TRUE(Eventually([&] { return HasSvid("/long") && HasSvid("/brief"); }, seconds(3)));
  std::shared_ptr<const spiffe::X509Svid> long_svid = Find("/long")->svid;

  server_.Stop();
  ASSERT_TRUE(Eventually([&] { return manager_->status().consecutive_failures >= 2; }));
  SyncStatus down = manager_->status();
  EXPECT_EQ(down.last_error.code(), absl::StatusCode::kUnavailable) << down.last_error;
  EXPECT_TRUE(down.has_synced);
  // The brief one cannot be renewed: once expired it is no longer served, but its entry stays.
  ASSERT_TRUE(Eventually([&] { return !HasSvid("/brief"); }, seconds(5)));
  EXPECT_TRUE(Find("/brief").has_value());
  EXPECT_EQ(Find("/long")->svid, long_svid);

  server_.Start();
  server_.CreateEntry({.spiffe_path = "/after", .parent_path = AgentPath()});
  ASSERT_TRUE(Eventually([&] { return HasSvid("/after") && HasSvid("/brief"); }, seconds(10)));
  EXPECT_EQ(Find("/long")->svid, long_svid);
  EXPECT_TRUE(Eventually([&] { return manager_->status().consecutive_failures == 0; }));
}

TEST_F(SyncManagerTest, JwtSvidsAreCachedUntilHalfLife) {
  StartAll(std::chrono::hours(1));
  server_.CreateEntry({.spiffe_path = "/web", .parent_path = AgentPath(), .jwt_svid_ttl = 4});
  ASSERT_TRUE(Eventually([&] { return Find("/web").has_value(); }, seconds(3)));
  std::shared_ptr<const CachedEntry> entry = Find("/web")->entry;

  auto first = FetchJwt(entry, {"b", "a"});
  ASSERT_TRUE(first.ok()) << first.status();
  auto parsed = spiffe::ParseJwtSvidInsecure(*first);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->subject, Id("spiffe://example.org/web"));
  EXPECT_EQ(parsed->audience, (std::vector<std::string>{"a", "b"}));
  // Order and duplicates do not matter.
  auto again = FetchJwt(entry, {"a", "b", "a"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  auto other = FetchJwt(entry, {"a"});
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, *first);

  const auto iat = std::chrono::system_clock::from_time_t(parsed->claims["iat"].get<int64_t>());
  std::this_thread::sleep_until(iat + seconds(2) + milliseconds(100));
  auto renewed = FetchJwt(entry, {"a", "b"});
  ASSERT_TRUE(renewed.ok());
  EXPECT_NE(*renewed, *first);

  auto none = FetchJwt(entry, {});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SyncManagerTest, FederatedBundlesFollowTheEntries) {
  StartAll(std::chrono::hours(1));
  auto ca = spiffe::testing::MakeRootCa(Td("other.org"), std::chrono::system_clock::now());
  ASSERT_TRUE(ca.ok());
  ASSERT_NO_FATAL_FAILURE(server_.CreateFederatedBundle("other.org", ca->cert));

  // Nobody federates with it yet: the agent does not fetch it.
  EXPECT_EQ(cache_.Current()->bundles().Find(Td("other.org")), nullptr);
  server_.CreateEntry(
      {.spiffe_path = "/web", .parent_path = AgentPath(), .federates_with = {"other.org"}});
  ASSERT_TRUE(Eventually(
      [&] { return cache_.Current()->bundles().Find(Td("other.org")) != nullptr; }, seconds(3)));
  auto snapshot = cache_.Current();
  EXPECT_EQ(snapshot->bundles().Find(Td("other.org"))->x509_authorities(),
            std::vector<spiffe::Certificate>{ca->cert});
  auto web = Find("/web");
  ASSERT_TRUE(web.has_value());
  spiffe::BundleSet federated = snapshot->FederatedBundlesFor(std::span(&*web, 1));
  EXPECT_EQ(federated.size(), 1u);
  EXPECT_NE(federated.Find(Td("other.org")), nullptr);
}

// The JWT-SVID cache alone, with a fake clock and a fetcher the test answers by hand.
class JwtSvidCacheTest : public ::testing::Test {
 protected:
  struct Request {
    std::string entry_id;
    std::vector<std::string> audience;
    ServerClient::JwtCallback done;
  };

  IssuedJwtSvid Issued(std::string token, seconds lifetime) {
    const auto now = clock_->Now();
    return IssuedJwtSvid{.svid = spiffe::JwtSvid{.subject = entry_->spiffe_id,
                                                 .audience = {"a"},
                                                 .expiry = now + lifetime,
                                                 .algorithm = spiffe::JwtAlgorithm::kEs256,
                                                 .key_id = "k",
                                                 .claims = nlohmann::json::object(),
                                                 .token = std::move(token)},
                         .issued_at = now,
                         .expires_at = now + lifetime};
  }

  // Starts a fetch; the returned future is ready once `done` ran.
  std::future<absl::StatusOr<std::string>> Fetch(std::vector<std::string> audience) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<std::string>>>();
    auto future = promise->get_future();
    cache_.Fetch(entry_, std::move(audience),
                 [promise](absl::StatusOr<std::string> token) { promise->set_value(token); });
    return future;
  }
  static bool Ready(const std::future<absl::StatusOr<std::string>>& f) {
    return f.wait_for(seconds(0)) == std::future_status::ready;
  }

  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  std::vector<Request> requests_;
  JwtSvidCache cache_{
      [this](std::string entry_id, std::vector<std::string> audience,
             ServerClient::JwtCallback done) {
        requests_.push_back({std::move(entry_id), std::move(audience), std::move(done)});
      },
      clock_};
  std::shared_ptr<const CachedEntry> entry_ = std::make_shared<const CachedEntry>(
      CachedEntry{.id = "e1", .spiffe_id = Id("spiffe://example.org/web")});
};

TEST_F(JwtSvidCacheTest, SharesOneFetchAndServesUntilHalfLife) {
  auto first = Fetch({"b", "a"});
  auto second = Fetch({"a", "b", "b"});
  ASSERT_EQ(requests_.size(), 1u);  // the second waits for the first's answer
  EXPECT_EQ(requests_[0].entry_id, "e1");
  EXPECT_EQ(requests_[0].audience, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(Ready(first));
  requests_[0].done(Issued("token-1", seconds(100)));
  ASSERT_TRUE(Ready(first) && Ready(second));
  EXPECT_EQ(*first.get(), "token-1");
  EXPECT_EQ(*second.get(), "token-1");

  clock_->Advance(seconds(49));
  auto cached = Fetch({"a", "b"});
  ASSERT_TRUE(Ready(cached));  // answered inline
  EXPECT_EQ(*cached.get(), "token-1");
  EXPECT_EQ(cache_.fetches(), 1u);

  clock_->Advance(seconds(1));  // half of 100 s
  auto renewed = Fetch({"a", "b"});
  ASSERT_EQ(requests_.size(), 2u);
  requests_[1].done(Issued("token-2", seconds(100)));
  EXPECT_EQ(*renewed.get(), "token-2");
}

TEST_F(JwtSvidCacheTest, FailuresFallBackToAnUnexpiredTokenOnly) {
  auto first = Fetch({"a"});
  requests_[0].done(Issued("token-1", seconds(10)));
  EXPECT_EQ(*first.get(), "token-1");

  clock_->Advance(seconds(6));
  auto stale = Fetch({"a"});
  requests_[1].done(absl::UnavailableError("new JWT-SVID: connection refused"));
  EXPECT_EQ(*stale.get(), "token-1");

  clock_->Advance(seconds(4));  // expired now
  auto failed = Fetch({"a"});
  requests_[2].done(absl::UnavailableError("new JWT-SVID: connection refused"));
  auto result = failed.get();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(result.status()), HasSubstr("connection refused"));
}

TEST_F(JwtSvidCacheTest, RejectsWrongSubjectsAndEmptyAudiencesAndForgetsRemovedEntries) {
  auto none = Fetch({});
  ASSERT_TRUE(Ready(none));
  EXPECT_EQ(none.get().status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(requests_.empty());

  auto wrong = Fetch({"a"});
  IssuedJwtSvid issued = Issued("token-x", seconds(100));
  issued.svid.subject = Id("spiffe://example.org/someone-else");
  requests_[0].done(issued);
  auto result = wrong.get();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(Message(result.status()), HasSubstr("someone-else"));
  EXPECT_EQ(cache_.size(), 0u);

  auto good = Fetch({"a"});
  requests_[1].done(Issued("token-1", seconds(100)));
  EXPECT_EQ(*good.get(), "token-1");
  EXPECT_EQ(cache_.size(), 1u);
  cache_.Retain({{"e1", entry_}});
  EXPECT_EQ(cache_.size(), 1u);
  cache_.Retain({});
  EXPECT_EQ(cache_.size(), 0u);
}

}  // namespace
}  // namespace tessera::agent
