#include "agent/workload/endpoint.h"

#include <utility>

#include "agent/workload/attestation.h"
#include "agent/workload/caller_table.h"
#include "agent/workload/workload_service.h"
#include "agent/workload/workload_socket.h"
#include "common/status.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/server_posix.h"
#include "spdlog/spdlog.h"
#include "spiffe/jwt_svid.h"

namespace tessera::agent {
namespace {

// Requests are tiny; the largest is a token to validate.
constexpr int kMaxRequestBytes = static_cast<int>(spiffe::kMaxJwtSvidBytes) + 64 * 1024;
// Transport memory for every connection together: thousands of idle streams need far less.
constexpr size_t kTransportMemoryQuotaBytes = size_t{64} << 20;

}  // namespace

WorkloadEndpoint::WorkloadEndpoint(WorkloadEndpointOptions options)
    : options_(std::move(options)), socket_path_(options_.socket_path) {}

absl::StatusOr<std::unique_ptr<WorkloadEndpoint>> WorkloadEndpoint::Start(
    WorkloadEndpointOptions options) {
  if (options.cache == nullptr || options.jwt_source == nullptr) {
    return absl::InvalidArgumentError("workload api: a cache and a JWT-SVID source are required");
  }
  if (options.attestation_timeout <= std::chrono::milliseconds::zero()) {
    return absl::InvalidArgumentError("workload api: the attestation timeout must be positive");
  }
  for (const auto& attestor : options.attestors) {
    if (attestor == nullptr) return absl::InvalidArgumentError("workload api: null attestor");
  }
  std::unique_ptr<WorkloadEndpoint> endpoint(new WorkloadEndpoint(std::move(options)));
  const WorkloadEndpointOptions& opts = endpoint->options_;

  ASSIGN_OR_RETURN(endpoint->socket_, WorkloadSocket::Listen(opts.socket_path),
                   Annotate(_, "workload api"));
  endpoint->callers_table_ = std::make_unique<CallerTable>();
  endpoint->attestation_ = std::make_unique<CallerAttestation>(
      *endpoint->callers_table_, CallerAttestationOptions{.attestors = opts.attestors,
                                                          .timeout = opts.attestation_timeout,
                                                          .threads = opts.attestation_threads});
  endpoint->workload_api_ = std::make_unique<WorkloadApiService>(
      WorkloadApiOptions{.cache = opts.cache,
                         .jwt_source = opts.jwt_source,
                         .callers = endpoint->attestation_.get(),
                         .allowed_foreign_jwt_claims = opts.allowed_foreign_jwt_claims,
                         .clock = opts.clock});
  for (const SocketServiceFactory& factory : opts.services) {
    ASSIGN_OR_RETURN(std::unique_ptr<SocketService> service, factory(*endpoint->attestation_),
                     Annotate(_, "workload api: build service"));
    if (service == nullptr || service->grpc_service() == nullptr) {
      return absl::InvalidArgumentError("workload api: a service factory returned no service");
    }
    endpoint->services_.push_back(std::move(service));
  }

  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
  // gRPC 1.51 checks that limit only after a whole message has arrived, so any local user could
  // make the agent buffer a message of whatever size it claims. The transport's memory quota
  // caps what all connections together may hold; past it gRPC resets the stream.
  grpc::ResourceQuota quota("tessera-agent-workload-api");
  quota.Resize(kTransportMemoryQuotaBytes);
  builder.SetResourceQuota(quota);
  builder.RegisterService(endpoint->workload_api_.get());
  for (const auto& service : endpoint->services_) builder.RegisterService(service->grpc_service());
  endpoint->server_ = builder.BuildAndStart();
  if (endpoint->server_ == nullptr) {
    return absl::InternalError("workload api: could not start the gRPC server");
  }

  grpc::Server* server = endpoint->server_.get();
  CallerTable* table = endpoint->callers_table_.get();
  endpoint->socket_->Start(
      [server, table](UniqueFd connection, std::shared_ptr<const ConnectedCaller> caller) {
        spdlog::debug("workload api: connection fd {} from pid {} (uid {}, gid {})",
                      connection.get(), caller->pid, caller->uid, caller->gid);
        // Known before gRPC can run a single call on the connection.
        table->Insert(connection.get(), std::move(caller));
        grpc::AddInsecureChannelFromFd(server, connection.Release());
      });
  spdlog::info("workload api: listening on {}", endpoint->socket_path_);
  return endpoint;
}

WorkloadEndpoint::~WorkloadEndpoint() { Shutdown(); }

void WorkloadEndpoint::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (socket_ != nullptr) socket_->Stop();
  if (workload_api_ != nullptr) workload_api_->Shutdown();
  for (const auto& service : services_) service->Shutdown();
  if (attestation_ != nullptr) attestation_->Shutdown();
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + options_.shutdown_grace);
    server_->Wait();
  }
  if (callers_table_ != nullptr) callers_table_->Clear();
  spdlog::info("workload api: stopped");
}

WorkloadCallers& WorkloadEndpoint::callers() { return *attestation_; }

size_t WorkloadEndpoint::open_streams() const {
  return workload_api_ != nullptr ? workload_api_->open_streams() : 0;
}

size_t WorkloadEndpoint::known_callers() const {
  return callers_table_ != nullptr ? callers_table_->size() : 0;
}

}  // namespace tessera::agent
