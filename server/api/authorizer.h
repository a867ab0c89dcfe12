// Per-RPC authorization of the server API, in SPIRE's order (SPIRE-API-FACTS §3):
//   1. kAny methods are open (AttestAgent, GetBundle);
//   2. callers on the local admin socket may call admin methods;
//   3. admin methods are open to `admin_ids` and to SPIFFE IDs of entries marked admin;
//   4. downstream methods to SPIFFE IDs of entries marked downstream;
//   5. agent methods to non-local callers whose X509-SVID passes the agent check (attested, not
//      banned, not expired, the serial the server issued last).
// Anything else: PERMISSION_DENIED "authorization denied for method <path>", with the agent
// check's PermissionDeniedDetails when that is why.
//
// Every handler calls Authorize first, with the Access its method needs (services keep one
// table of method → Access, so a forgotten check shows in that table's test).
// Thread-safe: const after construction; the collaborators must be safe for concurrent use.
#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "grpcpp/server_context.h"
#include "server/api/caller.h"
#include "spiffe/id.h"
#include "spiffe/x509_verify.h"

namespace tessera::server {

enum class Access {
  kAny,
  kAdmin,         // local or admin
  kAgent,         // an active agent over mTLS
  kAdminOrAgent,  // GetFederatedBundle
  kDownstream,    // a downstream server (nested SPIRE)
};

// What the authorizer needs to know about callers beyond their certificate.
class CallerRoles {
 public:
  virtual ~CallerRoles() = default;
  // Some registration entry with this spiffe_id has admin = true.
  virtual bool IsAdminEntry(const spiffe::SpiffeId& id) const = 0;
  // Some registration entry with this spiffe_id has downstream = true.
  virtual bool IsDownstreamEntry(const spiffe::SpiffeId& id) const = 0;
  // The agent check of SPIRE-API-FACTS §3 on a caller's leaf; PermissionDenied with details
  // (PermissionDeniedWithReason) when it fails. May promote a renewed SVID's serial.
  virtual absl::Status CheckAgent(const spiffe::SpiffeId& id, const spiffe::Certificate& leaf,
                                  std::chrono::system_clock::time_point now) const = 0;
};

class Authorizer {
 public:
  Authorizer(std::vector<spiffe::SpiffeId> admin_ids, spiffe::X509AuthoritiesSource bundles,
             const CallerRoles& roles, const Clock& clock)
      : admin_ids_(std::move(admin_ids)),
        bundles_(std::move(bundles)),
        roles_(roles),
        clock_(clock) {}

  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  // The caller when `access` admits it; otherwise the error to return (Unauthenticated for a
  // bad client certificate, PermissionDenied otherwise). `method` is the full path, for
  // messages.
  absl::StatusOr<Caller> Authorize(const grpc::ServerContextBase& context, std::string_view method,
                                   Access access) const;

 private:
  bool IsAdmin(const Caller& caller) const;

  // Immutable after construction.
  const std::vector<spiffe::SpiffeId> admin_ids_;
  const spiffe::X509AuthoritiesSource bundles_;
  const CallerRoles& roles_;
  const Clock& clock_;
};

}  // namespace tessera::server
