// The cryptography of x509pop's proof of possession, as SPIRE's common x509pop package defines it:
// both sides contribute a 32-byte nonce, and the node signs combined = SHA-256(challenge nonce ‖
// response nonce) as a prehashed digest — ECDSA (r, s as minimal unsigned big-endian), or
// RSASSA-PSS with SHA-256 and MGF1-SHA-256 (signed with the longest salt, verified with any salt
// length, as Go's crypto/rsa does with nil options). Error messages are SPIRE's. Stateless
// functions: thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "attestors/x509pop/wire.h"
#include "spiffe/certificate.h"
#include "spiffe/key.h"

namespace tessera::attestors::x509pop {

inline constexpr size_t kNonceSize = 32;

// kNonceSize bytes from OpenSSL's CSPRNG.
absl::StatusOr<std::string> NewNonce();

// SHA-256(challenge ‖ response); InvalidArgument "invalid challenge nonce" / "invalid response
// nonce" unless both are kNonceSize bytes.
absl::StatusOr<std::string> CombineNonces(std::string_view challenge, std::string_view response);

// The challenge for `leaf`: InvalidArgument "certificate not intended for digital signature use"
// when its keyUsage extension is missing or lacks digitalSignature, "unsupported public key
// type ..." for a key that is neither RSA nor EC.
absl::StatusOr<Challenge> GenerateChallenge(const spiffe::Certificate& leaf);

// The agent side: signs with a fresh response nonce. "expecting RSA challenge" / "expecting
// ECDSA challenge" when the challenge does not fit the key.
absl::StatusOr<Response> CalculateResponse(const spiffe::PrivateKey& key,
                                           const Challenge& challenge);

// The server side: InvalidArgument with SPIRE's reason ("expecting ECDSA response", "invalid
// response nonce", "ECDSA signature verify failed", ...) unless `response` answers `challenge`
// with the private key of `key`.
absl::Status VerifyResponse(const spiffe::PublicKey& key, const Challenge& challenge,
                            const Response& response);

// Lowercase hex SHA-1 of the certificate's DER: the agent ID's last segment and the
// ca:fingerprint selector value.
absl::StatusOr<std::string> Fingerprint(const spiffe::Certificate& cert);

}  // namespace tessera::attestors::x509pop
