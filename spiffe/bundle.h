// Trust bundles: the X.509 and JWT authorities of one trust domain (Bundle), and the bundles of
// every trust domain a component trusts (BundleSet), plus the PEM and DER encodings of X.509
// authorities. JSON encodings live in spiffe/bundle_json.h.
//
// Bundle and BundleSet are plain value types: copyable, comparable, not internally synchronized.
// Readers on several threads share an immutable snapshot (std::shared_ptr<const BundleSet>);
// const methods are safe to call concurrently on an object nobody mutates. Copies are cheap-ish:
// certificates and keys are reference-counted handles.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"
#include "spiffe/key.h"

namespace tessera::spiffe {

// JWT authorities of one trust domain, by key ID.
using JwtAuthorities = std::map<std::string, PublicKey, std::less<>>;

// Where JWT-SVID validation finds signing keys. Implemented by BundleSet; tests and callers
// holding keys elsewhere can implement it directly.
class JwtAuthoritySource {
 public:
  virtual ~JwtAuthoritySource() = default;
  // The JWT authorities of exactly `trust_domain` (never of another one), or nullptr when there
  // is no bundle for it. The pointer stays valid while the source is not modified.
  virtual const JwtAuthorities* JwtAuthoritiesFor(const TrustDomain& trust_domain) const = 0;
};

class Bundle {
 public:
  explicit Bundle(TrustDomain trust_domain) : trust_domain_(std::move(trust_domain)) {}

  const TrustDomain& trust_domain() const { return trust_domain_; }

  // CA certificates that anchor X509-SVID validation, in insertion order, no duplicates.
  const std::vector<Certificate>& x509_authorities() const { return x509_authorities_; }
  // Adds `cert` unless the same certificate (same DER) is already there; returns whether it was
  // added.
  bool AddX509Authority(const Certificate& cert);
  bool RemoveX509Authority(const Certificate& cert);
  bool HasX509Authority(const Certificate& cert) const;
  // Replaces every X.509 authority (dropping duplicates).
  void SetX509Authorities(const std::vector<Certificate>& certs);

  const JwtAuthorities& jwt_authorities() const { return jwt_authorities_; }
  // InvalidArgument for an empty key ID; AlreadyExists when `key_id` already names a different
  // key (adding the same key again is a no-op). Replace a key with Remove then Add.
  absl::Status AddJwtAuthority(std::string key_id, PublicKey key);
  bool RemoveJwtAuthority(std::string_view key_id);
  // nullptr when there is no key with this ID.
  const PublicKey* FindJwtAuthority(std::string_view key_id) const;

  // "spiffe_sequence": orders bundles of one trust domain; absent when the source had none.
  std::optional<uint64_t> sequence_number() const { return sequence_number_; }
  void set_sequence_number(std::optional<uint64_t> n) { sequence_number_ = n; }
  // "spiffe_refresh_hint": how often a federated bundle should be re-fetched.
  std::optional<std::chrono::seconds> refresh_hint() const { return refresh_hint_; }
  void set_refresh_hint(std::optional<std::chrono::seconds> hint) { refresh_hint_ = hint; }

  // No authorities of either kind: every SVID of this trust domain is then untrusted.
  bool empty() const { return x509_authorities_.empty() && jwt_authorities_.empty(); }

  // Same trust domain, same certificates in the same order, same key IDs naming equal keys, same
  // sequence number and refresh hint.
  friend bool operator==(const Bundle& a, const Bundle& b);

 private:
  TrustDomain trust_domain_;
  std::vector<Certificate> x509_authorities_;
  JwtAuthorities jwt_authorities_;
  std::optional<uint64_t> sequence_number_;
  std::optional<std::chrono::seconds> refresh_hint_;
};

// One bundle per trust domain. Lookups take a trust domain and answer from that domain's bundle
// only: bundles are never merged (SPIFFE-FACTS §7.2).
class BundleSet final : public JwtAuthoritySource {
 public:
  using Map = std::map<TrustDomain, Bundle>;

  BundleSet() = default;

  // Inserts or replaces the bundle of bundle.trust_domain().
  void Put(Bundle bundle);
  bool Remove(const TrustDomain& trust_domain);
  // nullptr when there is no bundle for `trust_domain`.
  const Bundle* Find(const TrustDomain& trust_domain) const;

  // nullptr when there is no bundle for `trust_domain`.
  const std::vector<Certificate>* X509AuthoritiesFor(const TrustDomain& trust_domain) const;
  const JwtAuthorities* JwtAuthoritiesFor(const TrustDomain& trust_domain) const override;
  // nullptr when there is no bundle for `trust_domain` or it has no key `key_id`.
  const PublicKey* FindJwtAuthority(const TrustDomain& trust_domain, std::string_view key_id) const;

  const Map& bundles() const { return bundles_; }
  size_t size() const { return bundles_.size(); }
  bool empty() const { return bundles_.empty(); }
  Map::const_iterator begin() const { return bundles_.begin(); }
  Map::const_iterator end() const { return bundles_.end(); }

  friend bool operator==(const BundleSet& a, const BundleSet& b) {
    return a.bundles_ == b.bundles_;
  }

 private:
  Map bundles_;
};

// X.509 authorities as concatenated "CERTIFICATE" PEM blocks (trust-bundle files, CLI output).
// Parsing needs at least one certificate; the result has no JWT authorities, sequence or hint.
absl::StatusOr<Bundle> BundleFromX509Pem(const TrustDomain& trust_domain, std::string_view pem);
std::string X509AuthoritiesToPem(const Bundle& bundle);

// X.509 authorities as concatenated DER certificates (Workload API X509BundlesResponse and
// X509SVID.bundle). Parsing needs at least one certificate.
absl::StatusOr<Bundle> BundleFromX509Der(const TrustDomain& trust_domain, std::string_view der);
std::string X509AuthoritiesToDer(const Bundle& bundle);

}  // namespace tessera::spiffe
