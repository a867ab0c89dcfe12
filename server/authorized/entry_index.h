// EntryIndex: the server's in-memory index of registration entries and attested nodes that
// answers "which entries is this agent authorized for" (SPIRE-API-FACTS §8) in time proportional
// to that agent's own entries, and says after every change which agents' answers may differ (so
// the push service can notify exactly those agents).
//
// The server loads every entry and node at start (Load), then applies each successful datastore
// write with Upsert/Remove/UpsertNode/RemoveNode. Every attested agent must be registered with
// UpsertNode, even one without node selectors: only registered agents are ever reported as
// affected by a change (an unregistered agent is still answered by the queries, from its direct
// children alone).
//
// Thread safety: safe for concurrent use. One absl::Mutex: queries take it shared (reader lock),
// so gRPC handlers never block one another; a mutation takes it exclusively for the few index
// updates it makes. Nothing slow runs under it (no I/O, no callbacks), so writers wait briefly.
// Copy-on-write snapshots were rejected: without persistent maps each write would copy the whole
// registry, which is the registry-sized cost this index exists to avoid. Results are shared_ptrs to
// immutable entries and stay valid after later changes.
//
// Semantics (§8):
// - Only entries whose spiffe_id and parent_id are both in the index's trust domain count; other
//   entries are ignored (an Upsert moving an entry out of the trust domain removes it). IDs are
//   compared by path, which within one trust domain is the same as comparing whole IDs.
// - An entry whose parent path is /spire/server is a node alias. It applies to an agent when its
//   selectors are non-empty and all among the agent's node selectors, and is never returned.
// - The crawl starts at the agent's path and at the spiffe_id path of every applicable alias, and
//   follows parent_id -> spiffe_id links; each path is expanded once, so cycles and diamonds end
//   and no entry is returned twice.
// - Expiry: an entry is treated as absent once the clock reaches its expires_at (when non-zero):
//   it is neither returned nor crawled through, and an expired alias applies to nobody. That is
//   exactly the answer the registry gives once SPIRE-style pruning deletes the entry, so
//   answers do not jump when the pruner runs. Expiry alone is not a change: agents are notified
//   when the pruner's Remove arrives (the affected-agent sets below ignore expiry, so they cover
//   every expiry state).
//
// Affected agents (returned by every mutation): a sorted, duplicate-free list of registered
// agents whose AuthorizedEntries result may differ after the change. Never missing one.
// - Entry E changed (old version E0 and/or new E1): the agents whose crawl reaches E0's parent
//   path before the change plus those whose crawl reaches E1's parent path after it, computed
//   by walking upward from the parent path through entries' spiffe_id -> parent_id links and
//   applicable aliases. These are exactly the agents that had E0 or now have E1, with expiry
//   ignored; any agent whose answer changed must be among them.
// - Alias changed: the agents whose node selectors satisfy its old or new selectors.
// - Node selectors changed or node removed: that agent alone, when the set of aliases it
//   satisfies changed (nothing otherwise).
// Over-approximations, each bounded by the agents the changed record concerns: an agent for
// which E was expired is still reported; an alias change reports every agent satisfying it even
// when nothing hangs below it or the agent reaches that path anyway (likewise for a node
// gaining or losing such an alias). For a non-alias entry the list is otherwise exact.
//
// Complexity (A = agent's authorized entries, S = its node selectors, K = aliases indexed under
// one of those selectors, each compared in O(alias selectors)). Independent of registry size:
// - AuthorizedEntries: O(A + S + K) expected (hash maps). Expired entries under crawled paths
//   are examined too.
// - FindAuthorizedEntry: walks upward from the entry's parent, stopping at the first link to
//   the agent; when the walk needs more than a budget of links (64 by default) it crawls downward
//   from the agent instead, stopping at the entry. So O(min(ancestors, budget) + A) worst case,
//   typically O(depth of the entry).
// - Upsert/Remove: O(ancestor paths of the old and new parent + entries linking them + for each
//   alias met, the registered nodes holding its least common selector).
// - UpsertNode/RemoveNode: O(S log S + K), twice (the aliases before and after).
// Aliases are indexed under a single selector, the one held by the fewest registered nodes when
// the alias is inserted (not revisited as nodes come and go), so an agent only examines aliases
// keyed under its own selectors, and mostly under its rare ones. The choice affects cost only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "server/datastore/types.h"
#include "spiffe/id.h"
#include "spiffe/selector.h"

namespace tessera::server {

class EntryIndex {
 public:
  using EntryPtr = std::shared_ptr<const Entry>;
  // Registered agents whose AuthorizedEntries result may have changed; sorted, no duplicates.
  using AffectedAgents = std::vector<spiffe::SpiffeId>;

  // Node-alias entries have this parent path.
  static constexpr std::string_view kServerPath = "/spire/server";
  // Links FindAuthorizedEntry follows upward before it switches to a downward crawl.
  static constexpr size_t kDefaultUpwardWalkBudget = 64;

  // The work one AuthorizedEntries call does; for tests and metrics.
  struct QueryCost {
    size_t alias_candidates = 0;  // aliases whose selectors were compared with the agent's
    size_t paths_expanded = 0;    // distinct paths whose children were read
    size_t entries_examined = 0;  // children read (returned, or skipped as expired)
    size_t entries_returned = 0;
    friend bool operator==(const QueryCost&, const QueryCost&) = default;
  };

