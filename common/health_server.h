// HealthServer: the HTTP liveness and readiness endpoints of a daemon (`[health]` in its
// config), for systemd watchdogs, load balancers and Kubernetes probes. GET on the live path
// answers 200 {"status":"ok"} while `live` returns OK, else 503 {"status":"unavailable",
// "reason":"..."}; likewise the ready path with `ready`. Anything else is 404. The checks run
// on the server's own thread for each request, so they must be quick and thread-safe.
//
// Thread-safety: Start and the destructor are called by the owner; the checks are called from
// the HTTP threads. The destructor stops the listener and joins its threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace tessera {

struct HealthOptions {
  std::string bind_address = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port (see HealthServer::port)
  std::string live_path = "/live";
  std::string ready_path = "/ready";
};

class HealthServer {
 public:
  using Check = std::function<absl::Status()>;

  // Binds (failing with the address in the message when it cannot) and starts serving.
  static absl::StatusOr<std::unique_ptr<HealthServer>> Start(const HealthOptions& options,
                                                             Check live, Check ready);
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  uint16_t port() const { return port_; }

 private:
  HealthServer() = default;

  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace tessera
