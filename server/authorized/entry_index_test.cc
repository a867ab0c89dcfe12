#include "server/authorized/entry_index.h"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/authorized/entry_index_test_util.h"

namespace tessera::server {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace ::tessera::server::testing;  // NOLINT(google-build-using-namespace): test builders

constexpr std::string_view kA = "/spire/agent/x509pop/a";
constexpr std::string_view kB = "/spire/agent/x509pop/b";
constexpr std::string_view kC = "/spire/agent/x509pop/c";

// The agent IDs affected-agent lists are compared with.
spiffe::SpiffeId Full(std::string_view path) { return Id(path); }

class EntryIndexTest : public ::testing::Test {
 protected:
  std::vector<std::string> Authorized(std::string_view agent) {
    return Ids(index_.AuthorizedEntries(Id(agent)));
  }
  bool Finds(std::string_view agent, std::string_view entry_id) {
    EntryIndex::EntryPtr entry = index_.FindAuthorizedEntry(Id(agent), entry_id);
    if (entry != nullptr) EXPECT_EQ(entry->id, entry_id);
    return entry != nullptr;
  }
  int64_t Now() {
    return std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch())
        .count();
  }

  FakeClock clock_;
  EntryIndex index_{spiffe::TrustDomain::Parse(kTrustDomain).value(), clock_};
};

TEST_F(EntryIndexTest, ReturnsEntriesParentedToTheAgent) {
  index_.Upsert(MakeEntry("e1", kA, "/web"));
  index_.Upsert(MakeEntry("e2", kA, "/db"));
  index_.Upsert(MakeEntry("e3", kB, "/web"));
  EXPECT_THAT(Authorized(kA), ElementsAre("e1", "e2"));
  EXPECT_THAT(Authorized(kB), ElementsAre("e3"));
  EXPECT_THAT(Authorized(kC), IsEmpty());
  EXPECT_EQ(index_.entry_count(), 3u);
}

TEST_F(EntryIndexTest, ReturnsDescendantsAtAnyDepth) {
  index_.Upsert(MakeEntry("e1", kA, "/w1"));
  index_.Upsert(MakeEntry("e2", "/w1", "/w2"));
  index_.Upsert(MakeEntry("e3", "/w2", "/w3"));
  index_.Upsert(MakeEntry("e4", "/w3", "/w4"));
  index_.Upsert(MakeEntry("other", "/unrelated", "/w5"));
  EXPECT_THAT(Authorized(kA), ElementsAre("e1", "e2", "e3", "e4"));
  EXPECT_TRUE(Finds(kA, "e4"));
  EXPECT_FALSE(Finds(kA, "other"));
}

TEST_F(EntryIndexTest, AliasAppliesWhenItsSelectorsAreAmongTheNodeSelectors) {
  index_.UpsertNode(Id(kA), Selectors({"k8s_psat:cluster:c1", "k8s_psat:agent_ns:spire"}));
  index_.UpsertNode(Id(kB), Selectors({"k8s_psat:cluster:c2", "k8s_psat:agent_ns:spire"}));
  index_.Upsert(MakeAlias("alias", "/cluster/c1", Selectors({"k8s_psat:cluster:c1"})));
  index_.Upsert(MakeEntry("w", "/cluster/c1", "/web"));
  index_.Upsert(MakeEntry("w-child", "/web", "/web/sidecar"));
  // The alias itself is never returned; what hangs below its spiffe_id is.
  EXPECT_THAT(Authorized(kA), ElementsAre("w", "w-child"));
  EXPECT_THAT(Authorized(kB), IsEmpty());
  EXPECT_TRUE(Finds(kA, "w-child"));
  EXPECT_FALSE(Finds(kA, "alias"));
  EXPECT_FALSE(Finds(kB, "w"));
}

TEST_F(EntryIndexTest, AliasNeedsEverySelectorOfItsOwn) {
  index_.Upsert(MakeAlias("alias", "/group", Selectors({"t:a", "t:b"})));
  index_.Upsert(MakeEntry("w", "/group", "/web"));
  index_.UpsertNode(Id(kA), Selectors({"t:a"}));                // a subset of the alias: no
  index_.UpsertNode(Id(kB), Selectors({"t:a", "t:b"}));         // equal: yes
  index_.UpsertNode(Id(kC), Selectors({"t:a", "t:b", "t:c"}));  // a superset: yes
  EXPECT_THAT(Authorized(kA), IsEmpty());
  EXPECT_THAT(Authorized(kB), ElementsAre("w"));
  EXPECT_THAT(Authorized(kC), ElementsAre("w"));
  // Same type, other value: no match.
  index_.UpsertNode(Id(kA), Selectors({"t:a", "t:bb"}));
  EXPECT_THAT(Authorized(kA), IsEmpty());
  // An agent that never attested (no node record) gets its direct children only.
  index_.Upsert(MakeEntry("direct", "/spire/agent/x509pop/new", "/x"));
  EXPECT_THAT(Authorized("/spire/agent/x509pop/new"), ElementsAre("direct"));
}

