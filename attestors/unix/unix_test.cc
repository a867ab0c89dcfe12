// The unix attestor against fake /proc trees: selectors, SPIRE's semantics and every way the
// process's files can be wrong.
#include "attestors/unix/unix.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "attestors/unix/unix_test_util.h"
#include "common/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::attestors::unix {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using testing::FakeProc;
using testing::FakeResolver;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::StatusText;

constexpr pid_t kPid = 42;
// SHA-256 of "data", the value SPIRE's own unix attestor test expects for the same file.
constexpr char kDataSha256[] = "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7";

std::string Message(const absl::Status& status) { return std::string(status.message()); }

class UnixAttestorTest : public ::testing::Test {
 protected:
  UnixAttestorTest() : resolver_(std::make_shared<FakeResolver>()) {
    resolver_->users = {{1000, "u1000"}, {1100, "u1100"}, {0, "root"}};
    resolver_->groups = {{2000, "g2000"}, {2100, "g2100"}, {2200, "g2200"}, {2300, "g2300"}};
    exe_ = proc_.dir() + "/exe";
    testing::WriteFile(exe_, "data");
  }

  std::unique_ptr<WorkloadAttestor> New(Config config = {}) {
    absl::StatusOr<std::unique_ptr<WorkloadAttestor>> attestor =
        NewAttestor(config, Options{.proc_root = proc_.root(), .resolver = resolver_});
    EXPECT_TRUE(attestor.ok()) << attestor.status();
    return attestor.ok() ? *std::move(attestor) : nullptr;
  }

  absl::StatusOr<spiffe::SelectorSet> Attest(Config config = {}, pid_t pid = kPid, int pidfd = -1,
                                             const AttestationDeadline& deadline = {}) {
    std::unique_ptr<WorkloadAttestor> attestor = New(config);
    if (attestor == nullptr) return absl::InternalError("no attestor");
    return attestor->Attest(WorkloadProcess{.pid = pid, .uid = 0, .gid = 0, .pidfd = pidfd},
                            deadline);
  }

  // Selector strings, sorted.
  std::vector<std::string> Strings(const absl::StatusOr<spiffe::SelectorSet>& set) {
    EXPECT_TRUE(set.ok()) << set.status();
    return set.ok() ? set->Strings() : std::vector<std::string>{};
  }

  FakeProc proc_;
  std::shared_ptr<FakeResolver> resolver_;
  std::string exe_;
  const Config discover_{.discover_workload_path = true};
};

TEST_F(UnixAttestorTest, NameIsUnix) { EXPECT_EQ(New()->name(), "unix"); }

TEST_F(UnixAttestorTest, ReportsIdsAndNames) {
  proc_.AddProcess(
      kPid, StatusText("1000\t1000\t1000\t1000", "2000\t2000\t2000\t2000", "2000 2100 2200 2300 "));
  EXPECT_THAT(Strings(Attest()),
              ElementsAre("unix:gid:2000", "unix:group:g2000", "unix:supplementary_gid:2000",
                          "unix:supplementary_gid:2100", "unix:supplementary_gid:2200",
                          "unix:supplementary_gid:2300", "unix:supplementary_group:g2000",
                          "unix:supplementary_group:g2100", "unix:supplementary_group:g2200",
                          "unix:supplementary_group:g2300", "unix:uid:1000", "unix:user:u1000"));
  // The primary group, also a supplementary one, was looked up once: 1 user + 4 groups.
  EXPECT_EQ(resolver_->lookups(), 5);
}

TEST_F(UnixAttestorTest, UsesEffectiveIdsAsSpireDoes) {
  // A setuid program: real 1000, effective 1100 (SPIRE's "effective user and gid" case).
  proc_.AddProcess(kPid, StatusText("1000\t1100\t1100\t1100", "2000\t2100\t2100\t2100", ""));
  EXPECT_THAT(Strings(Attest()),
              ElementsAre("unix:gid:2100", "unix:group:g2100", "unix:uid:1100", "unix:user:u1100"));
}

TEST_F(UnixAttestorTest, SingleIdLinesAreAccepted) {
  proc_.AddProcess(kPid, "Uid:\t1000\nGid:\t2000\n");
  EXPECT_THAT(Strings(Attest()),
              ElementsAre("unix:gid:2000", "unix:group:g2000", "unix:uid:1000", "unix:user:u1000"));
}

TEST_F(UnixAttestorTest, IdsWithoutNamesOmitNameSelectors) {
  proc_.AddProcess(kPid, StatusText("1999\t1999\t1999\t1999", "2999\t2999\t2999\t2999", "3999"));
  EXPECT_THAT(Strings(Attest()),
              ElementsAre("unix:gid:2999", "unix:supplementary_gid:3999", "unix:uid:1999"));
}

