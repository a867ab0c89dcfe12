// The in-process tessera-server of tessera-bench.
#include "bench/tool/in_process_server.h"

#include <chrono>

#include "bench/tool/admin_client.h"
#include "common/status.h"

namespace tessera::bench {
namespace {

spiffe::TrustDomain BenchTrustDomain() { return *spiffe::TrustDomain::Parse("example.org"); }

}  // namespace

absl::StatusOr<std::unique_ptr<InProcessServer>> InProcessServer::Start(
    const std::filesystem::path& dir) {
  server::ServerConfig config(BenchTrustDomain());
  config.bind_address = "127.0.0.1";
  config.bind_port = 0;
  config.data_dir = dir / "server";
  config.socket_path = dir / "server-run" / "api.sock";
  config.datastore.sqlite_path = config.data_dir / "datastore.sqlite3";
  config.key_manager.directory = config.data_dir / "keys";
  config.join_token_enabled = true;
  auto out = std::unique_ptr<InProcessServer>(new InProcessServer());
  out->admin_socket_ = config.socket_path;
  ASSIGN_OR_RETURN(out->server_, server::Server::Start(config),
                   Annotate(_, "start tessera-server"));
  return out;
}

InProcessServer::~InProcessServer() {
  if (server_ == nullptr) return;
  server_->Shutdown();
  server_->Wait();
}

agent::ServerConnection InProcessServer::Connection() const {
  return agent::ServerConnection{.target = "127.0.0.1:" + std::to_string(server_->port()),
                                 .trust_domain = BenchTrustDomain(),
                                 .bundle = server_->ca().bundle()->bundle.x509_authorities(),
                                 .timeout = std::chrono::seconds(30)};
}

absl::StatusOr<agent::AgentState> InProcessServer::AttestAgent() const {
  ASSIGN_OR_RETURN(std::string token, CreateJoinToken(admin_socket_, 600));
  return agent::AttestWithJoinToken(Connection(), token);
}

}  // namespace tessera::bench
