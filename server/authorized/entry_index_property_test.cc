// Randomized comparison of EntryIndex against a deliberately naive model of SPIRE-API-FACTS §8:
// a full scan of every entry per query, with reachability computed as a fixpoint rather than a
// crawl. Small alphabets of IDs and selectors make cycles, diamonds, shared paths, aliases and
// id collisions frequent.
#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/authorized/entry_index.h"
#include "server/authorized/entry_index_test_util.h"

namespace tessera::server {
namespace {

using namespace ::tessera::server::testing;  // NOLINT(google-build-using-namespace): test builders

constexpr int64_t kStructural = -1;  // Model::Authorized: ignore expiry

bool IsSorted(const std::vector<Entry>& entries) {
  return std::is_sorted(entries.begin(), entries.end(),
                        [](const Entry& a, const Entry& b) { return a.id < b.id; });
}

class Model {
 public:
  explicit Model(spiffe::TrustDomain td) : td_(std::move(td)) {}

  void Upsert(const Entry& entry) { entries_.insert_or_assign(entry.id, entry); }
  void Remove(const std::string& id) { entries_.erase(id); }
  void UpsertNode(const spiffe::SpiffeId& id, const spiffe::SelectorSet& selectors) {
    if (id.MemberOf(td_)) nodes_.insert_or_assign(id, selectors);
  }
  void RemoveNode(const spiffe::SpiffeId& id) { nodes_.erase(id); }

  // Sorted by id. `now` == kStructural: nothing is expired.
  std::vector<Entry> Authorized(const spiffe::SpiffeId& agent, int64_t now) const {
    std::vector<Entry> out;
    if (!agent.MemberOf(td_)) return out;
    auto live = [&](const Entry& e) {
      bool expired = now != kStructural && e.expires_at != 0 && e.expires_at <= now;
      return !expired && e.spiffe_id.MemberOf(td_) && e.parent_id.MemberOf(td_);
    };
    auto is_alias = [](const Entry& e) { return e.parent_id.path() == "/spire/server"; };
    std::set<std::string, std::less<>> reached = {std::string(agent.path())};
    if (auto node = nodes_.find(agent); node != nodes_.end()) {
      for (const auto& [id, e] : entries_) {
        if (live(e) && is_alias(e) && e.selectors.IsSubsetOf(node->second)) {
          reached.insert(std::string(e.spiffe_id.path()));
        }
      }
    }
    for (bool grew = true; grew;) {
      grew = false;
      for (const auto& [id, e] : entries_) {
        if (live(e) && !is_alias(e) && reached.contains(e.parent_id.path())) {
          grew |= reached.insert(std::string(e.spiffe_id.path())).second;
        }
      }
    }
    for (const auto& [id, e] : entries_) {
      if (live(e) && !is_alias(e) && reached.contains(e.parent_id.path())) out.push_back(e);
    }
    return out;
  }

  // The agents among `eligible` whose results differ between two snapshots.
  static std::set<spiffe::SpiffeId> Changed(
      const std::map<spiffe::SpiffeId, std::vector<Entry>>& before,
      const std::map<spiffe::SpiffeId, std::vector<Entry>>& after,
      const std::set<spiffe::SpiffeId>& eligible) {
    std::set<spiffe::SpiffeId> changed;
    for (const auto& [agent, entries] : before) {
      if (eligible.contains(agent) && after.at(agent) != entries) changed.insert(agent);
    }
    return changed;
  }

  // Results of each agent, registered or not.
  std::map<spiffe::SpiffeId, std::vector<Entry>> Snapshot(const std::vector<std::string>& agents,
                                                          int64_t now) const {
    std::map<spiffe::SpiffeId, std::vector<Entry>> out;
    for (const std::string& agent : agents) out[Id(agent)] = Authorized(Id(agent), now);
    return out;
  }

  std::set<spiffe::SpiffeId> Registered() const {
    std::set<spiffe::SpiffeId> out;
    for (const auto& [agent, selectors] : nodes_) out.insert(agent);
    return out;
  }

  // Registered agents satisfying an alias's selectors.
  std::set<spiffe::SpiffeId> Matching(const spiffe::SelectorSet& selectors) const {
    std::set<spiffe::SpiffeId> out;
    for (const auto& [agent, node] : nodes_) {
      if (selectors.IsSubsetOf(node)) out.insert(agent);
    }
    return out;
  }
  bool IsAlias(const std::string& id) const {
    auto it = entries_.find(id);
    return it != entries_.end() && it->second.parent_id.MemberOf(td_) &&
           it->second.spiffe_id.MemberOf(td_) && it->second.parent_id.path() == "/spire/server";
  }
  const Entry* Find(const std::string& id) const {
    auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : &it->second;
  }

  std::vector<Entry> AllEntries() const {
    std::vector<Entry> out;
    for (const auto& [id, e] : entries_) out.push_back(e);
    return out;
  }
  std::vector<AttestedNode> AllNodes() const {
    std::vector<AttestedNode> out;
    for (const auto& [id, selectors] : nodes_) {
      out.push_back(AttestedNode{.id = id, .selectors = selectors});
    }
    return out;
  }

