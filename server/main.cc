// tessera-server: parses the command line and hands over to the command it names.
//   run       start the server (foreground; systemd Type=notify)
//   validate  check a configuration file
//   entry, token, bundle, agent, x509, jwt, healthcheck: operator commands over the admin socket
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "common/strings.h"
#include "server/cli/admin_cli.h"
#include "server/config.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

namespace {

using tessera::server::ServerConfig;

absl::StatusOr<ServerConfig> Load(const std::string& config_path) {
  absl::StatusOr<ServerConfig> config = tessera::server::LoadServerConfig(config_path);
  if (!config.ok()) std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
  return config;
}

int Validate(const std::string& config_path) {
  absl::StatusOr<ServerConfig> config = Load(config_path);
  if (!config.ok()) return 1;
  std::printf("%s: configuration is valid (trust domain %s)\n", config_path.c_str(),
              config->trust_domain.name().c_str());
  return 0;
}

int Run(const std::string& config_path) {
  absl::StatusOr<ServerConfig> config = Load(config_path);
  if (!config.ok()) return 1;
  if (absl::Status s = tessera::logging::Init(
          {.level = config->log_level, .format = config->log_format, .program = "tessera-server"});
      !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  // Signals are taken synchronously by one thread; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto server = tessera::server::Server::Start(*std::move(config));
  if (!server.ok()) {
    spdlog::critical("server: cannot start: {}", tessera::AsStd(server.status().message()));
    return 1;
  }
  sd_notify(0, "READY=1\nSTATUS=serving");
  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("server: received {}", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  sd_notify(0, "STOPPING=1");
  (*server)->Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds abseil without NDEBUG, which leaves absl::Mutex's deadlock detection on: a
  // lock-order graph updated on every lock and unlock (GraphCycles::GetId alone was 1.7% of the
  // agent's perf samples under Workload API calls). The unit tests keep it on; the daemons need not
  // pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app("tessera-server: the SPIFFE trust domain's CA and registry");
  app.require_subcommand(1);

  std::string config_path = "/etc/tessera/server.toml";
  CLI::App* run = app.add_subcommand("run", "run the server in the foreground");
  run->add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  CLI::App* validate = app.add_subcommand("validate", "check a configuration file and exit");
  validate->add_option("-c,--config", config_path, "configuration file")->capture_default_str();

  tessera::server::cli::AdminCli admin(std::cout, std::cerr);
  admin.Register(app);

  CLI11_PARSE(app, argc, argv);
  if (run->parsed()) return Run(config_path);
  if (validate->parsed()) return Validate(config_path);
  if (std::optional<int> rc = admin.RunParsed()) return *rc;
  return 2;
}
