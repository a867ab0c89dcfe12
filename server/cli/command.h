// The plumbing every admin CLI command shares (internal to server/cli): the environment a command
// runs in (streams, the admin socket channel, the output format), a registrar that adds a leaf
// command with the common flags to CLI11, and the parsers that turn flag text into API values
// with a clear message before any RPC is made.
//
// Not thread-safe: a CLI invocation runs one command on one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "spiffe/id.h"
#include "spire/api/types/selector.pb.h"
#include "spire/api/types/spiffeid.pb.h"
#include "spire/api/types/status.pb.h"

namespace CLI {
class App;
}  // namespace CLI

namespace tessera::server::cli {

namespace types = ::spire::api::types;

// How long one RPC may take before the command gives up.
inline constexpr std::chrono::seconds kRpcTimeout{30};

// Flags every leaf command accepts.
struct CommonFlags {
  std::string socket_path;
  std::string output = "pretty";
};

class CommandEnv {
 public:
  CommandEnv(std::ostream& out, std::ostream& err, std::istream& in, const CommonFlags& flags);

  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  std::istream& in() { return in_; }
  const std::string& socket_path() const { return socket_path_; }
  bool json() const { return json_; }

  // The insecure channel to "unix:<socket path>", created on first use (gRPC connects lazily,
  // on the first RPC).
  std::shared_ptr<grpc::Channel> channel();
  // A context carrying the RPC deadline.
  static std::unique_ptr<grpc::ClientContext> NewContext();

  // Prints `message` on err and returns the failure exit code (1).
  int Fail(std::string_view message);
  // Prints the status's message.
  int Fail(const absl::Status& status);
  // A failed RPC: "cannot reach tessera-server at <path>: ..." when the server could not be
  // reached, otherwise "<what>: <server message>". Returns 1.
  int RpcFailed(std::string_view what, const grpc::Status& status);
  // A failed item of a batch RPC: "<what>: <message>", without repeating `what` when the server's
  // message already starts with it. Returns 1.
  int ItemFailed(std::string_view what, const types::Status& status);
  // The message as protojson (proto field names, unpopulated fields emitted), on one line, as
  // spire-server's `-output json` prints it. Returns 0, or 1 when it cannot be encoded.
  int PrintJson(const google::protobuf::Message& message);

 private:
  std::ostream& out_;
  std::ostream& err_;
  std::istream& in_;
  const std::string socket_path_;
  const bool json_;
  std::shared_ptr<grpc::Channel> channel_;
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

  // A leaf `parent <name>` with --socket-path and --output; `run` is called by RunParsed when the
  // leaf was named on the command line.
  CLI::App* AddLeaf(CLI::App* parent, const std::string& name, const std::string& description,
                    RunFn run);

  // Runs the leaf that was parsed; nullopt when none was.
  std::optional<int> RunParsed(std::ostream& out, std::ostream& err, std::istream& in);

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
void RegisterEntryCommands(CLI::App& app, Registrar& registrar);
void RegisterBundleCommands(CLI::App& app, Registrar& registrar);
void RegisterAgentCommands(CLI::App& app, Registrar& registrar);
void RegisterSvidCommands(CLI::App& app, Registrar& registrar);

// --- Flag parsing: every error names the flag and the offending value. ---

// A TTL as a duration ("1h30m", "90s") or a bare number of seconds ("3600"), rounded up to whole
// seconds, at most INT32_MAX.
absl::StatusOr<int32_t> ParseTtlFlag(std::string_view flag, std::string_view text);
// A SPIFFE ID, strictly.
absl::StatusOr<spiffe::SpiffeId> ParseIdFlag(std::string_view flag, std::string_view text);
// A trust domain, as a name or "spiffe://<name>".
absl::StatusOr<spiffe::TrustDomain> ParseTrustDomainFlag(std::string_view flag,
                                                         std::string_view text);
// "type:value" selectors, appended to `out` in the order given.
absl::Status ParseSelectorFlags(std::string_view flag, const std::vector<std::string>& texts,
                                google::protobuf::RepeatedPtrField<types::Selector>* out);
// An instant as Unix seconds ("1767225600") or RFC 3339 ("2026-01-01T00:00:00Z").
absl::StatusOr<int64_t> ParseTimeFlag(std::string_view flag, std::string_view text);
// "exact" | "subset" | "superset" | "any" → the MatchBehavior value (same numbering in both
// of SPIRE's match enums).
int MatchBehaviorFromFlag(std::string_view text);

types::SPIFFEID IdProto(const spiffe::SpiffeId& id);
// "spiffe://<td><path>" of a SPIFFEID as the server sent it ("" when unset).
std::string IdString(const types::SPIFFEID& id);
// "2026-01-02 15:04:05 +0000 UTC", the layout spire-server prints times in.
std::string FormatUnixTime(int64_t unix_seconds);
// "1 entry" / "3 entries".
std::string Plural(int64_t count, std::string_view singular, std::string_view plural);

}  // namespace tessera::server::cli