TEST_F(EntryIndexTest, AliasesAreNeverReturnedEvenWhenCrawledInto) {
  index_.UpsertNode(Id(kA), Selectors({"t:a"}));
  index_.Upsert(MakeAlias("alias", kA, Selectors({"t:a"})));  // an alias naming the agent
  // A (malformed) entry whose spiffe_id is the server's: crawling it must not yield aliases.
  index_.Upsert(MakeEntry("to-server", kA, "/spire/server"));
  index_.Upsert(MakeEntry("w", kA, "/web"));
  EXPECT_THAT(Authorized(kA), ElementsAre("to-server", "w"));
  // An agent whose ID is the server's has no children: aliases do not count as such.
  EXPECT_THAT(Authorized("/spire/server"), IsEmpty());
}

TEST_F(EntryIndexTest, AnAliasWithoutSelectorsAppliesToNobody) {
  index_.UpsertNode(Id(kA), Selectors({"t:a"}));
  index_.Upsert(MakeAlias("alias", "/group", spiffe::SelectorSet()));
  index_.Upsert(MakeEntry("w", "/group", "/web"));
  EXPECT_THAT(Authorized(kA), IsEmpty());
  EXPECT_THAT(index_.Upsert(MakeAlias("alias", "/group", Selectors({"t:a"}))),
              ElementsAre(Full(kA)));
  EXPECT_THAT(Authorized(kA), ElementsAre("w"));
}

TEST_F(EntryIndexTest, CyclesTerminateAndNeverDuplicate) {
  index_.Upsert(MakeEntry("e1", kA, "/x"));
  index_.Upsert(MakeEntry("e2", "/x", "/y"));
  index_.Upsert(MakeEntry("e3", "/y", "/x"));
  index_.Upsert(MakeEntry("self", "/y", "/y"));
  index_.Upsert(MakeEntry("back", "/y", kA));  // back to the agent itself
  EXPECT_THAT(Authorized(kA), ElementsAre("back", "e1", "e2", "e3", "self"));
  // A cycle nobody's crawl enters stays unreachable.
  index_.Upsert(MakeEntry("c1", "/p", "/q"));
  index_.Upsert(MakeEntry("c2", "/q", "/p"));
  EXPECT_FALSE(Finds(kA, "c1"));
  EXPECT_THAT(Authorized(kB), IsEmpty());
}

TEST_F(EntryIndexTest, DiamondsYieldEachEntryOnce) {
  index_.UpsertNode(Id(kA), Selectors({"t:a"}));
  index_.Upsert(MakeAlias("alias", "/left", Selectors({"t:a"})));
  index_.Upsert(MakeEntry("l", kA, "/left"));  // /left reached twice: directly and via alias
  index_.Upsert(MakeEntry("r", kA, "/right"));
  index_.Upsert(MakeEntry("lb", "/left", "/bottom"));
  index_.Upsert(MakeEntry("rb", "/right", "/bottom"));
  index_.Upsert(MakeEntry("leaf", "/bottom", "/leaf"));
  EXPECT_THAT(Authorized(kA), ElementsAre("l", "lb", "leaf", "r", "rb"));
  EntryIndex::QueryCost cost = index_.MeasureAuthorizedEntries(Id(kA));
  EXPECT_EQ(cost.entries_returned, 5u);
  EXPECT_EQ(cost.paths_expanded, 5u);  // the agent, /left, /right, /bottom, /leaf: once each
}

