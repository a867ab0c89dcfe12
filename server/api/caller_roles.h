// RegistryCallerRoles: the Authorizer's view of callers, answered from the datastore.
//   - admin / downstream: some registration entry with the caller's SPIFFE ID says so;
//   - the agent check of SPIRE-API-FACTS §3 on the caller's X509-SVID: not expired, attested,
//     not banned, and the serial the server issued last. The first use of the SVID a RenewAgent
//     issued promotes its serial to current, after which the previous SVID stops working.
// Thread-safe: the datastore is safe for concurrent use and the promotion is idempotent.
#pragma once

#include "server/api/authorizer.h"
#include "server/datastore/datastore.h"

namespace tessera::server {

class RegistryCallerRoles final : public CallerRoles {
 public:
  explicit RegistryCallerRoles(DataStore& datastore) : datastore_(datastore) {}

  bool IsAdminEntry(const spiffe::SpiffeId& id) const override;
  bool IsDownstreamEntry(const spiffe::SpiffeId& id) const override;
  absl::Status CheckAgent(const spiffe::SpiffeId& id, const spiffe::Certificate& leaf,
                          std::chrono::system_clock::time_point now) const override;

 private:
  bool AnyEntryWith(const spiffe::SpiffeId& id, bool Entry::*flag) const;

  DataStore& datastore_;
};

}  // namespace tessera::server
