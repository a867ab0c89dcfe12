// The unix attestor. Everything about the process is read relative to one directory descriptor
// on <proc_root>/<pid>, opened before the pidfd is checked: if the pinned process is still alive
// after the open, the pid cannot have been recycled in between, so the directory is the caller's;
// and once that process is gone the kernel fails every later read through the descriptor instead
// of answering for a newcomer with the same pid.
#include "attestors/unix/unix.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "attestors/unix/proc_status.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/text.h"
#include "common/unique_fd.h"
#include "spdlog/spdlog.h"
#include "spiffe/openssl.h"

namespace tessera::attestors::unix {
namespace {

// A status file is about 1.5 KiB; the Groups line of a process in the maximum 65536 groups makes
// it about 720 KiB.
constexpr size_t kMaxStatusBytes = 1 << 20;
// Longer than any path the kernel returns for /proc/<pid>/exe (PATH_MAX plus " (deleted)").
constexpr size_t kMaxLinkBytes = 8192;
constexpr size_t kHashChunkBytes = 64 << 10;

absl::StatusOr<std::string> ReadAll(int fd, size_t max_bytes, std::string_view path) {
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("read ", AsAbsl(path)));
    }
    if (n == 0) return out;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(AsAbsl(path), " is larger than ", max_bytes, " bytes"));
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

// NOT_FOUND once the pinned process has exited (a zombie included: it can no longer be the one
// asking). A pidfd reports that by becoming readable.
absl::Status CheckPinnedProcess(int pidfd, pid_t pid) {
  if (pidfd < 0) return absl::OkStatus();
  pollfd p{.fd = pidfd, .events = POLLIN, .revents = 0};
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("unix: poll pidfd of process ", pid));
  if ((p.revents & POLLNVAL) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("unix: pidfd ", pidfd, " of process ", pid, " is not open"));
  }
  if ((p.revents & (POLLIN | POLLHUP)) != 0) {
    return absl::NotFoundError(absl::StrCat("unix: process ", pid, " has exited"));
  }
  return absl::OkStatus();
}

std::string HexEncode(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

class UnixAttestor final : public WorkloadAttestor {
 public:
  UnixAttestor(const Config& config, Options options)
      : config_(config),
        proc_root_(std::move(options.proc_root)),
        resolver_(std::move(options.resolver)) {}

  std::string_view name() const override { return kPluginName; }

  absl::StatusOr<spiffe::SelectorSet> Attest(const WorkloadProcess& process,
                                             const AttestationDeadline& deadline) override;

 private:
  // One attestation's state: the process directory and the selectors found so far.
  struct Call {
    pid_t pid;
    std::string dir_path;  // <proc_root>/<pid>, for messages
    UniqueFd dir;
    std::vector<spiffe::Selector> selectors;
    // Names already looked up: the primary gid is usually among the supplementary ones too.
    std::map<gid_t, std::optional<std::string>> group_names;
  };

  void Add(Call& call, std::string_view kind, std::string_view value) const;
  void AddName(Call& call, std::string_view kind, uint32_t id,
               const absl::StatusOr<std::optional<std::string>>& name) const;
  void AddGroup(Call& call, std::string_view kind, gid_t gid) const;
  absl::StatusOr<std::string> ExePath(const Call& call) const;
  absl::StatusOr<std::string> HashExe(const Call& call, std::string_view exe_path,
                                      const AttestationDeadline& deadline) const;

  // Set at construction, never changed.
  const Config config_;
  const std::string proc_root_;
  const std::shared_ptr<const NameResolver> resolver_;
};

// For values built from numbers, which always make a valid selector.
void UnixAttestor::Add(Call& call, std::string_view kind, std::string_view value) const {
  absl::StatusOr<spiffe::Selector> selector =
      spiffe::Selector::Create(kPluginName, absl::StrCat(AsAbsl(kind), ":", AsAbsl(value)));
  if (selector.ok()) call.selectors.push_back(*std::move(selector));
}

void UnixAttestor::AddName(Call& call, std::string_view kind, uint32_t id,
                           const absl::StatusOr<std::optional<std::string>>& name) const {
  if (!name.ok()) {
    spdlog::warn("unix: process {}: no {} selector for id {}: {}", call.pid, kind, id,
                 name.status().ToString());
    return;
  }
  // An empty name from NSS counts as none, rather than becoming a selector that ends in ':'.
  if (!name->has_value() || (*name)->empty()) return;
  // Names come from NSS (possibly a directory service), so they may not fit in a selector.
  absl::StatusOr<spiffe::Selector> selector =
      spiffe::Selector::Create(kPluginName, absl::StrCat(AsAbsl(kind), ":", **name));
  if (!selector.ok()) {
    spdlog::warn("unix: process {}: no {} selector for id {}: name {}: {}", call.pid, kind, id,
                 Quoted(**name), std::string(selector.status().message()));
    return;
  }
  call.selectors.push_back(*std::move(selector));
}

void UnixAttestor::AddGroup(Call& call, std::string_view kind, gid_t gid) const {
  auto it = call.group_names.find(gid);
  if (it != call.group_names.end()) {
    AddName(call, kind, gid, it->second);
    return;
  }
  absl::StatusOr<std::optional<std::string>> name = resolver_->GroupName(gid);
  AddName(call, kind, gid, name);
  // Failures are not remembered, so each is logged with the selector it cost.
  if (name.ok()) call.group_names.emplace(gid, *std::move(name));
}

absl::StatusOr<std::string> UnixAttestor::ExePath(const Call& call) const {
  std::string buf(kMaxLinkBytes, '\0');
  ssize_t n = ::readlinkat(call.dir.get(), "exe", buf.data(), buf.size());
  if (n < 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("unix: path lookup: readlink ", call.dir_path, "/exe"));
  }
  if (static_cast<size_t>(n) == buf.size()) {
    return absl::InvalidArgumentError(absl::StrCat("unix: path lookup: ", call.dir_path,
                                                   "/exe points to a path longer than ",
                                                   kMaxLinkBytes, " bytes"));
  }
  buf.resize(static_cast<size_t>(n));
  return buf;
}

