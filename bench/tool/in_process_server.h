// A real tessera-server inside tessera-bench (TLS on 127.0.0.1:<free port>, the admin socket,
// SQLite in a temporary directory) and agents attested to it with join tokens, for scenarios that
// call the server's agent API directly. The bench's own equivalent of agent/agent_test_util.h's
// TestServer, which cannot be used here because it reports failures through GoogleTest.
//
// Thread-safety: Start/destruction on one thread; Connection() and the identity are safe to use
// from any thread while the server runs.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "agent/agent_identity.h"
#include "agent/node_attestation.h"
#include "server/server.h"

namespace tessera::bench {

class InProcessServer {
 public:
  // Trust domain example.org; everything lives under `dir`, which must exist.
  static absl::StatusOr<std::unique_ptr<InProcessServer>> Start(const std::filesystem::path& dir);
  ~InProcessServer();
  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  server::Server& server() { return *server_; }
  const std::filesystem::path& admin_socket() const { return admin_socket_; }
  // How an agent reaches the server: its address, trust domain and current roots.
  agent::ServerConnection Connection() const;
  // Attests a new agent with a fresh join token (made over the admin API); its SPIFFE ID is
  // spiffe://example.org/spire/agent/join_token/<token>.
  absl::StatusOr<agent::AgentState> AttestAgent() const;

 private:
  InProcessServer() = default;
  std::unique_ptr<server::Server> server_;
  std::filesystem::path admin_socket_;
};

// An AgentIdentitySource that holds one agent state and never changes it (a benchmark run is
// shorter than the agent SVID's lifetime). Rejections are counted, not acted on.
class FixedAgentIdentity final : public agent::AgentIdentitySource {
 public:
  explicit FixedAgentIdentity(agent::AgentState state)
      : state_(std::make_shared<const agent::AgentState>(std::move(state))) {}
  std::shared_ptr<const agent::AgentState> CurrentAgentState() const override { return state_; }
  void OnAgentStateChange(std::function<void(std::shared_ptr<const agent::AgentState>)>) override {}
  void ReportRejected(const absl::Status&) override {}

 private:
  const std::shared_ptr<const agent::AgentState> state_;
};

}  // namespace tessera::bench
