// The scaling claim, checked by counting rather than timing: one agent's query does the same
// work whether the registry holds 10k or 100k entries that do not concern it. Also a concurrent
// readers-and-writer test.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/authorized/entry_index.h"
#include "server/authorized/entry_index_test_util.h"

namespace tessera::server {
namespace {

using ::testing::ElementsAre;
using namespace ::tessera::server::testing;  // NOLINT(google-build-using-namespace): test builders

constexpr int kAgents = 1000;
constexpr int kClusters = 10;

std::string AgentPath(int i) { return "/spire/agent/x509pop/n" + std::to_string(i); }

// 1k agents in 10 clusters; each agent has 3 entries with a child each, each cluster an alias
// with 5 entries below it; plus `unrelated` entries under paths no agent reaches and one
// unrelated alias per 100 of them, half of which share a selector with every cluster-0 agent.
struct Registry {
  std::vector<Entry> entries;
  std::vector<AttestedNode> nodes;
};

Registry Build(int unrelated) {
  Registry r;
  for (int i = 0; i < kAgents; ++i) {
    r.nodes.push_back(
        MakeNode(AgentPath(i), Selectors({"k8s_psat:cluster:c" + std::to_string(i % kClusters),
                                          "k8s_psat:agent_node_name:n" + std::to_string(i)})));
    for (int j = 0; j < 3; ++j) {
      std::string w = "/agent" + std::to_string(i) + "/w" + std::to_string(j);
      r.entries.push_back(
          MakeEntry("a" + std::to_string(i) + "-" + std::to_string(j), AgentPath(i), w));
      r.entries.push_back(
          MakeEntry("a" + std::to_string(i) + "-" + std::to_string(j) + "-child", w, w + "/c"));
    }
  }
  for (int c = 0; c < kClusters; ++c) {
    std::string cluster = "/cluster/c" + std::to_string(c);
    r.entries.push_back(MakeAlias("alias-c" + std::to_string(c), cluster,
                                  Selectors({"k8s_psat:cluster:c" + std::to_string(c)})));
    for (int j = 0; j < 5; ++j) {
      r.entries.push_back(MakeEntry("c" + std::to_string(c) + "-" + std::to_string(j), cluster,
                                    cluster + "/w" + std::to_string(j)));
    }
  }
  for (int k = 0; k < unrelated; ++k) {
    std::string parent = "/unrelated/p" + std::to_string(k % 5000);
    r.entries.push_back(
        MakeEntry("u" + std::to_string(k), parent, "/unrelated/s" + std::to_string(k)));
    if (k % 100 == 0) {
      std::string never = "other:never" + std::to_string(k);
      spiffe::SelectorSet selectors =
          k % 200 == 0 ? Selectors({"k8s_psat:cluster:c0", never}) : Selectors({never});
      r.entries.push_back(MakeAlias("ua" + std::to_string(k), parent, selectors));
    }
  }
  return r;
}

TEST(EntryIndexScaleTest, QueryCostDoesNotGrowWithUnrelatedEntries) {
  FakeClock clock;
  const spiffe::TrustDomain td = spiffe::TrustDomain::Parse(kTrustDomain).value();
  std::vector<EntryIndex::QueryCost> costs;
  for (int unrelated : {10'000, 100'000}) {
    Registry registry = Build(unrelated);
    EntryIndex index(td, clock);
    index.Load(registry.entries, registry.nodes);
    ASSERT_EQ(index.entry_count(), registry.entries.size());
    // More unrelated entries added incrementally, as the server does after start.
    for (int k = 0; k < 1000; ++k) {
      ASSERT_EQ(index.Upsert(MakeEntry("late" + std::to_string(k), "/late/p", "/late/s")).size(),
                0u);
    }
    costs.push_back(index.MeasureAuthorizedEntries(Id(AgentPath(0))));
    EXPECT_EQ(index.AuthorizedEntries(Id(AgentPath(0))).size(), 11u);
    EXPECT_NE(index.FindAuthorizedEntry(Id(AgentPath(0)), "a0-2-child"), nullptr);
    EXPECT_NE(index.FindAuthorizedEntry(Id(AgentPath(0)), "c0-4"), nullptr);
    EXPECT_EQ(index.FindAuthorizedEntry(Id(AgentPath(0)), "c1-4"), nullptr);
    EXPECT_EQ(index.FindAuthorizedEntry(Id(AgentPath(1)), "a0-0"), nullptr);
    // Change impact is as narrow: an entry below one agent's entry concerns that agent only, an
    // entry below a cluster alias concerns that cluster's agents.
    EXPECT_THAT(Strings(index.Upsert(MakeEntry("new", "/agent7/w1/c", "/x"))),
                ElementsAre(Id(AgentPath(7)).str()));
    EXPECT_EQ(index.Upsert(MakeEntry("new2", "/cluster/c3", "/y")).size(),
              static_cast<size_t>(kAgents / kClusters));
  }
  ASSERT_EQ(costs.size(), 2u);
  EXPECT_EQ(costs[0], costs[1]);
  // The agent's 6 entries and its cluster's 5; only its own cluster's alias is ever compared
  // (the unrelated aliases sharing cluster:c0 are keyed under their rarer selector).
  EXPECT_EQ(costs[0].entries_returned, 11u);
  EXPECT_EQ(costs[0].entries_examined, 11u);
  EXPECT_EQ(costs[0].alias_candidates, 1u);
  EXPECT_EQ(costs[0].paths_expanded, 13u);  // the agent, the cluster and 11 spiffe_ids
}

TEST(EntryIndexScaleTest, ConcurrentReadersSeeWholeStates) {
  FakeClock clock;
  EntryIndex index(spiffe::TrustDomain::Parse(kTrustDomain).value(), clock);
  const spiffe::SpiffeId a = Id("/spire/agent/x509pop/a");
  const spiffe::SpiffeId b = Id("/spire/agent/x509pop/b");
  index.UpsertNode(a, Selectors({"t:a"}));
  index.UpsertNode(b, Selectors({"t:b"}));
  index.Upsert(MakeEntry("base", a.str(), "/base"));
  index.Upsert(MakeEntry("moving", a.str(), "/moving"));
  index.Upsert(MakeEntry("child", "/moving", "/moving/child"));

  std::atomic<bool> done = false;
  std::atomic<int> bad = 0;
  std::vector<std::thread> readers;
  readers.reserve(3);
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!done.load()) {
        // "moving" and its child travel together: A has both or neither.
        std::vector<std::string> ids = Ids(index.AuthorizedEntries(a));
        bool ok = ids == std::vector<std::string>{"base", "child", "moving"} ||
                  ids == std::vector<std::string>{"base"};
        EntryIndex::EntryPtr child = index.FindAuthorizedEntry(b, "child");
        if (!ok || (child != nullptr && child->id != "child")) ++bad;
      }
    });
  }
  for (int i = 0; i < 2000; ++i) {
    index.Upsert(MakeEntry("moving", (i % 2 == 0 ? b : a).str(), "/moving"));
    index.UpsertNode(a, Selectors({"t:a", "t:" + std::to_string(i % 3)}));
  }
  done = true;
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace tessera::server
