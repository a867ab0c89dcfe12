// The operating-system side of tessera-bench: temporary directories, child processes that never
// outlive the tool, memory readings from /proc, a systemd-style notify socket, free ports.
//
// Not thread-safe: each object belongs to the scenario (main thread) that made it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace tessera::bench {

// A private directory under $TMPDIR (or /tmp), removed with everything in it on destruction
// (kept, with its daemons' configs and logs, when TESSERA_BENCH_KEEP is set and not empty).
class TempDir {
 public:
  static absl::StatusOr<TempDir> Create(const std::string& prefix);
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

// A child process started with fork/exec, its stdout and stderr appended to a log file. It gets
// SIGKILL if the tool dies (PR_SET_PDEATHSIG); the destructor sends SIGTERM, waits a few
// seconds, then SIGKILLs and reaps it.
class ChildProcess {
 public:
  // `env` entries ("NAME=value") are added to the tool's environment.
  static absl::StatusOr<ChildProcess> Start(const std::vector<std::string>& argv,
                                            const std::filesystem::path& log_file,
                                            const std::vector<std::string>& env = {});
  ChildProcess(ChildProcess&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }
  ChildProcess& operator=(ChildProcess&&) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // Whether it still runs (reaps it when it has exited).
  bool Running();
  // SIGTERM, then SIGKILL after `grace`; returns its exit status (128+signal when killed).
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  friend absl::StatusOr<std::string> RunCapture(const std::vector<std::string>&,
                                                std::chrono::seconds);
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

// Runs `argv` to completion (at most `timeout`) and returns its stdout; stderr goes to the tool's
// stderr. A non-zero exit is an error carrying the output.
absl::StatusOr<std::string> RunCapture(const std::vector<std::string>& argv,
                                       std::chrono::seconds timeout = std::chrono::seconds(60));

struct Memory {
  int64_t rss_kib = 0;  // VmRSS of /proc/<pid>/status
  int64_t pss_kib = 0;  // Pss of /proc/<pid>/smaps_rollup (shared pages split among sharers)
};
absl::StatusOr<Memory> ReadMemory(pid_t pid);

// CPU time `pid` has used so far, user + system, in seconds (/proc/<pid>/stat utime, stime).
absl::StatusOr<double> ReadCpuSeconds(pid_t pid);

// A Unix datagram socket a child gets as NOTIFY_SOCKET, like systemd's: the daemons send
// "READY=1" on it when they are ready (the agent: after its first sync with the server).
class NotifySocket {
 public:
  static absl::StatusOr<NotifySocket> Create(const std::filesystem::path& path);
  const std::filesystem::path& path() const { return path_; }
  // Waits until a message containing READY=1 arrives and returns it; DeadlineExceeded after
  // `timeout`, Cancelled when interrupted, Aborted when `child` exits meanwhile.
  absl::StatusOr<std::string> WaitReady(ChildProcess& child, std::chrono::milliseconds timeout);

 private:
  NotifySocket(UniqueFd fd, std::filesystem::path path)
      : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::filesystem::path path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
absl::StatusOr<uint16_t> FreePort();

// The directory holding this executable (/proc/self/exe).
std::filesystem::path SelfDir();

}  // namespace tessera::bench
