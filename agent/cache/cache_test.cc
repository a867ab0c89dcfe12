#include "agent/cache/cache.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_test_util.h"

namespace tessera::agent {
namespace {

using spiffe::testing::Id;
using spiffe::testing::Td;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

spiffe::SelectorSet Selectors(std::initializer_list<std::string_view> texts) {
  return *spiffe::SelectorSet::Parse(texts);
}

std::shared_ptr<const CachedEntry> Entry(std::string id, std::string_view spiffe_id,
                                         spiffe::SelectorSet selectors, int64_t created_at = 0,
                                         std::vector<spiffe::TrustDomain> federates_with = {}) {
  return std::make_shared<const CachedEntry>(
      CachedEntry{.id = std::move(id),
                  .spiffe_id = Id(spiffe_id),
                  .selectors = std::move(selectors),
                  .federates_with = std::move(federates_with),
                  .created_at = created_at});
}

std::vector<std::string> EntryIds(const std::vector<CachedIdentity>& identities) {
  std::vector<std::string> ids;
  for (const CachedIdentity& identity : identities) ids.push_back(identity.entry->id);
  return ids;
}

spiffe::Bundle JwtBundle(std::string_view td) {
  spiffe::Bundle bundle(Td(td));
  auto key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256);
  EXPECT_TRUE(bundle.AddJwtAuthority(std::string(td) + "-key", key->public_key()).ok());
  return bundle;
}

std::shared_ptr<const CacheSnapshot> Snapshot(uint64_t generation,
                                              std::vector<CachedIdentity> identities = {},
                                              spiffe::BundleSet bundles = {}) {
  return std::make_shared<const CacheSnapshot>(Td("example.org"), generation, std::move(bundles),
                                               std::move(identities));
}

TEST(CacheSnapshotTest, EmptySnapshot) {
  CacheSnapshot snapshot(Td("example.org"));
  EXPECT_EQ(snapshot.generation(), 0u);
  EXPECT_EQ(snapshot.own_bundle(), nullptr);
  EXPECT_THAT(snapshot.identities(), IsEmpty());
  EXPECT_THAT(snapshot.Match(Selectors({"unix:uid:0"})), IsEmpty());
  EXPECT_EQ(snapshot.FindEntry("anything"), nullptr);
}

TEST(CacheSnapshotTest, IdentitiesSortedByEntryIdAndFound) {
  auto snapshot =
      Snapshot(1, {{Entry("c", "spiffe://example.org/c", Selectors({"a:1"})), nullptr},
                   {Entry("a", "spiffe://example.org/a", Selectors({"a:1"})), nullptr},
                   {Entry("b", "spiffe://example.org/b", Selectors({"a:1"})), nullptr}});
  EXPECT_THAT(EntryIds(snapshot->identities()), ElementsAre("a", "b", "c"));
  ASSERT_NE(snapshot->FindEntry("b"), nullptr);
  EXPECT_EQ(snapshot->FindEntry("b")->entry->spiffe_id.str(), "spiffe://example.org/b");
  EXPECT_EQ(snapshot->FindEntry("bb"), nullptr);
  EXPECT_EQ(snapshot->FindEntry(""), nullptr);
}

TEST(CacheSnapshotTest, MatchOrdersByCreationThenEntryId) {
  // created_at decides first (the oldest entry is the default identity), the entry ID breaks
  // ties; insertion order and entry ID order alone must not matter.
  auto snapshot = Snapshot(
      1, {{Entry("z-old", "spiffe://example.org/1", Selectors({"unix:uid:0"}), 100), nullptr},
          {Entry("a-new", "spiffe://example.org/2", Selectors({"unix:uid:0"}), 300), nullptr},
          {Entry("m-mid", "spiffe://example.org/3", Selectors({"unix:uid:0"}), 200), nullptr},
          {Entry("b-mid", "spiffe://example.org/4", Selectors({"unix:uid:0"}), 200), nullptr}});
  EXPECT_THAT(EntryIds(snapshot->Match(Selectors({"unix:uid:0"}))),
              ElementsAre("z-old", "b-mid", "m-mid", "a-new"));
}

TEST(CacheSnapshotTest, MatchSubsetRule) {
  auto snapshot = Snapshot(
      1, {{Entry("both", "spiffe://example.org/both", Selectors({"unix:uid:0", "unix:gid:0"})),
           nullptr},
          {Entry("uid", "spiffe://example.org/uid", Selectors({"unix:uid:0"})), nullptr},
          {Entry("other", "spiffe://example.org/other", Selectors({"unix:uid:1000"})), nullptr},
          {Entry("none", "spiffe://example.org/none", spiffe::SelectorSet()), nullptr}});
  // Every selector of the entry must be among the workload's; extra workload selectors are fine.
  EXPECT_THAT(EntryIds(snapshot->Match(Selectors({"unix:uid:0", "unix:gid:0", "k8s:ns:x"}))),
              ElementsAre("both", "uid"));
  // Sharing one selector is not enough.
  EXPECT_THAT(EntryIds(snapshot->Match(Selectors({"unix:uid:0"}))), ElementsAre("uid"));
  EXPECT_THAT(EntryIds(snapshot->Match(Selectors({"unix:gid:0"}))), IsEmpty());
  // An entry without selectors matches nobody, not even a workload without selectors.
  EXPECT_THAT(snapshot->Match(spiffe::SelectorSet()), IsEmpty());
  EXPECT_THAT(EntryIds(snapshot->Match(Selectors({"unix:uid:1000"}))), ElementsAre("other"));
  // Values are compared whole: "unix:uid:10" is not "unix:uid:1000".
  EXPECT_THAT(snapshot->Match(Selectors({"unix:uid:10"})), IsEmpty());
}

TEST(CacheSnapshotTest, MatchIncludesEntriesWithoutSvid) {
  auto now = std::chrono::system_clock::now();
  ASSERT_OK_AND_ASSIGN(spiffe::testing::Ca ca, spiffe::testing::MakeRootCa(Td("example.org"), now));
  ASSERT_OK_AND_ASSIGN(spiffe::testing::Leaf leaf,
                       spiffe::testing::MakeLeaf(ca, Id("spiffe://example.org/minted"), now));
  auto svid = std::make_shared<const spiffe::X509Svid>(
      spiffe::X509Svid{Id("spiffe://example.org/minted"), {leaf.cert}, leaf.key});
  auto snapshot = Snapshot(
      1, {{Entry("minted", "spiffe://example.org/minted", Selectors({"a:1"}), 1), svid},
          {Entry("pending", "spiffe://example.org/pending", Selectors({"a:1"}), 2), nullptr}});
  std::vector<CachedIdentity> matched = snapshot->Match(Selectors({"a:1"}));
  ASSERT_EQ(matched.size(), 2u);
  EXPECT_EQ(matched[0].svid, svid);
  EXPECT_EQ(matched[1].entry->id, "pending");
  EXPECT_EQ(matched[1].svid, nullptr);
}

TEST(CacheSnapshotTest, FederatedBundlesFor) {
  spiffe::BundleSet bundles;
  bundles.Put(JwtBundle("example.org"));
  bundles.Put(JwtBundle("a.org"));
  bundles.Put(JwtBundle("b.org"));
  auto snapshot = Snapshot(
      1,
      {{Entry("1", "spiffe://example.org/1", Selectors({"x:1"}), 0,
              {Td("a.org"), Td("missing.org"), Td("example.org")}),
        nullptr},
       {Entry("2", "spiffe://example.org/2", Selectors({"x:2"}), 0, {Td("a.org"), Td("b.org")}),
        nullptr},
       {Entry("3", "spiffe://example.org/3", Selectors({"x:3"})), nullptr}},
      bundles);
  ASSERT_NE(snapshot->own_bundle(), nullptr);
  EXPECT_EQ(snapshot->own_bundle()->trust_domain(), Td("example.org"));

  // A trust domain without a bundle is skipped; the own trust domain is never federated.
  spiffe::BundleSet first = snapshot->FederatedBundlesFor(snapshot->Match(Selectors({"x:1"})));
  EXPECT_EQ(first.size(), 1u);
  ASSERT_NE(first.Find(Td("a.org")), nullptr);
  EXPECT_EQ(*first.Find(Td("a.org")), *bundles.Find(Td("a.org")));

  // The union over identities, each trust domain once.
  spiffe::BundleSet both =
      snapshot->FederatedBundlesFor(snapshot->Match(Selectors({"x:1", "x:2"})));
  EXPECT_EQ(both.size(), 2u);
  EXPECT_NE(both.Find(Td("a.org")), nullptr);
  EXPECT_NE(both.Find(Td("b.org")), nullptr);
  EXPECT_EQ(both.Find(Td("example.org")), nullptr);

  EXPECT_TRUE(snapshot->FederatedBundlesFor(snapshot->Match(Selectors({"x:3"}))).empty());
  EXPECT_TRUE(snapshot->FederatedBundlesFor({}).empty());
}

TEST(CacheTest, CurrentBeforeAndAfterPublish) {
  Cache cache(Td("example.org"));
  ASSERT_NE(cache.Current(), nullptr);
  EXPECT_EQ(cache.Current()->generation(), 0u);
  EXPECT_EQ(cache.Current()->trust_domain(), Td("example.org"));
  EXPECT_FALSE(cache.HasSynced());

  auto first = Snapshot(1);
  EXPECT_TRUE(cache.Publish(first));
  EXPECT_TRUE(cache.HasSynced());
  EXPECT_EQ(cache.Current(), first);
}

TEST(CacheTest, PublishRequiresIncreasingGeneration) {
  Cache cache(Td("example.org"));
  int calls = 0;
  Cache::Subscription subscription =
      cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>&) { ++calls; });

  auto five = Snapshot(5);
  EXPECT_TRUE(cache.Publish(five));
  EXPECT_FALSE(cache.Publish(Snapshot(5)));  // same generation
  EXPECT_FALSE(cache.Publish(Snapshot(3)));  // older
  EXPECT_FALSE(cache.Publish(nullptr));
  EXPECT_EQ(cache.Current(), five);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(cache.Publish(Snapshot(9)));  // gaps are fine
  EXPECT_EQ(cache.Current()->generation(), 9u);
  EXPECT_EQ(calls, 2);
}

