// The real daemons of tessera-bench, started as tests/e2e/lib.sh starts them.
#include "bench/tool/deployment.h"

#include <unistd.h>

#include <regex>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
#include "bench/tool/admin_client.h"
#include "bench/tool/scenario.h"
#include "bench/tool/stream_watch.h"
#include "common/files.h"
#include "common/status.h"
#include "spiffe/certificate.h"

namespace tessera::bench {
namespace {

std::string ReadLog(const std::filesystem::path& log) {
  return ReadFileToString(log, 256 << 20).value_or("");
}

std::string Tail(const std::filesystem::path& log, size_t max_chars = 2000) {
  std::string text = ReadLog(log);
  return text.size() > max_chars ? text.substr(text.size() - max_chars) : text;
}

absl::Status WriteConfig(const std::filesystem::path& path, const std::string& text) {
  return WriteFileAtomically(path, text, 0600);
}

}  // namespace

void AddDaemonBinaryFlags(CLI::App& app, DaemonBinaries& binaries) {
  const std::filesystem::path build = SelfDir().parent_path().parent_path();
  binaries.server = (build / "server" / "tessera-server").string();
  binaries.agent = (build / "agent" / "tessera-agent").string();
  app.add_option("--server-bin", binaries.server, "tessera-server binary")->capture_default_str();
  app.add_option("--agent-bin", binaries.agent, "tessera-agent binary")->capture_default_str();
}

absl::Status DaemonFailed(std::string_view daemon, const absl::Status& status,
                          const std::filesystem::path& log) {
  const std::string tail = Tail(log);
  return absl::Status(status.code(),
                      absl::StrCat(std::string(daemon), ": ", status.message(),
                                   tail.empty() ? "; its log is empty"
                                                : absl::StrCat("; end of its log:\n", tail)));
}

absl::StatusOr<std::unique_ptr<ServerDaemon>> ServerDaemon::Start(const std::filesystem::path& dir,
                                                                  const std::string& binary,
                                                                  const std::string& extra_toml) {
  const std::filesystem::path admin = dir / "server-run" / "api.sock";
  ASSIGN_OR_RETURN(uint16_t port, FreePort());
  RETURN_IF_ERROR(WriteConfig(dir / "server.toml",
                              absl::Substitute(R"(trust_domain = "$0"
bind_address = "127.0.0.1"
bind_port = $1
socket_path = "$2"
data_dir = "$3"
log_format = "json"
$4
[node_attestor.join_token]
)",
                                               kBenchTrustDomain, port, admin.string(),
                                               (dir / "server-data").string(), extra_toml)));
  ASSIGN_OR_RETURN(NotifySocket notify, NotifySocket::Create(dir / "server-notify.sock"));
  const std::filesystem::path log = dir / "server.log";
  ASSIGN_OR_RETURN(ChildProcess process,
                   ChildProcess::Start({binary, "run", "--config", dir / "server.toml"}, log,
                                       {"NOTIFY_SOCKET=" + notify.path().string()}));
  auto server = std::unique_ptr<ServerDaemon>(new ServerDaemon(std::move(process)));
  server->binary_ = binary;
  server->admin_socket_ = admin;
  server->log_ = log;
  server->port_ = port;
  if (auto ready = notify.WaitReady(server->process_, std::chrono::seconds(60)); !ready.ok()) {
    return DaemonFailed("tessera-server", ready.status(), log);
  }
  ASSIGN_OR_RETURN(server->bundle_pem_,
                   RunCapture({binary, "bundle", "show", "--socket-path", admin}));
  return server;
}

absl::StatusOr<agent::ServerConnection> ServerDaemon::Connection() const {
  ASSIGN_OR_RETURN(std::vector<spiffe::Certificate> roots, spiffe::ParsePemChain(bundle_pem_),
                   Annotate(_, "the server's bundle"));
  return agent::ServerConnection{.target = absl::StrCat("127.0.0.1:", port_),
                                 .trust_domain = *spiffe::TrustDomain::Parse(kBenchTrustDomain),
                                 .bundle = std::move(roots),
                                 .timeout = std::chrono::seconds(60)};
}

absl::StatusOr<std::string> ServerDaemon::GenerateJoinToken(const std::string& node_id) const {
  ASSIGN_OR_RETURN(std::string out,
                   RunCapture({binary_, "token", "generate", "--spiffe-id", node_id, "--ttl", "600",
                               "--socket-path", admin_socket_}));
  std::smatch token;
  if (!std::regex_search(out, token, std::regex("Token: (\\S+)"))) {
    return absl::InternalError(absl::StrCat("no token in: ", out));
  }
  return token[1].str();
}

