// AdminCli: tessera-server's operator commands, run against a running server over its local admin
// Unix socket (plaintext gRPC, where every caller is an administrator) with SPIRE's server API v1:
//
//   entry create|update|delete|show|count    registration entries
//   token generate                           join tokens
//   bundle show|list|set|delete|count        the trust bundle and federated bundles
//   agent list|show|evict|ban|count          attested agents
//   x509 mint, jwt mint                      SVIDs for any workload ID
//   healthcheck                              whether the server answers on the socket
//
// Every command takes --socket-path (default /tmp/tessera-server/private/api.sock) and
// --output json|pretty. Pretty output follows spire-server's layout; JSON output is the API
// response as protojson. Bad flags are refused before any RPC; failures go to `err` and the
// command exits 1.
//
// Use from main:
//   CLI::App app;  tessera::server::cli::AdminCli admin(std::cout, std::cerr);
//   admin.Register(app);  CLI11_PARSE(app, argc, argv);
//   if (std::optional<int> rc = admin.RunParsed()) return *rc;
//
// Not thread-safe. The AdminCli must outlive the parse (CLI11 writes flag values into it), and
// the streams must outlive the AdminCli.
#pragma once

#include <iosfwd>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace tessera::server::cli {

inline constexpr std::string_view kDefaultSocketPath = "/tmp/tessera-server/private/api.sock";

class Registrar;

class AdminCli {
 public:
  AdminCli(std::ostream& out, std::ostream& err, std::istream& in = std::cin);
  ~AdminCli();
  AdminCli(const AdminCli&) = delete;
  AdminCli& operator=(const AdminCli&) = delete;

  // Adds the command groups above as subcommands of `app`. Call once.
  void Register(CLI::App& app);

  // After app.parse(): runs the command that was named and returns its exit code (0 success,
  // 1 failure); nullopt when none of these commands was on the command line.
  std::optional<int> RunParsed();

 private:
  std::ostream& out_;
  std::ostream& err_;
  std::istream& in_;
  std::unique_ptr<Registrar> registrar_;
};

// Parses `args` (args[0] is the program name) with a fresh CLI11 app holding only the admin
// commands and runs the command. CLI11's own errors and --help go to `err`/`out` with CLI11's
// exit codes. For tests and tools that need no other subcommands.
int RunAdminCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                std::istream& in = std::cin);

}  // namespace tessera::server::cli
