#include "spiffe/grpc_tls.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace tessera::spiffe {
namespace {

// Runs on gRPC's handshake threads after the chain was verified against the trust bundle: only
// compares strings, never blocks.
class ServerIdVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit ServerIdVerifier(SpiffeId expected) : expected_(std::move(expected)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    std::vector<std::string> uris;
    for (const grpc::string_ref& uri : request->uri_names()) {
      uris.emplace_back(uri.data(), uri.size());
    }
    absl::Status status = CheckPeerUriSans(uris, expected_);
    *sync_status = status.ok() ? grpc::Status::OK
                               : grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                              std::string(status.message()));
    return true;
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  const SpiffeId expected_;
};

}  // namespace

absl::Status CheckPeerUriSans(const std::vector<std::string>& uri_sans, const SpiffeId& expected) {
  if (uri_sans.size() != 1) {
    return absl::UnauthenticatedError(
        absl::StrCat("server certificate must have exactly one URI SAN, it has ", uri_sans.size()));
  }
  if (uri_sans[0] != expected.str()) {
    return absl::UnauthenticatedError(absl::StrCat("server certificate is \"", uri_sans[0],
                                                   "\", expected \"", expected.str(), "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> SpiffeTlsChannelCredentials(
    std::span<const Certificate> trust_bundle, const SpiffeId& expected_server_id,
    const std::optional<ClientIdentity>& identity) {
  if (trust_bundle.empty()) {
    return absl::InvalidArgumentError("spiffe tls: the trust bundle has no X.509 authorities");
  }
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs;
  if (identity.has_value()) {
    if (identity->chain.empty()) {
      return absl::InvalidArgumentError("spiffe tls: client identity has no certificate");
    }
    ASSIGN_OR_RETURN(std::string key_pem, identity->key.ToPkcs8Pem(),
                     Annotate(_, "spiffe tls: client key"));
    pairs.push_back(
        {.private_key = std::move(key_pem), .certificate_chain = ChainToPem(identity->chain)});
  }
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      ChainToPem(trust_bundle), pairs);
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(std::move(provider));
  options.watch_root_certs();
  if (identity.has_value()) options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  // No DNS SAN on a SPIFFE server certificate: without this every call fails with "call host
  // does not match SSL server name". The SPIFFE ID check below takes its place.
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<ServerIdVerifier>(
          expected_server_id));
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::experimental::TlsCredentials(options);
  if (creds == nullptr) return absl::InternalError("spiffe tls: gRPC refused the TLS options");
  return creds;
}

}  // namespace tessera::spiffe
