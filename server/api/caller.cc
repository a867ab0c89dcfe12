#include "server/api/caller.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "grpc/grpc_security_constants.h"

namespace tessera::server {
namespace {

std::string Property(const grpc::AuthContext& auth, const char* name) {
  std::vector<grpc::string_ref> values = auth.FindPropertyValues(name);
  if (values.empty()) return "";
  return std::string(values.front().data(), values.front().size());
}

}  // namespace

absl::StatusOr<Caller> IdentifyCaller(const grpc::ServerContextBase& context,
                                      const spiffe::X509AuthoritiesSource& bundles,
                                      std::chrono::system_clock::time_point now) {
  Caller caller;
  if (context.peer().starts_with("unix:")) {
    caller.local = true;
    return caller;
  }
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return caller;
  // The leaf is x509_pem_cert. The chain property's order and content (with or without the
  // leaf, with or without the anchor gRPC verified against) vary, so it only contributes the
  // other certificates, as untrusted intermediates for our own verification.
  std::string leaf_pem = Property(*auth, GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (leaf_pem.empty()) return caller;  // no client certificate: fine for AttestAgent, GetBundle
  ASSIGN_OR_RETURN(
      spiffe::Certificate leaf, spiffe::Certificate::FromPem(leaf_pem),
      absl::UnauthenticatedError(absl::StrCat("client certificate is malformed: ", _.message())));
  caller.chain.push_back(leaf);
  std::string chain_pem = Property(*auth, GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME);
  if (!chain_pem.empty()) {
    ASSIGN_OR_RETURN(std::vector<spiffe::Certificate> chain, spiffe::ParsePemChain(chain_pem),
                     absl::UnauthenticatedError(
                         absl::StrCat("client certificate chain is malformed: ", _.message())));
    for (spiffe::Certificate& cert : chain) {
      if (!(cert == leaf)) caller.chain.push_back(std::move(cert));
    }
  }
  std::vector<std::string> uris = caller.chain.front().UriSans();
  if (uris.empty()) return absl::UnauthenticatedError("client certificate has no URI SAN");
  if (uris.size() > 1) {
    return absl::UnauthenticatedError("client certificate has more than one URI SAN");
  }
  if (absl::StatusOr<spiffe::SpiffeId> id = spiffe::SpiffeId::Parse(uris[0]); !id.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("client certificate has a malformed URI SAN: ", id.status().message()));
  }
  ASSIGN_OR_RETURN(spiffe::VerifiedX509Svid verified,
                   spiffe::VerifyX509Svid(caller.chain, bundles, now));
  caller.id = std::move(verified.id);
  return caller;
}

}  // namespace tessera::server