TEST_F(EntryIndexTest, IgnoresEntriesOutsideTheTrustDomain) {
  index_.UpsertNode(Id(kA), Selectors({"t:a"}));
  index_.Upsert(MakeEntry("foreign-id", kA, "spiffe://other.org/web"));
  index_.Upsert(MakeEntry("foreign-parent", "spiffe://other.org/spire/agent/x509pop/a", "/web"));
  index_.Upsert(
      MakeEntry("foreign-alias", "spiffe://other.org/spire/server", "/group", Selectors({"t:a"})));
  index_.Upsert(MakeEntry("w", "/group", "/web"));
  index_.Upsert(MakeEntry("ok", kA, "/db"));
  EXPECT_THAT(Authorized(kA), ElementsAre("ok"));
  EXPECT_EQ(index_.entry_count(), 2u);
  // The same path in another trust domain is another agent.
  EXPECT_THAT(index_.AuthorizedEntries(Id("spiffe://other.org/spire/agent/x509pop/a")), IsEmpty());
  EXPECT_EQ(index_.FindAuthorizedEntry(Id("spiffe://other.org/spire/agent/x509pop/a"), "ok"),
            nullptr);
  EXPECT_THAT(index_.UpsertNode(Id("spiffe://other.org/spire/agent/x509pop/a"), Selectors({"t:a"})),
              IsEmpty());
  EXPECT_EQ(index_.node_count(), 1u);
  // Moving an entry out of the trust domain removes it.
  EXPECT_THAT(index_.Upsert(MakeEntry("ok", kA, "spiffe://other.org/db")), ElementsAre(Full(kA)));
  EXPECT_THAT(Authorized(kA), IsEmpty());
}

TEST_F(EntryIndexTest, JoinTokenAgentIdEntryAuthorizesItsChildren) {
  // What CreateJoinToken with an agent_id creates: an entry parented to the token's agent ID.
  constexpr std::string_view kAgent = "/spire/agent/join_token/5f2c4bb0";
  index_.UpsertNode(Id(kAgent), spiffe::SelectorSet());
  index_.Upsert(
      MakeEntry("node", kAgent, "/node/n1", Selectors({"spiffe_id:" + Id(kAgent).str()})));
  index_.Upsert(MakeEntry("web", "/node/n1", "/web"));
  index_.Upsert(MakeEntry("db", "/node/n1", "/db"));
  EXPECT_THAT(Authorized(kAgent), ElementsAre("db", "node", "web"));
  EXPECT_TRUE(Finds(kAgent, "web"));
  // The affected-agents walk finds the agent through the node entry.
  EXPECT_THAT(index_.Upsert(MakeEntry("new", "/node/n1", "/new")), ElementsAre(Full(kAgent)));
}

TEST_F(EntryIndexTest, ExpiredEntriesAreAbsent) {
  index_.UpsertNode(Id(kA), Selectors({"t:a"}));
  Entry expiring = MakeEntry("expiring", kA, "/mid");
  expiring.expires_at = Now() + 60;
  index_.Upsert(expiring);
  index_.Upsert(MakeEntry("below", "/mid", "/low"));
  Entry alias = MakeAlias("alias", "/group", Selectors({"t:a"}));
  alias.expires_at = Now() + 120;
  index_.Upsert(alias);
  index_.Upsert(MakeEntry("grouped", "/group", "/g"));
  EXPECT_THAT(Authorized(kA), ElementsAre("below", "expiring", "grouped"));

  clock_.Advance(std::chrono::seconds(60));  // expires_at itself is already past
  EXPECT_THAT(Authorized(kA), ElementsAre("grouped"));
  EXPECT_FALSE(Finds(kA, "expiring"));
  EXPECT_FALSE(Finds(kA, "below"));  // only reachable through the expired entry
  EXPECT_TRUE(Finds(kA, "grouped"));

  clock_.Advance(std::chrono::seconds(60));  // the alias too
  EXPECT_THAT(Authorized(kA), IsEmpty());
  EXPECT_FALSE(Finds(kA, "grouped"));
  // Removing the expired entry (as the pruner does) still reports the agent: the affected set
  // is structural.
  EXPECT_THAT(index_.Remove("expiring"), ElementsAre(Full(kA)));
}

TEST_F(EntryIndexTest, UpsertMovesAnEntryBetweenParents) {
  index_.UpsertNode(Id(kA), spiffe::SelectorSet());
  index_.UpsertNode(Id(kB), spiffe::SelectorSet());
  EXPECT_THAT(index_.Upsert(MakeEntry("e", kA, "/web")), ElementsAre(Full(kA)));
  index_.Upsert(MakeEntry("child", "/web", "/web/child"));
  EXPECT_THAT(Authorized(kA), ElementsAre("child", "e"));

  Entry moved = MakeEntry("e", kB, "/web");
  moved.revision_number = 1;
  EXPECT_THAT(index_.Upsert(moved), ElementsAre(Full(kA), Full(kB)));
  EXPECT_THAT(Authorized(kA), IsEmpty());
  EXPECT_THAT(Authorized(kB), ElementsAre("child", "e"));
  EXPECT_EQ(index_.FindAuthorizedEntry(Id(kB), "e")->revision_number, 1);

  // The same content again changes nothing and notifies nobody.
  EXPECT_THAT(index_.Upsert(moved), IsEmpty());
  // A content-only change notifies the holder.
  moved.x509_svid_ttl = 600;
  EXPECT_THAT(index_.Upsert(moved), ElementsAre(Full(kB)));
  EXPECT_EQ(index_.AuthorizedEntries(Id(kB)).size(), 2u);

  EXPECT_THAT(index_.Remove("e"), ElementsAre(Full(kB)));
  EXPECT_THAT(Authorized(kB), IsEmpty());
  EXPECT_THAT(index_.Remove("e"), IsEmpty());
  EXPECT_THAT(index_.Remove("child"), IsEmpty());  // reached by nobody any more
  EXPECT_EQ(index_.entry_count(), 0u);
}

