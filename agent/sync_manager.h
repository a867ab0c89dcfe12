// SyncManager: keeps the agent's cache in step with the server. It owns the ServerClient and
// runs two threads:
//  - the sync loop: fetches the authorized entries (SyncAuthorizedEntries), the own bundle and
//    the federated bundles the entries federate with, mints X509-SVIDs (keys generated here, in
//    memory; BatchNewX509SVID in batches of at most 500) for new entries, changed entries, SVIDs
//    past their rotation point (a fixed random 40-50% of their lifetime) and SVIDs that no longer
//    verify against the own bundle (a CA change), and publishes a new CacheSnapshot whenever
//    something changed. It wakes on a push notification, on TriggerSync, at the next rotation or
//    expiry, and every sync_interval as a fallback. An SVID past its expiry is dropped from the
//    cache even while the server is unreachable; everything else keeps being served. Failed
//    syncs are retried with capped exponential backoff with jitter (about 1 s up to max_backoff).
//  - the push watcher: holds the server's Notifier stream open (reconnecting with backoff) and
//    turns its notifications into syncs. Against a server without it (spire-server) the agent
//    just polls.
// It is also the agent's JwtSvidSource (see JwtSvidCache for the caching rules); tokens of
// removed entries are dropped after each sync.
//
// Thread-safety: Start, Shutdown, TriggerSync, status and FetchJwtSvid are safe from any thread.
// The entry, SVID and bundle state is owned by the sync loop thread. Lifetime: `identity` and
// `cache` must outlive the manager; the destructor calls Shutdown and waits for JWT-SVID fetches
// in flight.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "agent/agent_identity.h"
#include "agent/cache/cache.h"
#include "agent/cache/jwt_svid_source.h"
#include "agent/jwt_svid_cache.h"
#include "agent/server_address.h"
#include "agent/server_client.h"
#include "common/clock.h"
#include "spiffe/bundle.h"
#include "spiffe/id.h"
#include "spiffe/key.h"

namespace tessera::agent {

struct SyncOptions {
  spiffe::TrustDomain trust_domain;
  std::vector<ServerAddress> servers;
  // Periodic sync, the fallback when no push arrives.
  std::chrono::milliseconds sync_interval{5000};
  // Type of the workload keys generated on this node.
  spiffe::KeyType key_type = spiffe::KeyType::kEcP256;
  std::chrono::seconds rpc_timeout{30};
  // RealClock when null. Judges SVID and token lifetimes.
  std::shared_ptr<const Clock> clock;
  // Longest wait between retries after failures (also bounds gRPC's reconnection backoff).
  std::chrono::seconds max_backoff{60};
};

// The outcome of the syncs so far (the composition root maps it to /ready).
struct SyncStatus {
  std::optional<Clock::TimePoint> last_success;
  // OK after a successful sync; why the last one failed otherwise.
  absl::Status last_error;
  int consecutive_failures = 0;
  // At least one sync succeeded (and a snapshot with the bundle was published).
  bool has_synced = false;
};

class SyncManager final : public JwtSvidSource {
 public:
  SyncManager(SyncOptions options, AgentIdentitySource& identity, Cache& cache);
  ~SyncManager() override;
  SyncManager(const SyncManager&) = delete;
  SyncManager& operator=(const SyncManager&) = delete;

  // Starts both threads; the first sync begins at once. Only the first call has an effect.
  void Start();
  // Cancels the RPCs in flight and joins both threads. Idempotent; the manager cannot be
  // restarted.
  void Shutdown();
  // Asks for a sync now (it also cuts a retry backoff short).
  void TriggerSync();

  SyncStatus status() const;
  // Sync attempts finished so far, successful or not (for tests).
  uint64_t sync_count() const;

  // JwtSvidSource.
  void FetchJwtSvid(std::shared_ptr<const CachedEntry> entry, std::vector<std::string> audience,
                    Callback done) override;

