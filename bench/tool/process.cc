// Temporary directories, child processes, /proc memory readings and the notify socket.
#include "bench/tool/process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/tool/scenario.h"
#include "common/status.h"

extern char** environ;

namespace tessera::bench {
namespace {

absl::Status Errno(std::string_view what) {
  return absl::InternalError(absl::StrCat(std::string(what), ": ", std::strerror(errno)));
}

// Forks a child running `argv` with stdout on `out_fd` (and stderr on `err_fd` unless -1). Only
// async-signal-safe calls between fork and exec: the tool has gRPC threads.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int out_fd, int err_fd,
                            const std::vector<std::string>& extra_env) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    // The tool's own NOTIFY_SOCKET (if run under systemd) must not reach the daemons.
    if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) env_storage.emplace_back(*e);
  }
  for (const std::string& e : extra_env) env_storage.push_back(e);
  std::vector<char*> env;
  for (std::string& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGINT, SIG_IGN);  // Ctrl-C goes to the tool, which stops its children in order.
    signal(SIGPIPE, SIG_DFL);
    dup2(out_fd, STDOUT_FILENO);
    if (err_fd >= 0) dup2(err_fd, STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    execve(args[0], args.data(), env.data());
    _exit(127);
  }
  return pid;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits for `pid` up to `timeout`; the decoded exit status, or nullopt if it still runs.
std::optional<int> WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return DecodeWaitStatus(status);
    if (r < 0 && errno != EINTR) return -1;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

absl::StatusOr<TempDir> TempDir::Create(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/", prefix, "-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) return Errno("mkdtemp");
  return TempDir(pattern);
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (const char* keep = std::getenv("TESSERA_BENCH_KEEP"); keep != nullptr && *keep != '\0') {
    std::cerr << "kept " << path_.string() << " (TESSERA_BENCH_KEEP)\n";
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

absl::StatusOr<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv,
                                                 const std::filesystem::path& log_file,
                                                 const std::vector<std::string>& env) {
  UniqueFd log(open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log) return Errno(absl::StrCat("open ", log_file.string()));
  ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, log.get(), log.get(), env));
  return ChildProcess(pid);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Stop();
}

bool ChildProcess::Running() {
  if (pid_ <= 0) return false;
  if (std::optional<int> status = WaitFor(pid_, std::chrono::milliseconds(0))) {
    exit_status_ = *status;
    pid_ = -1;
    return false;
  }
  return true;
}

int ChildProcess::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return exit_status_;
  kill(pid_, SIGTERM);
  kill(pid_, SIGCONT);
  std::optional<int> status = WaitFor(pid_, grace);
  if (!status) {
    kill(pid_, SIGKILL);
    status = WaitFor(pid_, std::chrono::seconds(10));
  }
  exit_status_ = status.value_or(-1);
  pid_ = -1;
  return exit_status_;
}

absl::StatusOr<std::string> RunCapture(const std::vector<std::string>& argv,
                                       std::chrono::seconds timeout) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Errno("pipe");
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, write_end.get(), -1, {}));
  ChildProcess child(pid);  // killed and reaped on every return below
  write_end = UniqueFd();
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (true) {
    RETURN_IF_ERROR(CheckInterrupted());
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(argv[0], ": no exit after ", timeout.count(), " s"));
    }
    pollfd p{.fd = read_end.get(), .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = read(read_end.get(), buf, sizeof(buf));
    if (n == 0) break;
    if (n > 0) out.append(buf, static_cast<size_t>(n));
  }
  std::optional<int> status;
  while (!(status = WaitFor(child.pid_, std::chrono::milliseconds(100)))) {
    RETURN_IF_ERROR(CheckInterrupted());
  }
  child.pid_ = -1;
  if (*status != 0) {
    return absl::InternalError(
        absl::StrCat(absl::StrJoin(argv, " "), ": exit status ", *status, "; output: ", out));
  }
  return out;
}

absl::StatusOr<double> ReadCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces; count fields after its closing parenthesis.
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return absl::InternalError("cannot read /proc/<pid>/stat");
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  double utime = 0;
  double stime = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) {
      stime = std::stod(field);
      return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
  }
  return absl::InternalError("short /proc/<pid>/stat");
}

absl::StatusOr<Memory> ReadMemory(pid_t pid) {
  Memory memory;
  bool found_rss = false, found_pss = false;
  std::string line;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      found_rss = (std::istringstream(line.substr(6)) >> memory.rss_kib).good();
    }
  }
  std::ifstream rollup(absl::StrCat("/proc/", pid, "/smaps_rollup"));
  while (std::getline(rollup, line)) {
    if (line.rfind("Pss:", 0) == 0) {
      found_pss = (std::istringstream(line.substr(4)) >> memory.pss_kib).good();
    }
  }
  if (!found_rss || !found_pss) {
    return absl::NotFoundError(absl::StrCat("no VmRSS/Pss for pid ", pid, " in /proc"));
  }
  return memory;
}

absl::StatusOr<NotifySocket> NotifySocket::Create(const std::filesystem::path& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno("notify socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", path.string()));
  }
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(absl::StrCat("bind ", path.string()));
  }
  return NotifySocket(std::move(fd), path);
}

absl::StatusOr<std::string> NotifySocket::WaitReady(ChildProcess& child,
                                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (true) {
    RETURN_IF_ERROR(CheckInterrupted());
    if (!child.Running()) return absl::AbortedError("exited before it was ready");
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("not ready after ", timeout.count() / 1000.0, " s"));
    }
    pollfd p{.fd = fd_.get(), .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = recv(fd_.get(), buf, sizeof(buf) - 1, 0);
    if (n <= 0) continue;
    const std::string_view message(buf, static_cast<size_t>(n));
    if (message.find("READY=1") != std::string_view::npos) return std::string(message);
  }
}

absl::StatusOr<uint16_t> FreePort() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Errno("find a free port");
  }
  return ntohs(addr.sin_port);
}

std::filesystem::path SelfDir() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path() : self.parent_path();
}

}  // namespace tessera::bench
