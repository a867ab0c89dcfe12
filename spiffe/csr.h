// PKCS#10 certificate signing requests: how a node asks the server for an SVID without the
// private key ever leaving the node. CreateCsr runs where the key lives; ParseCsr runs on the
// server, which checks the request's self-signature (proof of possession) before minting. Servers
// that must tell a malformed request from a forged one use the two halves of ParseCsr instead:
// ParseCsrUnverified, then VerifyCsrSignature. Stateless functions over values: thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "spiffe/id.h"
#include "spiffe/key.h"
#include "spiffe/openssl.h"

namespace tessera::spiffe {

// A CSR whose signature has been verified against the public key it carries.
struct ParsedCsr {
  PublicKey public_key;
  // Every URI SAN of the extension request, of any scheme, in order. It may be empty: SPIRE's
  // agents send CSRs without one and the server takes the identity from its own records.
  std::vector<std::string> uri_sans;
  std::vector<std::string> dns_sans;
  // RFC 2253 one-line subject ("" when empty), for messages.
  std::string subject;
};

// A decoded request whose self-signature has not been checked yet (ParseCsrUnverified). Nothing in
// it may be trusted until VerifyCsrSignature accepts it, hence no accessors. Move-only: it owns
// the decoded request, so that checking the signature does not decode the bytes a second time.
class UnverifiedCsr {
 public:
  UnverifiedCsr(UnverifiedCsr&&) noexcept = default;
  UnverifiedCsr& operator=(UnverifiedCsr&&) noexcept = default;

 private:
  friend absl::StatusOr<UnverifiedCsr> ParseCsrUnverified(std::string_view der_or_pem);
  friend absl::StatusOr<ParsedCsr> VerifyCsrSignature(UnverifiedCsr csr);

  UnverifiedCsr(X509ReqPtr request, ParsedCsr claims)
      : request_(std::move(request)), claims_(std::move(claims)) {}

  X509ReqPtr request_;
  ParsedCsr claims_;
};

// A DER CSR signed by `key`, with `id` as its only URI SAN followed by `dns_names`. The subject
// is empty: the issuer decides the certificate's subject.
absl::StatusOr<std::string> CreateCsr(const PrivateKey& key, const SpiffeId& id,
                                      const std::vector<std::string>& dns_names = {});
// The same request as a "CERTIFICATE REQUEST" PEM block.
absl::StatusOr<std::string> CreateCsrPem(const PrivateKey& key, const SpiffeId& id,
                                         const std::vector<std::string>& dns_names = {});
// Accepts DER or PEM ("CERTIFICATE REQUEST" / "NEW CERTIFICATE REQUEST"). Every failure is
// InvalidArgument with a message starting "parse CSR": bytes that are not a request, malformed
// extensions, and a signature that does not verify ("parse CSR: signature does not verify",
// checked before the extensions are read). For callers that need not tell these apart.
absl::StatusOr<ParsedCsr> ParseCsr(std::string_view der_or_pem);

// The first half of ParseCsr, in the order Go's x509.ParseCertificateRequest (and so SPIRE) works:
// decodes the request (DER or PEM) and reads its extensions, but does not check the signature.
// Every failure means the bytes are not a well-formed request: InvalidArgument, with the same
// messages as ParseCsr's ("parse CSR: ...", or "parse CSR PEM: ..." for PEM that does not decode).
absl::StatusOr<UnverifiedCsr> ParseCsrUnverified(std::string_view der_or_pem);

// The second half: the request's proof of possession (its self-signature under the public key it
// carries, which also fails for a signature algorithm OpenSSL cannot check). Its only failure is
// InvalidArgument "CSR signature does not verify", so any non-OK status means a forged or broken
// signature, never a malformed request.
absl::StatusOr<ParsedCsr> VerifyCsrSignature(UnverifiedCsr csr);

}  // namespace tessera::spiffe
