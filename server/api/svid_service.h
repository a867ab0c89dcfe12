// SvidService: SPIRE's /spire.api.server.svid.v1.SVID service (SPIRE-API-FACTS §7), the RPCs that
// turn a registration entry or an admin's request into a signed SVID:
//   BatchNewX509SVID, NewJWTSVID (active agents over mTLS): for entries the calling agent is
//     authorized for, answered from the in-memory entry index (never one datastore query per
//     item), with SPIRE's per-item statuses in request order; a JWT-SVID carries a fresh random
//     "jti" claim when its entry has jwt_svid_include_jti;
//   MintX509SVID, MintJWTSVID (admins: the local socket or an admin ID): for any workload ID of
//     our trust domain.
// Workload keys never reach the server: X509-SVIDs are issued for the public key of a CSR whose
// self-signature proves possession of the private key. NewDownstreamX509CA (nested SPIRE) is not
// served and answers UNIMPLEMENTED.
//
// A BatchNewX509SVID of 9 or more items is minted on helper threads as well as the calling one,
// within a process-wide budget of (cores - 1) helpers shared by all calls; results keep their
// request order and per-item statuses.
//
// Thread-safe: its only state is that atomic budget; the ServiceDeps collaborators are safe for
// concurrent use and outlive the service.
#pragma once

#include <cstddef>

#include "grpcpp/server_context.h"
#include "server/api/service_deps.h"
#include "spire/api/server/svid/v1/svid.grpc.pb.h"

namespace tessera::server {

namespace svidv1 = ::spire::api::server::svid::v1;

class SvidService final : public svidv1::SVID::Service {
 public:
  // spire-agent sends at most 500 params per BatchNewX509SVID; a request with more than this is
  // refused whole rather than spending the CPU to sign all of it.
  static constexpr size_t kMaxBatchParams = 1000;

  explicit SvidService(const ServiceDeps& deps) : deps_(deps) {}

  grpc::Status MintX509SVID(grpc::ServerContext* context,
                            const svidv1::MintX509SVIDRequest* request,
                            svidv1::MintX509SVIDResponse* response) override;
  grpc::Status MintJWTSVID(grpc::ServerContext* context, const svidv1::MintJWTSVIDRequest* request,
                           svidv1::MintJWTSVIDResponse* response) override;
  grpc::Status BatchNewX509SVID(grpc::ServerContext* context,
                                const svidv1::BatchNewX509SVIDRequest* request,
                                svidv1::BatchNewX509SVIDResponse* response) override;
  grpc::Status NewJWTSVID(grpc::ServerContext* context, const svidv1::NewJWTSVIDRequest* request,
                          svidv1::NewJWTSVIDResponse* response) override;

 private:
  const ServiceDeps deps_;
};

}  // namespace tessera::server