TEST_F(EntryIndexTest, NodeSelectorChangesSwitchAliases) {
  index_.Upsert(MakeAlias("alias", "/group", Selectors({"t:x"})));
  index_.Upsert(MakeEntry("w", "/group", "/web"));
  EXPECT_THAT(index_.UpsertNode(Id(kA), Selectors({"t:a"})), IsEmpty());  // no alias either way
  EXPECT_THAT(Authorized(kA), IsEmpty());
  EXPECT_THAT(index_.UpsertNode(Id(kA), Selectors({"t:a", "t:x"})), ElementsAre(Full(kA)));
  EXPECT_THAT(Authorized(kA), ElementsAre("w"));
  EXPECT_THAT(index_.UpsertNode(Id(kA), Selectors({"t:b", "t:x"})), IsEmpty());  // same alias
  EXPECT_THAT(index_.UpsertNode(Id(kA), Selectors({"t:b"})), ElementsAre(Full(kA)));
  EXPECT_THAT(Authorized(kA), IsEmpty());
  index_.UpsertNode(Id(kA), Selectors({"t:x"}));
  EXPECT_THAT(index_.RemoveNode(Id(kA)), ElementsAre(Full(kA)));
  EXPECT_THAT(Authorized(kA), IsEmpty());
  EXPECT_THAT(index_.RemoveNode(Id(kA)), IsEmpty());
  EXPECT_EQ(index_.node_count(), 0u);
}

TEST_F(EntryIndexTest, AffectedAgentsOfEntryChanges) {
  index_.UpsertNode(Id(kA), Selectors({"t:a", "t:shared"}));
  index_.UpsertNode(Id(kB), Selectors({"t:b", "t:shared"}));
  index_.UpsertNode(Id(kC), Selectors({"t:c"}));
  index_.Upsert(MakeAlias("shared", "/shared", Selectors({"t:shared"})));
  index_.Upsert(MakeEntry("a-mid", kA, "/mid"));
  index_.Upsert(MakeEntry("c-mid", kC, "/mid"));  // /mid reached from A and C
  index_.Upsert(MakeEntry("deep", "/mid", "/deep"));

  // Under a path only A reaches.
  EXPECT_THAT(index_.Upsert(MakeEntry("x", kA, "/x")), ElementsAre(Full(kA)));
  // Under a descendant reached by two agents.
  EXPECT_THAT(index_.Upsert(MakeEntry("y", "/deep", "/y")), ElementsAre(Full(kA), Full(kC)));
  // Under an alias's spiffe_id: the agents the alias applies to.
  EXPECT_THAT(index_.Upsert(MakeEntry("z", "/shared", "/z")), ElementsAre(Full(kA), Full(kB)));
  // Under a path nobody reaches, and then moved to where B is.
  EXPECT_THAT(index_.Upsert(MakeEntry("lost", "/nowhere", "/l")), IsEmpty());
  EXPECT_THAT(index_.Upsert(MakeEntry("lost", "/z", "/l")), ElementsAre(Full(kA), Full(kB)));
  // Linking a subtree under an agent: that agent gains the whole subtree.
  index_.Upsert(MakeEntry("sub1", "/island", "/island/1"));
  EXPECT_THAT(index_.Upsert(MakeEntry("link", kC, "/island")), ElementsAre(Full(kC)));
  EXPECT_THAT(Authorized(kC), ElementsAre("c-mid", "deep", "link", "sub1", "y"));
  // Unlinking it: only the agent that had it.
  EXPECT_THAT(index_.Remove("link"), ElementsAre(Full(kC)));
  // Removing a shared middle entry: everyone reaching its parent.
  EXPECT_THAT(index_.Remove("deep"), ElementsAre(Full(kA), Full(kC)));
}

