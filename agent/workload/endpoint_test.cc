// The endpoint's socket and caller identity: socket file rules, shutdown, attestors (their
// deadline: endpoint_deadline_test.cc), callers of different uids, and a connection whose process
// has exited (PID reuse).
#include "agent/workload/endpoint.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>

#include "agent/workload/attestation.h"
#include "agent/workload/caller_table.h"
#include "agent/workload/workload_socket.h"
#include "agent/workload/workload_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::agent::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class EndpointTest : public EndpointFixture {};

TEST_F(EndpointTest, SocketIsOpenToEveryUidAndRemovedOnShutdown) {
  StartEndpoint();
  struct stat st;
  ASSERT_EQ(::lstat(socket_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  EXPECT_EQ(endpoint_->socket_path(), socket_path_);

  endpoint_->Shutdown();
  EXPECT_FALSE(std::filesystem::exists(socket_path_));
  endpoint_->Shutdown();  // idempotent
  endpoint_.reset();
}

TEST_F(EndpointTest, CreatesMissingDirectoriesWith0755) {
  socket_path_ = dir_.path() + "/run/tessera/agent.sock";
  mode_t old_umask = ::umask(077);
  StartEndpoint();
  ::umask(old_umask);
  for (const char* dir : {"/run", "/run/tessera"}) {
    struct stat st;
    ASSERT_EQ(::stat((dir_.path() + dir).c_str(), &st), 0) << dir;
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0755u) << dir;
  }
  Publish({{.id = "e1", .spiffe_id = "spiffe://example.org/w", .selectors = {Uid(::geteuid())}}});
  auto context = Client()->FetchX509Context();
  ASSERT_TRUE(context.ok()) << context.status();
}

TEST_F(EndpointTest, ReplacesStaleSocket) {
  {
    // A socket file left behind by an agent that died: bound, nobody listening any more.
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  ASSERT_TRUE(std::filesystem::exists(socket_path_));
  StartEndpoint();
  Publish({{.id = "e1", .spiffe_id = "spiffe://example.org/w", .selectors = {Uid(::geteuid())}}});
  auto context = Client()->FetchX509Context();
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_THAT(Ids(*context), ElementsAre("spiffe://example.org/w"));
}

TEST_F(EndpointTest, RefusesSocketInUse) {
  StartEndpoint();
  auto second = WorkloadEndpoint::Start(Options());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(second.status()), HasSubstr("another process is listening on"));
  // The first endpoint keeps its socket.
  Publish({{.id = "e1", .spiffe_id = "spiffe://example.org/w", .selectors = {Uid(::geteuid())}}});
  EXPECT_TRUE(Client()->FetchX509Context().ok());
}

TEST_F(EndpointTest, RefusesToReplaceNonSocket) {
  std::ofstream(socket_path_) << "precious";
  auto endpoint = WorkloadEndpoint::Start(Options());
  ASSERT_FALSE(endpoint.ok());
  EXPECT_THAT(Message(endpoint.status()), HasSubstr("exists and is not a socket"));
  std::ifstream in(socket_path_);
  std::string contents;
  in >> contents;
  EXPECT_EQ(contents, "precious");
}

TEST_F(EndpointTest, RefusesUnsafeDirectory) {
  std::string dir = dir_.path() + "/shared";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  socket_path_ = dir + "/agent.sock";

  ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
  auto endpoint = WorkloadEndpoint::Start(Options());
  ASSERT_FALSE(endpoint.ok());
  EXPECT_EQ(endpoint.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(endpoint.status()),
              HasSubstr("is group- or world-writable without the sticky bit"));
  ASSERT_EQ(::chmod(dir.c_str(), 0770), 0);
  EXPECT_FALSE(WorkloadEndpoint::Start(Options()).ok());

  // Sticky (like /tmp): nobody can remove or rename another user's socket.
  ASSERT_EQ(::chmod(dir.c_str(), 01777), 0);
  StartEndpoint();
  endpoint_.reset();

  if (::geteuid() != 0) GTEST_SKIP() << "chown to another user needs root";
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
  endpoint = WorkloadEndpoint::Start(Options());
  ASSERT_FALSE(endpoint.ok());
  EXPECT_THAT(Message(endpoint.status()), HasSubstr("is owned by uid 65534"));
}

TEST_F(EndpointTest, RejectsBadOptions) {
  WorkloadEndpointOptions options = Options();
  options.cache = nullptr;
  auto endpoint = WorkloadEndpoint::Start(options);
  EXPECT_EQ(endpoint.status().code(), absl::StatusCode::kInvalidArgument);

  options = Options();
  options.socket_path = "relative/agent.sock";
  endpoint = WorkloadEndpoint::Start(options);
  EXPECT_THAT(Message(endpoint.status()), HasSubstr("must be an absolute path"));

  options = Options();
  options.socket_path = "/tmp/" + std::string(120, 'x');
  endpoint = WorkloadEndpoint::Start(options);
  EXPECT_THAT(Message(endpoint.status()), HasSubstr("is too long"));

  options = Options();
  options.attestation_timeout = std::chrono::milliseconds(0);
  EXPECT_FALSE(WorkloadEndpoint::Start(options).ok());
}

TEST_F(EndpointTest, SelectorsAreTheUnionOfAttestorsAndFailuresContributeNothing) {
  auto fake = std::make_shared<FakeAttestor>("fake", std::vector<std::string>{"fake:a"});
  auto broken = std::make_shared<FakeAttestor>(
      "broken", absl::UnavailableError("broken: runtime api unreachable"));
  // Selectors must be of the attestor's own type: this one cannot claim another uid.
  auto liar =
      std::make_shared<FakeAttestor>("liar", std::vector<std::string>{"unix:uid:4242", "liar:ok"});
  WorkloadEndpointOptions options = Options();
  options.attestors.push_back(fake);
  options.attestors.push_back(broken);
  options.attestors.push_back(liar);
  StartEndpoint(std::move(options));
  Publish({
      {.id = "both",
       .spiffe_id = "spiffe://example.org/both",
       .selectors = {"fake:a", Uid(::geteuid())},
       .created_at = 1},
      {.id = "liar",
       .spiffe_id = "spiffe://example.org/liar",
       .selectors = {"liar:ok"},
       .created_at = 2},
      {.id = "stolen", .spiffe_id = "spiffe://example.org/stolen", .selectors = {"unix:uid:4242"}},
      {.id = "broken", .spiffe_id = "spiffe://example.org/broken", .selectors = {"broken:x"}},
  });
  auto context = Client()->FetchX509Context();
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_THAT(Ids(*context), ElementsAre("spiffe://example.org/both", "spiffe://example.org/liar"));
  EXPECT_EQ(fake->calls(), 1);
  EXPECT_EQ(broken->calls(), 1);
  EXPECT_EQ(fake->last_pid(), ::getpid());
}

TEST_F(EndpointTest, CallersWithDifferentUidsGetDifferentIdentities) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching uid needs root";
  // The socket's directory must be searchable by every uid (the agent makes it 0755).
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  StartEndpoint();
  Publish({{.id = "root", .spiffe_id = "spiffe://example.org/root", .selectors = {"unix:uid:0"}},
           {.id = "nobody",
            .spiffe_id = "spiffe://example.org/nobody",
            .selectors = {"unix:uid:65534", "unix:gid:65534"}}});

  auto mine = Client()->FetchX509Context();
  ASSERT_TRUE(mine.ok()) << mine.status();
  EXPECT_THAT(Ids(*mine), ElementsAre("spiffe://example.org/root"));

  ChildConnection child(socket_path_, 65534, 65534, /*exit_after_handover=*/false);
  ASSERT_TRUE(child.ok());
  auto client = ClientOverFd(child.TakeFd());
  auto theirs = client->FetchX509Context();
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  EXPECT_THAT(Ids(*theirs), ElementsAre("spiffe://example.org/nobody"));
  auto jwt = client->FetchJwtSvids({"aud"});
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  ASSERT_EQ(jwt->size(), 1u);
  EXPECT_EQ((*jwt)[0].svid.subject.str(), "spiffe://example.org/nobody");
  child.Release();
  EXPECT_EQ(child.exit_code(), 0);
}

