// Helpers shared by the CSR and certificate builders (csr.cc, x509_svid.cc); not a public API.
// Thread-safe: stateless, except for the per-curve template keys behind the EC helpers, which are
// made once and never change.
#pragma once

#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "spiffe/certificate.h"
#include "spiffe/key.h"
#include "spiffe/openssl.h"

namespace tessera::spiffe::internal {

// The digest a signer uses for certificates and CSRs, matched to its key strength the way Go's
// crypto/x509 chooses it: SHA-384 for P-384, SHA-512 for larger curves, SHA-256 otherwise;
// nullptr for EdDSA (which hashes internally).
inline const EVP_MD* SignatureMd(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) return nullptr;
  if (EVP_PKEY_is_a(key, "EC")) {
    int bits = EVP_PKEY_get_bits(key);
    if (bits > 384) return EVP_sha512();
    if (bits > 256) return EVP_sha384();
  }
  return EVP_sha256();
}

// OpenSSL 3.0 spends most of an X509-SVID's cost outside the signature: every SubjectPublicKeyInfo
// it decodes or encodes goes through a freshly set up OSSL_DECODER/OSSL_ENCODER context. These
// helpers (in openssl.cc) cover the keys Tessera issues and sees nearly always, EC P-256 and P-384
// with an uncompressed point and a named curve, without either; for anything else they give
// nullptr and the caller takes OpenSSL's general path, which then decides as it always did.

// The public key of `spki` when it is id-ecPublicKey on the named curve P-256 or P-384 with an
// uncompressed point that lies on the curve: the same key (same parameters, same point, same
// encodings) that OpenSSL's SubjectPublicKeyInfo decoder makes of those bytes, which accepts such
// a key under exactly these conditions. nullptr otherwise, possibly leaving errors on the queue.
EvpPkeyPtr DecodeEcSpki(const X509_PUBKEY* spki);

// DecodeEcSpki's key and the legacy copy LegacyEcPublicKey would make of it (made from the same
// point, without asking the key for it); both nullptr when DecodeEcSpki would give nullptr.
struct EcSpkiKeys {
  EvpPkeyPtr key;
  EvpPkeyPtr legacy;
};
EcSpkiKeys DecodeEcSpkiWithLegacyCopy(const X509_PUBKEY* spki);

// For X509_set_pubkey: a copy of the public half of `key` held in OpenSSL's legacy (EC_KEY) form,
// which X509_set_pubkey encodes directly instead of through an encoder and a decoder. Only for a
// provider EC P-256/P-384 key with a named curve whose point is kept uncompressed; the
// SubjectPublicKeyInfo that X509_set_pubkey writes for the copy is byte for byte the one it
// writes for `key`. nullptr for any other key, possibly leaving errors on the queue.
EvpPkeyPtr LegacyEcPublicKey(EVP_PKEY* key);

// Makes Certificates whose X509 holds its subject key as the legacy copy LegacyEcPublicKey made.
class CertificateAccess {
 public:
  // Takes one reference of `x509`; `key` is the provider key the legacy copy in its
  // subjectPublicKeyInfo was made from, which Certificate::public_key() then returns.
  static Certificate WithLegacyKeyOf(X509* x509, PublicKey key) {
    X509_up_ref(x509);
    return Certificate(std::shared_ptr<X509>(x509, X509_free), std::move(key));
  }
};

// A DNS name we are willing to put into a certificate: non-empty, printable ASCII, no spaces.
inline absl::Status ValidateDnsName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("DNS name is empty");
  if (name.size() > 253) {
    return absl::InvalidArgumentError(absl::StrCat("DNS name \"", name, "\" is too long"));
  }
  for (char c : name) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(
          absl::StrCat("DNS name \"", name, "\" has a character that is not allowed"));
    }
  }
  return absl::OkStatus();
}

// A subjectAltName value holding the URIs, then the DNS names, in order.
inline absl::StatusOr<GeneralNamesPtr> BuildSans(const std::vector<std::string>& uris,
                                                 const std::vector<std::string>& dns_names) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr) return OpenSslError("build SAN", absl::StatusCode::kInternal);
  auto add = [&](int type, const std::string& value) -> absl::Status {
    GENERAL_NAME* name = GENERAL_NAME_new();
    ASN1_IA5STRING* str = ASN1_IA5STRING_new();
    if (name == nullptr || str == nullptr ||
        ASN1_STRING_set(str, value.data(), static_cast<int>(value.size())) != 1) {
      GENERAL_NAME_free(name);
      ASN1_IA5STRING_free(str);
      return OpenSslError("build SAN", absl::StatusCode::kInternal);
    }
    GENERAL_NAME_set0_value(name, type, str);
    if (sk_GENERAL_NAME_push(names.get(), name) <= 0) {
      GENERAL_NAME_free(name);
      return OpenSslError("build SAN", absl::StatusCode::kInternal);
    }
    return absl::OkStatus();
  };
  for (const std::string& uri : uris) {
    absl::Status s = add(GEN_URI, uri);
    if (!s.ok()) return s;
  }
  for (const std::string& dns : dns_names) {
    absl::Status s = add(GEN_DNS, dns);
    if (!s.ok()) return s;
  }
  return names;
}

}  // namespace tessera::spiffe::internal
