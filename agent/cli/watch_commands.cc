// api watch (every X.509 update until SIGINT/SIGTERM) and healthcheck.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <ostream>
#include <stop_token>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "agent/cli/command.h"
#include "common/strings.h"
#include "common/unique_fd.h"

namespace tessera::agent::cli {
namespace {

// The one piece of process-wide state here: a signal handler can reach nothing else, and it
// may only store to a lock-free atomic. At most one watch runs per process at a time.
std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void OnStopSignal(int signo) { g_stop_signal.store(signo, std::memory_order_relaxed); }

// While alive, SIGINT and SIGTERM request a stop of `stop` instead of killing the process. The
// handler only sets a flag; a small thread turns it into request_stop(), which cancels the open
// stream (not something a signal handler may do). Restores the previous handlers and signal
// mask on destruction.
class StopOnSignals {
 public:
  explicit StopOnSignals(std::stop_source stop) {
    g_stop_signal.store(0);
    struct sigaction action {};
    action.sa_handler = OnStopSignal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
    // A caller that blocked these signals (to sigwait elsewhere) would never see them here.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &signals, &old_mask_);
    poller_ = std::jthread([stop](const std::stop_token& own) mutable {
      std::mutex mu;
      std::condition_variable_any cv;
      std::unique_lock lock(mu);
      while (!own.stop_requested()) {
        if (g_stop_signal.load(std::memory_order_relaxed) != 0) {
          stop.request_stop();
          return;
        }
        cv.wait_for(lock, own, std::chrono::milliseconds(50), [] { return false; });
      }
    });
  }
  ~StopOnSignals() {
    poller_.request_stop();
    poller_.join();
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
  sigset_t old_mask_{};
  std::jthread poller_;
};

struct WatchFlags {
  int max_updates = 0;
};

int Watch(CommandEnv& env, const WatchFlags& f) {
  if (f.max_updates < 0) return env.Fail("--max-updates must not be negative");
  auto client = env.Connect();
  if (!client.ok()) return env.Fail(client.status());
  std::stop_source stop;
  StopOnSignals signals(stop);
  int updates = 0;
  auto last = std::chrono::steady_clock::now();
  auto on_update = [&](const absl::StatusOr<spiffe::X509Context>& update) {
    if (!update.ok()) {
      // The client retries by itself; say what happened and keep watching.
      env.err() << env.Explain("failed to watch X509-SVIDs", update.status()) << "\n";
      env.err().flush();
      return;
    }
    auto now = std::chrono::steady_clock::now();
    auto elapsed = now - last;
    last = now;
    if (absl::Status s = VerifyX509Context(*update); !s.ok()) {
      env.err() << s.message() << "\n";
      env.err().flush();
      return;
    }
    if (env.json()) {
      // One document per line, so that a consumer can read the stream line by line.
      env.out() << X509ContextToJson(*update).dump() << "\n";
    } else {
      env.out() << FormatX509Context(*update, elapsed);
    }
    env.out().flush();
    if (f.max_updates > 0 && ++updates >= f.max_updates) stop.request_stop();
  };
  absl::Status result = (*client)->WatchX509Context(on_update, stop.get_token());
  // The callback has printed why already (InvalidArgument or Unimplemented: not retried).
  if (!result.ok()) return 1;
  return 0;
}

struct HealthFlags {
  bool shallow = false;
  bool verbose = false;
};

// Whether the endpoint accepts a connection within `timeout`, without speaking gRPC on it.
absl::Status ConnectOnce(const spiffe::WorkloadApiAddress& address,
                         std::chrono::milliseconds timeout) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNIX;
  const std::string where = address.transport == spiffe::WorkloadApiAddress::Transport::kUnix
                                ? address.socket_path
                                : absl::StrCat(address.host, ":", address.port);
  if (address.transport == spiffe::WorkloadApiAddress::Transport::kUnix) {
    auto* un = reinterpret_cast<sockaddr_un*>(&storage);
    if (address.socket_path.size() >= sizeof(un->sun_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("socket path ", address.socket_path, " is too long"));
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, address.socket_path.data(), address.socket_path.size());
    length = sizeof(sockaddr_un);
  } else if (auto* in4 = reinterpret_cast<sockaddr_in*>(&storage);
             inet_pton(AF_INET, address.host.c_str(), &in4->sin_addr) == 1) {
    family = in4->sin_family = AF_INET;
    in4->sin_port = htons(address.port);
    length = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (inet_pton(AF_INET6, address.host.c_str(), &in6->sin6_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("not an IP address: ", address.host));
    }
    family = in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(address.port);
    length = sizeof(sockaddr_in6);
  }
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&storage), length);
  int error = rc == 0 ? 0 : errno;
  if (error == EINPROGRESS) {
    pollfd p{.fd = fd.get(), .events = POLLOUT, .revents = 0};
    int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (ready == 0) {
      return absl::DeadlineExceededError(absl::StrCat("connect to ", where, " timed out"));
    }
    socklen_t len = sizeof(error);
    if (ready < 0 || ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
      error = errno;
    }
  }
  if (error == 0) return absl::OkStatus();
  if (error == EAGAIN) {
    return absl::UnavailableError(
        absl::StrCat("failed to connect to ", where, ": the agent's listen queue is full"));
  }
  return absl::UnavailableError(
      absl::StrCat("failed to connect to ", where, ": ", std::strerror(error)));
}

