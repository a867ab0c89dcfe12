// CaManager: the trust domain's certificate authority inside tessera-server. It owns the X.509
// CA and the JWT signing key, rotates both, publishes the trust bundle, and signs X509-SVIDs
// (workloads, agents, the server itself) and JWT-SVIDs.
//
// Rotation (as SPIRE does it, with "current" and "next" slots for each kind of key): the next
// authority is prepared at half the current one's life and its public material enters the
// bundle at once, so verifiers learn it before its first use; it becomes current at five sixths
// of the current one's life (at most 7 days before its expiry). A retired authority stops
// signing but stays in the bundle until its own expiry: everything it signed is cut at that
// time. Any change of the bundle's content bumps its sequence number and is handed to the
// BundlePublisher. The slots and the published material are kept in a journal (JournalStore)
// and the private keys in the KeyManager, so a restarted server keeps its CA.
//
// There are no threads inside: the server's background loop calls Tick() every few seconds.
// Thread-safety: the Sign* methods and bundle() are safe to call from any thread at any time,
// concurrently with Tick(); they work on an immutable snapshot of the active signer and never
// wait for a rotation in progress (key generation, journal writes, publishing). Initialize and
// Tick/Rotate are serialized internally.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "nlohmann/json.hpp"
#include "server/ca/config.h"
#include "server/ca/journal.h"
#include "server/ca/key_manager.h"
#include "server/ca/upstream_authority.h"
#include "spiffe/bundle.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"
#include "spiffe/key.h"
#include "spiffe/x509_svid.h"

namespace tessera::server::ca {

// What the trust domain publishes. X.509 authorities are never tainted (Tessera does not taint
// keys yet); `bundle.sequence_number()` is always set.
struct BundleContents {
  spiffe::Bundle bundle;
  // kid → expiry of that JWT key, Unix seconds (types.JWTKey.expires_at).
  std::map<std::string, int64_t> jwt_key_expiry;
};

// Receives every new bundle (the server stores it in the datastore and pushes it to agents).
// Called from the thread running Initialize/Tick, never concurrently with itself, with no
// CaManager lock held that signing needs. A failure is retried on the next Tick.
class BundlePublisher {
 public:
  virtual ~BundlePublisher() = default;
  virtual absl::Status Publish(const BundleContents& contents) = 0;
};

struct SignedX509Svid {
  // Leaf first, then the intermediates a verifier needs up to (not including) a bundle root:
  // just the leaf under a self-signed CA.
  std::vector<spiffe::Certificate> chain;
  // When it was signed (the leaf's notBefore is kBackdate earlier).
  TimePoint issued_at;
  // The leaf's notAfter.
  TimePoint expires_at;
};

struct SignedJwtSvid {
  std::string token;
  TimePoint issued_at;
  TimePoint expires_at;
};

// The server's own TLS identity, spiffe://<td>/spire/server, with its freshly generated key.
struct ServerSvid {
  spiffe::PrivateKey key;
  SignedX509Svid svid;
};

// True from half of `svid`'s life on: the time to issue its replacement.
bool ShouldRenew(const SignedX509Svid& svid, TimePoint now);

// A view of the slots, for logs, health and tests.
struct CaStatus {
  std::optional<spiffe::Certificate> current_x509_ca;
  std::optional<spiffe::Certificate> next_x509_ca;
  // Empty when the slot is empty.
  std::string current_jwt_kid;
  std::string next_jwt_kid;
  uint64_t bundle_sequence = 0;
};

// What the manager works with; every pointer must outlive it.
struct CaManagerDeps {
  const Clock* clock = nullptr;
  KeyManager* key_manager = nullptr;
  JournalStore* journal_store = nullptr;
  // Optional: without one the bundle is only available through bundle().
  BundlePublisher* publisher = nullptr;
  // Optional: without one our X.509 CA is a self-signed root.
  UpstreamAuthority* upstream = nullptr;
};

class CaManager {
 public:
  // `config` must have passed ValidateCaConfig.
  CaManager(CaConfig config, CaManagerDeps deps);
  CaManager(const CaManager&) = delete;
  CaManager& operator=(const CaManager&) = delete;

  // Loads the journal and the keys it names; reuses authorities that are still valid and whose
  // keys are present, replaces the rest (a corrupt journal or a missing key is logged, not
  // fatal), then rotates as needed and publishes the bundle. Fails when the journal store
  // cannot be read or no CA can be made (key manager or upstream authority failing); journal
  // writes and publishing that fail are logged and retried by Tick.
  absl::Status Initialize();

  // Drops expired authorities, prepares and activates new ones when due, prunes the bundle,
  // saves the journal and publishes the bundle if anything changed (or a previous attempt
  // failed). Returns whether the slots or the bundle changed; an error means some step failed
  // (the state stays consistent and the step is retried on the next call).
  absl::StatusOr<bool> Rotate(TimePoint now);
  absl::StatusOr<bool> Tick() { return Rotate(clock_.Now()); }

  // The published bundle; null before Initialize succeeds.
  std::shared_ptr<const BundleContents> bundle() const;
  // Unlike the rest, waits for a rotation in progress: for logs, health checks and tests.
  CaStatus GetStatus() const;
  const spiffe::TrustDomain& trust_domain() const { return config_.trust_domain; }
  const CaConfig& config() const { return config_; }

