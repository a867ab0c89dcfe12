#include "agent/workload/workload_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "spdlog/spdlog.h"

// Linux 6.5; Debian 12's headers predate it.
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

namespace tessera::agent {
namespace {

absl::Status Errno(std::string_view what, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(AsAbsl(what), ": ", std::strerror(err)));
}

// Creates `dir` and any missing ancestors with mode 0755 (whatever the umask).
absl::Status MakeDirectories(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> missing;
  for (std::filesystem::path d = dir; !d.empty(); d = d.parent_path()) {
    struct stat st;
    if (::stat(d.c_str(), &st) == 0) break;
    if (errno != ENOENT) return Errno(absl::StrCat("stat ", d.string()), errno);
    missing.push_back(d);
    if (d == d.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST) {
      return Errno(absl::StrCat("create socket directory ", it->string()), errno);
    }
    if (::chmod(it->c_str(), 0755) != 0) {
      return Errno(absl::StrCat("chmod socket directory ", it->string()), errno);
    }
  }
  return absl::OkStatus();
}

absl::Status CheckDirectory(const std::filesystem::path& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Errno(absl::StrCat("stat ", dir.string()), errno);
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket directory ", dir.string(), " is not a directory"));
  }
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket directory ", dir.string(), " is owned by uid ", st.st_uid,
                     ": it must be owned by root or by the agent's user (uid ", ::geteuid(), ")"));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket directory ", dir.string(),
                     " is group- or world-writable without the sticky bit: another user could "
                     "replace the socket"));
  }
  return absl::OkStatus();
}

absl::StatusOr<sockaddr_un> SocketAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path ", path, " is too long (",
                                                   path.size(), " bytes, at most ",
                                                   sizeof(addr.sun_path) - 1, ")"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// Removes a socket nobody listens on; refuses to touch anything else.
absl::Status ReplaceStale(const std::string& path, const sockaddr_un& addr) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Errno(absl::StrCat("stat ", path), errno);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket; refusing to replace it"));
  }
  // Non-blocking: a live agent with a full backlog must not hang us (it answers EAGAIN).
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!probe.valid()) return Errno("socket", errno);
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0 ||
      errno == EAGAIN || errno == EINPROGRESS) {
    return absl::FailedPreconditionError(
        absl::StrCat("another process is listening on ", path, " (is an agent already running?)"));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Errno(absl::StrCat("remove stale socket ", path), errno);
  }
  spdlog::info("workload api: replaced stale socket {}", path);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const ConnectedCaller>> IdentifyPeer(int connection_fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(connection_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Errno("SO_PEERCRED", errno);
  }
  if (cred.pid <= 0) {
    return absl::FailedPreconditionError(
        "peer has no pid in the agent's pid namespace; cannot attest it");
  }
  auto caller = std::make_shared<ConnectedCaller>();
  caller->pid = cred.pid;
  caller->uid = cred.uid;
  caller->gid = cred.gid;

  // SO_PEERPIDFD names the very process that connected; pidfd_open(pid) can only name whoever
  // holds the pid now, which is the same process unless it exited and its pid was reused in the
  // instant since connect().
  int pidfd = -1;
  socklen_t pidfd_len = sizeof(pidfd);
  if (::getsockopt(connection_fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &pidfd_len) == 0) {
    caller->pidfd.Reset(pidfd);
  } else if (errno == ENOPROTOOPT || errno == EINVAL || errno == EOPNOTSUPP) {
    long fd = ::syscall(SYS_pidfd_open, cred.pid, 0);
    if (fd < 0) {
      int err = errno;
      if (err == ESRCH) {
        return absl::NotFoundError(
            absl::StrCat("process ", cred.pid, " exited before it could be pinned"));
      }
      return Errno(absl::StrCat("pidfd_open ", cred.pid), err);
    }
    caller->pidfd.Reset(static_cast<int>(fd));
  } else {
    int err = errno;
    if (err == ESRCH) {
      return absl::NotFoundError(
          absl::StrCat("process ", cred.pid, " exited before it could be pinned"));
    }
    return Errno("SO_PEERPIDFD", err);
  }
  return caller;
}