TEST(CacheTest, GenerationZeroIsNeverPublished) {
  Cache cache(Td("example.org"));
  EXPECT_FALSE(cache.Publish(Snapshot(0)));
  EXPECT_FALSE(cache.HasSynced());
}

TEST(CacheTest, ObserversRunInSubscriptionOrderWithThePublishedSnapshot) {
  Cache cache(Td("example.org"));
  std::vector<std::string> seen;
  Cache::Subscription a = cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>& s) {
    seen.push_back("a" + std::to_string(s->generation()));
  });
  // Not called with the current snapshot when subscribing.
  EXPECT_THAT(seen, IsEmpty());
  Cache::Subscription b = cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>& s) {
    seen.push_back("b" + std::to_string(s->generation()));
    EXPECT_EQ(cache.Current(), s);  // already current while observers run
  });
  EXPECT_EQ(cache.subscriber_count(), 2u);
  cache.Publish(Snapshot(1));
  cache.Publish(Snapshot(2));
  EXPECT_THAT(seen, ElementsAre("a1", "b1", "a2", "b2"));
}

TEST(CacheTest, ResetAndDestructionUnsubscribe) {
  Cache cache(Td("example.org"));
  int a_calls = 0;
  int b_calls = 0;
  Cache::Subscription a =
      cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>&) { ++a_calls; });
  {
    Cache::Subscription b =
        cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>&) { ++b_calls; });
    cache.Publish(Snapshot(1));
  }
  EXPECT_EQ(cache.subscriber_count(), 1u);
  cache.Publish(Snapshot(2));
  a.Reset();
  a.Reset();  // idempotent
  EXPECT_EQ(cache.subscriber_count(), 0u);
  cache.Publish(Snapshot(3));
  EXPECT_EQ(a_calls, 2);
  EXPECT_EQ(b_calls, 1);
}