 private:
  // An X509-SVID this agent holds for an entry.
  struct HeldSvid {
    std::shared_ptr<const spiffe::X509Svid> svid;
    std::shared_ptr<const EncodedX509Svid> encoded;
    int64_t revision_number = 0;  // of the entry it was minted for
    Clock::TimePoint rotate_at;
    Clock::TimePoint expires_at;
  };
  // An entry whose last mint failed for a reason of its own: not retried before retry_at.
  struct MintFailure {
    int count = 0;
    Clock::TimePoint retry_at;
  };
  // Lets the identity source's listener outlive the manager safely.
  struct Liveness {
    std::mutex mu;
    SyncManager* self = nullptr;  // null once shut down
  };

  void SyncLoop(std::stop_token stop);
  void WatchLoop(std::stop_token stop);
  void OnIdentityChanged();

  // Loop thread only.
  absl::Status SyncOnce();
  struct MintResult {
    size_t minted = 0;
    // The first failure that concerns the server rather than one entry.
    absl::Status fatal;
  };
  MintResult Mint(const std::vector<std::shared_ptr<const CachedEntry>>& entries,
                  const spiffe::Bundle& own_bundle);
  absl::StatusOr<HeldSvid> Accept(const CachedEntry& entry, const spiffe::PrivateKey& key,
                                  std::vector<spiffe::Certificate> chain,
                                  const spiffe::Bundle& own_bundle, Clock::TimePoint now);
  bool NeedsMint(const CachedEntry& entry, bool recheck_trust, const spiffe::Bundle& own_bundle,
                 Clock::TimePoint now) const;
  bool RotationDue(Clock::TimePoint now) const;
  // The earliest wall-clock time something must happen without a sync request: an SVID expires,
  // or (when `healthy`) one is due for rotation or a failed mint may be retried.
  std::optional<Clock::TimePoint> NextEvent(bool healthy) const;
  bool PruneExpired(Clock::TimePoint now);
  // `server_reachable`: whether the last exchange with the server worked (see CacheSnapshot).
  void Publish(bool server_reachable);
  void RecordResult(const absl::Status& status);
  // Capped exponential backoff with jitter for the `failures`-th consecutive failure.
  static std::chrono::milliseconds Backoff(int failures, std::chrono::milliseconds max,
                                           std::mt19937_64& rng);

  // Immutable after construction.
  const SyncOptions options_;
  const std::shared_ptr<const Clock> clock_;
  AgentIdentitySource& identity_;
  Cache& cache_;
  const std::shared_ptr<Liveness> liveness_;
  // jwt_ is declared before client_ so it outlives the client's callbacks into it.
  std::unique_ptr<JwtSvidCache> jwt_;
  std::unique_ptr<ServerClient> client_;

  // Owned by the sync loop thread.
  EntryMap entries_;
  std::map<std::string, HeldSvid> svids_;
  std::map<std::string, MintFailure> mint_failures_;
  spiffe::BundleSet bundles_;
  // The own bundle the held SVIDs were last checked against.
  std::optional<spiffe::Bundle> checked_against_;
  std::mt19937_64 loop_rng_{std::random_device{}()};

  // Wake-ups of both loops.
  mutable std::mutex wake_mu_;
  std::condition_variable_any wake_cv_;
  bool sync_requested_ = false;     // guarded by wake_mu_
  std::stop_source watch_restart_;  // guarded by wake_mu_; ends the current Watch call

  mutable std::mutex status_mu_;
  SyncStatus status_;        // guarded by status_mu_
  uint64_t sync_count_ = 0;  // guarded by status_mu_

  std::mutex lifecycle_mu_;
  bool started_ = false;    // guarded by lifecycle_mu_
  bool shut_down_ = false;  // guarded by lifecycle_mu_
  std::jthread sync_thread_;
  std::jthread watch_thread_;
};

}  // namespace tessera::agent
