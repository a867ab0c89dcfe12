// Agent: tessera-agent's composition root. From a validated AgentConfig it builds, in order, the
// attestation manager (the agent SVID: loaded from data_dir, or attested, then renewed in the
// background), the cache, the sync manager (entries, SVIDs, bundles from the server; push stream
// plus periodic fallback), the workload attestors, the Workload API endpoint on the Unix socket,
// and the optional health endpoint.
//
// Lifetime: Start returns once the agent has an identity and its socket accepts calls (workloads
// get UNAVAILABLE until the first sync completes; WaitForFirstSync tells when). Shutdown (or the
// destructor) stops the endpoint first (open streams end, the socket is removed), then the sync
// manager, then renewal, in that order.
// Thread-safety: Shutdown may be called from any thread, once or more; the accessors are safe
// while the agent runs.
#pragma once

#include <chrono>
#include <memory>
#include <stop_token>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/config.h"
#include "common/clock.h"

namespace tessera {
class HealthServer;
}  // namespace tessera

namespace tessera::agent {

class AttestationManager;
class Cache;
class SyncManager;
class WorkloadEndpoint;

class Agent {
 public:
  struct Options {
    // Overrides the config file's join_token (the --join-token flag).
    std::string join_token;
  };

  // Blocks while the agent attests (retrying an unreachable server until `stop` is requested).
  static absl::StatusOr<std::unique_ptr<Agent>> Start(AgentConfig config, Options options,
                                                      std::stop_token stop = {});
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  void Shutdown();

  // True once the cache holds the server's entries and bundle; false if `timeout` passed first.
  bool WaitForFirstSync(std::chrono::milliseconds timeout, std::stop_token stop = {}) const;

  // OK when the agent has a valid identity and has synced with the server; the reason otherwise
  // (an operator must act, or the server has been unreachable since start).
  absl::Status Ready() const;
  // OK while the agent's loops run.
  absl::Status Live() const;
  // The health endpoint's port; 0 without [health].
  uint16_t health_port() const;

  const AgentConfig& config() const { return config_; }
  Cache& cache() { return *cache_; }
  SyncManager& sync() { return *sync_; }
  AttestationManager& attestation() { return *attestation_; }

 private:
  explicit Agent(AgentConfig config);
  absl::Status Init(const Options& options, std::stop_token stop);

  const AgentConfig config_;
  std::unique_ptr<AttestationManager> attestation_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<SyncManager> sync_;
  std::unique_ptr<WorkloadEndpoint> endpoint_;
  std::unique_ptr<HealthServer> health_;
};

}  // namespace tessera::agent