absl::StatusOr<std::unique_ptr<WorkloadSocket>> WorkloadSocket::Listen(const std::string& path) {
  if (path.empty() || path.front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path \"", path, "\" must be an absolute path"));
  }
  ASSIGN_OR_RETURN(sockaddr_un addr, SocketAddress(path));
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  RETURN_IF_ERROR(MakeDirectories(dir));
  RETURN_IF_ERROR(CheckDirectory(dir));
  RETURN_IF_ERROR(ReplaceStale(path, addr));

  UniqueFd listen_fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_fd.valid()) return Errno("socket", errno);
  if (::bind(listen_fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(absl::StrCat("bind ", path), errno);
  }
  struct stat st;
  if (::chmod(path.c_str(), 0666) != 0 || ::lstat(path.c_str(), &st) != 0) {
    absl::Status status = Errno(absl::StrCat("chmod ", path), errno);
    ::unlink(path.c_str());
    return status;
  }
  if (::listen(listen_fd.get(), SOMAXCONN) != 0) {
    absl::Status status = Errno(absl::StrCat("listen ", path), errno);
    ::unlink(path.c_str());
    return status;
  }
  UniqueFd wake_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd.valid()) {
    absl::Status status = Errno("eventfd", errno);
    ::unlink(path.c_str());
    return status;
  }
  return std::unique_ptr<WorkloadSocket>(
      new WorkloadSocket(path, std::move(listen_fd), std::move(wake_fd), st.st_dev, st.st_ino));
}

WorkloadSocket::WorkloadSocket(std::string path, UniqueFd listen_fd, UniqueFd wake_fd, dev_t dev,
                               ino_t ino)
    : path_(std::move(path)),
      dev_(dev),
      ino_(ino),
      listen_fd_(std::move(listen_fd)),
      wake_fd_(std::move(wake_fd)) {}

WorkloadSocket::~WorkloadSocket() { Stop(); }

void WorkloadSocket::Start(ConnectionHandler handler) {
  if (stopped_ || thread_.joinable()) return;
  thread_ = std::thread([this, handler = std::move(handler)] { AcceptLoop(handler); });
}

void WorkloadSocket::Stop() {
  if (stopped_) return;
  stopped_ = true;
  uint64_t one = 1;
  if (::write(wake_fd_.get(), &one, sizeof(one)) < 0) {
    spdlog::error("workload api: wake accept loop: {}", std::strerror(errno));
  }
  if (thread_.joinable()) thread_.join();
  listen_fd_.Reset();
  // Another agent may have replaced the file since (ours was stale to it): leave theirs.
  struct stat st;
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    if (::unlink(path_.c_str()) != 0) {
      spdlog::warn("workload api: remove socket {}: {}", path_, std::strerror(errno));
    }
  }
}

bool WorkloadSocket::WaitForStop(int ms) const {
  pollfd p{.fd = wake_fd_.get(), .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, ms) > 0;
}

void WorkloadSocket::AcceptLoop(const ConnectionHandler& handler) {
  for (;;) {
    pollfd fds[2] = {{.fd = listen_fd_.get(), .events = POLLIN, .revents = 0},
                     {.fd = wake_fd_.get(), .events = POLLIN, .revents = 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("workload api: poll: {}", std::strerror(errno));
      if (WaitForStop(100)) return;
      continue;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) {
      if ((fds[0].revents & (POLLERR | POLLNVAL)) != 0) {
        spdlog::error("workload api: listening socket {} failed; no longer accepting", path_);
        return;
      }
      continue;
    }
    // Non-blocking from the start: gRPC requires it of fds it is handed.
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED ||
          err == EPROTO) {
        continue;
      }
      // Out of descriptors or memory: back off instead of spinning on a readable socket.
      spdlog::error("workload api: accept on {}: {}", path_, std::strerror(err));
      if (WaitForStop(100)) return;
      continue;
    }
    UniqueFd connection(fd);
    absl::StatusOr<std::shared_ptr<const ConnectedCaller>> caller = IdentifyPeer(connection.get());
    if (!caller.ok()) {
      spdlog::warn("workload api: closing connection: {}", AsStd(caller.status().message()));
      continue;
    }
    handler(std::move(connection), std::move(*caller));
  }
}

}  // namespace tessera::agent
