#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "common/unique_fd.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

absl::Status ErrnoError(std::string_view what, const fs::path& path, int err) {
  return absl::ErrnoToStatus(err, absl::StrCat(AsAbsl(what), " ", path.string()));
}

absl::Status WriteAll(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status FsyncDirectory(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoError("open directory", dir, errno);
  if (::fsync(fd.get()) != 0) return ErrnoError("fsync directory", dir, errno);
  return absl::OkStatus();
}

absl::Status MakePrivateDirectory(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("mkdir", dir, errno);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return ErrnoError("stat", dir, errno);
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(dir.string(), " is not a directory"));
  }
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0) {
    return ErrnoError("chmod", dir, errno);
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const fs::path& path, std::string_view contents, mode_t mode) {
  fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  fs::path tmp = path;
  tmp += absl::StrCat(".tmp.", ::getpid());
  ::unlink(tmp.c_str());  // left over by a crashed earlier process with the same pid
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) return ErrnoError("create", tmp, errno);
  absl::Status status = WriteAll(fd.get(), contents, tmp);
  // Exactly `mode`, whatever the umask: callers ask for 0600 and mean it.
  if (status.ok() && ::fchmod(fd.get(), mode) != 0) status = ErrnoError("chmod", tmp, errno);
  if (status.ok() && ::fsync(fd.get()) != 0) status = ErrnoError("fsync", tmp, errno);
  fd.Reset();
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoError("rename", tmp, errno);
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  return FsyncDirectory(dir);
}

absl::StatusOr<std::string> ReadFileToString(const fs::path& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoError("open", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("stat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), " is not a regular file"));
  }
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", path, errno);
    }
    if (n == 0) break;
    if (data.size() + static_cast<size_t>(n) > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), " is larger than ", max_bytes, " bytes"));
    }
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

}  // namespace tessera
