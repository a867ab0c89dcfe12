#include "server/api/credentials.h"

#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace tessera::server {

std::shared_ptr<grpc::ServerCredentials> ServerTlsCredentials(const TlsFiles& files) {
  // Re-read every second (the provider's minimum): a rotated SVID is served within a second.
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key_path().string(), files.chain_path().string(), files.roots_path().string(),
      /*refresh_interval_sec=*/1);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  // Without watching the roots every client that presents a certificate fails the handshake.
  options.watch_root_certs();
  // Request but do not require a client certificate; a presented one must verify. (Never the
  // _BUT_DONT_VERIFY variant: it accepts any CA and still reports the peer as authenticated.)
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace tessera::server