// Makes the next process forked get `pid` (root, pid namespace owner); returns that process, or
// -1 if the kernel handed out another pid (or refused the write).
pid_t ForkSleeperWithPid(pid_t pid, UniqueFd& release) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  UniqueFd read_end(pipe_fds[0]);
  release.Reset(pipe_fds[1]);
  {
    std::ofstream last_pid("/proc/sys/kernel/ns_last_pid");
    last_pid << (pid - 1);
    last_pid.flush();
    if (!last_pid) return -1;
  }
  pid_t child = ::fork();
  if (child == 0) {
    ::close(release.get());  // or the pipe never reports EOF
    char c;
    while (::read(read_end.get(), &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  return child;
}

TEST_F(EndpointTest, ExitedCallerGetsNoIdentityEvenWhenItsPidIsReused) {
  // Only the pidfd check stands between this connection and an identity: the fake attestor
  // vouches for any pid.
  auto trusting = std::make_shared<FakeAttestor>("fake", std::vector<std::string>{"fake:ok"});
  WorkloadEndpointOptions options = Options();
  options.attestors = {trusting};
  StartEndpoint(std::move(options));
  Publish({{.id = "e", .spiffe_id = "spiffe://example.org/anyone", .selectors = {"fake:ok"}}});
  ASSERT_TRUE(Client()->FetchX509Context().ok());

  // The child connects and exits; its socket lives on in this process.
  ChildConnection child(socket_path_, std::nullopt, std::nullopt, /*exit_after_handover=*/true);
  ASSERT_TRUE(child.ok());
  EXPECT_EQ(child.exit_code(), 0);

  UniqueFd release;
  pid_t reused = -1;
  if (::geteuid() == 0) {
    for (int attempt = 0; attempt < 5 && reused != child.pid(); ++attempt) {
      if (reused > 0) {
        release.Reset();
        ::waitpid(reused, nullptr, 0);
      }
      reused = ForkSleeperWithPid(child.pid(), release);
    }
  }
  bool pid_reused = reused == child.pid();
  RecordProperty("pid_reused", pid_reused ? "yes" : "no");

  auto client = ClientOverFd(child.TakeFd());
  auto context = client->FetchX509Context();
  ASSERT_FALSE(context.ok());
  EXPECT_EQ(context.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Message(context.status()),
              HasSubstr("could not verify existence of the original caller: process " +
                        std::to_string(child.pid()) + " has exited"));
  auto jwt = client->FetchJwtSvid({"aud"});
  EXPECT_EQ(jwt.status().code(), absl::StatusCode::kUnauthenticated);
  auto bundles = client->FetchX509Bundles();
  EXPECT_EQ(bundles.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_GE(trusting->calls(), 2);  // it was asked, and said yes: the pidfd said no

  if (reused > 0) {
    release.Reset();
    ::waitpid(reused, nullptr, 0);
  }
  if (::geteuid() == 0 && !pid_reused) {
    GTEST_SKIP() << "denied, but the kernel did not hand the pid to a new process";
  }
}

TEST(IdentifyPeerTest, PinsTheConnectingProcess) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd a(pair[0]);
  UniqueFd b(pair[1]);
  auto caller = IdentifyPeer(a.get());
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ((*caller)->pid, ::getpid());
  EXPECT_EQ((*caller)->uid, ::geteuid());
  EXPECT_EQ((*caller)->gid, ::getegid());
  EXPECT_TRUE((*caller)->pidfd.valid());
  EXPECT_TRUE((*caller)->CheckAlive().ok());

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd r(fds[0]);
  UniqueFd w(fds[1]);
  EXPECT_FALSE(IdentifyPeer(r.get()).ok());  // not a socket
}

TEST(CallerTableTest, KeyedByFdPeerAndReplacedOnReuse) {
  EXPECT_EQ(ParseFdPeer("fd:12"), 12);
  EXPECT_EQ(ParseFdPeer("fd:0"), 0);
  EXPECT_EQ(ParseFdPeer("fd:"), std::nullopt);
  EXPECT_EQ(ParseFdPeer("fd:-1"), std::nullopt);
  EXPECT_EQ(ParseFdPeer("fd:12x"), std::nullopt);
  EXPECT_EQ(ParseFdPeer("ipv4:127.0.0.1:80"), std::nullopt);
  EXPECT_EQ(ParseFdPeer("unix:/run/agent.sock"), std::nullopt);

  CallerTable table;
  table.Insert(7, std::make_shared<const ConnectedCaller>(ConnectedCaller{.pid = 100}));
  ASSERT_NE(table.FindByPeer("fd:7"), nullptr);
  EXPECT_EQ(table.FindByPeer("fd:7")->pid, 100);
  table.Insert(7, std::make_shared<const ConnectedCaller>(ConnectedCaller{.pid = 200}));
  EXPECT_EQ(table.FindByPeer("fd:7")->pid, 200);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.FindByPeer("fd:8"), nullptr);
  table.Clear();
  EXPECT_EQ(table.FindByPeer("fd:7"), nullptr);
}

// CallerAttestation on callers built by hand.
class CallerAttestationTest : public ::testing::Test {
 protected:
  static std::shared_ptr<const ConnectedCaller> Self() {
    auto caller = std::make_shared<ConnectedCaller>();
    caller->pid = ::getpid();
    caller->uid = ::geteuid();
    caller->gid = ::getegid();
    caller->pidfd.Reset(static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0)));
    return caller;
  }
  static absl::StatusOr<AttestedCaller> Wait(CallerAttestation& attestation,
                                             std::shared_ptr<const ConnectedCaller> caller) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<AttestedCaller>>>();
    auto future = promise->get_future();
    attestation.AttestCaller(std::move(caller), [promise](absl::StatusOr<AttestedCaller> r) {
      promise->set_value(std::move(r));
    });
    return future.get();
  }

  CallerTable table_;
};

