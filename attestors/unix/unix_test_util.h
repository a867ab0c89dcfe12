// Test-only helpers for the unix attestor tests: a fake /proc tree in a temp dir, a fake name
// resolver, and small wrappers over the processes the real-/proc tests start. Not part of
// tessera_attestor_unix. The fake resolver is safe for concurrent use; the rest belongs to one
// test thread.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "attestors/unix/unix.h"
#include "common/unique_fd.h"
#include "gtest/gtest.h"
#include "spiffe/x509_test_util.h"

namespace tessera::attestors::unix::testing {

// A scratch directory removed with its contents (the spiffe test helpers' one).
using spiffe::testing::TempDir;

inline void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << "write " << path;
}

// A status file as Linux writes it, with the given id lines' values.
inline std::string StatusText(const std::string& uids, const std::string& gids,
                              const std::string& groups) {
  return absl::StrCat("Name:\tweb\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t42\nPid:\t42\n",
                      "PPid:\t1\nUid:\t", uids, "\nGid:\t", gids, "\nFDSize:\t64\nGroups:\t",
                      groups, "\nVmPeak:\t   10000 kB\n");
}

// <root>/proc/<pid>/{status,exe}: a fake /proc. The exe is a symlink to a file of the tree, as
// the kernel's magic link is to the binary.
class FakeProc {
 public:
  FakeProc() { std::filesystem::create_directory(root()); }

  std::string root() const { return dir_.path() + "/proc"; }
  std::string dir() const { return dir_.path(); }

  // Creates <root>/<pid>/ with `status` (none when nullopt).
  void AddProcess(pid_t pid, const std::optional<std::string>& status) {
    std::string p = absl::StrCat(root(), "/", pid);
    std::filesystem::create_directory(p);
    if (status.has_value()) WriteFile(p + "/status", *status);
  }
  // Points <root>/<pid>/exe at `target`.
  void SetExe(pid_t pid, const std::string& target) {
    std::string link = absl::StrCat(root(), "/", pid, "/exe");
    ::unlink(link.c_str());
    ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0) << link;
  }

 private:
  TempDir dir_;
};

// Names by id; ids in `failing` make the lookup fail. `on_lookup` runs before every lookup.
class FakeResolver final : public NameResolver {
 public:
  std::map<uint32_t, std::string> users;
  std::map<uint32_t, std::string> groups;
  std::set<uint32_t> failing;
  std::function<void()> on_lookup;

  absl::StatusOr<std::optional<std::string>> UserName(uid_t uid) const override {
    return Find(users, uid);
  }
  absl::StatusOr<std::optional<std::string>> GroupName(gid_t gid) const override {
    return Find(groups, gid);
  }

  int lookups() const { return lookups_.load(); }

 private:
  absl::StatusOr<std::optional<std::string>> Find(const std::map<uint32_t, std::string>& names,
                                                  uint32_t id) const {
    ++lookups_;
    if (on_lookup) on_lookup();
    if (failing.contains(id)) return absl::UnavailableError(absl::StrCat("ldap down for ", id));
    auto it = names.find(id);
    if (it == names.end()) return std::nullopt;
    return it->second;
  }
  mutable std::atomic<int> lookups_ = 0;
};

// A pidfd for `pid`, invalid when the kernel has none.
inline UniqueFd PidfdOpen(pid_t pid) {
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

}  // namespace tessera::attestors::unix::testing
