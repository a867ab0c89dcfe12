// Public keys as JSON Web Keys (RFC 7517/7518): EC P-256/P-384/P-521 ("crv", "x", "y") and RSA
// ("n", "e"). Only the key parameters are handled here; "use", "kid" and "x5c" belong to the
// bundle format (spiffe/bundle_json.h). Thread-safe (stateless).
#pragma once

#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "spiffe/key.h"

namespace tessera::spiffe {

// Whether PublicKeyFromJwk understands this "kty" ("EC", "RSA"); bundle entries of any other
// type are skipped, as the SPIFFE bundle format requires.
bool IsSupportedJwkKeyType(std::string_view kty);

// "P-256", "P-384" or "P-521" for an EC key on that curve; nullopt for anything else.
std::optional<std::string_view> JwkCurveName(const PublicKey& key);

// {"kty":"EC","crv":...,"x":...,"y":...} or {"kty":"RSA","n":...,"e":...}. InvalidArgument for
// other key types and curves.
absl::StatusOr<nlohmann::json> PublicKeyToJwk(const PublicKey& key);

// Reads the key parameters of a JWK object; members other than kty/crv/x/y/n/e are ignored
// except "d": a JWK carrying private key material is rejected. EC coordinates must have the
// curve's full length and the point must lie on the curve; RSA moduli must be 2048 to 8192 bits
// with an odd public exponent of at most 64 bits.
absl::StatusOr<PublicKey> PublicKeyFromJwk(const nlohmann::json& jwk);

}  // namespace tessera::spiffe
