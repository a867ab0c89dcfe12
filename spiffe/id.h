// SPIFFE IDs and trust domains, parsed strictly (SPIFFE-FACTS §1, same rules as go-spiffe).
//
// A parsed value has exactly one spelling, so equality, ordering and hashing are plain byte
// comparisons; both types work as keys of std::map, std::unordered_map and absl containers.
// Values are immutable after construction and safe to share between threads.
#pragma once

#include <compare>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"

namespace tessera::spiffe {

// Longest SPIFFE ID we accept (the standard's minimum requirement) and longest trust domain.
inline constexpr size_t kMaxIdLength = 2048;
inline constexpr size_t kMaxTrustDomainLength = 255;
inline constexpr std::string_view kScheme = "spiffe://";

class SpiffeId;

class TrustDomain {
 public:
  // Parses a bare trust-domain name ("example.org"). Use FromIdOrName to also accept
  // "spiffe://example.org" (as operators often write it in config and CLI flags).
  static absl::StatusOr<TrustDomain> Parse(std::string_view name);
  static absl::StatusOr<TrustDomain> FromIdOrName(std::string_view text);

  // The name without scheme: "example.org".
  const std::string& name() const { return name_; }
  // "spiffe://example.org", the form used as key in Workload API bundle maps.
  std::string IdString() const;
  // The trust domain's own SPIFFE ID (no path).
  SpiffeId Id() const;

  friend bool operator==(const TrustDomain&, const TrustDomain&) = default;
  friend auto operator<=>(const TrustDomain&, const TrustDomain&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const TrustDomain& td) {
    return H::combine(std::move(h), td.name_);
  }

 private:
  explicit TrustDomain(std::string name) : name_(std::move(name)) {}
  friend class SpiffeId;
  std::string name_;
};

class SpiffeId {
 public:
  static absl::StatusOr<SpiffeId> Parse(std::string_view text);
  // Builds trust_domain + path; `path` is "" or "/seg[/seg...]" and is validated.
  static absl::StatusOr<SpiffeId> FromPath(const TrustDomain& trust_domain, std::string_view path);
  // Builds trust_domain + "/" + segments joined by "/"; each segment is validated.
  static absl::StatusOr<SpiffeId> FromSegments(const TrustDomain& trust_domain,
                                               std::initializer_list<std::string_view> segments);

  // The whole ID: "spiffe://example.org/path".
  const std::string& str() const { return id_; }
  TrustDomain trust_domain() const;
  // "" for a trust-domain ID, otherwise "/seg[/seg...]".
  std::string_view path() const { return std::string_view(id_).substr(path_start_); }
  bool IsTrustDomainId() const { return path_start_ == id_.size(); }
  bool MemberOf(const TrustDomain& td) const;

  friend bool operator==(const SpiffeId& a, const SpiffeId& b) { return a.id_ == b.id_; }
  friend auto operator<=>(const SpiffeId& a, const SpiffeId& b) { return a.id_ <=> b.id_; }
  template <typename H>
  friend H AbslHashValue(H h, const SpiffeId& id) {
    return H::combine(std::move(h), id.id_);
  }

 private:
  SpiffeId(std::string id, size_t path_start) : id_(std::move(id)), path_start_(path_start) {}
  friend class TrustDomain;
  std::string id_;
  size_t path_start_ = 0;  // index of the path in id_ (== size() when there is none)
};

// Validates a path ("" or "/seg[/seg...]") by the SPIFFE ID path rules.
absl::Status ValidatePath(std::string_view path);

}  // namespace tessera::spiffe

template <>
struct std::hash<tessera::spiffe::TrustDomain> {
  size_t operator()(const tessera::spiffe::TrustDomain& td) const {
    return std::hash<std::string>()(td.name());
  }
};
template <>
struct std::hash<tessera::spiffe::SpiffeId> {
  size_t operator()(const tessera::spiffe::SpiffeId& id) const {
    return std::hash<std::string>()(id.str());
  }
};
