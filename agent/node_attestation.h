// Node attestation, the agent side: proves this node to the server and obtains the agent SVID
// (SPIRE-API-FACTS §5, §6). Works against tessera-server and spire-server alike.
//
// AttestAgent runs over TLS without a client certificate; the server must present
// spiffe://<td>/spire/server chained to the bootstrap bundle. Only with `insecure_bootstrap`
// (SPIRE's option of the same name, for tests and demos) is the chain left unverified: the
// server's leaf must still carry exactly that one URI SAN. The agent key is generated here, in
// memory, and only its CSR leaves the node. After the result, the trust bundle is read with
// GetBundle on the same connection, as spire-agent does, and the new SVID must verify against it.
//
// RenewAgent runs over mTLS with the current agent SVID and returns a new key and SVID.
//
// Stateless functions; safe to call from any thread. Each call opens its own channel.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/state_store.h"
#include "attestors/node_attestor.h"
#include "grpcpp/support/status.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"
#include "spiffe/key.h"
#include "spire/api/types/permissiondenieddetails.pb.h"

namespace tessera::agent {

struct ServerConnection {
  std::string target;  // "host:port"
  spiffe::TrustDomain trust_domain;
  // The roots the server's certificate must chain to.
  std::vector<spiffe::Certificate> bundle;
  // AttestAgent only: do not verify the server's chain (`bundle` is ignored and may be empty);
  // its URI SAN is still checked, and the bundle comes from GetBundle.
  bool insecure_bootstrap = false;
  // Deadline for the whole exchange.
  std::chrono::seconds timeout{30};
  spiffe::KeyType key_type = spiffe::KeyType::kEcP256;
};

// join_token: the token is the payload; the server answers without a challenge.
absl::StatusOr<AgentState> AttestWithJoinToken(const ServerConnection& server,
                                               std::string_view token);
// Any other attestor: its payload, then its response to each challenge.
absl::StatusOr<AgentState> AttestWithAttestor(const ServerConnection& server,
                                              attestors::AgentNodeAttestor& attestor);
// A fresh key and SVID for an attested agent; `current.svid` authenticates the call. The bundle
// is refreshed too; `reattestable` is carried over. Refuses `insecure_bootstrap`.
absl::StatusOr<AgentState> RenewAgentSvid(const ServerConnection& server,
                                          const AgentState& current);

// A gRPC status as an absl::Status "<what>: <message>" with the same code. The typed details of
// a google.rpc.Status in `grpc-status-details-bin` (SPIRE's PermissionDeniedDetails) become
// payloads keyed by their type URL, so callers can ask AgentDeniedReason.
absl::Status StatusFromGrpc(const grpc::Status& status, std::string_view what);

inline constexpr char kPermissionDeniedDetailsUrl[] =
    "type.googleapis.com/spire.api.types.PermissionDeniedDetails";

// Why the server refused the agent (SPIRE-API-FACTS §3): the PermissionDeniedDetails reason of
// a PermissionDenied status made by StatusFromGrpc, or UNKNOWN when it carries none.
spire::api::types::PermissionDeniedDetails::Reason AgentDeniedReason(const absl::Status& status);

}  // namespace tessera::agent