absl::StatusOr<std::string> UnixAttestor::HashExe(const Call& call, std::string_view exe_path,
                                                  const AttestationDeadline& deadline) const {
  std::string context = absl::StrCat("unix: sha256 of ", AsAbsl(exe_path));
  // Through the link rather than by path: the file the process runs, even if that path now names
  // another file or none.
  UniqueFd fd(::openat(call.dir.get(), "exe", O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    return absl::ErrnoToStatus(errno, absl::StrCat(context, ": open ", call.dir_path, "/exe"));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return absl::ErrnoToStatus(errno, context);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(context, ": not a regular file"));
  }
  const int64_t limit = config_.workload_size_limit;
  auto over_limit = [&](int64_t size) {
    return absl::FailedPreconditionError(
        absl::StrCat(context, ": workload is ", size, " bytes, over workload_size_limit ", limit));
  };
  if (limit > 0 && st.st_size > limit) return over_limit(st.st_size);

  spiffe::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return absl::InternalError(absl::StrCat(context, ": cannot initialize SHA-256"));
  }
  std::vector<unsigned char> buf(kHashChunkBytes);
  int64_t total = 0;
  while (true) {
    // Hashing is the one step whose cost the workload controls (the size of its binary).
    RETURN_IF_ERROR(deadline.Check(context));
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat(context, ": read"));
    }
    if (n == 0) break;
    total += n;
    // The file may grow after fstat.
    if (limit > 0 && total > limit) return over_limit(total);
    if (EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n)) != 1) {
      return absl::InternalError(absl::StrCat(context, ": SHA-256 update failed"));
    }
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &digest_size) != 1) {
    return absl::InternalError(absl::StrCat(context, ": SHA-256 final failed"));
  }
  return HexEncode(digest, digest_size);
}

absl::StatusOr<spiffe::SelectorSet> UnixAttestor::Attest(const WorkloadProcess& process,
                                                         const AttestationDeadline& deadline) {
  if (process.pid <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("unix: invalid pid ", process.pid));
  }
  RETURN_IF_ERROR(deadline.Check(absl::StrCat("unix: process ", process.pid)));

  Call call{.pid = process.pid, .dir_path = absl::StrCat(proc_root_, "/", process.pid)};
  call.dir.Reset(::open(call.dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!call.dir) {
    return absl::ErrnoToStatus(errno, absl::StrCat("unix: open ", call.dir_path));
  }
  RETURN_IF_ERROR(CheckPinnedProcess(process.pidfd, process.pid));

  std::string status_path = absl::StrCat(call.dir_path, "/status");
  UniqueFd status_fd(::openat(call.dir.get(), "status", O_RDONLY | O_CLOEXEC));
  if (!status_fd) {
    return absl::ErrnoToStatus(errno, absl::StrCat("unix: open ", status_path));
  }
  ASSIGN_OR_RETURN(std::string status_text, ReadAll(status_fd.get(), kMaxStatusBytes, status_path),
                   Annotate(_, "unix"));
  ASSIGN_OR_RETURN(ProcCredentials creds, ParseProcStatus(status_text),
                   Annotate(_, absl::StrCat("unix: ", status_path)));

  const uid_t uid = creds.EffectiveUid();
  Add(call, "uid", absl::StrCat(uid));
  AddName(call, "user", uid, resolver_->UserName(uid));
  const gid_t gid = creds.EffectiveGid();
  Add(call, "gid", absl::StrCat(gid));
  AddGroup(call, "group", gid);
  for (gid_t group : creds.groups) {
    Add(call, "supplementary_gid", absl::StrCat(group));
    AddGroup(call, "supplementary_group", group);
  }

  if (config_.discover_workload_path) {
    ASSIGN_OR_RETURN(std::string exe_path, ExePath(call));
    ASSIGN_OR_RETURN(spiffe::Selector path,
                     spiffe::Selector::Create(kPluginName, absl::StrCat("path:", exe_path)),
                     Annotate(_, absl::StrCat("unix: path selector for ", Quoted(exe_path))));
    call.selectors.push_back(std::move(path));
    if (config_.workload_size_limit >= 0) {
      ASSIGN_OR_RETURN(std::string digest, HashExe(call, exe_path, deadline));
      Add(call, "sha256", digest);
    }
  }
  return spiffe::SelectorSet(std::move(call.selectors));
}

}  // namespace

Config ReadConfig(ConfigTable& table) {
  Config config;
  config.discover_workload_path = table.Optional<bool>("discover_workload_path", false);
  config.workload_size_limit = table.Optional<int64_t>("workload_size_limit", 0);
  return config;
}

absl::StatusOr<std::unique_ptr<WorkloadAttestor>> NewAttestor(const Config& config,
                                                              Options options) {
  if (options.proc_root.empty()) return absl::InvalidArgumentError("unix: empty proc_root");
  // Paths are built as <proc_root>/<pid>: a trailing slash would only double the separator in
  // every path and message ("/" itself becomes "", giving "/<pid>").
  while (!options.proc_root.empty() && options.proc_root.back() == '/') {
    options.proc_root.pop_back();
  }
  if (options.resolver == nullptr) options.resolver = SystemNameResolver();
  return std::make_unique<UnixAttestor>(config, std::move(options));
}

}  // namespace tessera::attestors::unix
