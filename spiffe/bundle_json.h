// JSON encodings of bundles (SPIFFE-FACTS §3):
//  - the SPIFFE bundle: a JWK Set whose keys carry "use" ("x509-svid" with one "x5c" CA
//    certificate, or "jwt-svid" with a "kid"), plus "spiffe_sequence" and
//    "spiffe_refresh_hint"; served by bundle endpoints and used for federation;
//  - the Workload API JWT bundle: a plain RFC 7517 JWK Set of JWT authorities with "kid" and no
//    "use" or "spiffe_*" members (as SPIRE writes it);
//  - the bundle map {"trust_domains": {"<name>": <SPIFFE bundle>, ...}}.
// A bundle document names no trust domain: callers say which one it belongs to.
//
// Parsing treats its input as untrusted: size and nesting are bounded, duplicate JSON members
// are rejected, every failure is InvalidArgument with the offending member named. Thread-safe
// (stateless).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "spiffe/bundle.h"
#include "spiffe/id.h"

namespace tessera::spiffe {

// Largest bundle document accepted (a bundle holds a handful of keys; this is generous).
inline constexpr size_t kMaxBundleJsonBytes = 1 << 20;
// Deepest array/object nesting accepted; a bundle needs 4 (bundle map 6), the rest is room for
// unknown members.
inline constexpr int kMaxBundleJsonDepth = 16;

// SPIFFE bundle. Entries with an unknown "kty", a missing or unknown "use", or (x509-svid) a
// missing or empty "x5c" are skipped; an x509-svid entry with several certificates, a jwt-svid
// entry without "kid", a repeated "kid" and malformed members are errors.
absl::StatusOr<Bundle> ParseSpiffeBundle(const TrustDomain& trust_domain, std::string_view json);
absl::StatusOr<Bundle> SpiffeBundleFromJson(const TrustDomain& trust_domain,
                                            const nlohmann::json& doc);
// Fails only for a key that has no JWK form (e.g. an Ed25519 CA).
absl::StatusOr<std::string> SpiffeBundleToJson(const Bundle& bundle);
absl::StatusOr<nlohmann::json> SpiffeBundleToJsonValue(const Bundle& bundle,
                                                       bool include_refresh_hint = true);

// Workload API JWT bundle. Keys with an unknown "kty", or a "use" other than "jwt-svid", are
// skipped; every other key needs a non-empty unique "kid". X.509 authorities, sequence and hint
// of `bundle` are not written; the parsed bundle has none.
absl::StatusOr<Bundle> ParseJwtBundleJwks(const TrustDomain& trust_domain, std::string_view json);
absl::StatusOr<std::string> JwtBundleToJwks(const Bundle& bundle);

// Bundle map. Keys are trust-domain names without scheme, parsed strictly; a name given twice is
// an error. Refresh hints inside are dropped when parsing and not written (SPIFFE-FACTS §3: they
// must not steer refreshing).
absl::StatusOr<BundleSet> ParseBundleMap(std::string_view json);
absl::StatusOr<std::string> BundleMapToJson(const BundleSet& bundles);

}  // namespace tessera::spiffe
