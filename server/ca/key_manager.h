// KeyManager: where the server's CA and JWT signing keys live, by key ID. The CA manager asks it
// for a fresh key when it prepares a new authority and for the existing ones on restart, so that
// a restarted server keeps signing with the same CA.
//
// Implementations are safe for concurrent use. Private key material never appears in a log line
// or an error message.
//   MemoryKeyManager: keys in process memory only (tests, `[key_manager.memory]`): a restart
//                     starts a new CA.
//   DiskKeyManager:   one PKCS#8 PEM file per key, mode 0600, in a directory of mode 0700,
//                     written atomically (temp file, fsync, rename, fsync of the directory), so
//                     a crash leaves either the old key or the new one, never half a file.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "spiffe/key.h"

namespace tessera::server::ca {

// Longest key ID accepted.
inline constexpr size_t kMaxKeyIdLength = 128;

// Key IDs double as file names: 1 to kMaxKeyIdLength bytes of [A-Za-z0-9._-], not starting
// with '.'. InvalidArgument `invalid key id "...": ...` otherwise.
absl::Status ValidateKeyId(std::string_view key_id);

class KeyManager {
 public:
  virtual ~KeyManager() = default;

  // Generates a key of `type` and stores it under `key_id`, replacing any key stored there.
  virtual absl::StatusOr<spiffe::PrivateKey> GenerateKey(std::string_view key_id,
                                                         spiffe::KeyType type) = 0;
  // The key stored under `key_id`; NotFound when there is none.
  virtual absl::StatusOr<spiffe::PrivateKey> GetKey(std::string_view key_id) = 0;
  // Removes the key stored under `key_id`; NotFound when there is none.
  virtual absl::Status DeleteKey(std::string_view key_id) = 0;
};

class MemoryKeyManager final : public KeyManager {
 public:
  MemoryKeyManager() = default;
  MemoryKeyManager(const MemoryKeyManager&) = delete;
  MemoryKeyManager& operator=(const MemoryKeyManager&) = delete;

  absl::StatusOr<spiffe::PrivateKey> GenerateKey(std::string_view key_id,
                                                 spiffe::KeyType type) override;
  absl::StatusOr<spiffe::PrivateKey> GetKey(std::string_view key_id) override;
  absl::Status DeleteKey(std::string_view key_id) override;

 private:
  absl::Mutex mu_;
  std::map<std::string, spiffe::PrivateKey, std::less<>> keys_ ABSL_GUARDED_BY(mu_);
};

class DiskKeyManager final : public KeyManager {
 public:
  // Opens `dir`, creating it (not its parents) with mode 0700 when missing. An existing
  // directory readable by group or others is tightened to 0700. Temp files a crash left behind
  // are removed.
  static absl::StatusOr<std::unique_ptr<DiskKeyManager>> Open(std::string dir);

  DiskKeyManager(const DiskKeyManager&) = delete;
  DiskKeyManager& operator=(const DiskKeyManager&) = delete;

  absl::StatusOr<spiffe::PrivateKey> GenerateKey(std::string_view key_id,
                                                 spiffe::KeyType type) override;
  // Reads <dir>/<key_id>.pem. A file that is not a regular file, is larger than 64 KiB, or does
  // not hold a private key is FailedPrecondition.
  absl::StatusOr<spiffe::PrivateKey> GetKey(std::string_view key_id) override;
  absl::Status DeleteKey(std::string_view key_id) override;

  const std::string& dir() const { return dir_; }
  // <dir>/<key_id>.pem (for tests and operators' messages).
  std::string KeyPath(std::string_view key_id) const;

 private:
  explicit DiskKeyManager(std::string dir) : dir_(std::move(dir)) {}

  // Set at construction, never changed.
  const std::string dir_;

  // Serializes writers, so that two GenerateKey calls for one ID cannot interleave their
  // renames with a concurrent delete.
  absl::Mutex mu_;
};

}  // namespace tessera::server::ca