TEST_F(EntryIndexTest, AffectedAgentsOfAliasChanges) {
  index_.UpsertNode(Id(kA), Selectors({"t:a", "t:all"}));
  index_.UpsertNode(Id(kB), Selectors({"t:b", "t:all"}));
  index_.UpsertNode(Id(kC), Selectors({"t:c"}));
  // A new alias: the agents satisfying it, even before anything hangs below it.
  EXPECT_THAT(index_.Upsert(MakeAlias("alias", "/g", Selectors({"t:a"}))), ElementsAre(Full(kA)));
  // Its selectors change: old and new matches.
  EXPECT_THAT(index_.Upsert(MakeAlias("alias", "/g", Selectors({"t:all"}))),
              ElementsAre(Full(kA), Full(kB)));
  EXPECT_THAT(index_.Upsert(MakeAlias("alias", "/g", Selectors({"t:c"}))),
              ElementsAre(Full(kA), Full(kB), Full(kC)));
  // Two selectors: only agents holding both.
  EXPECT_THAT(index_.Upsert(MakeAlias("two", "/h", Selectors({"t:a", "t:all"}))),
              ElementsAre(Full(kA)));
  // An alias turned into an ordinary entry under B: the alias's matches and B.
  EXPECT_THAT(index_.Upsert(MakeEntry("alias", kB, "/g")), ElementsAre(Full(kB), Full(kC)));
  EXPECT_THAT(index_.Remove("two"), ElementsAre(Full(kA)));
  // A path reached both from an agent's entry and from another alias's subtree.
  index_.Upsert(MakeAlias("outer", "/outer", Selectors({"t:c"})));
  index_.Upsert(MakeEntry("to-g", "/outer", "/g"));
  EXPECT_THAT(index_.Upsert(MakeEntry("under-g", "/g", "/u")), ElementsAre(Full(kB), Full(kC)));
}

TEST_F(EntryIndexTest, FindFallsBackToTheCrawlForWidelySharedAncestry) {
  // /web is the spiffe_id of one entry under each of many agents, more ancestors than the
  // upward walk's budget.
  constexpr int kAgents = 3 * static_cast<int>(EntryIndex::kDefaultUpwardWalkBudget);
  for (int i = 0; i < kAgents; ++i) {
    std::string agent = "/spire/agent/x509pop/n" + std::to_string(i);
    index_.UpsertNode(Id(agent), spiffe::SelectorSet());
    index_.Upsert(MakeEntry("web-" + std::to_string(i), agent, "/web"));
  }
  index_.Upsert(MakeEntry("sidecar", "/web", "/web/sidecar"));
  EXPECT_TRUE(Finds("/spire/agent/x509pop/n0", "sidecar"));
  EXPECT_TRUE(Finds("/spire/agent/x509pop/n" + std::to_string(kAgents - 1), "sidecar"));
  EXPECT_FALSE(Finds(kA, "sidecar"));
  EXPECT_EQ(index_.Upsert(MakeEntry("more", "/web/sidecar", "/more")).size(),
            static_cast<size_t>(kAgents));
}

TEST_F(EntryIndexTest, LoadReplacesEverything) {
  index_.Upsert(MakeEntry("old", kA, "/old"));
  index_.UpsertNode(Id(kB), Selectors({"t:old"}));
  std::vector<Entry> entries = {MakeAlias("alias", "/g", Selectors({"t:a"})),
                                MakeEntry("w", "/g", "/web"), MakeEntry("dup", kB, "/first"),
                                MakeEntry("dup", kA, "/second"),
                                MakeEntry("foreign", kA, "spiffe://other.org/x")};
  std::vector<AttestedNode> nodes = {MakeNode(kA, Selectors({"t:a"}))};
  index_.Load(entries, nodes);
  EXPECT_EQ(index_.entry_count(), 3u);
  EXPECT_EQ(index_.node_count(), 1u);
  EXPECT_THAT(Authorized(kA), ElementsAre("dup", "w"));
  EXPECT_THAT(Authorized(kB), IsEmpty());  // the first "dup" left no trace
  EXPECT_EQ(index_.FindAuthorizedEntry(Id(kA), "dup")->spiffe_id, Id("/second"));
  EXPECT_FALSE(Finds(kA, "old"));
  // Incremental updates continue from the loaded state.
  EXPECT_THAT(index_.Upsert(MakeEntry("w2", "/g", "/web2")), ElementsAre(Full(kA)));
}

TEST_F(EntryIndexTest, ResultsOutliveLaterChanges) {
  index_.Upsert(MakeEntry("e", kA, "/web"));
  std::vector<EntryIndex::EntryPtr> held = index_.AuthorizedEntries(Id(kA));
  index_.Remove("e");
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0]->spiffe_id, Id("/web"));
  EXPECT_THAT(index_.AuthorizedEntries(Id(kA)), IsEmpty());
}

}  // namespace
}  // namespace tessera::server
