// WorkloadSocket: the agent's listening Unix socket for the Workload API (and SDS), with its own
// accept loop so the agent learns who connected before gRPC sees the connection (DESIGN.md, data
// flow 1): accept4, SO_PEERCRED, a pidfd pinning the peer process (SO_PEERPIDFD where the kernel
// has it, so there is no window at all between connect and pinning; pidfd_open(pid) otherwise),
// O_NONBLOCK (gRPC silently never answers on a blocking fd). Connections whose peer cannot be
// pinned (it exited already, or its pid is not visible in our pid namespace) are closed at once.
//
// Socket file rules: the parent directory is created 0755 when missing; an existing one must be
// owned by root or by the agent's user and must not be group/world-writable unless it has the
// sticky bit (otherwise another user could swap the socket for their own). A stale socket (nobody
// listening) is replaced; a socket somebody is listening on, or any other kind of file, is left
// alone and Listen fails. The socket is made 0666: any uid may connect, identity comes from the
// kernel, not from file permissions.
//
// Thread-safety: Listen, Start and Stop are called by the owner, one at a time (Stop is
// idempotent; never call it from the handler). The handler runs on the accept thread.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "agent/workload/caller_table.h"
#include "common/unique_fd.h"

namespace tessera::agent {

class WorkloadSocket {
 public:
  // Receives each accepted connection (non-blocking, close-on-exec) with its pinned caller.
  using ConnectionHandler =
      std::function<void(UniqueFd connection, std::shared_ptr<const ConnectedCaller> caller)>;

  // Checks and prepares the directory, replaces a stale socket, binds and listens. Errors name
  // the path and the rule that failed.
  static absl::StatusOr<std::unique_ptr<WorkloadSocket>> Listen(const std::string& path);

  ~WorkloadSocket();
  WorkloadSocket(const WorkloadSocket&) = delete;
  WorkloadSocket& operator=(const WorkloadSocket&) = delete;

  // Starts the accept thread.
  void Start(ConnectionHandler handler);
  // Stops accepting (joins the accept thread), closes the listening socket and removes the socket
  // file if it is still the one this object created.
  void Stop();

  const std::string& path() const { return path_; }

 private:
  WorkloadSocket(std::string path, UniqueFd listen_fd, UniqueFd wake_fd, dev_t dev, ino_t ino);
  void AcceptLoop(const ConnectionHandler& handler);
  // Waits up to `ms` for the wake fd; returns whether Stop was requested.
  bool WaitForStop(int ms) const;

  // Immutable after construction.
  const std::string path_;
  const dev_t dev_;
  const ino_t ino_;

  // Owned by the thread calling Start/Stop; the accept thread only reads the fds.
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;  // eventfd: readable once Stop was called
  std::thread thread_;
  bool stopped_ = false;
};

// Exposed for tests: peer credentials and a pidfd for an accepted (or socketpair) connection.
absl::StatusOr<std::shared_ptr<const ConnectedCaller>> IdentifyPeer(int connection_fd);

}  // namespace tessera::agent
