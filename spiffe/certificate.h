// Certificate: an immutable handle over a reference-counted X509, plus DER/PEM chain encodings.
// Cheap to copy, safe to share between threads.
//
// With OpenSSL 3.0, decoding a certificate's public key costs far more than the rest of parsing
// it, so FromDer (and the X509-SVID builder) keep the common EC keys in the X509 as a legacy
// (EC_KEY) copy made without OpenSSL's decoder (see x509_internal.h), and public_key() then
// answers with the equivalent provider key, on which every EVP call works.
#pragma once

#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "spiffe/key.h"

namespace tessera::spiffe {

namespace internal {
class CertificateAccess;  // x509_internal.h
}  // namespace internal

class Certificate {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  static absl::StatusOr<Certificate> FromDer(std::string_view der);
  // Exactly one "CERTIFICATE" PEM block.
  static absl::StatusOr<Certificate> FromPem(std::string_view pem);
  // Takes one reference of `x509` (the caller keeps its own).
  static Certificate FromX509(X509* x509);

  std::string ToDer() const;
  std::string ToPem() const;

  PublicKey public_key() const;
  // Every URI SAN, of any scheme, in certificate order.
  std::vector<std::string> UriSans() const;
  std::vector<std::string> DnsSans() const;
  // basicConstraints cA=TRUE.
  bool IsCa() const;
  TimePoint NotBefore() const;
  TimePoint NotAfter() const;
  // Serial number as lower-case hex without leading zeros (as SPIRE stores it: decimal is
  // available through SerialDecimal()).
  std::string SerialHex() const;
  std::string SerialDecimal() const;
  // Raw key identifier bytes; empty when the extension is absent.
  std::string SubjectKeyId() const;
  std::string AuthorityKeyId() const;
  // RFC 2253 one-line subject, for messages.
  std::string SubjectString() const;

  X509* get() const { return x509_.get(); }

  // Same DER bytes.
  friend bool operator==(const Certificate& a, const Certificate& b);

 private:
  friend class internal::CertificateAccess;

  explicit Certificate(std::shared_ptr<X509> x509,
                       std::optional<PublicKey> public_key = std::nullopt)
      : x509_(std::move(x509)), public_key_(std::move(public_key)) {}

  std::shared_ptr<X509> x509_;
  // Set when x509_ holds its subject key as a legacy copy: the same key as a provider key (the
  // legacy form lacks some of OpenSSL 3.0's parameter getters, e.g. the EC coordinates).
  std::optional<PublicKey> public_key_;
};

// Concatenated DER certificates (Workload API encoding), at least one.
absl::StatusOr<std::vector<Certificate>> ParseDerChain(std::string_view der);
// One or more "CERTIFICATE" PEM blocks; text outside blocks is ignored, other block types are
// an error.
absl::StatusOr<std::vector<Certificate>> ParsePemChain(std::string_view pem);
std::string ChainToDer(std::span<const Certificate> chain);
std::string ChainToPem(std::span<const Certificate> chain);

}  // namespace tessera::spiffe