 private:
  spiffe::TrustDomain td_;
  std::map<std::string, Entry> entries_;
  std::map<spiffe::SpiffeId, spiffe::SelectorSet> nodes_;
};

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(int percent) { return Uniform(1, 100) <= percent; }
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Uniform(0, static_cast<int>(items.size()) - 1)];
  }

  spiffe::SelectorSet SomeSelectors(int max) {
    std::vector<spiffe::Selector> picked;
    int n = Uniform(0, max);
    picked.reserve(n);
    for (int i = 0; i < n; ++i) picked.push_back(Pick(selectors_));
    return spiffe::SelectorSet(std::move(picked));  // duplicates collapse
  }

  Entry SomeEntry(int64_t now) {
    std::string id = Pick(ids_);
    int p = Uniform(1, 100);
    std::string parent = p <= 30   ? Pick(agents_)
                         : p <= 70 ? Pick(paths_)
                         : p <= 93 ? "/spire/server"
                                   : Pick(foreign_);
    int s = Uniform(1, 100);
    std::string spiffe_id = s <= 80   ? Pick(paths_)
                            : s <= 90 ? Pick(agents_)
                            : s <= 95 ? "/spire/server"
                                      : Pick(foreign_);
    Entry e = MakeEntry(id, parent, spiffe_id, SomeSelectors(2));
    if (e.selectors.empty() && !Chance(5)) e.selectors = spiffe::SelectorSet({Pick(selectors_)});
    if (Chance(20)) e.expires_at = now + Uniform(-2, 4);
    e.revision_number = Uniform(0, 2);
    return e;
  }

  const std::vector<std::string>& agents() const { return agents_; }
  const std::vector<std::string>& ids() const { return ids_; }

 private:
  std::mt19937 rng_;
  std::vector<std::string> ids_ = {"e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7",
                                   "e8", "e9", "ea", "eb", "ec", "ed", "ee"};
  std::vector<std::string> agents_ = {"/spire/agent/t/a0", "/spire/agent/t/a1", "/spire/agent/t/a2",
                                      "/spire/agent/t/a3"};
  std::vector<std::string> paths_ = {"/w0", "/w1", "/w2", "/w3", "/w4", "/w5"};
  std::vector<std::string> foreign_ = {"spiffe://other.org/w0", "spiffe://other.org/spire/server",
                                       "spiffe://other.org/spire/agent/t/a0"};
  std::vector<spiffe::Selector> selectors_ = {
      spiffe::Selector::Parse("s:0").value(), spiffe::Selector::Parse("s:1").value(),
      spiffe::Selector::Parse("s:2").value(), spiffe::Selector::Parse("s:3").value()};
};

std::vector<Entry> Values(const std::vector<EntryIndex::EntryPtr>& entries) {
  std::vector<Entry> out;
  out.reserve(entries.size());
  for (const auto& e : entries) out.push_back(*e);
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.id < b.id; });
  return out;
}

std::string Describe(const std::vector<spiffe::SpiffeId>& ids) {
  std::string out;
  for (const auto& id : ids) out += id.str() + " ";
  return out;
}

class EntryIndexPropertyTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch())
        .count();
  }

  // Every query of the index agrees with the model.
  void CheckQueries(const EntryIndex& index, Generator& gen) {
    std::vector<std::string> queried = gen.agents();
    queried.push_back("/spire/agent/t/unregistered");
    queried.push_back("spiffe://other.org/spire/agent/t/a0");
    queried.push_back("/spire/server");
    for (const std::string& agent_text : queried) {
      spiffe::SpiffeId agent = Id(agent_text);
      std::vector<Entry> expected = model_.Authorized(agent, Now());
      ASSERT_TRUE(IsSorted(expected));
      std::vector<Entry> actual = Values(index.AuthorizedEntries(agent));
      ASSERT_EQ(actual, expected) << "agent " << agent.str();
      ASSERT_EQ(index.MeasureAuthorizedEntries(agent).entries_returned, expected.size());
      for (const std::string& id : gen.ids()) {
        bool authorized = std::any_of(expected.begin(), expected.end(),
                                      [&](const Entry& e) { return e.id == id; });
        EntryIndex::EntryPtr found = index.FindAuthorizedEntry(agent, id);
        ASSERT_EQ(found != nullptr, authorized) << "agent " << agent.str() << " entry " << id;
        if (found != nullptr) ASSERT_EQ(*found, *model_.Find(id));
      }
    }
  }

  FakeClock clock_;
  Model model_{spiffe::TrustDomain::Parse(kTrustDomain).value()};
};

