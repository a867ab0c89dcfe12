// Helpers shared by the CSR and certificate builders (csr.cc, x509_svid.cc); not a public API.
// Stateless and thread-safe.
#pragma once

#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509v3.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
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
