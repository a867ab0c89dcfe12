// NameResolver over NSS. The reentrant lookups need a caller-supplied buffer whose required size
// is only a hint (large groups of an LDAP directory outgrow it), so it grows on ERANGE up to a cap.
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "attestors/unix/unix.h"
#include "common/strings.h"

namespace tessera::attestors::unix {
namespace {

constexpr size_t kMinBuffer = 1024;
constexpr size_t kMaxBuffer = 4 << 20;

size_t InitialBufferSize(int sysconf_name) {
  long hint = ::sysconf(sysconf_name);
  return hint > 0 ? static_cast<size_t>(hint) : kMinBuffer;
}

// getpwuid_r and getgrgid_r report "no such entry" as 0 with a null result, or, depending on
// the NSS module, as one of these codes (see getpwnam(3)).
bool IsNotFound(int err) {
  return err == 0 || err == ENOENT || err == ESRCH || err == EBADF || err == EPERM;
}

// Calls `lookup(entry, buffer, size, &result)` with a growing buffer; `field` picks the name out
// of the entry. `what` is "user" or "group", `id` the id looked up.
template <typename Entry, typename Lookup, typename Field>
absl::StatusOr<std::optional<std::string>> LookUp(std::string_view what, unsigned long id,
                                                  int sysconf_name, Lookup lookup, Field field) {
  std::vector<char> buffer(InitialBufferSize(sysconf_name));
  while (true) {
    Entry entry{};
    Entry* result = nullptr;
    int err = lookup(&entry, buffer.data(), buffer.size(), &result);
    if (err == EINTR) continue;
    if (err == ERANGE && buffer.size() < kMaxBuffer) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (result != nullptr) {
      const char* name = field(*result);
      if (name == nullptr) return std::nullopt;
      return std::string(name);
    }
    if (IsNotFound(err)) return std::nullopt;
    return absl::ErrnoToStatus(err, absl::StrCat("look up ", AsAbsl(what), " ", id));
  }
}

class SystemResolver final : public NameResolver {
 public:
  absl::StatusOr<std::optional<std::string>> UserName(uid_t uid) const override {
    return LookUp<passwd>(
        "user", uid, _SC_GETPW_R_SIZE_MAX,
        [uid](passwd* entry, char* buf, size_t size, passwd** result) {
          return ::getpwuid_r(uid, entry, buf, size, result);
        },
        [](const passwd& entry) { return entry.pw_name; });
  }

  absl::StatusOr<std::optional<std::string>> GroupName(gid_t gid) const override {
    return LookUp<group>(
        "group", gid, _SC_GETGR_R_SIZE_MAX,
        [gid](group* entry, char* buf, size_t size, group** result) {
          return ::getgrgid_r(gid, entry, buf, size, result);
        },
        [](const group& entry) { return entry.gr_name; });
  }
};

}  // namespace

std::shared_ptr<const NameResolver> SystemNameResolver() {
  return std::make_shared<const SystemResolver>();
}

}  // namespace tessera::attestors::unix
