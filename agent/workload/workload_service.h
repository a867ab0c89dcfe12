// WorkloadApiService: the SPIFFE Workload API (SPIFFE-FACTS §4) over the agent's cache, as a gRPC
// callback service, so an open stream is a small object waiting for a cache change, not a thread.
//
// Every call: the security header (exactly one `workload.spiffe.io: true`, else InvalidArgument
// "security header missing from request"), the request's own checks (SPIRE's messages), then
// UNAVAILABLE until the cache has synced, then caller attestation (WorkloadCallers), then the
// caller's identities: Cache::Match of its selectors, default identity first. An identity whose
// X509-SVID is still being minted is not served by FetchX509SVID; a caller with nothing else
// waits for the next snapshot instead of being denied. No identity at all is PermissionDenied
// "no identity issued".
//
// Streams (FetchX509SVID, FetchX509Bundles, FetchJWTBundles) subscribe to the cache and send the
// complete state as soon as they can, then again only when what THIS caller receives changed
// (each candidate message is compared with the last one sent). At most one write is in flight per
// stream; snapshots published meanwhile collapse into the newest, so a client that never reads
// costs a fixed amount of memory. A caller that loses every identity gets PermissionDenied and
// the stream ends. Bundle streams count entries still being minted as identities (bundles do not
// depend on SVIDs).
//
// FetchJWTSVID mints (through JwtSvidSource) one JWT-SVID per identity, or for the one requested;
// ValidateJWTSVID validates against the own trust domain's bundle and the federated bundles the
// caller's entries federate with (as SPIRE), and returns foreign tokens' claims filtered to sub,
// aud, exp and `allowed_foreign_jwt_claims`. FetchWITSVID and FetchWITBundles are Unimplemented.
//
// Shutdown ends every open stream with UNAVAILABLE "agent is shutting down" (once its write in
// flight, if any, completes: grpc::Server::Shutdown's deadline cancels those that never do) and
// refuses new ones. The destructor waits until gRPC has released every stream, so destroy the
// service after grpc::Server::Shutdown.
//
// Thread-safety: all methods are safe from any thread. Cache observers only record the newest
// snapshot and, when the stream is idle, compose and start one write; gRPC is never called with
// a lock held.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "agent/cache/cache.h"
#include "agent/cache/jwt_svid_source.h"
#include "agent/workload/workload_callers.h"
#include "agent/workload/workload_internal.h"
#include "common/clock.h"
#include "spiffe/workload/workload.grpc.pb.h"

namespace tessera::agent {

struct WorkloadApiOptions {
  // Required; must outlive the service.
  Cache* cache = nullptr;
  JwtSvidSource* jwt_source = nullptr;
  WorkloadCallers* callers = nullptr;
  // Claims of tokens from other trust domains that ValidateJWTSVID returns besides sub, aud and
  // exp (SPIRE's allowed_foreign_jwt_claims).
  std::vector<std::string> allowed_foreign_jwt_claims;
  // Time for JWT-SVID validation; null: the real clock.
  const Clock* clock = nullptr;
};

class WorkloadApiService final : public ::SpiffeWorkloadAPI::CallbackService {
 public:
  explicit WorkloadApiService(WorkloadApiOptions options);
  ~WorkloadApiService() override;
  WorkloadApiService(const WorkloadApiService&) = delete;
  WorkloadApiService& operator=(const WorkloadApiService&) = delete;

  grpc::ServerWriteReactor<::X509SVIDResponse>* FetchX509SVID(
      grpc::CallbackServerContext* context, const ::X509SVIDRequest* request) override;
  grpc::ServerWriteReactor<::X509BundlesResponse>* FetchX509Bundles(
      grpc::CallbackServerContext* context, const ::X509BundlesRequest* request) override;
  grpc::ServerUnaryReactor* FetchJWTSVID(grpc::CallbackServerContext* context,
                                         const ::JWTSVIDRequest* request,
                                         ::JWTSVIDResponse* response) override;
  grpc::ServerWriteReactor<::JWTBundlesResponse>* FetchJWTBundles(
      grpc::CallbackServerContext* context, const ::JWTBundlesRequest* request) override;
  grpc::ServerUnaryReactor* ValidateJWTSVID(grpc::CallbackServerContext* context,
                                            const ::ValidateJWTSVIDRequest* request,
                                            ::ValidateJWTSVIDResponse* response) override;
  grpc::ServerWriteReactor<::WITSVIDResponse>* FetchWITSVID(
      grpc::CallbackServerContext* context, const ::WITSVIDRequest* request) override;
  grpc::ServerWriteReactor<::WITBundlesResponse>* FetchWITBundles(
      grpc::CallbackServerContext* context, const ::WITBundlesRequest* request) override;

  // Idempotent; does not wait.
  void Shutdown();

  // Streams gRPC has not released yet (open or finishing); for tests and metrics.
  size_t open_streams() const { return streams_.size(); }

 private:
  // Immutable after construction.
  const WorkloadApiOptions options_;
  const Clock& clock_;

  workload_internal::StreamRegistry streams_;
};

}  // namespace tessera::agent