  // `clock` must outlive the index. The budget only trades cost between FindAuthorizedEntry's two
  // strategies (tests lower it to exercise both); answers never depend on it.
  EntryIndex(spiffe::TrustDomain trust_domain, const Clock& clock,
             size_t upward_walk_budget = kDefaultUpwardWalkBudget);
  EntryIndex(const EntryIndex&) = delete;
  EntryIndex& operator=(const EntryIndex&) = delete;

  // Replaces the whole content (server start). Reports nothing: every agent may be affected.
  void Load(std::span<const Entry> entries, std::span<const AttestedNode> nodes);

  // Inserts or replaces the entry with entry.id.
  AffectedAgents Upsert(Entry entry);
  // Removes the entry; unknown ids are ignored.
  AffectedAgents Remove(std::string_view entry_id);
  // Records an attested agent and its node selectors (from its last attestation). Agents
  // outside the trust domain are ignored.
  AffectedAgents UpsertNode(const spiffe::SpiffeId& agent_id, spiffe::SelectorSet node_selectors);
  AffectedAgents RemoveNode(const spiffe::SpiffeId& agent_id);

  // Every entry authorized for the agent, in no particular order. Queries about an agent outside
  // the trust domain find nothing.
  std::vector<EntryPtr> AuthorizedEntries(const spiffe::SpiffeId& agent_id) const;
  // The entry when it exists and is authorized for the agent; nullptr otherwise (the two cases
  // are deliberately not told apart: agents must not probe for others' entries).
  EntryPtr FindAuthorizedEntry(const spiffe::SpiffeId& agent_id, std::string_view entry_id) const;
  // What AuthorizedEntries(agent_id) costs right now.
  QueryCost MeasureAuthorizedEntries(const spiffe::SpiffeId& agent_id) const;

  // Entries of the trust domain held (aliases included) and registered agents.
  size_t entry_count() const;
  size_t node_count() const;

 private:
  // One indexed entry. Paths view into *entry, which the record keeps alive.
  struct Record {
    EntryPtr entry;
    std::string_view parent_path;
    std::string_view spiffe_path;
    bool alias = false;
    std::optional<spiffe::Selector> alias_key;  // the alias's bucket in aliases_by_key_
  };
  struct Node {
    spiffe::SpiffeId id;
    spiffe::SelectorSet selectors;
  };
  using RecordSet = absl::flat_hash_set<const Record*>;
  using PathSet = absl::flat_hash_set<std::string_view>;

  int64_t NowUnix() const;

  // Calls `visit` for every authorized entry until it returns false; returns false if stopped.
  bool Crawl(std::string_view agent_path, int64_t now, QueryCost& cost,
             absl::FunctionRef<bool(const Record&)> visit) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The aliases applying to an agent (none when it is not registered), skipping those expired
  // at `now`.
  std::vector<const Record*> ApplicableAliases(std::string_view agent_path, int64_t now,
                                               QueryCost& cost) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Whether the upward walk from `path` reaches the agent; nullopt when over budget.
  std::optional<bool> ReachesUpward(std::string_view path, std::string_view agent_path,
                                    int64_t now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Adds the agents for which `record` is (or was) structurally authorized.
  void CollectImpact(const Record& record, absl::flat_hash_set<std::string_view>& agents) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void CollectAgentsReaching(std::string_view path,
                             absl::flat_hash_set<std::string_view>& agents) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void CollectAgentsMatching(const spiffe::SelectorSet& selectors,
                             absl::flat_hash_set<std::string_view>& agents) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  AffectedAgents ToAffected(const absl::flat_hash_set<std::string_view>& agent_paths) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  bool InTrustDomain(const Entry& entry) const;
  const Record& InsertLocked(Entry entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(absl::node_hash_map<std::string, Record>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetNodeLocked(const spiffe::SpiffeId& agent_id, spiffe::SelectorSet selectors)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseNodeLocked(std::string_view agent_path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Fixed at construction.
  const spiffe::TrustDomain trust_domain_;
  const Clock& clock_;
  const size_t upward_walk_budget_;

  mutable absl::Mutex mu_;
  // By entry id; node-based so Record addresses stay valid for the sets below.
  absl::node_hash_map<std::string, Record> entries_ ABSL_GUARDED_BY(mu_);
  // Non-alias entries by parent path (the downward crawl) and by spiffe_id path (upward walks).
  absl::flat_hash_map<std::string, RecordSet> children_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, RecordSet> by_spiffe_path_ ABSL_GUARDED_BY(mu_);
  // Aliases by spiffe_id path (upward walks) and under one of their selectors (crawl roots).
  absl::flat_hash_map<std::string, RecordSet> aliases_by_spiffe_path_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<spiffe::Selector, RecordSet> aliases_by_key_ ABSL_GUARDED_BY(mu_);
  // Registered agents by path, and their paths by node selector (agents matching an alias).
  absl::node_hash_map<std::string, Node> nodes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<spiffe::Selector, absl::flat_hash_set<std::string_view>> nodes_by_selector_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::server