TEST_F(CallerAttestationTest, UnionOfAttestors) {
  CallerAttestation attestation(
      table_, {.attestors = {std::make_shared<FakeAttestor>("a", std::vector<std::string>{"a:1"}),
                             std::make_shared<FakeAttestor>("b", std::vector<std::string>{"b:2"})},
               .timeout = std::chrono::seconds(5)});
  auto caller = Wait(attestation, Self());
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->pid, ::getpid());
  EXPECT_EQ(caller->selectors.Strings(), (std::vector<std::string>{"a:1", "b:2"}));
}

TEST_F(CallerAttestationTest, CallerWithoutPidfdIsNeverAlive) {
  CallerAttestation attestation(table_, {.attestors = {}, .timeout = std::chrono::seconds(1)});
  auto caller = std::make_shared<ConnectedCaller>();
  caller->pid = ::getpid();
  auto result = Wait(attestation, caller);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(CallerAttestationTest, StopAnswersCancelledAtOnce) {
  CallerAttestation attestation(
      table_, {.attestors = {std::make_shared<FakeAttestor>("slow", std::vector<std::string>{},
                                                            std::chrono::milliseconds(500))},
               .timeout = std::chrono::seconds(10),
               .shutdown_grace = std::chrono::seconds(2)});
  std::promise<absl::StatusOr<AttestedCaller>> promise;
  auto future = promise.get_future();
  std::stop_source stop = attestation.AttestCaller(
      Self(), [&](absl::StatusOr<AttestedCaller> r) { promise.set_value(std::move(r)); });
  stop.request_stop();
  ASSERT_EQ(future.wait_for(std::chrono::milliseconds(100)), std::future_status::ready);
  EXPECT_EQ(future.get().status().code(), absl::StatusCode::kCancelled);
}

TEST_F(CallerAttestationTest, ShutdownAnswersPendingAndLaterCallsUnavailable) {
  CallerAttestation attestation(
      table_, {.attestors = {std::make_shared<FakeAttestor>("slow", std::vector<std::string>{},
                                                            std::chrono::milliseconds(300))},
               .timeout = std::chrono::seconds(10),
               .shutdown_grace = std::chrono::seconds(2)});
  std::promise<absl::StatusOr<AttestedCaller>> promise;
  auto future = promise.get_future();
  attestation.AttestCaller(
      Self(), [&](absl::StatusOr<AttestedCaller> r) { promise.set_value(std::move(r)); });
  attestation.Shutdown();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  auto pending = future.get();
  EXPECT_EQ(pending.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(pending.status()), HasSubstr("agent is shutting down"));
  EXPECT_EQ(Wait(attestation, Self()).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tessera::agent::testing
