// JWT-SVIDs (SPIFFE-FACTS §3): signing, and parsing with or without validation.
//
// Tokens are JWS Compact Serialization with the header exactly {"alg","kid","typ":"JWT"}.
// Validation applies the SPIFFE rules, in this order: algorithm allow-list before anything else,
// "typ", non-empty "kid", no other header parameters, required "sub" (a strictly parsed SPIFFE
// ID), "aud" (string or array of strings) and "exp"; then the signing key is looked up among the
// JWT authorities of sub's trust domain only, the key must suit the algorithm, the signature is
// verified, times are checked with kJwtLeeway, and the expected audience must appear in "aud".
// Every rejection is InvalidArgument with a specific message. Thread-safe (stateless).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "spiffe/bundle.h"
#include "spiffe/id.h"
#include "spiffe/key.h"

namespace tessera::spiffe {

// Clock skew tolerated on "exp", "nbf" and "iat".
inline constexpr std::chrono::seconds kJwtLeeway{30};
// Longest token accepted (a JWT-SVID is a few hundred bytes; extra claims make it larger).
inline constexpr size_t kMaxJwtSvidBytes = 64 * 1024;

// The JWS algorithms JWT-SVIDs may use; everything else ("none", HS*, EdDSA, ...) is rejected.
enum class JwtAlgorithm { kRs256, kRs384, kRs512, kEs256, kEs384, kEs512, kPs256, kPs384, kPs512 };

// "RS256", ...
std::string_view JwtAlgorithmName(JwtAlgorithm alg);
// InvalidArgument `unsupported algorithm "HS256"` for anything outside the allow-list.
absl::StatusOr<JwtAlgorithm> ParseJwtAlgorithm(std::string_view name);
// What a key signs with by default: EC P-256 → ES256, P-384 → ES384, P-521 → ES512, RSA →
// RS256.
absl::StatusOr<JwtAlgorithm> DefaultJwtAlgorithm(const PublicKey& key);
// Whether `key` can sign or verify `alg` (ESnnn needs its own curve; RS/PS need RSA).
bool KeyFitsJwtAlgorithm(const PublicKey& key, JwtAlgorithm alg);

struct JwtSvidClaims {
  SpiffeId subject;
  // At least one, none empty. A single audience is written as a JSON string (as SPIRE does).
  std::vector<std::string> audience;
  std::chrono::system_clock::time_point expiry;
  std::optional<std::chrono::system_clock::time_point> issued_at;
  // More claims ("iss", "jti", ...): a JSON object or null; must not set sub, aud, exp or iat.
  nlohmann::json extra = nullptr;
};

// Signs `claims` with `key` under `key_id` (required, becomes "kid"). `algorithm` defaults to
// DefaultJwtAlgorithm of the key; an algorithm the key cannot produce is InvalidArgument.
// Times are written as whole seconds (rounded down).
absl::StatusOr<std::string> SignJwtSvid(const JwtSvidClaims& claims, const PrivateKey& key,
                                        std::string_view key_id,
                                        std::optional<JwtAlgorithm> algorithm = std::nullopt);

struct JwtSvid {
  SpiffeId subject;
  std::vector<std::string> audience;
  // "exp", clamped to the range a system_clock::time_point can represent.
  std::chrono::system_clock::time_point expiry;
  JwtAlgorithm algorithm;
  std::string key_id;
  // Every claim of the payload, as received.
  nlohmann::json claims;
  // The compact token itself.
  std::string token;
};

// Structural parse WITHOUT checking the signature, expiry or audience: for a component reading a
// token it obtained itself (the agent's JWT-SVID cache). Never use the result to authenticate.
absl::StatusOr<JwtSvid> ParseJwtSvidInsecure(std::string_view token);

// Full validation against `authorities` at time `now`. `expected_audience` must not be empty (an
// empty list would skip the check); the token is accepted when any of its values is in "aud".
absl::StatusOr<JwtSvid> ParseAndValidateJwtSvid(std::string_view token,
                                                const JwtAuthoritySource& authorities,
                                                const std::vector<std::string>& expected_audience,
                                                std::chrono::system_clock::time_point now);

}  // namespace tessera::spiffe
