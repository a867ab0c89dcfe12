// ApiCli: tessera-agent's client commands, run by any user against a local agent's SPIFFE
// Workload API (the same calls a workload makes, through spiffe::WorkloadApiClient):
//
//   api fetch x509      the caller's X509-SVIDs and bundles (--write DIR saves them as files)
//   api fetch jwt       JWT-SVIDs for --audience, and the JWT bundles
//   api fetch bundles   the X.509 bundles of every trust domain, as PEM
//   api validate jwt    asks the agent to validate a JWT-SVID (exit 1 when it is not valid)
//   api watch           prints every X.509 update until SIGINT/SIGTERM (or --max-updates)
//   healthcheck         whether the agent answers on the Workload API socket
//
// Every command takes --socket-path (a socket path, or a unix:// or tcp:// URI), --output
// json|pretty and --timeout. Without --socket-path the endpoint is SPIFFE_ENDPOINT_SOCKET, else
// ApiCliOptions::default_socket_path; the agent's configuration file is not read. Pretty output
// follows spire-agent's layout; JSON output has the shape of the Workload API responses
// (protojson field names, bytes in base64), except that private keys are never printed. Bad
// flags are refused before any call; failures go to `err` with a reason (no agent at the socket,
// connection refused, permission denied, timeout) and the command exits 1.
//
// Use from main:
//   CLI::App app;  tessera::agent::cli::ApiCli api(std::cout, std::cerr);
//   api.Register(app);  CLI11_PARSE(app, argc, argv);
//   if (std::optional<int> rc = api.RunParsed()) return *rc;
//
// Not thread-safe. The ApiCli must outlive the parse (CLI11 writes flag values into it), and the
// streams must outlive the ApiCli. `api watch` installs SIGINT and SIGTERM handlers while it runs
// (restoring the previous ones afterwards), so call RunParsed before blocking those signals.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace tessera::agent::cli {

// Where tessera-agent serves the Workload API unless configured otherwise (AgentConfig's default).
inline constexpr std::string_view kDefaultSocketPath = "/run/tessera/agent/api.sock";

struct ApiCliOptions {
  // The endpoint when neither --socket-path nor SPIFFE_ENDPOINT_SOCKET is given.
  std::string default_socket_path = std::string(kDefaultSocketPath);
  // Returns SPIFFE_ENDPOINT_SOCKET's value, nullopt when unset. Empty: read the process
  // environment when a command runs. Tests inject a value here instead of calling setenv.
  std::function<std::optional<std::string>()> endpoint_socket_env;
};

class Registrar;

class ApiCli {
 public:
  ApiCli(std::ostream& out, std::ostream& err, ApiCliOptions options = {});
  ~ApiCli();
  ApiCli(const ApiCli&) = delete;
  ApiCli& operator=(const ApiCli&) = delete;

  // Adds `api` (fetch, validate, watch) and `healthcheck` as subcommands of `app`. Call once.
  void Register(CLI::App& app);

  // After app.parse(): runs the command that was named and returns its exit code (0 success,
  // 1 failure); nullopt when none of these commands was on the command line.
  std::optional<int> RunParsed();

 private:
  std::ostream& out_;
  std::ostream& err_;
  const ApiCliOptions options_;
  std::unique_ptr<Registrar> registrar_;
};

// Parses `args` (args[0] is the program name) with a fresh CLI11 app holding only these commands
// and runs the command. CLI11's own errors and --help go to `err`/`out` with CLI11's exit codes.
// For tests and tools that need no other subcommands.
int RunApiCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
              ApiCliOptions options = {});

}  // namespace tessera::agent::cli
