// The unix attestor against the real /proc: the test process itself, its children, and a binary
// deleted from disk while it runs. Expected values come from the kernel's own syscalls and from
// the sha256sum tool, not from the code under test.
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attestors/unix/unix.h"
#include "attestors/unix/unix_test_util.h"
#include "common/files.h"
#include "common/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::attestors::unix {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using ::testing::Not;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

std::unique_ptr<WorkloadAttestor> NewReal(Config config = {}) {
  absl::StatusOr<std::unique_ptr<WorkloadAttestor>> attestor = NewAttestor(config);
  EXPECT_TRUE(attestor.ok()) << attestor.status();
  return attestor.ok() ? *std::move(attestor) : nullptr;
}

std::string ReadLink(const std::string& path) {
  char buf[PATH_MAX + 32];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

// Lowercase hex SHA-256 of the file at `path`, as sha256sum prints it; empty on failure.
std::string Sha256Sum(const std::string& path) {
  FILE* pipe = ::popen(absl::StrCat("sha256sum '", path, "'").c_str(), "r");
  if (pipe == nullptr) return "";
  char buf[65] = {};
  size_t n = fread(buf, 1, 64, pipe);
  ::pclose(pipe);
  return n == 64 ? std::string(buf, 64) : std::string();
}

TEST(UnixRealProcTest, SelfMatchesKernelCredentials) {
  std::unique_ptr<WorkloadAttestor> attestor = NewReal({.discover_workload_path = true});
  ASSERT_NE(attestor, nullptr);
  UniqueFd pidfd = testing::PidfdOpen(::getpid());
  absl::StatusOr<spiffe::SelectorSet> got = attestor->Attest(
      WorkloadProcess{
          .pid = ::getpid(), .uid = ::getuid(), .gid = ::getgid(), .pidfd = pidfd.get()},
      AttestationDeadline::After(std::chrono::seconds(30)));
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<std::string> selectors = got->Strings();

  std::vector<std::string> expected = {absl::StrCat("unix:uid:", ::geteuid()),
                                       absl::StrCat("unix:gid:", ::getegid())};
  if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr) {
    expected.push_back(absl::StrCat("unix:user:", pw->pw_name));
  }
  if (const group* gr = ::getgrgid(::getegid()); gr != nullptr) {
    expected.push_back(absl::StrCat("unix:group:", gr->gr_name));
  }
  std::vector<gid_t> groups(static_cast<size_t>(::getgroups(0, nullptr)));
  ASSERT_EQ(::getgroups(static_cast<int>(groups.size()), groups.data()),
            static_cast<int>(groups.size()));
  for (gid_t g : groups) expected.push_back(absl::StrCat("unix:supplementary_gid:", g));

  std::string exe = ReadLink("/proc/self/exe");
  ASSERT_FALSE(exe.empty());
  expected.push_back("unix:path:" + exe);
  std::string digest = Sha256Sum(exe);
  ASSERT_EQ(digest.size(), 64u);
  expected.push_back("unix:sha256:" + digest);

  EXPECT_THAT(selectors, IsSupersetOf(expected));
  // Nothing but unix selectors of the documented kinds.
  for (const spiffe::Selector& s : *got) {
    EXPECT_EQ(s.type(), "unix");
    std::string_view kind = s.value().substr(0, s.value().find(':'));
    EXPECT_THAT((std::vector<std::string_view>{"uid", "user", "gid", "group", "supplementary_gid",
                                               "supplementary_group", "path", "sha256"}),
                Contains(kind))
        << s.ToString();
  }
}

TEST(UnixRealProcTest, ReapedChildIsNotFound) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  std::unique_ptr<WorkloadAttestor> attestor = NewReal();
  ASSERT_NE(attestor, nullptr);
  absl::StatusOr<spiffe::SelectorSet> got = attestor->Attest(WorkloadProcess{.pid = child}, {});
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Message(got.status()),
            absl::StrCat("unix: open /proc/", child, ": No such file or directory"));
}

