// The real daemons as an operator runs them, for the tessera-bench scenarios that measure whole
// processes: a tessera-server started from a TOML config with the join_token attestor, its
// bootstrap bundle from `tessera-server bundle show`, and a tessera-agent attested with a token
// from `tessera-server token generate --spiffe-id` (the steps of tests/e2e/lib.sh). Both report
// readiness on a NOTIFY_SOCKET, as under systemd; the agent's READY=1 follows its first sync.
//
// Thread-safety: Start and destruction on one thread (the scenario's); the accessors are
// immutable and safe from any thread while the daemon runs. Destroying a daemon stops its
// process (SIGTERM, then SIGKILL); destroy the agent before the server.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/node_attestation.h"
#include "bench/tool/process.h"

namespace CLI {
class App;
}  // namespace CLI

namespace tessera::bench {

// The trust domain every deployment of the tool uses.
inline constexpr char kBenchTrustDomain[] = "example.org";
// The alias of the agent StartDeployment starts (entries for its workloads name it as parent).
inline constexpr char kBenchNodeId[] = "spiffe://example.org/bench/node";

struct DaemonBinaries {
  std::string server;
  std::string agent;
};

// Adds --server-bin and --agent-bin to `app`, defaulting to <build>/server/tessera-server and
// <build>/agent/tessera-agent found from the tool's own path.
void AddDaemonBinaryFlags(CLI::App& app, DaemonBinaries& binaries);

// "<daemon>: <status>; end of its log: ..." (the log usually says why; an empty log means the
// binary could not even be executed).
absl::Status DaemonFailed(std::string_view daemon, const absl::Status& status,
                          const std::filesystem::path& log);

class ServerDaemon {
 public:
  // Runs `binary` with its files under `dir` (which must exist): server.toml, server.log, the
  // admin socket, SQLite. `extra_toml` is appended to the config (more attestors, settings).
  // Returns once the server sent READY=1 and its bundle was read.
  static absl::StatusOr<std::unique_ptr<ServerDaemon>> Start(const std::filesystem::path& dir,
                                                             const std::string& binary,
                                                             const std::string& extra_toml = "");

  ChildProcess& process() { return process_; }
  const std::string& binary() const { return binary_; }
  const std::filesystem::path& admin_socket() const { return admin_socket_; }
  const std::filesystem::path& log() const { return log_; }
  uint16_t port() const { return port_; }
  // The trust bundle (PEM) at start: what agents bootstrap with.
  const std::string& bundle_pem() const { return bundle_pem_; }
  // How an in-process agent (agent/node_attestation.h, agent/server_client.h) reaches it.
  absl::StatusOr<agent::ServerConnection> Connection() const;
  // `tessera-server token generate --spiffe-id <node_id>`: a join token whose agent is also
  // known as `node_id` (entries can be parented to it).
  absl::StatusOr<std::string> GenerateJoinToken(const std::string& node_id) const;

 private:
  ServerDaemon(ChildProcess process) : process_(std::move(process)) {}
  ChildProcess process_;
  std::string binary_;
  std::filesystem::path admin_socket_;
  std::filesystem::path log_;
  uint16_t port_ = 0;
  std::string bundle_pem_;
};

class AgentDaemon {
 public:
  // Runs `binary` attested to `server` with a fresh join token aliased to `node_id`, the unix
  // workload attestor and an hourly periodic sync (changes arrive by the server's push stream);
  // files under `dir` (agent.toml, agent.log, the Workload API socket). `extra_toml` is appended
  // to the config. Returns once the agent synced (READY=1); a READY saying the server is
  // unreachable is an error.
  static absl::StatusOr<std::unique_ptr<AgentDaemon>> Start(const std::filesystem::path& dir,
                                                            const std::string& binary,
                                                            const ServerDaemon& server,
                                                            const std::string& node_id,
                                                            const std::string& extra_toml = "");

  ChildProcess& process() { return process_; }
  const std::filesystem::path& socket_path() const { return socket_path_; }
  const std::filesystem::path& log() const { return log_; }
  // "unix://<socket_path>", for WorkloadApiClientOptions::address.
  std::string endpoint() const { return "unix://" + socket_path_.string(); }

  // The sum of the agent's "agent: minted <k> X509-SVIDs" log lines so far (one per successful
  // batch, logged after the SVIDs are stored).
  int64_t MintedSvids() const;
  // Waits until MintedSvids() >= n; an error when the agent exits, after `timeout`, or when
  // interrupted.
  absl::Status WaitMinted(int64_t n, std::chrono::milliseconds timeout);

 private:
  AgentDaemon(ChildProcess process) : process_(std::move(process)) {}
  ChildProcess process_;
  std::filesystem::path socket_path_;
  std::filesystem::path log_;
};

// A server and an agent in a temporary directory. Members are destroyed in reverse order: the
// agent stops first, the directory goes last.
struct Deployment {
  TempDir dir;
  std::unique_ptr<ServerDaemon> server;
  std::unique_ptr<AgentDaemon> agent;

  // The agent's Workload API as a gRPC target ("unix:/path").
  std::string workload_target() const { return "unix:" + agent->socket_path().string(); }
};

// Starts a server and an agent aliased to kBenchNodeId in a new directory named after `prefix`.
// With a `workload_id`, also registers it for this process (selector unix:uid:<our uid>, parent
// kBenchNodeId) and returns once the agent serves that SVID on its Workload API.
absl::StatusOr<Deployment> StartDeployment(const std::string& prefix,
                                           const DaemonBinaries& binaries,
                                           const std::string& workload_id = "");

}  // namespace tessera::bench
