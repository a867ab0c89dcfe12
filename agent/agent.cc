#include "agent/agent.h"

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/attestation_manager.h"
#include "agent/cache/cache.h"
#include "agent/sds/sds_service.h"
#include "agent/sync_manager.h"
#include "agent/workload/endpoint.h"
#include "agent/workload_attestors.h"
#include "common/health_server.h"
#include "common/status.h"
#include "common/strings.h"
#include "spdlog/spdlog.h"

namespace tessera::agent {

Agent::Agent(AgentConfig config) : config_(std::move(config)) {}

Agent::~Agent() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Agent>> Agent::Start(AgentConfig config, Options options,
                                                    std::stop_token stop) {
  std::unique_ptr<Agent> agent(new Agent(std::move(config)));
  RETURN_IF_ERROR(agent->Init(options, std::move(stop)));
  return agent;
}

absl::Status Agent::Init(const Options& options, std::stop_token stop) {
  if (!config_.admin_socket_path.empty()) {
    spdlog::warn(
        "agent: admin_socket_path is set but this version has no agent admin API; ignored");
  }
  // The workload attestors first: a broken attestor config should fail before any server call.
  ASSIGN_OR_RETURN(auto attestors, NewWorkloadAttestors(config_));

  ASSIGN_OR_RETURN(attestation_, AttestationManager::Create(config_, options.join_token));
  RETURN_IF_ERROR(attestation_->Start(stop));
  attestation_->StartRenewal();
  if (auto state = attestation_->CurrentAgentState()) {
    spdlog::info("agent: identity {}", state->svid.id.str());
  }

  cache_ = std::make_unique<Cache>(config_.trust_domain);
  sync_ =
      std::make_unique<SyncManager>(SyncOptions{.trust_domain = config_.trust_domain,
                                                .servers = config_.server_addresses,
                                                .sync_interval = config_.sync_interval,
                                                .key_type = config_.workload_x509_svid_key_type},
                                    *attestation_, *cache_);
  sync_->Start();

  WorkloadEndpointOptions endpoint_options;
  endpoint_options.socket_path = config_.socket_path.string();
  endpoint_options.attestors = std::move(attestors);
  endpoint_options.cache = cache_.get();
  endpoint_options.jwt_source = sync_.get();
  endpoint_options.allowed_foreign_jwt_claims = config_.allowed_foreign_jwt_claims;
  // Envoy's SDS on the same socket, its callers attested like any workload.
  endpoint_options.services.push_back(SdsService::Factory(
      cache_.get(),
      SdsSettings{.default_svid_name = config_.sds.default_svid_name,
                  .default_bundle_name = config_.sds.default_bundle_name,
                  .default_all_bundles_name = config_.sds.default_all_bundles_name,
                  .disable_spiffe_cert_validation = config_.sds.disable_spiffe_cert_validation}));
  ASSIGN_OR_RETURN(endpoint_, WorkloadEndpoint::Start(std::move(endpoint_options)));
  spdlog::info("agent: Workload API and Envoy SDS listening on {}", config_.socket_path.string());

  if (config_.health.has_value()) {
    const HealthConfig& h = *config_.health;
    ASSIGN_OR_RETURN(health_, HealthServer::Start(
                                  HealthOptions{.bind_address = h.bind_address,
                                                .port = h.bind_port,
                                                .live_path = h.live_path,
                                                .ready_path = h.ready_path},
                                  [this] { return Live(); }, [this] { return Ready(); }));
  }
  return absl::OkStatus();
}

void Agent::Shutdown() {
  // Workloads first (their streams end while the cache is still intact), then the loops that
  // feed the cache, then renewal.
  health_.reset();
  if (endpoint_) endpoint_->Shutdown();
  if (sync_) sync_->Shutdown();
  if (attestation_) attestation_->Shutdown();
}

bool Agent::WaitForFirstSync(std::chrono::milliseconds timeout, std::stop_token stop) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cache_->HasSynced()) {
    if (stop.stop_requested() || std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

absl::Status Agent::Ready() const {
  RETURN_IF_ERROR(attestation_->Health());
  if (!cache_->HasSynced()) {
    SyncStatus status = sync_->status();
    return absl::UnavailableError(
        status.last_error.ok()
            ? std::string("not synced with the server yet")
            : absl::StrCat("not synced with the server yet: ", status.last_error.message()));
  }
  return absl::OkStatus();
}

absl::Status Agent::Live() const { return absl::OkStatus(); }

uint16_t Agent::health_port() const { return health_ ? health_->port() : 0; }

}  // namespace tessera::agent
