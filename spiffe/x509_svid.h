// Building X509-SVIDs and the CA certificates that sign them, with the certificate profile of
// the X509-SVID standard (SPIFFE-FACTS §2) and SPIRE's defaults:
//   leaf: basicConstraints critical cA=false; keyUsage critical digitalSignature|keyEncipherment|
//         keyAgreement; extKeyUsage serverAuth+clientAuth; exactly one URI SAN (the SPIFFE ID)
//         then the DNS SANs; SKI; AKI = issuer's SKI.
//   CA:   basicConstraints critical cA=true (optional pathLen); keyUsage critical
//         keyCertSign|cRLSign; URI SAN = the trust-domain ID; SKI; AKI.
// Serial numbers are 128 random bits. A certificate never outlives its issuer: the requested
// not_after is capped at the issuer's. Times are system_clock time points, so a FakeClock can
// drive every caller. Stateless functions over immutable values: thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"
#include "spiffe/key.h"

namespace tessera::spiffe {

// Callers set not_before = now - kBackdate, so that a peer whose clock runs slightly behind
// still accepts a certificate minted this instant.
inline constexpr std::chrono::seconds kBackdate{10};
inline constexpr std::chrono::hours kDefaultLeafTtl{1};
inline constexpr std::chrono::hours kDefaultCaTtl{24};

// An X.500 name as (attribute, value) pairs in order; attributes by OpenSSL short name: "C",
// "O", "OU", "CN", "serialNumber", "x500UniqueIdentifier", ...
using DistinguishedName = std::vector<std::pair<std::string, std::string>>;

// C=US, O=SPIRE (SPIRE's default for X509-SVIDs).
DistinguishedName DefaultLeafSubject();
// C=US, O=SPIFFE (SPIRE's default for its CAs).
DistinguishedName DefaultCaSubject();

struct CaTemplate {
  PublicKey public_key;
  // The CA's URI SAN is this trust domain's ID (no path).
  TrustDomain trust_domain;
  DistinguishedName subject = DefaultCaSubject();
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
  // basicConstraints pathLenConstraint; nullopt leaves the depth below this CA unlimited.
  std::optional<int> max_path_len;
};

struct LeafTemplate {
  PublicKey public_key;
  // Must have a non-root path.
  SpiffeId spiffe_id;
  std::vector<std::string> dns_names;
  // When there are DNS names and the subject has no CN, CN = dns_names[0] is appended (if it
  // fits the 64-character limit of a CN). An empty subject makes the SAN extension critical
  // (RFC 5280 §4.2.1.6).
  DistinguishedName subject = DefaultLeafSubject();
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
};

// A root CA: `key` signs its own template (its public key must be tmpl.public_key).
absl::StatusOr<Certificate> SignSelfSignedCa(const CaTemplate& tmpl, const PrivateKey& key);
// An intermediate CA signed by `issuer` (a CA certificate whose key is `issuer_key`).
absl::StatusOr<Certificate> SignIntermediateCa(const CaTemplate& tmpl, const Certificate& issuer,
                                               const PrivateKey& issuer_key);
// An X509-SVID signed by `issuer` (a CA certificate whose key is `issuer_key`).
absl::StatusOr<Certificate> SignLeaf(const LeafTemplate& tmpl, const Certificate& issuer,
                                     const PrivateKey& issuer_key);

}  // namespace tessera::spiffe
