#include "server/ca/key_manager.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/text.h"
#include "common/unique_fd.h"
#include "spdlog/spdlog.h"

namespace tessera::server::ca {
namespace {

constexpr size_t kMaxKeyFileBytes = size_t{64} * 1024;
constexpr std::string_view kKeySuffix = ".pem";
// WriteFileAtomically's temp files are "<key file>.tmp.<pid>".
constexpr std::string_view kTempMarker = ".pem.tmp.";

// ENOENT becomes NotFound, EACCES PermissionDenied, and so on.
absl::Status Errno(std::string_view what, const std::string& path, int err) {
  return absl::ErrnoToStatus(
      err, absl::StrCat("key manager: ", AsAbsl(what), " ", AsAbsl(Quoted(path))));
}

void RemoveStaleTempFiles(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    // A key file always ends in ".pem", a temp file never does.
    if (name.find(kTempMarker) == std::string::npos || name.ends_with(kKeySuffix)) continue;
    if (std::filesystem::remove(entry.path(), ec)) {
      spdlog::info("key manager: removed the temp file {} left by an interrupted write",
                   entry.path().string());
    }
  }
}

}  // namespace

absl::Status ValidateKeyId(std::string_view key_id) {
  auto invalid = [key_id](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid key id ", AsAbsl(Quoted(key_id, 64)), ": ", AsAbsl(why)));
  };
  if (key_id.empty()) return invalid("empty");
  if (key_id.size() > kMaxKeyIdLength) {
    return invalid(absl::StrCat("longer than ", kMaxKeyIdLength, " bytes"));
  }
  if (key_id[0] == '.') return invalid("starts with '.'");
  for (char c : key_id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return invalid("only letters, digits, '.', '_' and '-' are allowed");
  }
  return absl::OkStatus();
}

// ---- MemoryKeyManager ----

absl::StatusOr<spiffe::PrivateKey> MemoryKeyManager::GenerateKey(std::string_view key_id,
                                                                 spiffe::KeyType type) {
  RETURN_IF_ERROR(ValidateKeyId(key_id));
  ASSIGN_OR_RETURN(spiffe::PrivateKey key, spiffe::PrivateKey::Generate(type),
                   Annotate(_, "key manager: generate key"));
  absl::MutexLock lock(&mu_);
  keys_.insert_or_assign(std::string(key_id), key);
  return key;
}

absl::StatusOr<spiffe::PrivateKey> MemoryKeyManager::GetKey(std::string_view key_id) {
  RETURN_IF_ERROR(ValidateKeyId(key_id));
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(key_id);
  if (it == keys_.end()) {
    return absl::NotFoundError(absl::StrCat("key manager: no key ", AsAbsl(Quoted(key_id))));
  }
  return it->second;
}

absl::Status MemoryKeyManager::DeleteKey(std::string_view key_id) {
  RETURN_IF_ERROR(ValidateKeyId(key_id));
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(key_id);
  if (it == keys_.end()) {
    return absl::NotFoundError(absl::StrCat("key manager: no key ", AsAbsl(Quoted(key_id))));
  }
  keys_.erase(it);
  return absl::OkStatus();
}

// ---- DiskKeyManager ----

absl::StatusOr<std::unique_ptr<DiskKeyManager>> DiskKeyManager::Open(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.empty()) return absl::InvalidArgumentError("key manager: empty directory path");
  RETURN_IF_ERROR(Annotate(MakePrivateDirectory(dir), "key manager: open key directory"));
  RemoveStaleTempFiles(dir);
  return std::unique_ptr<DiskKeyManager>(new DiskKeyManager(std::move(dir)));
}

std::string DiskKeyManager::KeyPath(std::string_view key_id) const {
  return absl::StrCat(dir_, "/", AsAbsl(key_id), AsAbsl(kKeySuffix));
}

absl::StatusOr<spiffe::PrivateKey> DiskKeyManager::GenerateKey(std::string_view key_id,
                                                               spiffe::KeyType type) {
  RETURN_IF_ERROR(ValidateKeyId(key_id));
  ASSIGN_OR_RETURN(spiffe::PrivateKey key, spiffe::PrivateKey::Generate(type),
                   Annotate(_, "key manager: generate key"));
  ASSIGN_OR_RETURN(std::string pem, key.ToPkcs8Pem(), Annotate(_, "key manager: encode key"));
  absl::MutexLock lock(&mu_);
  absl::Status written =
      Annotate(WriteFileAtomically(KeyPath(key_id), pem, 0600), "key manager: write key");
  // Scrub our copy of the encoding; the PEM string is the only plain copy outside OpenSSL.
  OPENSSL_cleanse(pem.data(), pem.size());
  RETURN_IF_ERROR(written);
  return key;
}

absl::StatusOr<spiffe::PrivateKey> DiskKeyManager::GetKey(std::string_view key_id) {
  RETURN_IF_ERROR(ValidateKeyId(key_id));
  std::string path = KeyPath(key_id);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return Errno("open", path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Errno("stat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("key manager: ", Quoted(path), " is not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxKeyFileBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat("key manager: ", Quoted(path), " is larger than 64 KiB"));
  }
  if ((st.st_mode & 077) != 0) {
    spdlog::warn("key manager: key file {} is accessible to other users (mode {:o}); expected 0600",
                 path, st.st_mode & 0777);
  }
  std::string pem(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < pem.size()) {
    ssize_t n = ::read(fd.get(), pem.data() + done, pem.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read", path, errno);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  pem.resize(done);
  absl::StatusOr<spiffe::PrivateKey> key = spiffe::PrivateKey::FromPem(pem);
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!key.ok()) {
    // The parser's message names the OpenSSL error only, never the file's bytes.
    return absl::FailedPreconditionError(absl::StrCat(
        "key manager: ", Quoted(path), " does not hold a private key: ", key.status().message()));
  }
  return key;
}

absl::Status DiskKeyManager::DeleteKey(std::string_view key_id) {
  RETURN_IF_ERROR(ValidateKeyId(key_id));
  std::string path = KeyPath(key_id);
  absl::MutexLock lock(&mu_);
  if (::unlink(path.c_str()) != 0) return Errno("delete", path, errno);
  return Annotate(FsyncDirectory(dir_), "key manager");
}

}  // namespace tessera::server::ca
