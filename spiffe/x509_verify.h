// Checking X509-SVIDs: authenticating a chain a peer presents (VerifyX509Svid, the verifier steps
// of SPIFFE-FACTS §2) and loading an SVID we hold together with its key (ParseX509Svid, as the
// Workload API delivers it). Also the bare RFC 5280 path validation under both
// (VerifyChainToRoots), for callers that authenticate X.509 chains other than SVIDs. Stateless
// functions over immutable values: thread-safe, provided the authorities source is.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"
#include "spiffe/key.h"

namespace tessera::spiffe {

// Why OpenSSL's path validation rejected a chain, for each caller to word its own message.
struct ChainRejection {
  // OpenSSL's X509_V_ERR_* code, e.g. X509_V_ERR_CERT_HAS_EXPIRED.
  int error = 0;
  // OpenSSL's text for `error`, e.g. "certificate has expired".
  std::string reason;
  // Which certificate of the path being built the error concerns: 0 is the leaf. OpenSSL checks
  // validity periods from the anchor down, so when several certificates have expired this is
  // the one nearest the anchor.
  int depth = 0;
};

// The verdict of VerifyChainToRoots: exactly one of `path` (non-empty) and `rejection` is set.
struct ChainVerification {
  // Leaf first, ending with the root the path was validated to.
  std::vector<Certificate> path;
  std::optional<ChainRejection> rejection;

  bool verified() const { return !rejection.has_value(); }
};

// RFC 5280 path validation (OpenSSL) of chain[0] at `now`, with chain[1..] as the untrusted
// intermediates and every one of `roots` as a trust anchor, self-signed or not (like Go's x509
// root pool: a root set may pin an intermediate). No purpose is set, so extKeyUsage is not
// checked. A leaf that is itself one of `roots` verifies, with a path of one certificate.
// A chain that does not validate is an OK status holding a rejection; a non-OK status means no
// verdict was reached: InvalidArgument for an empty chain or a null certificate, Internal when
// OpenSSL fails to allocate.
absl::StatusOr<ChainVerification> VerifyChainToRoots(std::span<const Certificate> chain,
                                                     std::span<const Certificate> roots,
                                                     std::chrono::system_clock::time_point now);

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
//  5. VerifyChainToRoots with those authorities as the roots (so every authority is an anchor,
//     as with the Go roots go-spiffe uses, and extKeyUsage is not enforced, as in go-spiffe),
//     except that the leaf itself is never accepted as its own anchor.
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