TEST_F(UnixAttestorTest, FailedLookupsOmitNameSelectorsOnly) {
  resolver_->failing = {1000, 2100};
  proc_.AddProcess(kPid, StatusText("1000\t1000\t1000\t1000", "2000\t2000\t2000\t2000", "2100"));
  EXPECT_THAT(Strings(Attest()), ElementsAre("unix:gid:2000", "unix:group:g2000",
                                             "unix:supplementary_gid:2100", "unix:uid:1000"));
}

TEST_F(UnixAttestorTest, NamesUnfitForSelectorsAreOmitted) {
  resolver_->users[1000] = "bad\nname";
  resolver_->groups[2000] = "";
  proc_.AddProcess(kPid, StatusText("1000\t1000\t1000\t1000", "2000\t2000\t2000\t2000", ""));
  EXPECT_THAT(Strings(Attest()), ElementsAre("unix:gid:2000", "unix:uid:1000"));
}

TEST_F(UnixAttestorTest, PathAndSha256LikeSpire) {
  proc_.AddProcess(kPid, StatusText("1000\t1000\t1000\t1000", "2000\t2000\t2000\t2000", ""));
  proc_.SetExe(kPid, exe_);
  EXPECT_THAT(
      Strings(Attest(discover_)),
      ElementsAre("unix:gid:2000", "unix:group:g2000", "unix:path:" + exe_,
                  std::string("unix:sha256:") + kDataSha256, "unix:uid:1000", "unix:user:u1000"));
}

TEST_F(UnixAttestorTest, NoPathSelectorsUnlessDiscoverWorkloadPath) {
  proc_.AddProcess(kPid, StatusText("1000\t1000\t1000\t1000", "2000\t2000\t2000\t2000", ""));
  // No exe link at all: without discover_workload_path it is never read.
  std::vector<std::string> got = Strings(Attest());
  EXPECT_THAT(got, Not(Contains(HasSubstr("path:"))));
  EXPECT_THAT(got, Not(Contains(HasSubstr("sha256:"))));
}

TEST_F(UnixAttestorTest, SizeLimitRefusesLargerExecutables) {
  proc_.AddProcess(kPid, StatusText("1000\t1000\t1000\t1000", "2000\t2000\t2000\t2000", ""));
  proc_.SetExe(kPid, exe_);
  absl::StatusOr<spiffe::SelectorSet> got =
      Attest({.discover_workload_path = true, .workload_size_limit = 2});
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Message(got.status()),
            "unix: sha256 of " + exe_ + ": workload is 4 bytes, over workload_size_limit 2");

  // At the limit is fine.
  EXPECT_THAT(Strings(Attest({.discover_workload_path = true, .workload_size_limit = 4})),
              Contains(std::string("unix:sha256:") + kDataSha256));
}

TEST_F(UnixAttestorTest, NegativeSizeLimitDisablesHashing) {
  proc_.AddProcess(kPid, StatusText("1000\t1000\t1000\t1000", "2000\t2000\t2000\t2000", ""));
  proc_.SetExe(kPid, exe_);
  std::vector<std::string> got =
      Strings(Attest({.discover_workload_path = true, .workload_size_limit = -1}));
  EXPECT_THAT(got, Contains("unix:path:" + exe_));
  EXPECT_THAT(got, Not(Contains(HasSubstr("sha256:"))));
}

TEST_F(UnixAttestorTest, MissingExeFailsWhenPathIsWanted) {
  proc_.AddProcess(kPid, StatusText("1000\t1000\t1000\t1000", "2000\t2000\t2000\t2000", ""));
  absl::StatusOr<spiffe::SelectorSet> got = Attest(discover_);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(got.status()),
              HasSubstr("unix: path lookup: readlink " + proc_.root() + "/42/exe"));
}

TEST_F(UnixAttestorTest, DanglingExeFailsHashing) {
  proc_.AddProcess(kPid, StatusText("1000\t1000\t1000\t1000", "2000\t2000\t2000\t2000", ""));
  proc_.SetExe(kPid, proc_.dir() + "/gone");
  absl::StatusOr<spiffe::SelectorSet> got = Attest(discover_);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(got.status()), HasSubstr("unix: sha256 of " + proc_.dir() + "/gone: open"));
}

TEST_F(UnixAttestorTest, ExeThatIsNotARegularFileIsRefused) {
  proc_.AddProcess(kPid, StatusText("1000\t1000\t1000\t1000", "2000\t2000\t2000\t2000", ""));
  std::string fifo = proc_.dir() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& target : {proc_.dir(), fifo}) {
    proc_.SetExe(kPid, target);
    absl::StatusOr<spiffe::SelectorSet> got = Attest(discover_);
    ASSERT_FALSE(got.ok()) << target;
    EXPECT_THAT(Message(got.status()), HasSubstr("not a regular file")) << target;
  }
}