TEST_P(EntryIndexPropertyTest, AgreesWithFullScanModel) {
  const spiffe::TrustDomain td = spiffe::TrustDomain::Parse(kTrustDomain).value();
  EntryIndex index(td, clock_);
  // A twin whose FindAuthorizedEntry gives up walking upward almost at once, so both of its
  // strategies are compared with the model.
  EntryIndex twin(td, clock_, /*upward_walk_budget=*/1);
  Generator gen(GetParam());
  constexpr int kOperations = 1500;
  size_t reported = 0;
  for (int op = 0; op < kOperations; ++op) {
    const auto timed_before = model_.Snapshot(gen.agents(), Now());
    const auto structural_before = model_.Snapshot(gen.agents(), kStructural);
    // Only registered agents are ever reported (the index's contract).
    std::set<spiffe::SpiffeId> eligible = model_.Registered();
    EntryIndex::AffectedAgents affected;
    std::set<spiffe::SpiffeId> allowed;  // the most that may be reported
    bool exact = false;                  // whether `affected` must equal the structural change
    std::string what;
    int kind = gen.Uniform(1, 100);
    if (kind <= 50) {
      Entry e = gen.SomeEntry(Now());
      what = "upsert " + e.id + " " + e.parent_id.str() + " -> " + e.spiffe_id.str();
      bool aliases = model_.IsAlias(e.id);
      if (aliases) allowed = model_.Matching(model_.Find(e.id)->selectors);
      affected = index.Upsert(e);
      ASSERT_EQ(twin.Upsert(e), affected);
      model_.Upsert(e);
      if (model_.IsAlias(e.id)) {
        aliases = true;
        for (const auto& agent : model_.Matching(e.selectors)) allowed.insert(agent);
      }
      exact = !aliases;
    } else if (kind <= 65) {
      std::string id = gen.Pick(gen.ids());
      what = "remove " + id;
      exact = !model_.IsAlias(id);
      if (!exact) allowed = model_.Matching(model_.Find(id)->selectors);
      affected = index.Remove(id);
      ASSERT_EQ(twin.Remove(id), affected);
      model_.Remove(id);
    } else if (kind <= 85) {
      spiffe::SpiffeId agent = Id(gen.Pick(gen.agents()));
      spiffe::SelectorSet selectors = gen.SomeSelectors(3);
      what = "node " + agent.str() + " " + selectors.ToString();
      allowed = {agent};
      affected = index.UpsertNode(agent, selectors);
      ASSERT_EQ(twin.UpsertNode(agent, selectors), affected);
      model_.UpsertNode(agent, selectors);
    } else if (kind <= 92) {
      spiffe::SpiffeId agent = Id(gen.Pick(gen.agents()));
      what = "remove node " + agent.str();
      allowed = {agent};
      affected = index.RemoveNode(agent);
      ASSERT_EQ(twin.RemoveNode(agent), affected);
      model_.RemoveNode(agent);
    } else {
      what = "tick";
      clock_.Advance(std::chrono::seconds(gen.Uniform(1, 2)));
    }
    SCOPED_TRACE("op " + std::to_string(op) + ": " + what);
    ASSERT_TRUE(std::is_sorted(affected.begin(), affected.end()));
    ASSERT_EQ(std::adjacent_find(affected.begin(), affected.end()), affected.end());
    reported += affected.size();

    if (what != "tick") {
      const std::set<spiffe::SpiffeId> got(affected.begin(), affected.end());
      for (const auto& agent : model_.Registered()) eligible.insert(agent);
      // Nobody whose answer changed may be missing, at this instant or any other.
      for (const auto& agent :
           Model::Changed(timed_before, model_.Snapshot(gen.agents(), Now()), eligible)) {
        ASSERT_TRUE(got.contains(agent))
            << "missing " << agent.str() << "; got " << Describe(affected);
      }
      const auto structural_changed =
          Model::Changed(structural_before, model_.Snapshot(gen.agents(), kStructural), eligible);
      for (const auto& agent : structural_changed) {
        ASSERT_TRUE(got.contains(agent)) << "missing (structural) " << agent.str();
      }
      if (exact) {
        ASSERT_EQ(got, structural_changed) << "got " << Describe(affected);
      } else {
        for (const auto& agent : got) {
          ASSERT_TRUE(allowed.contains(agent) || structural_changed.contains(agent))
              << "unexpected " << agent.str();
        }
      }
    }
    ASSERT_NO_FATAL_FAILURE(CheckQueries(index, gen));
    ASSERT_NO_FATAL_FAILURE(CheckQueries(twin, gen));

    if (op % 250 == 249) {
      // A fresh index loaded from the same state answers the same.
      EntryIndex loaded(td, clock_);
      loaded.Load(model_.AllEntries(), model_.AllNodes());
      ASSERT_EQ(loaded.entry_count(), index.entry_count());
      ASSERT_EQ(loaded.node_count(), index.node_count());
      ASSERT_NO_FATAL_FAILURE(CheckQueries(loaded, gen));
    }
  }
  // The generator must exercise the interesting paths, not just empty answers.
  EXPECT_GT(reported, static_cast<size_t>(kOperations) / 4);
}

INSTANTIATE_TEST_SUITE_P(Seeds, EntryIndexPropertyTest, ::testing::Values(1u, 7u, 2024u));

}  // namespace
}  // namespace tessera::server
