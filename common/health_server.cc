#include "common/health_server.h"

#include <sys/socket.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

void Answer(const HealthServer::Check& check, httplib::Response& response) {
  absl::Status status = check();
  nlohmann::json body = {{"status", status.ok() ? "ok" : "unavailable"}};
  if (!status.ok()) body["reason"] = std::string(status.message());
  response.status = status.ok() ? 200 : 503;
  response.set_content(body.dump(), "application/json");
}

}  // namespace

absl::StatusOr<std::unique_ptr<HealthServer>> HealthServer::Start(const HealthOptions& options,
                                                                  Check live, Check ready) {
  std::unique_ptr<HealthServer> server(new HealthServer());
  server->http_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *server->http_;
  // Probes are tiny; a slow or idle client must not hold a thread for long.
  http.set_read_timeout(5, 0);
  http.set_write_timeout(5, 0);
  http.set_keep_alive_max_count(10);
  http.set_payload_max_length(4096);
  // httplib's default adds SO_REUSEPORT, which would let a second daemon share (and steal) the
  // port silently; a taken port must be an error at start.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http.Get(options.live_path,
           [live = std::move(live)](const httplib::Request&, httplib::Response& response) {
             Answer(live, response);
           });
  http.Get(options.ready_path,
           [ready = std::move(ready)](const httplib::Request&, httplib::Response& response) {
             Answer(ready, response);
           });
  int port = options.port == 0 ? http.bind_to_any_port(options.bind_address)
                               : (http.bind_to_port(options.bind_address, options.port)
                                      ? static_cast<int>(options.port)
                                      : -1);
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("health: cannot listen on ", options.bind_address, ":", options.port));
  }
  server->port_ = static_cast<uint16_t>(port);
  server->thread_ = std::thread([&http] { http.listen_after_bind(); });
  // stop() before the loop runs would be lost and the destructor would wait forever.
  while (!http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return server;
}

HealthServer::~HealthServer() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace tessera
