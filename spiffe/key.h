// Asymmetric keys for SVIDs and CAs: EC P-256 (default), EC P-384, RSA 2048/4096.
//
// PrivateKey and PublicKey are immutable handles over a reference-counted EVP_PKEY: cheap to
// copy and safe to share between threads. Private key material is never logged: these types
// have no operator<< and no debug string.
#pragma once

#include <openssl/evp.h>

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "spiffe/openssl.h"

namespace tessera::spiffe {

enum class KeyType { kEcP256, kEcP384, kRsa2048, kRsa4096 };

// Config spelling: "ec-p256", "ec-p384", "rsa-2048", "rsa-4096".
absl::StatusOr<KeyType> ParseKeyType(std::string_view name);
std::string_view KeyTypeName(KeyType type);
// For test output (GoogleTest finds it by argument-dependent lookup): the config spelling.
void PrintTo(KeyType type, std::ostream* os);

enum class Digest { kSha256, kSha384, kSha512 };
// How an RSA key signs; ignored for EC keys.
enum class RsaPadding { kPkcs1v15, kPss };

class PublicKey {
 public:
  // SubjectPublicKeyInfo, DER or PEM ("PUBLIC KEY").
  static absl::StatusOr<PublicKey> FromDer(std::string_view spki_der);
  static absl::StatusOr<PublicKey> FromPem(std::string_view pem);
  // Takes one reference of `pkey` (the caller keeps its own).
  static PublicKey FromEvp(EVP_PKEY* pkey);

  absl::StatusOr<std::string> ToDer() const;
  absl::StatusOr<std::string> ToPem() const;
  // The key's type, or nullopt for a curve or size Tessera does not issue (still verifiable).
  std::optional<KeyType> type() const;
  bool IsEc() const;
  bool IsRsa() const;
  bool Equals(const PublicKey& other) const;

  // Verifies `signature` over `data`. EC signatures are DER ECDSA-Sig-Value; RSA uses `padding`
  // (PSS with salt length = digest length). Returns InvalidArgument when it does not verify.
  absl::Status Verify(std::string_view data, std::string_view signature, Digest digest,
                      RsaPadding padding = RsaPadding::kPkcs1v15) const;

  EVP_PKEY* get() const { return key_.get(); }

 private:
  explicit PublicKey(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {}
  std::shared_ptr<EVP_PKEY> key_;
};

class PrivateKey {
 public:
  // A fresh key from OpenSSL's CSPRNG.
  static absl::StatusOr<PrivateKey> Generate(KeyType type);
  // Unencrypted PKCS#8 DER, as the Workload API carries it.
  static absl::StatusOr<PrivateKey> FromPkcs8Der(std::string_view der);
  // PEM: "PRIVATE KEY" (PKCS#8), also "EC PRIVATE KEY" / "RSA PRIVATE KEY". Unencrypted only.
  static absl::StatusOr<PrivateKey> FromPem(std::string_view pem);
  // Takes one reference of `pkey` (the caller keeps its own).
  static PrivateKey FromEvp(EVP_PKEY* pkey);

  absl::StatusOr<std::string> ToPkcs8Der() const;
  absl::StatusOr<std::string> ToPkcs8Pem() const;

  PublicKey public_key() const;
  std::optional<KeyType> type() const;

  // Signs `data` (hashing it with `digest`). EC signatures come out as DER ECDSA-Sig-Value.
  absl::StatusOr<std::string> Sign(std::string_view data, Digest digest,
                                   RsaPadding padding = RsaPadding::kPkcs1v15) const;

  EVP_PKEY* get() const { return key_.get(); }

 private:
  explicit PrivateKey(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {}
  std::shared_ptr<EVP_PKEY> key_;
};

}  // namespace tessera::spiffe
