#include "server/authorized/entry_index.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <tuple>
#include <utility>

#include "common/strings.h"

namespace tessera::server {
namespace {

// A `now` under which nothing is expired: the affected-agent computations reason about the
// structure alone so that their answer holds at every instant.
constexpr int64_t kIgnoreExpiry = std::numeric_limits<int64_t>::min();

bool Expired(const Entry& entry, int64_t now) {
  return now != kIgnoreExpiry && entry.expires_at != 0 && entry.expires_at <= now;
}

// The alias rule: a non-empty set, all of it among the agent's selectors. Cheaper than
// SelectorSet::IsSubsetOf here because aliases are short and agents' sets may be long.
bool AliasApplies(const spiffe::SelectorSet& alias, const spiffe::SelectorSet& node) {
  if (alias.empty()) return false;
  for (const spiffe::Selector& selector : alias) {
    if (!node.Contains(selector)) return false;
  }
  return true;
}

// Removes `value` from the set under `key` and drops the set once empty, so the maps never keep
// buckets for paths and selectors nothing refers to any more.
template <typename Map, typename Key, typename Value>
void EraseFromBucket(Map& map, const Key& key, const Value& value) {
  auto it = map.find(key);
  if (it == map.end()) return;
  it->second.erase(value);
  if (it->second.empty()) map.erase(it);
}

}  // namespace

EntryIndex::EntryIndex(spiffe::TrustDomain trust_domain, const Clock& clock,
                       size_t upward_walk_budget)
    : trust_domain_(std::move(trust_domain)),
      clock_(clock),
      upward_walk_budget_(upward_walk_budget) {}

int64_t EntryIndex::NowUnix() const {
  return std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
}

bool EntryIndex::InTrustDomain(const Entry& entry) const {
  return entry.spiffe_id.MemberOf(trust_domain_) && entry.parent_id.MemberOf(trust_domain_);
}

// ---- Mutations ----

void EntryIndex::Load(std::span<const Entry> entries, std::span<const AttestedNode> nodes) {
  absl::MutexLock lock(&mu_);
  // Sets of pointers and views first, then what they point into.
  children_.clear();
  by_spiffe_path_.clear();
  aliases_by_spiffe_path_.clear();
  aliases_by_key_.clear();
  entries_.clear();
  nodes_by_selector_.clear();
  nodes_.clear();
  // Nodes before entries: an alias's index key is chosen by how many nodes hold each selector.
  for (const AttestedNode& node : nodes) {
    if (node.id.MemberOf(trust_domain_)) SetNodeLocked(node.id, node.selectors);
  }
  for (const Entry& entry : entries) {
    if (!InTrustDomain(entry)) continue;
    auto it = entries_.find(entry.id);
    if (it != entries_.end()) EraseLocked(it);  // a repeated id: the last one wins, as in Upsert
    InsertLocked(entry);
  }
}

EntryIndex::AffectedAgents EntryIndex::Upsert(Entry entry) {
  absl::MutexLock lock(&mu_);
  const bool in_trust_domain = InTrustDomain(entry);
  absl::flat_hash_set<std::string_view> agents;
  auto it = entries_.find(entry.id);
  if (it != entries_.end()) {
    if (in_trust_domain && *it->second.entry == entry) return {};
    // Who had the old version is judged on the registry as it was, before it goes.
    CollectImpact(it->second, agents);
    EraseLocked(it);
  }
  if (in_trust_domain) CollectImpact(InsertLocked(std::move(entry)), agents);
  return ToAffected(agents);
}

EntryIndex::AffectedAgents EntryIndex::Remove(std::string_view entry_id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(AsAbsl(entry_id));
  if (it == entries_.end()) return {};
  absl::flat_hash_set<std::string_view> agents;
  CollectImpact(it->second, agents);
  EraseLocked(it);
  return ToAffected(agents);
}

EntryIndex::AffectedAgents EntryIndex::UpsertNode(const spiffe::SpiffeId& agent_id,
                                                  spiffe::SelectorSet node_selectors) {
  if (!agent_id.MemberOf(trust_domain_)) return {};
  absl::MutexLock lock(&mu_);
  const std::string_view path = agent_id.path();
  QueryCost unused;
  // Only the agent's crawl roots depend on its selectors: it is affected iff the aliases it
  // satisfies changed (judged structurally, so the answer holds whatever expires later).
  auto before = ApplicableAliases(path, kIgnoreExpiry, unused);
  SetNodeLocked(agent_id, std::move(node_selectors));
  auto after = ApplicableAliases(path, kIgnoreExpiry, unused);
  std::sort(before.begin(), before.end());
  std::sort(after.begin(), after.end());
  if (before == after) return {};
  return {agent_id};
}

EntryIndex::AffectedAgents EntryIndex::RemoveNode(const spiffe::SpiffeId& agent_id) {
  if (!agent_id.MemberOf(trust_domain_)) return {};
  absl::MutexLock lock(&mu_);
  const std::string_view path = agent_id.path();
  if (!nodes_.contains(AsAbsl(path))) return {};
  QueryCost unused;
  const bool had_aliases = !ApplicableAliases(path, kIgnoreExpiry, unused).empty();
  EraseNodeLocked(path);
  if (!had_aliases) return {};
  return {agent_id};
}

const EntryIndex::Record& EntryIndex::InsertLocked(Entry entry) {
  auto shared = std::make_shared<const Entry>(std::move(entry));
  Record& record = entries_[shared->id];
  record.entry = shared;
  record.parent_path = shared->parent_id.path();
  record.spiffe_path = shared->spiffe_id.path();
  record.alias = record.parent_path == kServerPath;
  record.alias_key.reset();
  if (!record.alias) {
    children_[std::string(record.parent_path)].insert(&record);
    by_spiffe_path_[std::string(record.spiffe_path)].insert(&record);
    return record;
  }
  aliases_by_spiffe_path_[std::string(record.spiffe_path)].insert(&record);
  // Key the alias under the selector the fewest registered nodes hold (then the least used
  // key), so few agents ever look at it. An alias without selectors applies to nobody.
  const spiffe::Selector* best = nullptr;
  std::pair<size_t, size_t> best_load;
  for (const spiffe::Selector& selector : shared->selectors) {
    auto nodes = nodes_by_selector_.find(selector);
    auto keyed = aliases_by_key_.find(selector);
    std::pair<size_t, size_t> load(nodes == nodes_by_selector_.end() ? 0 : nodes->second.size(),
                                   keyed == aliases_by_key_.end() ? 0 : keyed->second.size());
    if (best == nullptr || load < best_load) {
      best = &selector;
      best_load = load;
    }
  }
  if (best != nullptr) {
    record.alias_key = *best;
    aliases_by_key_[*best].insert(&record);
  }
  return record;
}

void EntryIndex::EraseLocked(absl::node_hash_map<std::string, Record>::iterator it) {
  const Record* record = &it->second;
  if (record->alias) {
    EraseFromBucket(aliases_by_spiffe_path_, AsAbsl(record->spiffe_path), record);
    if (record->alias_key) EraseFromBucket(aliases_by_key_, *record->alias_key, record);
  } else {
    EraseFromBucket(children_, AsAbsl(record->parent_path), record);
    EraseFromBucket(by_spiffe_path_, AsAbsl(record->spiffe_path), record);
  }
  entries_.erase(it);
}

void EntryIndex::SetNodeLocked(const spiffe::SpiffeId& agent_id, spiffe::SelectorSet selectors) {
  auto [it, inserted] = nodes_.try_emplace(std::string(agent_id.path()), Node{agent_id, {}});
  const std::string_view key = it->first;  // node_hash_map: stable while the node exists
  if (!inserted) {
    for (const spiffe::Selector& selector : it->second.selectors) {
      EraseFromBucket(nodes_by_selector_, selector, key);
    }
  }
  it->second.selectors = std::move(selectors);
  for (const spiffe::Selector& selector : it->second.selectors) {
    nodes_by_selector_[selector].insert(key);
  }
}

void EntryIndex::EraseNodeLocked(std::string_view agent_path) {
  auto it = nodes_.find(AsAbsl(agent_path));
  if (it == nodes_.end()) return;
  const std::string_view key = it->first;
  for (const spiffe::Selector& selector : it->second.selectors) {
    EraseFromBucket(nodes_by_selector_, selector, key);
  }
  nodes_.erase(it);
}

// ---- Queries ----

std::vector<const EntryIndex::Record*> EntryIndex::ApplicableAliases(std::string_view agent_path,
                                                                     int64_t now,
                                                                     QueryCost& cost) const {
  std::vector<const Record*> aliases;
  auto node = nodes_.find(AsAbsl(agent_path));
  if (node == nodes_.end()) return aliases;
  const spiffe::SelectorSet& selectors = node->second.selectors;
  // Every alias sits under exactly one key, so none is seen twice.
  for (const spiffe::Selector& selector : selectors) {
    auto keyed = aliases_by_key_.find(selector);
    if (keyed == aliases_by_key_.end()) continue;
    for (const Record* alias : keyed->second) {
      ++cost.alias_candidates;
      if (!Expired(*alias->entry, now) && AliasApplies(alias->entry->selectors, selectors)) {
        aliases.push_back(alias);
      }
    }
  }
  return aliases;
}

bool EntryIndex::Crawl(std::string_view agent_path, int64_t now, QueryCost& cost,
                       absl::FunctionRef<bool(const Record&)> visit) const {
  // Views into the records and the caller's ID, all alive while the lock is held.
  PathSet seen;
  std::vector<std::string_view> queue;
  auto enqueue = [&](std::string_view path) {
    if (seen.insert(path).second) queue.push_back(path);
  };
  enqueue(agent_path);
  for (const Record* alias : ApplicableAliases(agent_path, now, cost)) {
    enqueue(alias->spiffe_path);
  }
  // Each path enters the queue once, and each entry has one parent path, so no entry is
  // visited twice however the links loop or converge.
  for (size_t i = 0; i < queue.size(); ++i) {
    ++cost.paths_expanded;
    auto children = children_.find(AsAbsl(queue[i]));
    if (children == children_.end()) continue;
    for (const Record* child : children->second) {
      ++cost.entries_examined;
      if (Expired(*child->entry, now)) continue;
      if (!visit(*child)) return false;
      enqueue(child->spiffe_path);
    }
  }
  return true;
}

std::vector<EntryIndex::EntryPtr> EntryIndex::AuthorizedEntries(
    const spiffe::SpiffeId& agent_id) const {
  std::vector<EntryPtr> entries;
  if (!agent_id.MemberOf(trust_domain_)) return entries;
  const int64_t now = NowUnix();
  QueryCost cost;
  absl::ReaderMutexLock lock(&mu_);
  Crawl(agent_id.path(), now, cost, [&](const Record& record) {
    entries.push_back(record.entry);
    return true;
  });
  return entries;
}

EntryIndex::QueryCost EntryIndex::MeasureAuthorizedEntries(const spiffe::SpiffeId& agent_id) const {
  QueryCost cost;
  if (!agent_id.MemberOf(trust_domain_)) return cost;
  const int64_t now = NowUnix();
  absl::ReaderMutexLock lock(&mu_);
  Crawl(agent_id.path(), now, cost, [&](const Record&) {
    ++cost.entries_returned;
    return true;
  });
  return cost;
}

EntryIndex::EntryPtr EntryIndex::FindAuthorizedEntry(const spiffe::SpiffeId& agent_id,
                                                     std::string_view entry_id) const {
  if (!agent_id.MemberOf(trust_domain_)) return nullptr;
  const int64_t now = NowUnix();
  absl::ReaderMutexLock lock(&mu_);
  auto it = entries_.find(AsAbsl(entry_id));
  if (it == entries_.end()) return nullptr;
  const Record& target = it->second;
  if (target.alias || Expired(*target.entry, now)) return nullptr;
  std::optional<bool> authorized = ReachesUpward(target.parent_path, agent_id.path(), now);
  if (!authorized.has_value()) {
    // A widely shared ancestry: the agent's own crawl is the bounded alternative.
    QueryCost unused;
    authorized = !Crawl(agent_id.path(), now, unused,
                        [&](const Record& record) { return &record != &target; });
  }
  return *authorized ? target.entry : nullptr;
}

std::optional<bool> EntryIndex::ReachesUpward(std::string_view path, std::string_view agent_path,
                                              int64_t now) const {
  // The agent reaches `path` when it is the agent's own path, the spiffe_id of an alias the
  // agent satisfies, or the spiffe_id of a live entry whose parent path the agent reaches.
  const spiffe::SelectorSet* node_selectors = nullptr;
  if (auto node = nodes_.find(AsAbsl(agent_path)); node != nodes_.end()) {
    node_selectors = &node->second.selectors;
  }
  PathSet seen = {path};
  std::vector<std::string_view> queue = {path};
  size_t steps = 0;
  for (size_t i = 0; i < queue.size(); ++i) {
    const std::string_view current = queue[i];
    if (current == agent_path) return true;
    if (node_selectors != nullptr) {
      if (auto aliases = aliases_by_spiffe_path_.find(AsAbsl(current));
          aliases != aliases_by_spiffe_path_.end()) {
        for (const Record* alias : aliases->second) {
          if (++steps > upward_walk_budget_) return std::nullopt;
          if (!Expired(*alias->entry, now) &&
              AliasApplies(alias->entry->selectors, *node_selectors)) {
            return true;
          }
        }
      }
    }
    auto parents = by_spiffe_path_.find(AsAbsl(current));
    if (parents == by_spiffe_path_.end()) continue;
    for (const Record* link : parents->second) {
      if (++steps > upward_walk_budget_) return std::nullopt;
      if (!Expired(*link->entry, now) && seen.insert(link->parent_path).second) {
        queue.push_back(link->parent_path);
      }
    }
  }
  return false;
}

// ---- Affected agents ----

void EntryIndex::CollectImpact(const Record& record,
                               absl::flat_hash_set<std::string_view>& agents) const {
  if (record.alias) {
    CollectAgentsMatching(record.entry->selectors, agents);
  } else {
    CollectAgentsReaching(record.parent_path, agents);
  }
}

void EntryIndex::CollectAgentsReaching(std::string_view path,
                                       absl::flat_hash_set<std::string_view>& agents) const {
  // The upward mirror of Crawl, ignoring expiry: every registered agent whose crawl could
  // expand `path`.
  PathSet seen = {path};
  std::vector<std::string_view> queue = {path};
  for (size_t i = 0; i < queue.size(); ++i) {
    const std::string_view current = queue[i];
    if (auto node = nodes_.find(AsAbsl(current)); node != nodes_.end()) agents.insert(node->first);
    if (auto aliases = aliases_by_spiffe_path_.find(AsAbsl(current));
        aliases != aliases_by_spiffe_path_.end()) {
      for (const Record* alias : aliases->second) {
        CollectAgentsMatching(alias->entry->selectors, agents);
      }
    }
    auto parents = by_spiffe_path_.find(AsAbsl(current));
    if (parents == by_spiffe_path_.end()) continue;
    for (const Record* link : parents->second) {
      if (seen.insert(link->parent_path).second) queue.push_back(link->parent_path);
    }
  }
}

void EntryIndex::CollectAgentsMatching(const spiffe::SelectorSet& selectors,
                                       absl::flat_hash_set<std::string_view>& agents) const {
  if (selectors.empty()) return;
  // Only nodes holding the alias's least common selector can satisfy it.
  const absl::flat_hash_set<std::string_view>* candidates = nullptr;
  for (const spiffe::Selector& selector : selectors) {
    auto holders = nodes_by_selector_.find(selector);
    if (holders == nodes_by_selector_.end()) return;
    if (candidates == nullptr || holders->second.size() < candidates->size()) {
      candidates = &holders->second;
    }
  }
  for (std::string_view agent_path : *candidates) {
    auto node = nodes_.find(AsAbsl(agent_path));
    if (node != nodes_.end() && AliasApplies(selectors, node->second.selectors)) {
      agents.insert(node->first);
    }
  }
}

EntryIndex::AffectedAgents EntryIndex::ToAffected(
    const absl::flat_hash_set<std::string_view>& agent_paths) const {
  AffectedAgents affected;
  affected.reserve(agent_paths.size());
  for (std::string_view path : agent_paths) {
    affected.push_back(nodes_.find(AsAbsl(path))->second.id);
  }
  std::sort(affected.begin(), affected.end());
  return affected;
}

size_t EntryIndex::entry_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return entries_.size();
}

size_t EntryIndex::node_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return nodes_.size();
}

}  // namespace tessera::server
