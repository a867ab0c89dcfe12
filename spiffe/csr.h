// PKCS#10 certificate signing requests: how a node asks the server for an SVID without the
// private key ever leaving the node. CreateCsr runs where the key lives; ParseCsr runs on the
// server, which checks the request's self-signature (proof of possession) before minting.
// Stateless functions over immutable values: thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "spiffe/id.h"
#include "spiffe/key.h"

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

// A DER CSR signed by `key`, with `id` as its only URI SAN followed by `dns_names`. The subject
// is empty: the issuer decides the certificate's subject.
absl::StatusOr<std::string> CreateCsr(const PrivateKey& key, const SpiffeId& id,
                                      const std::vector<std::string>& dns_names = {});
// The same request as a "CERTIFICATE REQUEST" PEM block.
absl::StatusOr<std::string> CreateCsrPem(const PrivateKey& key, const SpiffeId& id,
                                         const std::vector<std::string>& dns_names = {});
// Accepts DER or PEM ("CERTIFICATE REQUEST" / "NEW CERTIFICATE REQUEST"). A request whose
// signature does not verify, or whose extensions are malformed, is InvalidArgument.
absl::StatusOr<ParsedCsr> ParseCsr(std::string_view der_or_pem);

}  // namespace tessera::spiffe
