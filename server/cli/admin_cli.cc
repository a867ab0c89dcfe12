#include "server/cli/admin_cli.h"

#include "CLI/CLI.hpp"
#include "server/cli/command.h"

namespace tessera::server::cli {

AdminCli::AdminCli(std::ostream& out, std::ostream& err, std::istream& in)
    : out_(out), err_(err), in_(in), registrar_(std::make_unique<Registrar>()) {}

AdminCli::~AdminCli() = default;

void AdminCli::Register(CLI::App& app) {
  RegisterEntryCommands(app, *registrar_);
  RegisterBundleCommands(app, *registrar_);
  RegisterAgentCommands(app, *registrar_);
  RegisterSvidCommands(app, *registrar_);
}

std::optional<int> AdminCli::RunParsed() { return registrar_->RunParsed(out_, err_, in_); }

int RunAdminCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                std::istream& in) {
  CLI::App app("tessera-server admin commands");
  app.require_subcommand(1);
  AdminCli admin(out, err, in);
  admin.Register(app);
  // CLI11 wants a C argv; the strings outlive the parse.
  std::vector<const char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  if (argv.empty()) argv.push_back("tessera-server");
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err);
  }
  return admin.RunParsed().value_or(2);
}

}  // namespace tessera::server::cli
