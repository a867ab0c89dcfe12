// Test-only builders for EntryIndex tests: IDs, selector sets and entries written tersely.
// Not part of the library; single-threaded use.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "server/authorized/entry_index.h"
#include "server/datastore/types.h"
#include "spiffe/id.h"
#include "spiffe/selector.h"

namespace tessera::spiffe {
// Readable gtest failure messages.
inline void PrintTo(const SpiffeId& id, std::ostream* os) { *os << id.str(); }
}  // namespace tessera::spiffe

namespace tessera::server::testing {

inline constexpr std::string_view kTrustDomain = "example.org";

// A full "spiffe://..." ID as written, or a path in kTrustDomain.
inline spiffe::SpiffeId Id(std::string_view id_or_path) {
  if (id_or_path.starts_with("spiffe://")) return spiffe::SpiffeId::Parse(id_or_path).value();
  return spiffe::SpiffeId::Parse(std::string("spiffe://") + std::string(kTrustDomain) +
                                 std::string(id_or_path))
      .value();
}

inline spiffe::SelectorSet Selectors(std::initializer_list<std::string_view> texts) {
  return spiffe::SelectorSet::Parse(texts).value();
}

inline Entry MakeEntry(std::string id, std::string_view parent, std::string_view spiffe_id,
                       spiffe::SelectorSet selectors = Selectors({"unix:uid:1000"})) {
  return Entry{.id = std::move(id),
               .spiffe_id = Id(spiffe_id),
               .parent_id = Id(parent),
               .selectors = std::move(selectors)};
}

inline Entry MakeAlias(std::string id, std::string_view spiffe_id,
                       spiffe::SelectorSet node_selectors) {
  return MakeEntry(std::move(id), "/spire/server", spiffe_id, std::move(node_selectors));
}

inline AttestedNode MakeNode(std::string_view agent, spiffe::SelectorSet selectors) {
  return AttestedNode{.id = Id(agent), .selectors = std::move(selectors)};
}

// The ids of the entries, sorted.
inline std::vector<std::string> Ids(const std::vector<EntryIndex::EntryPtr>& entries) {
  std::vector<std::string> ids;
  for (const auto& entry : entries) ids.push_back(entry->id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

// The IDs as strings, in the order given.
inline std::vector<std::string> Strings(const std::vector<spiffe::SpiffeId>& ids) {
  std::vector<std::string> out;
  for (const auto& id : ids) out.push_back(id.str());
  return out;
}

}  // namespace tessera::server::testing