TEST_F(UnixAttestorTest, PathThatCannotBeASelectorFails) {
  proc_.AddProcess(kPid, StatusText("1000\t1000\t1000\t1000", "2000\t2000\t2000\t2000", ""));
  std::string odd = proc_.dir() + "/bad\x01name";
  testing::WriteFile(odd, "data");
  proc_.SetExe(kPid, odd);
  absl::StatusOr<spiffe::SelectorSet> got = Attest(discover_);
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(Message(got.status()), HasSubstr("unix: path selector for"));
}

TEST_F(UnixAttestorTest, VanishedProcessIsNotFound) {
  absl::StatusOr<spiffe::SelectorSet> got = Attest({}, 77);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(got.status()), HasSubstr("unix: open " + proc_.root() + "/77: "));
}

TEST_F(UnixAttestorTest, MissingStatusFileIsAnError) {
  proc_.AddProcess(kPid, std::nullopt);
  absl::StatusOr<spiffe::SelectorSet> got = Attest();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(got.status()), HasSubstr("unix: open " + proc_.root() + "/42/status: "));
}

TEST_F(UnixAttestorTest, GarbledStatusIsAnError) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "/42/status: no Uid line"},
      {StatusText("x", "2000", ""), "/42/status: Uid line: invalid id \"x\""},
      {StatusText("1000", "", ""), "/42/status: Gid line has no ids"},
      {StatusText("1000", "2000", "1 -2"), "/42/status: Groups line: invalid id \"-2\""},
      {std::string(100, '\0'), "no Uid line"},
  };
  for (const auto& [status, error] : cases) {
    proc_.AddProcess(kPid, status);
    absl::StatusOr<spiffe::SelectorSet> got = Attest();
    ASSERT_FALSE(got.ok()) << status;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(got.status()), HasSubstr(error));
    EXPECT_THAT(Message(got.status()), HasSubstr("unix: " + proc_.root()));
  }
}

TEST_F(UnixAttestorTest, HugeStatusFileIsRefused) {
  proc_.AddProcess(kPid, StatusText("1000", "2000", "") + std::string(2 << 20, 'x'));
  absl::StatusOr<spiffe::SelectorSet> got = Attest();
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(Message(got.status()), HasSubstr("/42/status is larger than 1048576 bytes"));
}

TEST_F(UnixAttestorTest, InvalidPidIsRefused) {
  for (pid_t pid : {0, -1}) {
    absl::StatusOr<spiffe::SelectorSet> got = Attest({}, pid);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Message(got.status()), absl::StrCat("unix: invalid pid ", pid));
  }
}

TEST_F(UnixAttestorTest, ExpiredDeadlineAndStopAreReported) {
  proc_.AddProcess(kPid, StatusText("1000", "2000", ""));
  absl::StatusOr<spiffe::SelectorSet> got =
      Attest({}, kPid, -1,
             AttestationDeadline(AttestationDeadline::Clock::now() - std::chrono::seconds(1)));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(Message(got.status()), "unix: process 42: deadline exceeded");

  std::stop_source stop;
  stop.request_stop();
  got = Attest({}, kPid, -1, AttestationDeadline::After(std::chrono::hours(1), stop.get_token()));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(Message(got.status()), "unix: process 42: cancelled");

  // A generous deadline changes nothing.
  EXPECT_THAT(Strings(Attest({}, kPid, -1, AttestationDeadline::After(std::chrono::hours(1)))),
              Contains("unix:uid:1000"));
}

TEST_F(UnixAttestorTest, StopDuringAttestationStopsHashing) {
  proc_.AddProcess(kPid, StatusText("1000", "2000", ""));
  proc_.SetExe(kPid, exe_);
  std::stop_source stop;
  // The agent gives up while the names are being looked up; the hash loop notices.
  resolver_->on_lookup = [&stop] { stop.request_stop(); };
  absl::StatusOr<spiffe::SelectorSet> got =
      Attest(discover_, kPid, -1,
             AttestationDeadline(AttestationDeadline::Clock::time_point::max(), stop.get_token()));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(Message(got.status()), "unix: sha256 of " + exe_ + ": cancelled");
}

// The agent pinned a process that has since exited; a newcomer with the same pid (here: the
// fixture) must not be attested in its place.
TEST_F(UnixAttestorTest, PinnedProcessThatExitedIsNotAttested) {
  proc_.AddProcess(kPid, StatusText("0", "0", ""));
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  UniqueFd pidfd = testing::PidfdOpen(child);
  if (!pidfd) {
    ::waitpid(child, nullptr, 0);
    GTEST_SKIP() << "no pidfd_open on this kernel";
  }
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);

  absl::StatusOr<spiffe::SelectorSet> zombie = Attest({}, kPid, pidfd.get());
  ::waitpid(child, nullptr, 0);
  absl::StatusOr<spiffe::SelectorSet> reaped = Attest({}, kPid, pidfd.get());
  for (const auto& got : {zombie, reaped}) {
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(Message(got.status()), "unix: process 42 has exited");
  }

  // A live pinned process is fine.
  UniqueFd self = testing::PidfdOpen(::getpid());
  ASSERT_TRUE(self.valid());
  EXPECT_THAT(Strings(Attest({}, kPid, self.get())), Contains("unix:uid:0"));
}

