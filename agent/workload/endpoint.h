// WorkloadEndpoint: the agent's Workload API endpoint. It owns the Unix socket and its accept
// loop (workload_socket.h), the table of connected callers (caller_table.h), caller attestation
// (attestation.h), a callback-only gRPC server without listening ports of its own, the SPIFFE
// Workload API service (workload_service.h) and any further services the agent serves on the
// same socket (Envoy SDS), which get the same attested callers through WorkloadCallers.
//
// Shutdown order: stop accepting and remove the socket file; end every open stream (UNAVAILABLE
// "agent is shutting down") and answer pending attestations the same way; grpc::Server::Shutdown
// with `shutdown_grace` as deadline (then gRPC cancels what is still running, e.g. a write to a
// client that stopped reading); forget the callers. Idempotent; the destructor calls it.
//
// Thread-safety: Start and Shutdown are called by the owner; callers() and open_streams() are
// safe from any thread while the endpoint lives.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/cache/cache.h"
#include "agent/cache/jwt_svid_source.h"
#include "agent/workload/workload_callers.h"
#include "attestors/workload_attestor.h"
#include "common/clock.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace tessera::agent {

class CallerAttestation;
class CallerTable;
class WorkloadApiService;
class WorkloadSocket;

// A gRPC service served on the Workload API socket next to SpiffeWorkloadAPI.
class SocketService {
 public:
  virtual ~SocketService() = default;
  // The service to register; must stay valid for the SocketService's life.
  virtual grpc::Service* grpc_service() = 0;
  // Called once at endpoint shutdown, before grpc::Server::Shutdown: end open streams with
  // UNAVAILABLE and refuse new calls. Must not block for long. The SocketService is destroyed
  // after grpc::Server::Shutdown returned.
  virtual void Shutdown() {}
};

// Builds a SocketService; `callers` attests the caller of each call and outlives the service.
using SocketServiceFactory =
    std::function<absl::StatusOr<std::unique_ptr<SocketService>>(WorkloadCallers& callers)>;

struct WorkloadEndpointOptions {
  // Absolute path of the Unix socket (at most 107 bytes).
  std::string socket_path;
  // Workload attestors, run concurrently for every call (none: every caller has no selectors).
  std::vector<std::shared_ptr<attestors::WorkloadAttestor>> attestors;
  // Deadline of one caller's attestation, all attestors together.
  std::chrono::milliseconds attestation_timeout = std::chrono::seconds(5);
  // Threads running attestors.
  int attestation_threads = 4;
  // Required; must outlive the endpoint.
  Cache* cache = nullptr;
  JwtSvidSource* jwt_source = nullptr;
  // ValidateJWTSVID: claims of foreign tokens returned besides sub, aud and exp.
  std::vector<std::string> allowed_foreign_jwt_claims;
  // Null: the real clock.
  const Clock* clock = nullptr;
  // More services on the same socket (Envoy SDS).
  std::vector<SocketServiceFactory> services;
  // How long Shutdown lets open calls finish before gRPC cancels them.
  std::chrono::milliseconds shutdown_grace = std::chrono::milliseconds(500);
};

class WorkloadEndpoint {
 public:
  // Prepares the socket (see workload_socket.h for the rules and errors), builds the services and
  // starts accepting. InvalidArgument for missing options.
  static absl::StatusOr<std::unique_ptr<WorkloadEndpoint>> Start(WorkloadEndpointOptions options);

  ~WorkloadEndpoint();
  WorkloadEndpoint(const WorkloadEndpoint&) = delete;
  WorkloadEndpoint& operator=(const WorkloadEndpoint&) = delete;

  void Shutdown();

  const std::string& socket_path() const { return socket_path_; }
  // The attestation step, for services added after Start or for tools.
  WorkloadCallers& callers();
  // SpiffeWorkloadAPI streams not yet released by gRPC; for tests and metrics.
  size_t open_streams() const;
  // Connections accepted whose callers are remembered (see caller_table.h); for tests.
  size_t known_callers() const;

 private:
  explicit WorkloadEndpoint(WorkloadEndpointOptions options);

  const WorkloadEndpointOptions options_;
  const std::string socket_path_;

  // Destroyed in reverse order: the server before the services it calls into, the services
  // before attestation and the caller table they use.
  std::unique_ptr<CallerTable> callers_table_;
  std::unique_ptr<CallerAttestation> attestation_;
  std::unique_ptr<WorkloadApiService> workload_api_;
  std::vector<std::unique_ptr<SocketService>> services_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<WorkloadSocket> socket_;
  bool shut_down_ = false;
};

}  // namespace tessera::agent
