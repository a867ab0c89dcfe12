// The plumbing every agent client command shares (internal to agent/cli): the environment a
// command runs in (streams, the resolved Workload API endpoint, the output format, the timeout),
// a registrar that adds a leaf command with the common flags to CLI11, the wording of failures,
// and the printers several commands use.
//
// Not thread-safe: a CLI invocation runs one command on one thread (`api watch` prints from the
// thread that runs the watch, which is the command's own).
#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/cli/api_cli.h"
#include "nlohmann/json.hpp"
#include "spiffe/bundle.h"
#include "spiffe/workload_client.h"

namespace tessera::agent::cli {

// How long a fetch may take unless --timeout says otherwise (spire-agent's default too).
inline constexpr std::chrono::seconds kDefaultTimeout{5};

// Flags every leaf command accepts.
struct CommonFlags {
  std::string socket_path;  // empty: SPIFFE_ENDPOINT_SOCKET, else the default socket
  std::string output = "pretty";
  std::string timeout = "5s";
};

class CommandEnv {
 public:
  CommandEnv(std::ostream& out, std::ostream& err, const CommonFlags& flags,
             const ApiCliOptions& options);

  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  bool json() const { return flags_.output == "json"; }

  // Resolves the endpoint (--socket-path, else SPIFFE_ENDPOINT_SOCKET, else the default socket)
  // and --timeout, and makes a client for it; nothing connects yet. The error names the flag or
  // variable at fault.
  absl::StatusOr<std::unique_ptr<spiffe::WorkloadApiClient>> Connect();
  // The endpoint Connect resolved, for messages: the socket path, or tcp://host:port.
  const std::string& endpoint() const { return endpoint_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  const spiffe::WorkloadApiAddress& address() const { return address_; }

  // Prints `message` on err and returns the failure exit code (1).
  int Fail(std::string_view message);
  int Fail(const absl::Status& status);
  // A failed Workload API call, explained (see Explain). Returns 1.
  int CallFailed(std::string_view what, const absl::Status& status);
  // "cannot reach the Workload API at <endpoint>: no such socket (is tessera-agent running?)",
  // "... connection refused ...", "... permission denied ...", "no answer from the Workload API
  // at <endpoint> within 5s" when the agent could not be reached; "<what>: <agent's message>"
  // when it answered with an error.
  std::string Explain(std::string_view what, const absl::Status& status) const;

 private:
  std::ostream& out_;
  std::ostream& err_;
  const CommonFlags& flags_;
  const ApiCliOptions& options_;
  spiffe::WorkloadApiAddress address_;
  std::string endpoint_;
  std::chrono::milliseconds timeout_ = kDefaultTimeout;
};

// Adds leaf commands to a CLI11 tree and keeps what they need alive (flag storage, the function
// to run) for as long as the registrar lives.
class Registrar {
 public:
  using RunFn = std::function<int(CommandEnv&)>;

  Registrar() = default;
  Registrar(const Registrar&) = delete;
  Registrar& operator=(const Registrar&) = delete;

  // Storage for a command's flags, owned by the registrar.
  template <typename T>
  T* Make() {
    auto owned = std::make_shared<T>();
    T* raw = owned.get();
    owned_.push_back(std::move(owned));
    return raw;
  }

  // A leaf `parent <name>` with --socket-path, --output and --timeout; `run` is called by
  // RunParsed when the leaf was named on the command line.
  CLI::App* AddLeaf(CLI::App* parent, const std::string& name, const std::string& description,
                    RunFn run);

  // Runs the leaf that was parsed; nullopt when none was.
  std::optional<int> RunParsed(std::ostream& out, std::ostream& err, const ApiCliOptions& options);

 private:
  struct Leaf {
    CLI::App* app;
    std::unique_ptr<CommonFlags> flags;
    RunFn run;
  };
  std::vector<Leaf> leaves_;
  std::vector<std::shared_ptr<void>> owned_;
};

// Each command family adds its leaves.
void RegisterFetchCommands(CLI::App& api, Registrar& registrar);
// `fetch secrets` under `fetch` (sds_commands.cc).
void RegisterSecretsCommand(CLI::App* fetch, Registrar& registrar);
void RegisterWatchCommand(CLI::App& api, Registrar& registrar);
void RegisterHealthCheckCommand(CLI::App& app, Registrar& registrar);

// --- Printing X509 contexts (fetch x509 and watch). ---

// spire-agent's summary: "Received 2 svids after 1.234ms", then per SVID its ID, hint, serial,
// validity, intermediates and the CAs of its own and every federated trust domain.
std::string FormatX509Context(const spiffe::X509Context& context,
                              std::chrono::nanoseconds response_time);
// The X509SVIDResponse shape, as protojson would print it: {"svids": [{"spiffe_id", "x509_svid",
// "bundle", "hint"}], "crl": [], "federated_bundles": {"spiffe://td": base64 DER}}. The private
// key ("x509_svid_key") is left out: keys go to files (--write), never to the terminal.
nlohmann::json X509ContextToJson(const spiffe::X509Context& context);
// Checks each SVID's chain against its own trust domain's bundle (as spire-agent does before
// printing): an agent handing out SVIDs its own bundle does not validate is broken.
absl::Status VerifyX509Context(const spiffe::X509Context& context);

// "2026-01-02 15:04:05 +0000 UTC", the layout spire-agent prints times in.
std::string FormatTime(std::chrono::system_clock::time_point t);
// "1.234ms", "2.5s": a response time as Go prints a time.Duration (rounded to microseconds).
std::string FormatResponseTime(std::chrono::nanoseconds d);
// The agent's own message, without the client's "workload api <Method>: " prefix.
std::string_view AgentMessage(const absl::Status& status);

}  // namespace tessera::agent::cli
