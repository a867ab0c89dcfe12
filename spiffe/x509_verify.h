// Checking X509-SVIDs: authenticating a chain a peer presents (VerifyX509Svid, the verifier steps
// of SPIFFE-FACTS §2) and loading an SVID we hold together with its key (ParseX509Svid, as the
// Workload API delivers it). Stateless functions over immutable values: thread-safe, provided
// the authorities source is.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"
#include "spiffe/key.h"

namespace tessera::spiffe {

// The X.509 authorities (trust anchors) of ONE trust domain, or nullopt when no bundle for it is
// known. Kept as a plain function so the verifier does not depend on the bundle classes.
using X509AuthoritiesSource =
    std::function<std::optional<std::vector<Certificate>>(const TrustDomain&)>;

struct VerifiedX509Svid {
  SpiffeId id;
  // Leaf first, ending with the bundle authority the path was validated to.
  std::vector<Certificate> chain;
};

// Authenticates `chain` (leaf first, then untrusted intermediates) at time `now`:
//  1. the chain is non-empty; every certificate after the leaf is a CA;
//  2. the leaf has exactly one URI SAN (of any scheme), a strictly parsed SPIFFE ID with a path;
//  3. the leaf is not a CA; its keyUsage is present, has digitalSignature and has neither
//     keyCertSign nor cRLSign;
//  4. only the leaf's own trust domain's authorities are used (none: "no bundle for trust
//     domain ..."); bundles of several trust domains are never pooled;
//  5. RFC 5280 path validation (OpenSSL) with those authorities as anchors and the presented
//     intermediates as the untrusted pool, at `now`. Every authority is an anchor, whether or
//     not it is self-signed (like Go's x509 roots, which go-spiffe uses): a bundle may pin an
//     intermediate. The leaf itself is never accepted as its own anchor. extKeyUsage is not
//     enforced, as in go-spiffe.
// Authorization (which IDs are acceptable) is the caller's job. Every failure is
// Unauthenticated, with a message naming the rule that failed.
absl::StatusOr<VerifiedX509Svid> VerifyX509Svid(std::span<const Certificate> chain,
                                                const X509AuthoritiesSource& authorities,
                                                std::chrono::system_clock::time_point now);

// Steps 2 and 3 alone: the leaf's SPIFFE ID if the leaf fits the X509-SVID profile
// (InvalidArgument otherwise). For checks where path validation already happened elsewhere.
absl::StatusOr<SpiffeId> ValidateLeafProfile(const Certificate& leaf);

// An X509-SVID we hold: its chain (leaf first) and the leaf's private key.
struct X509Svid {
  SpiffeId id;
  std::vector<Certificate> chain;
  PrivateKey key;
};

// `chain_der`: concatenated DER certificates, leaf first; `key_der`: unencrypted PKCS#8 DER (the
// Workload API encodings). Checks the leaf profile, that every intermediate is a CA with
// keyCertSign, and that the key matches the leaf's public key. Does not check trust or time.
absl::StatusOr<X509Svid> ParseX509Svid(std::string_view chain_der, std::string_view key_der);
// The same from PEM files (certificates, then a private key in any form FromPem reads).
absl::StatusOr<X509Svid> ParseX509SvidPem(std::string_view chain_pem, std::string_view key_pem);

}  // namespace tessera::spiffe