TEST_F(UnixAttestorTest, ClosedPidfdIsRefused) {
  proc_.AddProcess(kPid, StatusText("0", "0", ""));
  // High enough that the descriptors the attestation opens cannot take its number.
  const int fd = 1000;
  ASSERT_EQ(::fcntl(fd, F_GETFD), -1);
  absl::StatusOr<spiffe::SelectorSet> got = Attest({}, kPid, fd);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(got.status()), HasSubstr("is not open"));
}

TEST_F(UnixAttestorTest, ConcurrentAttestationsAgree) {
  for (pid_t pid = 100; pid < 108; ++pid) {
    proc_.AddProcess(pid, StatusText(absl::StrCat(pid), "2000", "2100"));
    proc_.SetExe(pid, exe_);
  }
  std::unique_ptr<WorkloadAttestor> attestor = New(discover_);
  std::vector<std::vector<std::string>> results(8);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 20; ++i) {
          auto got = attestor->Attest(WorkloadProcess{.pid = 100 + t}, {});
          if (!got.ok()) return;
          results[t] = got->Strings();
        }
      });
    }
  }
  for (int t = 0; t < 8; ++t) {
    EXPECT_THAT(results[t], Contains(absl::StrCat("unix:uid:", 100 + t)));
    EXPECT_THAT(results[t], Contains(std::string("unix:sha256:") + kDataSha256));
  }
}

TEST_F(UnixAttestorTest, ProcRootIsNormalized) {
  proc_.AddProcess(kPid, std::nullopt);
  absl::StatusOr<std::unique_ptr<WorkloadAttestor>> attestor =
      NewAttestor({}, Options{.proc_root = proc_.root() + "//", .resolver = resolver_});
  ASSERT_TRUE(attestor.ok()) << attestor.status();
  absl::StatusOr<spiffe::SelectorSet> got = (*attestor)->Attest(WorkloadProcess{.pid = kPid}, {});
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(Message(got.status()), HasSubstr("unix: open " + proc_.root() + "/42/status"));

  attestor = NewAttestor({}, Options{.proc_root = ""});
  ASSERT_FALSE(attestor.ok());
  EXPECT_EQ(Message(attestor.status()), "unix: empty proc_root");
}

absl::Status ReadToml(std::string_view text, Config* config) {
  absl::StatusOr<ConfigDocument> doc = ConfigDocument::Parse(text, "agent.toml");
  if (!doc.ok()) return doc.status();
  return doc->Read([&](ConfigTable& root) {
    ConfigTable table = root.SubTable("workload_attestor").SubTable("unix");
    *config = ReadConfig(table);
  });
}

TEST(UnixConfigTest, ReadsSpireKeys) {
  Config config;
  ASSERT_TRUE(ReadToml("[workload_attestor.unix]\ndiscover_workload_path = true\n"
                       "workload_size_limit = -1\n",
                       &config)
                  .ok());
  EXPECT_TRUE(config.discover_workload_path);
  EXPECT_EQ(config.workload_size_limit, -1);

  ASSERT_TRUE(ReadToml("[workload_attestor.unix]\n", &config).ok());
  EXPECT_FALSE(config.discover_workload_path);
  EXPECT_EQ(config.workload_size_limit, 0);
}

TEST(UnixConfigTest, ReportsBadAndUnknownKeys) {
  Config config;
  absl::Status status = ReadToml(
      "[workload_attestor.unix]\ndiscover_workload_path = \"yes\"\nworkload_size = 10\n", &config);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(Message(status), HasSubstr("agent.toml:2:"));
  EXPECT_THAT(Message(status), HasSubstr("discover_workload_path"));
  EXPECT_THAT(Message(status), HasSubstr("unknown key \"workload_attestor.unix.workload_size\""));
}

TEST(SystemNameResolverTest, LooksUpRootAndMissesUnknownIds) {
  std::shared_ptr<const NameResolver> resolver = SystemNameResolver();
  absl::StatusOr<std::optional<std::string>> user = resolver->UserName(0);
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(*user, "root");
  absl::StatusOr<std::optional<std::string>> group = resolver->GroupName(0);
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_EQ(*group, "root");

  user = resolver->UserName(3999999999u);
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(*user, std::nullopt);
  group = resolver->GroupName(3999999999u);
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_EQ(*group, std::nullopt);
}

}  // namespace
}  // namespace tessera::attestors::unix
