// SdsService: Envoy's Secret Discovery Service v3 (envoy.service.secret.v3) on the agent's
// Workload API socket, over the agent's cache. Resources are described in sds_secrets.h, the
// protocol of each stream in sds_protocol.h.
//
// Every call: UNAVAILABLE until the cache has synced, then the caller is attested like any
// workload (WorkloadCallers; no security header: Envoy sends none), then:
// - StreamSecrets and DeltaSecrets: one reactor per stream, subscribed to the cache. Like the
//   Workload API's streams they hold no thread: whoever holds the stream's token (the
//   attestation, then each write until it completes) handles the next request or snapshot; at
//   most one write is in flight and snapshots published meanwhile collapse into the newest, so a
//   proxy that stops reading costs a fixed amount of memory. A request is read only after the
//   previous one was handled.
// - FetchSecrets: the same resources once, version_info "" and no nonce; UNAVAILABLE while a
//   requested certificate is being minted.
//
// Shutdown ends open streams with UNAVAILABLE "agent is shutting down" and refuses new ones; the
// destructor waits until gRPC has released every stream (destroy after grpc::Server::Shutdown).
//
// Thread-safety: safe for concurrent use from gRPC's callback threads.
#pragma once

#include <cstddef>

#include "agent/cache/cache.h"
#include "agent/sds/sds_secrets.h"
#include "agent/workload/endpoint.h"
#include "agent/workload/workload_callers.h"
#include "agent/workload/workload_internal.h"
#include "envoy/service/secret/v3/sds.grpc.pb.h"

namespace tessera::agent {

struct SdsServiceOptions {
  // Required; must outlive the service.
  Cache* cache = nullptr;
  WorkloadCallers* callers = nullptr;
  // The [sds] settings; a proxy's node metadata may override them for that proxy.
  SdsSettings defaults;
};

class SdsService final : public envoy::service::secret::v3::SecretDiscoveryService::CallbackService,
                         public SocketService {
 public:
  // InvalidArgument for missing options or invalid settings.
  static absl::StatusOr<std::unique_ptr<SdsService>> Create(SdsServiceOptions options);
  // For WorkloadEndpointOptions::services: an SdsService over `cache` with `defaults`.
  static SocketServiceFactory Factory(Cache* cache, SdsSettings defaults);

  ~SdsService() override;
  SdsService(const SdsService&) = delete;
  SdsService& operator=(const SdsService&) = delete;

  grpc::ServerBidiReactor<envoy::service::discovery::v3::DiscoveryRequest,
                          envoy::service::discovery::v3::DiscoveryResponse>*
  StreamSecrets(grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<envoy::service::discovery::v3::DeltaDiscoveryRequest,
                          envoy::service::discovery::v3::DeltaDiscoveryResponse>*
  DeltaSecrets(grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* FetchSecrets(
      grpc::CallbackServerContext* context,
      const envoy::service::discovery::v3::DiscoveryRequest* request,
      envoy::service::discovery::v3::DiscoveryResponse* response) override;

  // SocketService.
  grpc::Service* grpc_service() override { return this; }
  // Idempotent; does not wait.
  void Shutdown() override;

  // Streams gRPC has not released yet; for tests and metrics.
  size_t open_streams() const { return streams_.size(); }

 private:
  explicit SdsService(SdsServiceOptions options) : options_(std::move(options)) {}

  // Immutable after construction.
  const SdsServiceOptions options_;

  workload_internal::StreamRegistry streams_;
};

}  // namespace tessera::agent
