// Services: every gRPC service tessera-server serves, built from the shared ServiceDeps and the
// configuration (node attestors included), registered on one grpc::ServerBuilder (TLS port and
// admin socket alike: the authorizer tells callers apart per RPC). Owned by Server; lives until
// after the gRPC server has shut down.
// Thread-safety: the services are safe for concurrent use by gRPC; Init, Register and
// BeginShutdown are called by the owner, in that order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "attestors/node_attestor.h"
#include "grpcpp/server_builder.h"
#include "server/api/agent_service.h"
#include "server/api/bundle_service.h"
#include "server/api/entry_service.h"
#include "server/api/push_service.h"
#include "server/api/service_deps.h"
#include "server/api/svid_service.h"
#include "server/config.h"

namespace tessera::server {

class Services {
 public:
  // `deps.notifier` receives the services' announcements; the owner forwards them to notifier()
  // (the push service). `bundle_sequence` is the own bundle's current sequence number, for push
  // notifications.
  Services(ServiceDeps deps, const ServerConfig& config, std::function<uint64_t()> bundle_sequence);
  ~Services();

  // Builds what can fail (node attestors reading their CA bundles).
  absl::Status Init();
  void Register(grpc::ServerBuilder& builder);
  // Ends long-lived streams so that grpc::Server::Shutdown returns promptly.
  void BeginShutdown();
  // Where service writes and CA changes are announced to agents.
  ChangeNotifier& notifier();

 private:
  ServiceDeps deps_;
  const ServerConfig& config_;
  std::vector<std::unique_ptr<attestors::ServerNodeAttestor>> node_attestors_;
  // First: the other services announce through it, and it must outlive their calls.
  std::unique_ptr<PushService> push_;
  std::unique_ptr<EntryService> entry_;
  std::unique_ptr<BundleService> bundle_;
  std::unique_ptr<AgentService> agent_;
  std::unique_ptr<SvidService> svid_;
};

}  // namespace tessera::server
