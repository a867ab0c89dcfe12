// Selectors: the "type:value" facts attestors report about a workload or node ("unix:uid:1000",
// "k8s:ns:web", "docker:label:app:web"), and the sorted sets entries and workloads carry.
//
// The type ends at the FIRST colon; the value may contain more. Both parts are non-empty,
// well-formed UTF-8 (selectors travel in protobuf string fields) and free of control
// characters; the type has no colon. A parsed Selector has one spelling, so equality, ordering
// and hashing are byte comparisons of "type:value".
//
// Values are immutable after construction and safe to share between threads.
#pragma once

#include <compare>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::spiffe {

// Longest type and value we accept. Real types are short names ("k8s_psat"); the longest real
// values are image references with digests and Docker labels, far below the value limit.
inline constexpr size_t kMaxSelectorTypeLength = 255;
inline constexpr size_t kMaxSelectorValueLength = 4096;

class Selector {
 public:
  // Parses "type:value", splitting at the first colon.
  static absl::StatusOr<Selector> Parse(std::string_view text);
  // Builds a selector from separate parts (as they arrive in the SPIRE API's Selector message).
  // Error messages match SPIRE's: "missing selector type", "selector type contains ':'",
  // "missing selector value".
  static absl::StatusOr<Selector> Create(std::string_view type, std::string_view value);

  std::string_view type() const { return std::string_view(text_).substr(0, colon_); }
  std::string_view value() const { return std::string_view(text_).substr(colon_ + 1); }
  // "type:value".
  const std::string& ToString() const { return text_; }

  friend bool operator==(const Selector& a, const Selector& b) { return a.text_ == b.text_; }
  friend std::strong_ordering operator<=>(const Selector& a, const Selector& b) {
    return a.text_ <=> b.text_;
  }
  template <typename H>
  friend H AbslHashValue(H h, const Selector& s) {
    return H::combine(std::move(h), s.text_);
  }

 private:
  Selector(std::string text, size_t colon) : text_(std::move(text)), colon_(colon) {}
  std::string text_;
  size_t colon_;  // index of the colon that ends the type
};

// A sorted, duplicate-free set of selectors.
class SelectorSet {
 public:
  SelectorSet() = default;
  explicit SelectorSet(std::vector<Selector> selectors);

  // Parses every "type:value" string; the first bad one fails the whole set.
  static absl::StatusOr<SelectorSet> Parse(std::span<const std::string> texts);
  static absl::StatusOr<SelectorSet> Parse(std::initializer_list<std::string_view> texts);

  // The entry-matching rule: true when this set is NON-EMPTY and every selector in it is also in
  // `workload`. An entry without selectors would otherwise match every workload, so it matches
  // none (SPIRE defines its MATCH_SUBSET filter the same way: a non-empty subset). Runs in
  // O(size() + workload.size()): both sides are sorted.
  bool IsSubsetOf(const SelectorSet& workload) const;
  // True when the sets share at least one selector. O(size() + other.size()).
  bool Intersects(const SelectorSet& other) const;
  // O(log size()).
  bool Contains(const Selector& selector) const;

  // Adds the selectors of `other` (a workload's selectors are the union of its attestors').
  void Merge(const SelectorSet& other);

  bool empty() const { return selectors_.empty(); }
  size_t size() const { return selectors_.size(); }
  const std::vector<Selector>& selectors() const { return selectors_; }
  std::vector<Selector>::const_iterator begin() const { return selectors_.begin(); }
  std::vector<Selector>::const_iterator end() const { return selectors_.end(); }
  // The selectors, in order, as "type:value" strings.
  std::vector<std::string> Strings() const;
  // "[type:value type:value]", for logs.
  std::string ToString() const;

  friend bool operator==(const SelectorSet&, const SelectorSet&) = default;
  friend auto operator<=>(const SelectorSet&, const SelectorSet&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const SelectorSet& set) {
    return H::combine(std::move(h), set.selectors_);
  }

 private:
  std::vector<Selector> selectors_;  // sorted, unique
};

}  // namespace tessera::spiffe

template <>
struct std::hash<tessera::spiffe::Selector> {
  size_t operator()(const tessera::spiffe::Selector& s) const {
    return std::hash<std::string>()(s.ToString());
  }
};
