// gRPC channel credentials for talking to a SPIFFE-authenticated server (an agent to
// tessera-server or spire-server, a CLI to a remote server): TLS whose server certificate must
// chain to the given trust bundle and carry exactly one URI SAN equal to the expected SPIFFE ID.
// There is no DNS name to check, so gRPC's hostname check is turned off and the SPIFFE ID check
// replaces it. Optionally presents the caller's own X509-SVID as the client certificate.
//
// The credentials capture the material given; when the SVID or bundle changes, build new
// credentials and a new channel. Thread-safe (immutable after creation).
#pragma once

#include <memory>
#include <optional>
#include <span>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"
#include "spiffe/key.h"

namespace tessera::spiffe {

struct ClientIdentity {
  PrivateKey key;
  std::vector<Certificate> chain;  // leaf first
};

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> SpiffeTlsChannelCredentials(
    std::span<const Certificate> trust_bundle, const SpiffeId& expected_server_id,
    const std::optional<ClientIdentity>& identity = std::nullopt);

// The check the credentials run on the server's leaf: exactly one URI SAN, equal to `expected`.
// Exposed for tests and for callers that verify a peer themselves.
absl::Status CheckPeerUriSans(const std::vector<std::string>& uri_sans, const SpiffeId& expected);

}  // namespace tessera::spiffe
