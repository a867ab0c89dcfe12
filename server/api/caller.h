// Who is calling the server API. The server listens on TCP with TLS (agents, remote admins) and
// on a local Unix socket (the CLI and local tooling: every caller there is an admin). On TCP the
// client certificate is optional (AttestAgent has none); when present, gRPC has checked its
// chain against the roots of every trust domain we know, and IdentifyCaller re-verifies it
// against the bundle of the certificate's own trust domain only, so that one federated trust
// domain can never vouch for an identity of another.
// Stateless functions; safe on any gRPC thread.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"
#include "spiffe/x509_verify.h"

namespace tessera::server {

struct Caller {
  // Came in over the local admin socket.
  bool local = false;
  // The verified SPIFFE ID of the client certificate (TCP callers that presented one).
  std::optional<spiffe::SpiffeId> id;
  // The presented chain, leaf first (empty without a client certificate).
  std::vector<spiffe::Certificate> chain;
};

// Reads the caller from the call's peer address and TLS auth context. A client certificate that
// does not verify against its own trust domain's bundle is Unauthenticated, with SPIRE's
// messages ("client certificate has no URI SAN", ...).
absl::StatusOr<Caller> IdentifyCaller(const grpc::ServerContextBase& context,
                                      const spiffe::X509AuthoritiesSource& bundles,
                                      std::chrono::system_clock::time_point now);

}  // namespace tessera::server
