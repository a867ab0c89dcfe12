// The server's TLS credentials: its own SVID and the trusted roots come from TlsFiles and are
// re-read by gRPC every second, so rotating the server SVID or the bundle needs no restart. A
// client certificate is requested and, when sent, verified against the roots; a client without
// one still connects (AttestAgent), and IdentifyCaller decides per RPC.
#pragma once

#include <memory>

#include "grpcpp/security/server_credentials.h"
#include "server/api/tls_files.h"

namespace tessera::server {

// `files` must have been published at least once before the first handshake.
std::shared_ptr<grpc::ServerCredentials> ServerTlsCredentials(const TlsFiles& files);

}  // namespace tessera::server
