// tessera-server: parses the command line and hands over to the command it names.
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "server/config.h"

namespace {

int Validate(const std::string& config_path) {
  absl::StatusOr<tessera::server::ServerConfig> config =
      tessera::server::LoadServerConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  std::printf("%s: configuration is valid (trust domain %s)\n", config_path.c_str(),
              config->trust_domain.name().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("tessera-server: the SPIFFE trust domain's CA and registry");
  app.require_subcommand(1);

  std::string config_path = "/etc/tessera/server.toml";
  CLI::App* validate = app.add_subcommand("validate", "check a configuration file and exit");
  validate->add_option("-c,--config", config_path, "configuration file")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (validate->parsed()) return Validate(config_path);
  return 2;
}