absl::StatusOr<std::unique_ptr<AgentDaemon>> AgentDaemon::Start(const std::filesystem::path& dir,
                                                                const std::string& binary,
                                                                const ServerDaemon& server,
                                                                const std::string& node_id,
                                                                const std::string& extra_toml) {
  RETURN_IF_ERROR(WriteConfig(dir / "bootstrap.pem", server.bundle_pem()));
  ASSIGN_OR_RETURN(std::string token, server.GenerateJoinToken(node_id));
  const std::filesystem::path socket = dir / "agent-run" / "api.sock";
  RETURN_IF_ERROR(WriteConfig(dir / "agent.toml",
                              absl::Substitute(R"(trust_domain = "$0"
server_address = "127.0.0.1:$1"
socket_path = "$2"
data_dir = "$3"
trust_bundle_path = "$4"
log_format = "json"
sync_interval = "1h"
$5
[node_attestor.join_token]
[workload_attestor.unix]
)",
                                               kBenchTrustDomain, server.port(), socket.string(),
                                               (dir / "agent-data").string(),
                                               (dir / "bootstrap.pem").string(), extra_toml)));
  ASSIGN_OR_RETURN(NotifySocket notify, NotifySocket::Create(dir / "agent-notify.sock"));
  const std::filesystem::path log = dir / "agent.log";
  ASSIGN_OR_RETURN(
      ChildProcess process,
      ChildProcess::Start({binary, "run", "--config", dir / "agent.toml", "--join-token", token},
                          log, {"NOTIFY_SOCKET=" + notify.path().string()}));
  auto agent = std::unique_ptr<AgentDaemon>(new AgentDaemon(std::move(process)));
  agent->socket_path_ = socket;
  agent->log_ = log;
  absl::StatusOr<std::string> ready = notify.WaitReady(agent->process_, std::chrono::seconds(60));
  if (ready.ok() && ready->find("unreachable") != std::string::npos) {
    ready = absl::UnavailableError(absl::StrCat("not synced: ", *ready));
  }
  if (!ready.ok()) return DaemonFailed("tessera-agent", ready.status(), log);
  return agent;
}

int64_t AgentDaemon::MintedSvids() const {
  static const std::regex kMinted("agent: minted ([0-9]+) X509-SVIDs");
  const std::string text = ReadLog(log_);
  int64_t total = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kMinted);
       it != std::sregex_iterator(); ++it) {
    total += std::stoll((*it)[1].str());
  }
  return total;
}

absl::Status AgentDaemon::WaitMinted(int64_t n, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (MintedSvids() < n) {
    if (!process_.Running()) {
      return DaemonFailed("tessera-agent", absl::AbortedError("exited"), log_);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("tessera-agent minted ", MintedSvids(), " of ", n, " SVIDs: ", Tail(log_)));
    }
    if (!SleepUnlessInterrupted(std::chrono::milliseconds(100))) return CheckInterrupted();
  }
  return absl::OkStatus();
}

absl::StatusOr<Deployment> StartDeployment(const std::string& prefix,
                                           const DaemonBinaries& binaries,
                                           const std::string& workload_id) {
  ASSIGN_OR_RETURN(TempDir dir, TempDir::Create(prefix));
  ASSIGN_OR_RETURN(std::unique_ptr<ServerDaemon> server,
                   ServerDaemon::Start(dir.path(), binaries.server));
  ASSIGN_OR_RETURN(std::unique_ptr<AgentDaemon> agent,
                   AgentDaemon::Start(dir.path(), binaries.agent, *server, kBenchNodeId));
  Deployment deployment{std::move(dir), std::move(server), std::move(agent)};
  if (workload_id.empty()) return deployment;
  RETURN_IF_ERROR(CreateEntries(deployment.server->admin_socket(),
                                {{.spiffe_id = workload_id,
                                  .parent_id = kBenchNodeId,
                                  .selectors = {absl::StrCat("unix:uid:", ::getuid())}}})
                      .status());
  const auto served = [&](const StreamEvent& e) { return !e.ended && Carries(e, workload_id); };
  ASSIGN_OR_RETURN(auto stream,
                   OpenStreamWhen(deployment.workload_target(), served, std::chrono::seconds(60)),
                   Annotate(_, absl::StrCat("the agent serving ", workload_id)));
  return deployment;
}

}  // namespace tessera::bench