TEST(CacheTest, SubscriptionMoves) {
  Cache cache(Td("example.org"));
  int calls = 0;
  Cache::Subscription moved;
  {
    Cache::Subscription original =
        cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>&) { ++calls; });
    moved = std::move(original);
  }  // the moved-from subscription no longer owns anything
  EXPECT_EQ(cache.subscriber_count(), 1u);
  cache.Publish(Snapshot(1));
  EXPECT_EQ(calls, 1);

  // Assigning over a live subscription ends it.
  int other_calls = 0;
  moved = cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>&) { ++other_calls; });
  EXPECT_EQ(cache.subscriber_count(), 1u);
  cache.Publish(Snapshot(2));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(other_calls, 1);
}

TEST(CacheTest, ResetFromInsideAnObserver) {
  Cache cache(Td("example.org"));
  int self_calls = 0;
  int later_calls = 0;
  Cache::Subscription self;
  Cache::Subscription later;
  self = cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>&) {
    ++self_calls;
    self.Reset();   // its own subscription
    later.Reset();  // one that would run later in this same round
  });
  later = cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>&) { ++later_calls; });
  int after_calls = 0;
  Cache::Subscription after =
      cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>&) { ++after_calls; });

  EXPECT_TRUE(cache.Publish(Snapshot(1)));
  EXPECT_EQ(self_calls, 1);
  EXPECT_EQ(later_calls, 0);  // unsubscribed before its turn
  EXPECT_EQ(after_calls, 1);  // the round goes on
  EXPECT_EQ(cache.subscriber_count(), 1u);
  EXPECT_TRUE(cache.Publish(Snapshot(2)));
  EXPECT_EQ(self_calls, 1);
  EXPECT_EQ(after_calls, 2);
}

