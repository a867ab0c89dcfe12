// Base64 (RFC 4648 §4, padded: JWK "x5c") and base64url without padding (§5: JWS, JWK members).
//
// The decoders are strict, because their input is untrusted and a token or bundle must have
// exactly one spelling: no whitespace, no characters of the other alphabet, padding exactly as
// the variant requires, and unused trailing bits zero. Thread-safe (stateless).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace tessera::spiffe {

std::string Base64Encode(std::string_view data);
absl::StatusOr<std::string> Base64Decode(std::string_view text);

std::string Base64UrlEncode(std::string_view data);
absl::StatusOr<std::string> Base64UrlDecode(std::string_view text);

}  // namespace tessera::spiffe