// spire-agent's semantics: healthy when the Workload API answers. By default the agent must
// answer a FetchX509SVID call, with an SVID or with PermissionDenied (it works, but has no
// identity for this caller, e.g. root on a node where root is not registered). --shallow only
// checks that the endpoint accepts connections.
int HealthCheck(CommandEnv& env, const HealthFlags& f) {
  auto client = env.Connect();
  if (!client.ok())
    return env.Fail(absl::StrCat("Agent is unhealthy: ", client.status().message()));
  if (f.verbose) env.out() << "Contacting Workload API at " << env.endpoint() << "...\n";
  absl::Status health;
  if (f.shallow) {
    health = ConnectOnce(env.address(), env.timeout());
    if (health.ok() && f.verbose) env.out() << "Workload API socket accepts connections.\n";
  } else {
    absl::StatusOr<spiffe::X509Context> context = (*client)->FetchX509Context();
    if (context.ok()) {
      if (f.verbose) env.out() << "SVID received over Workload API.\n";
    } else if (context.status().code() == absl::StatusCode::kPermissionDenied) {
      if (f.verbose) {
        env.out() << "Workload API answered PermissionDenied (" << AgentMessage(context.status())
                  << "): no identity for this caller.\n";
      }
    } else {
      health = context.status();
    }
  }
  if (!health.ok()) {
    env.out().flush();
    return env.Fail(absl::StrCat("Agent is unhealthy: ",
                                 env.Explain("the Workload API answered with an error", health)));
  }
  if (env.json()) {
    env.out() << R"({"healthy":true})"
              << "\n";
  } else {
    env.out() << "Agent is healthy.\n";
  }
  return 0;
}

}  // namespace

void RegisterWatchCommand(CLI::App& api, Registrar& registrar) {
  auto* flags = registrar.Make<WatchFlags>();
  CLI::App* watch = registrar.AddLeaf(
      &api, "watch", "print every X.509 update from the Workload API until interrupted",
      [flags](CommandEnv& env) { return Watch(env, *flags); });
  watch->add_option("--max-updates", flags->max_updates,
                    "stop after this many updates (default 0: until SIGINT or SIGTERM)");
}

void RegisterHealthCheckCommand(CLI::App& app, Registrar& registrar) {
  auto* flags = registrar.Make<HealthFlags>();
  CLI::App* health = registrar.AddLeaf(
      &app, "healthcheck", "check that the agent answers on the Workload API socket",
      [flags](CommandEnv& env) { return HealthCheck(env, *flags); });
  health->add_flag("--shallow", flags->shallow,
                   "only check that the socket accepts connections (no Workload API call)");
  health->add_flag("--verbose", flags->verbose, "print what is checked");
}

}  // namespace tessera::agent::cli