// Without a pidfd, a zombie still has credentials but no executable: asking for its path fails.
TEST(UnixRealProcTest, ZombieHasNoPath) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
  std::unique_ptr<WorkloadAttestor> attestor = NewReal({.discover_workload_path = true});
  ASSERT_NE(attestor, nullptr);
  absl::StatusOr<spiffe::SelectorSet> got = attestor->Attest(WorkloadProcess{.pid = child}, {});
  ::waitpid(child, nullptr, 0);
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(Message(got.status()), HasSubstr("unix: path lookup: readlink /proc/"));
}

// A process whose real and effective ids differ (as after running a setuid binary) is attested
// by its effective ids, as SPIRE does. Needs root to change ids.
TEST(UnixRealProcTest, EffectiveIdsOfAnotherProcess) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to change a child's ids";
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const gid_t supplementary[] = {3000, 3001};
    if (::setgroups(2, supplementary) != 0 || ::setresgid(2000, 2100, 2100) != 0 ||
        ::setresuid(1000, 1100, 1100) != 0) {
      ::_exit(1);
    }
    while (true) ::pause();
  }
  UniqueFd pidfd = testing::PidfdOpen(child);
  std::string status_path = absl::StrCat("/proc/", child, "/status");
  bool switched = false;
  for (int i = 0; i < 500 && !switched; ++i) {
    absl::StatusOr<std::string> status = ReadFileToString(status_path);
    switched = status.ok() && absl::StrContains(*status, "Uid:\t1000\t1100\t1100\t1100");
    if (!switched) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  absl::StatusOr<spiffe::SelectorSet> got;
  if (switched) {
    got = NewReal()->Attest(WorkloadProcess{.pid = child, .pidfd = pidfd.get()}, {});
  }
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_TRUE(switched) << "the child did not change its ids";
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<std::string> selectors = got->Strings();
  EXPECT_THAT(selectors,
              IsSupersetOf({"unix:uid:1100", "unix:gid:2100", "unix:supplementary_gid:3000",
                            "unix:supplementary_gid:3001"}));
  EXPECT_THAT(selectors, Not(Contains("unix:uid:1000")));
  EXPECT_THAT(selectors, Not(Contains("unix:gid:2000")));
}

// The running binary, not whatever its path names now, is what gets hashed.
TEST(UnixRealProcTest, DeletedAndReplacedBinaryIsHashedAsRunning) {
  testing::TempDir dir;
  std::string copy = dir.path() + "/workload";
  std::error_code ec;
  std::filesystem::copy_file("/bin/sleep", copy, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(::chmod(copy.c_str(), 0755), 0);
  const std::string original = Sha256Sum(copy);
  ASSERT_EQ(original.size(), 64u);

  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char* const argv[] = {const_cast<char*>("workload"), const_cast<char*>("60"), nullptr};
    ::execv(copy.c_str(), argv);
    ::_exit(127);
  }
  // Wait until the exec has happened: the child's exe link names the copy.
  std::string proc_exe = absl::StrCat("/proc/", child, "/exe");
  bool started = false;
  for (int i = 0; i < 500 && !started; ++i) {
    started = ReadLink(proc_exe) == copy;
    if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!started) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    GTEST_SKIP() << "cannot execute from " << dir.path() << " (noexec?)";
  }

  ASSERT_EQ(::unlink(copy.c_str()), 0);
  testing::WriteFile(copy, "not the binary that runs");
  ASSERT_NE(Sha256Sum(copy), original);

  std::unique_ptr<WorkloadAttestor> attestor = NewReal({.discover_workload_path = true});
  ASSERT_NE(attestor, nullptr);
  absl::StatusOr<spiffe::SelectorSet> got = attestor->Attest(WorkloadProcess{.pid = child}, {});
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(got->Strings(), Contains("unix:path:" + copy + " (deleted)"));
  EXPECT_THAT(got->Strings(), Contains("unix:sha256:" + original));
  EXPECT_THAT(got->Strings(), Not(Contains("unix:sha256:" + Sha256Sum(copy))));
}

}  // namespace
}  // namespace tessera::attestors::unix
