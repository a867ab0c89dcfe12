// The callers connected to the Workload API socket, as the kernel identified them when the agent
// accepted each connection: pid, uid and gid from SO_PEERCRED, and a pidfd that pins the process
// that connected. gRPC names a connection it was handed with AddInsecureChannelFromFd "fd:<n>"
// (ServerContext::peer()), so the table is keyed by that file descriptor number. A number is
// reused only after gRPC closed the connection that had it, which happens after every call on it
// is over; the next accept that returns the same number replaces the entry.
//
// ConnectedCaller is immutable and shared (std::shared_ptr<const ConnectedCaller>): a call keeps
// its caller, and with it the pidfd, alive for as long as it needs them. CallerTable is safe for
// concurrent use.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"

namespace tessera::agent {

struct ConnectedCaller {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  // Refers to the process that connected, whatever later gets its pid. -1 only in tests that
  // build callers by hand; the endpoint never serves a connection it could not pin.
  UniqueFd pidfd;

  // OK while the process that connected is still running. Otherwise (it exited, even if its pid
  // now belongs to another process) FailedPrecondition "process <pid> has exited"; a caller
  // without a pidfd is never alive.
  absl::Status CheckAlive() const;
};

// "fd:<n>" -> n; nullopt for any other peer string.
std::optional<int> ParseFdPeer(std::string_view peer);

class CallerTable {
 public:
  CallerTable() = default;
  CallerTable(const CallerTable&) = delete;
  CallerTable& operator=(const CallerTable&) = delete;

  // Records the caller of the connection on `fd`, replacing what an earlier connection with the
  // same number left behind.
  void Insert(int fd, std::shared_ptr<const ConnectedCaller> caller);
  // nullptr when no connection with that number was accepted.
  std::shared_ptr<const ConnectedCaller> Find(int fd) const;
  // By gRPC peer string ("fd:<n>"); nullptr for an unknown or malformed peer.
  std::shared_ptr<const ConnectedCaller> FindByPeer(std::string_view peer) const;
  // Forgets every caller (their pidfds close once no call holds them).
  void Clear();
  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<int, std::shared_ptr<const ConnectedCaller>> callers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::agent
