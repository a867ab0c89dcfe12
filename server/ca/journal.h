// The CA journal: what the CA manager must remember across restarts — which X.509 CA and JWT
// key sit in the "current" and "next" slots (key manager IDs, certificates, times) and which
// public material the bundle still publishes, with its sequence number. Private keys are never
// in it: they stay in the key manager.
//
// Journal is a plain value (not synchronized). It is stored as a JSON document through a
// JournalStore, which the server backs with the datastore's CA journal record; implementations
// of JournalStore must be safe for concurrent use.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "spiffe/certificate.h"
#include "spiffe/key.h"

namespace tessera::server::ca {

using TimePoint = std::chrono::system_clock::time_point;

// Largest journal document accepted.
inline constexpr size_t kMaxJournalBytes = 4 << 20;

struct X509CaRecord {
  // Where the CA's private key lives in the key manager.
  std::string key_id;
  spiffe::Certificate ca_cert;
  // What every X509-SVID chain carries after the leaf: nothing for a self-signed CA (it is a
  // root in the bundle); our CA and the upstream intermediates under an upstream authority.
  std::vector<spiffe::Certificate> chain_tail;
  // When the CA was made; rotation is timed on [issued_at, ca_cert.NotAfter()].
  TimePoint issued_at;

  TimePoint not_after() const { return ca_cert.NotAfter(); }
};

struct JwtKeyRecord {
  std::string key_id;
  // The JWT "kid" header of tokens this key signs.
  std::string kid;
  spiffe::PublicKey public_key;
  TimePoint issued_at;
  TimePoint not_after;
};

// A trust anchor in the bundle, kept until everything that may chain to it has expired.
struct PublishedX509Authority {
  spiffe::Certificate cert;
  TimePoint expires_at;
};

struct PublishedJwtKey {
  std::string kid;
  spiffe::PublicKey public_key;
  TimePoint expires_at;
};

struct Journal {
  // The trust domain name the CA served; a journal of another trust domain is not reused.
  std::string trust_domain;
  // The bundle's sequence number; grows on every change of its content.
  uint64_t bundle_sequence = 0;
  std::optional<X509CaRecord> current_x509;
  std::optional<X509CaRecord> next_x509;
  std::optional<JwtKeyRecord> current_jwt;
  std::optional<JwtKeyRecord> next_jwt;
  std::vector<PublishedX509Authority> x509_authorities;
  std::vector<PublishedJwtKey> jwt_keys;
};

// A JSON document; times are Unix seconds (sub-second parts are dropped).
absl::StatusOr<std::string> EncodeJournal(const Journal& journal);
// InvalidArgument `ca journal: ...` naming the member that is malformed, missing, or of an
// unknown version.
absl::StatusOr<Journal> DecodeJournal(std::string_view bytes);

class JournalStore {
 public:
  virtual ~JournalStore() = default;
  // The last saved document, or nullopt when none was ever saved. An error means the store
  // could not be read (the CA manager then refuses to start rather than replace its CA).
  virtual absl::StatusOr<std::optional<std::string>> Load() = 0;
  virtual absl::Status Save(std::string_view bytes) = 0;
};

// Keeps the document in memory: for tests, and for a server whose keys are in memory anyway.
class MemoryJournalStore final : public JournalStore {
 public:
  absl::StatusOr<std::optional<std::string>> Load() override {
    absl::MutexLock lock(&mu_);
    return data_;
  }
  absl::Status Save(std::string_view bytes) override {
    absl::MutexLock lock(&mu_);
    data_ = std::string(bytes);
    return absl::OkStatus();
  }

 private:
  absl::Mutex mu_;
  std::optional<std::string> data_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::server::ca
