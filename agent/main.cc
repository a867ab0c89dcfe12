// tessera-agent: parses the command line and hands over to the command it names.
//   run          the agent in the foreground (systemd Type=notify)
//   validate     check a configuration file
//   api ...      Workload API client commands (fetch x509|jwt|bundles, validate jwt, watch)
//   healthcheck  ask a running agent whether it serves
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <stop_token>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "agent/agent.h"
#include "agent/cli/api_cli.h"
#include "agent/config.h"
#include "common/logging.h"
#include "common/strings.h"
#include "spdlog/spdlog.h"

namespace {

using tessera::agent::AgentConfig;

constexpr char kDefaultConfigPath[] = "/etc/tessera/agent.toml";
// How long `run` waits for the first sync before it tells systemd it is ready anyway: the agent
// keeps retrying the server on its own, so a restart loop would gain nothing.
constexpr auto kFirstSyncWait = std::chrono::seconds(60);

absl::StatusOr<AgentConfig> Load(const std::string& config_path) {
  absl::StatusOr<AgentConfig> config = tessera::agent::LoadAgentConfig(config_path);
  if (!config.ok()) std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
  return config;
}

int Validate(const std::string& config_path) {
  absl::StatusOr<AgentConfig> config = Load(config_path);
  if (!config.ok()) return 1;
  std::printf("%s: configuration is valid (trust domain %s)\n", config_path.c_str(),
              config->trust_domain.name().c_str());
  return 0;
}

int Run(const std::string& config_path, const std::string& join_token) {
  absl::StatusOr<AgentConfig> config = Load(config_path);
  if (!config.ok()) return 1;
  if (absl::Status s = tessera::logging::Init(
          {.level = config->log_level, .format = config->log_format, .program = "tessera-agent"});
      !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  // Signals are taken synchronously by one thread; every other thread inherits the mask. The
  // signal thread turns SIGTERM/SIGINT into a stop request, which also interrupts a start that
  // is still waiting for the server.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  std::stop_source stop;
  std::jthread signal_thread([&signals, &stop] {
    int signal = 0;
    sigwait(&signals, &signal);
    spdlog::info("agent: received {}", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    stop.request_stop();
  });

  sd_notify(0, "STATUS=attesting");
  auto agent = tessera::agent::Agent::Start(*std::move(config), {.join_token = join_token},
                                            stop.get_token());
  if (!agent.ok()) {
    if (stop.stop_requested()) return 0;
    spdlog::critical("agent: cannot start: {}", tessera::AsStd(agent.status().message()));
    // Let the signal thread go: nothing else will wake it.
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    return 1;
  }
  sd_notify(0, "STATUS=waiting for the first sync with the server");
  if ((*agent)->WaitForFirstSync(kFirstSyncWait, stop.get_token())) {
    sd_notify(0, "READY=1\nSTATUS=serving");
  } else if (!stop.stop_requested()) {
    spdlog::warn("agent: no sync with the server after {} s; serving anyway and retrying",
                 kFirstSyncWait.count());
    sd_notify(0, "READY=1\nSTATUS=serving; server unreachable, retrying");
  }
  signal_thread.join();
  sd_notify(0, "STOPPING=1");
  (*agent)->Shutdown();
  spdlog::info("agent: stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds abseil without NDEBUG, which leaves absl::Mutex's deadlock detection on: a
  // lock-order graph updated on every lock and unlock (GraphCycles::GetId alone was 1.7% of the
  // agent's perf samples under Workload API calls). The unit tests keep it on; the daemons need not
  // pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app("tessera-agent: SPIFFE identities for the workloads of this node");
  app.require_subcommand(1);

  std::string config_path = kDefaultConfigPath;
  std::string join_token;
  CLI::App* run = app.add_subcommand("run", "run the agent in the foreground");
  run->add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  run->add_option("--join-token", join_token,
                  "join token for the first attestation (overrides the config file)");
  CLI::App* validate = app.add_subcommand("validate", "check a configuration file and exit");
  validate->add_option("-c,--config", config_path, "configuration file")->capture_default_str();

  // The client commands talk to the socket the installed configuration names, when there is one
  // to read; --socket-path and SPIFFE_ENDPOINT_SOCKET override it.
  tessera::agent::cli::ApiCliOptions api_options;
  if (std::error_code ec; std::filesystem::exists(kDefaultConfigPath, ec)) {
    if (auto installed = tessera::agent::LoadAgentConfig(kDefaultConfigPath); installed.ok()) {
      api_options.default_socket_path = installed->socket_path.string();
    }
  }
  tessera::agent::cli::ApiCli api(std::cout, std::cerr, std::move(api_options));
  api.Register(app);

  CLI11_PARSE(app, argc, argv);
  if (run->parsed()) return Run(config_path, join_token);
  if (validate->parsed()) return Validate(config_path);
  if (std::optional<int> rc = api.RunParsed()) return *rc;
  return 2;
}
