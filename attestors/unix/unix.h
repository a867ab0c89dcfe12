// The unix workload attestor: selectors from the kernel's view of the calling process, with
// SPIRE's selector names and semantics, so registration entries written for SPIRE's "unix" plugin
// match the same workloads.
//
// Config keys ([workload_attestor.unix]):
//   discover_workload_path  also report path and sha256 (default false). Needs the agent to be
//                           allowed to read /proc/<pid>/exe: root, or the workload's own user
//   workload_size_limit     largest executable, in bytes, that sha256 will hash: 0 (the default)
//                           means no limit, a negative value means never hash (no sha256)
//
// Selectors (type "unix"), read from /proc/<pid>/status:
//   uid:<n>                    the EFFECTIVE user id (second field of the Uid line), as SPIRE
//   user:<name>                its user name; left out when the uid has no name
//   gid:<n>                    the effective group id (second field of the Gid line)
//   group:<name>               its group name; left out when the gid has no name
//   supplementary_gid:<n>      each id of the Groups line
//   supplementary_group:<name> its name, when it has one
// With discover_workload_path:
//   path:<path>                readlink /proc/<pid>/exe: the path the binary was started from,
//                              with the kernel's " (deleted)" suffix when it has been unlinked
//   sha256:<hex>               lowercase hex SHA-256 of the running executable, read through
//                              /proc/<pid>/exe, so a binary deleted or replaced on disk since the
//                              process started is hashed as the process runs it
//
// A name lookup that fails or yields a name unfit for a selector leaves that name selector out
// (logged), as SPIRE does; an entry that needs it then does not match. Anything wrong with the
// process itself (vanished, unreadable, garbled status, executable too big) fails the attestation.
//
// Thread-safety: as attestors/workload_attestor.h says; the resolver must be safe for concurrent
// use.
#pragma once

// The GNU dialects (-std=gnu++20) predefine `unix` as 1, which would turn this namespace into a
// syntax error far from the cause.
#ifdef unix
#error "attestors/unix must be compiled as standard C++ (-std=c++20, not gnu++20)"
#endif

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "attestors/workload_attestor.h"
#include "common/config.h"

namespace tessera::attestors::unix {

inline constexpr std::string_view kPluginName = "unix";

struct Config {
  bool discover_workload_path = false;
  // Bytes; 0: no limit; negative: no sha256 selector.
  int64_t workload_size_limit = 0;
};

// Reads the plugin's table. Never fails: bad values are recorded in the table's document, which
// reports them when its Read returns (see common/config.h); use the result only after that.
Config ReadConfig(ConfigTable& table);

// Maps user and group ids to names. Implementations must be safe for concurrent use.
class NameResolver {
 public:
  virtual ~NameResolver() = default;
  // The name, std::nullopt when the id has none, or an error when the lookup itself failed.
  virtual absl::StatusOr<std::optional<std::string>> UserName(uid_t uid) const = 0;
  virtual absl::StatusOr<std::optional<std::string>> GroupName(gid_t gid) const = 0;
};

// The system's user and group databases through NSS (getpwuid_r / getgrgid_r), consulted on
// every call: a user added after the agent started gets its name selector at once.
std::shared_ptr<const NameResolver> SystemNameResolver();

// Seams for tests and for agents that see the host's /proc at another path (a DaemonSet that
// mounts it at /host/proc).
struct Options {
  // Where the process directories are: <proc_root>/<pid>/status, <proc_root>/<pid>/exe.
  std::string proc_root = "/proc";
  // Null: SystemNameResolver().
  std::shared_ptr<const NameResolver> resolver;
};

// The attestor. Fails only on an empty proc_root.
absl::StatusOr<std::unique_ptr<WorkloadAttestor>> NewAttestor(const Config& config,
                                                              Options options = {});

}  // namespace tessera::attestors::unix
