#include "agent/cli/api_cli.h"

#include "CLI/CLI.hpp"
#include "agent/cli/command.h"

namespace tessera::agent::cli {

ApiCli::ApiCli(std::ostream& out, std::ostream& err, ApiCliOptions options)
    : out_(out),
      err_(err),
      options_(std::move(options)),
      registrar_(std::make_unique<Registrar>()) {}

ApiCli::~ApiCli() = default;

void ApiCli::Register(CLI::App& app) {
  CLI::App* api = app.add_subcommand("api", "talk to the agent's Workload API as a workload does");
  api->require_subcommand(1);
  RegisterFetchCommands(*api, *registrar_);
  RegisterWatchCommand(*api, *registrar_);
  RegisterHealthCheckCommand(app, *registrar_);
}

std::optional<int> ApiCli::RunParsed() { return registrar_->RunParsed(out_, err_, options_); }

int RunApiCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
              ApiCliOptions options) {
  CLI::App app("tessera-agent client commands");
  app.require_subcommand(1);
  ApiCli cli(out, err, std::move(options));
  cli.Register(app);
  // CLI11 wants a C argv; the strings outlive the parse.
  std::vector<const char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  if (argv.empty()) argv.push_back("tessera-agent");
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err);
  }
  return cli.RunParsed().value_or(2);
}

}  // namespace tessera::agent::cli