  // An X509-SVID for `public_key`. `id` must be in our trust domain and have a path; `ttl` 0
  // means default_x509_svid_ttl, negative is InvalidArgument; the leaf is cut at the CA's
  // expiry. `subject` defaults to C=US, O=SPIRE (a CN = dns_names[0] is added by the builder).
  // FailedPrecondition before Initialize; Unavailable when the CA has expired (rotation is
  // failing).
  absl::StatusOr<SignedX509Svid> SignX509Svid(
      const spiffe::PublicKey& public_key, const spiffe::SpiffeId& id,
      const std::vector<std::string>& dns_names, std::chrono::seconds ttl,
      const std::optional<spiffe::DistinguishedName>& subject = std::nullopt) const;
  // An agent SVID (subject C=US, O=SPIRE, no DNS names); `ttl` 0 means agent_ttl.
  absl::StatusOr<SignedX509Svid> SignAgentSvid(const spiffe::PublicKey& public_key,
                                               const spiffe::SpiffeId& agent_id,
                                               std::chrono::seconds ttl) const;
  // The server's own SVID, spiffe://<td>/spire/server, for default_x509_svid_ttl.
  absl::StatusOr<SignedX509Svid> SignServerSvid(const spiffe::PublicKey& public_key) const;
  // A fresh key of `type` (kept in memory only) and a server SVID for it.
  absl::StatusOr<ServerSvid> IssueServerSvid(spiffe::KeyType type = spiffe::KeyType::kEcP256) const;

  // A JWT-SVID for `id` (in our trust domain) signed by the active JWT key: header kid, claims
  // sub, aud, exp (cut at the key's expiry), iat, plus "iss" when jwt_issuer is configured and
  // `extra_claims` (an object or null) sets none. `ttl` 0 means default_jwt_svid_ttl.
  absl::StatusOr<SignedJwtSvid> SignJwtSvid(const spiffe::SpiffeId& id,
                                            const std::vector<std::string>& audience,
                                            std::chrono::seconds ttl,
                                            const nlohmann::json& extra_claims = nullptr) const;

 private:
  struct X509Slot {
    X509CaRecord record;
    spiffe::PrivateKey key;
  };
  struct JwtSlot {
    JwtKeyRecord record;
    spiffe::PrivateKey key;
  };
  struct Changes {
    bool slots = false;
    bool bundle = false;
    bool journal = false;
  };

  // Initialization.
  void Restore(const Journal& journal) ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);
  std::optional<X509Slot> RestoreX509(const X509CaRecord& record, std::string_view slot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);
  std::optional<JwtSlot> RestoreJwt(const JwtKeyRecord& record, std::string_view slot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);

  // Rotation.
  absl::Status RotateLocked(TimePoint now, Changes* changes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);
  absl::Status RotateX509(TimePoint now, Changes* changes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);
  absl::Status RotateJwt(TimePoint now, Changes* changes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);
  absl::StatusOr<X509Slot> PrepareX509(TimePoint now, Changes* changes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);
  absl::StatusOr<JwtSlot> PrepareJwt(TimePoint now, Changes* changes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);
  void Prune(TimePoint now, Changes* changes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);
  // Applies `changes`: new snapshots, sequence number, pending journal write and publish.
  void Commit(const Changes& changes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);
  // Saves the journal and publishes the bundle when pending.
  absl::Status Flush() ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);
  Journal ToJournal() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);
  BundleContents BuildBundle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);

  // Signing.
  std::shared_ptr<const X509Slot> ActiveX509() const;
  std::shared_ptr<const JwtSlot> ActiveJwt() const;
  absl::StatusOr<SignedX509Svid> SignLeafSvid(const spiffe::PublicKey& public_key,
                                              const spiffe::SpiffeId& id,
                                              const std::vector<std::string>& dns_names,
                                              std::chrono::seconds ttl,
                                              spiffe::DistinguishedName subject) const;

  // Set at construction, never changed.
  const CaConfig config_;
  const Clock& clock_;
  KeyManager& key_manager_;
  JournalStore& journal_store_;
  BundlePublisher* const publisher_;
  UpstreamAuthority* const upstream_;

  // Rotation state: only Initialize and Rotate touch it, one at a time.
  mutable absl::Mutex rotate_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  bool initialized_ ABSL_GUARDED_BY(rotate_mu_) = false;
  std::optional<X509Slot> current_x509_ ABSL_GUARDED_BY(rotate_mu_);
  std::optional<X509Slot> next_x509_ ABSL_GUARDED_BY(rotate_mu_);
  std::optional<JwtSlot> current_jwt_ ABSL_GUARDED_BY(rotate_mu_);
  std::optional<JwtSlot> next_jwt_ ABSL_GUARDED_BY(rotate_mu_);
  std::vector<PublishedX509Authority> published_x509_ ABSL_GUARDED_BY(rotate_mu_);
  std::vector<PublishedJwtKey> published_jwt_ ABSL_GUARDED_BY(rotate_mu_);
  uint64_t sequence_ ABSL_GUARDED_BY(rotate_mu_) = 0;
  bool journal_dirty_ ABSL_GUARDED_BY(rotate_mu_) = false;
  bool publish_pending_ ABSL_GUARDED_BY(rotate_mu_) = false;

  // What signers and readers see: immutable snapshots swapped under mu_, which is only ever
  // held for a pointer copy.
  mutable absl::Mutex mu_;
  std::shared_ptr<const X509Slot> active_x509_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const JwtSlot> active_jwt_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const BundleContents> bundle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::server::ca
