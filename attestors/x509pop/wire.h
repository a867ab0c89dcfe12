// The JSON documents the x509pop halves exchange, encoded and decoded exactly as SPIRE's Go
// structs are by encoding/json (SPIRE-API-FACTS §5): []byte is standard padded base64, an absent
// alternative is null, and decoding matches member names case-insensitively (with Go's folding,
// so "ſ" matches "s") and accepts a missing member or null for any field. Unknown members are
// ignored, as Go does. Stricter than Go in two ways that no Go encoder can trip: two members
// naming the same field are rejected rather than "last one wins", and base64 must be canonical.
// Stateless functions: thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::attestors::x509pop {

// Bounds for untrusted documents: far above the largest legitimate payload (a handful of
// certificates) while keeping a hostile one cheap to reject.
inline constexpr size_t kMaxDocumentBytes = 1 << 20;

// {"certificates":["<b64 DER>", ...]}: leaf first. A null element decodes as "".
struct AttestationData {
  std::vector<std::string> certificates;
};

// {"nonce":"<b64>"} inside either alternative of a challenge.
struct SignatureChallenge {
  std::string nonce;
};

// {"rsa_signature":{...}|null,"ecdsa_signature":{...}|null}.
struct Challenge {
  std::optional<SignatureChallenge> rsa_signature;
  std::optional<SignatureChallenge> ecdsa_signature;
};

struct RsaSignatureResponse {
  std::string nonce;
  std::string signature;
};

struct EcdsaSignatureResponse {
  std::string nonce;
  std::string r;  // unsigned big-endian
  std::string s;
};

struct Response {
  std::optional<RsaSignatureResponse> rsa_signature;
  std::optional<EcdsaSignatureResponse> ecdsa_signature;
};

std::string EncodeAttestationData(const AttestationData& data);
std::string EncodeChallenge(const Challenge& challenge);
std::string EncodeResponse(const Response& response);

// InvalidArgument with a message saying what is wrong (without SPIRE's "failed to unmarshal
// data: " style prefix, which the caller adds).
absl::StatusOr<AttestationData> DecodeAttestationData(std::string_view json);
absl::StatusOr<Challenge> DecodeChallenge(std::string_view json);
absl::StatusOr<Response> DecodeResponse(std::string_view json);

}  // namespace tessera::attestors::x509pop