TEST(CacheTest, SubscribeFromInsideAnObserver) {
  Cache cache(Td("example.org"));
  int inner_calls = 0;
  bool subscribed = false;
  Cache::Subscription inner;
  Cache::Subscription outer = cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>&) {
    if (subscribed) return;
    subscribed = true;
    inner = cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>&) { ++inner_calls; });
  });
  cache.Publish(Snapshot(1));
  EXPECT_EQ(inner_calls, 0);  // not part of the round already under way
  cache.Publish(Snapshot(2));
  EXPECT_EQ(inner_calls, 1);
}

TEST(CacheTest, ResetFromAnotherThreadWaitsForTheObserverInProgress) {
  Cache cache(Td("example.org"));
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> calls{0};
  std::atomic<bool> running{false};
  Cache::Subscription subscription =
      cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>& s) {
        running = true;
        ++calls;
        if (s->generation() == 1) {
          entered.set_value();
          released.wait();
        }
        running = false;
      });

  std::thread publisher([&] { cache.Publish(Snapshot(1)); });
  entered.get_future().wait();

  std::atomic<bool> reset_returned{false};
  std::atomic<bool> running_when_reset_returned{true};
  std::thread resetter([&] {
    subscription.Reset();
    running_when_reset_returned = running.load();
    reset_returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(reset_returned) << "Reset returned while the observer was still running";
  release.set_value();
  resetter.join();
  publisher.join();
  EXPECT_TRUE(reset_returned);
  EXPECT_FALSE(running_when_reset_returned);
  EXPECT_EQ(cache.subscriber_count(), 0u);

  EXPECT_TRUE(cache.Publish(Snapshot(2)));
  EXPECT_EQ(calls, 1);
}

TEST(CacheTest, ConcurrentPublishersKeepTheNewestSnapshot) {
  Cache cache(Td("example.org"));
  std::atomic<uint64_t> last_seen{0};
  std::atomic<bool> out_of_order{false};
  Cache::Subscription subscription =
      cache.Subscribe([&](const std::shared_ptr<const CacheSnapshot>& s) {
        // Observers see accepted snapshots in increasing generation order.
        if (s->generation() <= last_seen.load()) out_of_order = true;
        last_seen = s->generation();
      });
  std::vector<std::thread> publishers;
  for (int t = 0; t < 4; ++t) {
    publishers.emplace_back([&, t] {
      for (uint64_t g = 1; g <= 200; ++g) cache.Publish(Snapshot(g * 4 + t));
    });
  }
  for (std::thread& p : publishers) p.join();
  EXPECT_FALSE(out_of_order);
  EXPECT_EQ(cache.Current()->generation(), last_seen.load());
  EXPECT_EQ(cache.Current()->generation(), 200u * 4 + 3);
}

}  // namespace
}  // namespace tessera::agent
