// tessera-agent: parses the command line and hands over to the command it names.
//   validate  check a configuration file
// To come, beside it: run (the agent in the foreground; systemd Type=notify), api fetch/watch/
// validate (Workload API client commands) and healthcheck.
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "agent/config.h"

namespace {

using tessera::agent::AgentConfig;

constexpr char kDefaultConfigPath[] = "/etc/tessera/agent.toml";

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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("tessera-agent: SPIFFE identities for the workloads of this node");
  app.require_subcommand(1);

  std::string config_path = kDefaultConfigPath;
  CLI::App* validate = app.add_subcommand("validate", "check a configuration file and exit");
  validate->add_option("-c,--config", config_path, "configuration file")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (validate->parsed()) return Validate(config_path);
  return 2;
}
