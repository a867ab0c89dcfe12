// SyncManager: lifecycle, the sync and push-watch loops, one sync, publishing. The X509-SVID
// bookkeeping is in sync_manager_svids.cc.
#include "agent/sync_manager.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <utility>

#include "common/status.h"
#include "common/strings.h"
#include "spdlog/spdlog.h"

namespace tessera::agent {
namespace {

using Steady = std::chrono::steady_clock;

// The first retry waits about this long; each failure doubles it up to the configured maximum.
constexpr std::chrono::milliseconds kInitialBackoff{1000};

std::shared_ptr<const Clock> ClockOrReal(std::shared_ptr<const Clock> clock) {
  if (clock != nullptr) return clock;
  return std::shared_ptr<const Clock>(&RealClock::Get(), [](const Clock*) {});
}

// Same IDs with the same entry objects (ServerClient keeps an unchanged entry's pointer).
bool SameEntries(const EntryMap& a, const EntryMap& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.first == y.first && x.second == y.second;
  });
}

}  // namespace

// Capped exponential backoff with "equal jitter": uniformly in [d/2, d], d = 1 s * 2^(n-1).
std::chrono::milliseconds SyncManager::Backoff(int failures, std::chrono::milliseconds max,
                                               std::mt19937_64& rng) {
  std::chrono::milliseconds delay = kInitialBackoff;
  for (int i = 1; i < failures && delay < max; ++i) delay *= 2;
  delay = std::min(delay, max);
  std::uniform_int_distribution<int64_t> jitter(delay.count() / 2, delay.count());
  return std::chrono::milliseconds(jitter(rng));
}

SyncManager::SyncManager(SyncOptions options, AgentIdentitySource& identity, Cache& cache)
    : options_(std::move(options)),
      clock_(ClockOrReal(options_.clock)),
      identity_(identity),
      cache_(cache),
      liveness_(std::make_shared<Liveness>()) {
  jwt_ = std::make_unique<JwtSvidCache>(
      [this](std::string entry_id, std::vector<std::string> audience,
             ServerClient::JwtCallback done) {
        client_->NewJwtSvidAsync(std::move(entry_id), std::move(audience), std::move(done));
      },
      clock_);
  client_ = std::make_unique<ServerClient>(
      ServerClientOptions{
          .trust_domain = options_.trust_domain,
          .servers = options_.servers,
          .rpc_timeout = options_.rpc_timeout,
          .max_reconnect_backoff = options_.max_backoff,
          .clock = clock_,
      },
      identity_);
  liveness_->self = this;
  // The identity source never forgets a listener: it reaches us through `liveness_`, which
  // Shutdown disconnects.
  identity_.OnAgentStateChange([liveness = liveness_](const std::shared_ptr<const AgentState>&) {
    std::lock_guard lock(liveness->mu);
    if (liveness->self != nullptr) liveness->self->OnIdentityChanged();
  });
}

SyncManager::~SyncManager() { Shutdown(); }

void SyncManager::Start() {
  std::lock_guard lock(lifecycle_mu_);
  if (started_ || shut_down_) return;
  started_ = true;
  sync_thread_ = std::jthread([this](std::stop_token stop) { SyncLoop(stop); });
  watch_thread_ = std::jthread([this](std::stop_token stop) { WatchLoop(stop); });
}

void SyncManager::Shutdown() {
  {
    std::lock_guard lock(liveness_->mu);
    liveness_->self = nullptr;
  }
  std::lock_guard lock(lifecycle_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  sync_thread_.request_stop();
  watch_thread_.request_stop();
  // Cuts short the RPCs the threads may be blocked in.
  client_->Shutdown();
  if (sync_thread_.joinable()) sync_thread_.join();
  if (watch_thread_.joinable()) watch_thread_.join();
}

void SyncManager::TriggerSync() {
  {
    std::lock_guard lock(wake_mu_);
    sync_requested_ = true;
  }
  wake_cv_.notify_all();
}

void SyncManager::OnIdentityChanged() {
  std::stop_source restart;
  {
    std::lock_guard lock(wake_mu_);
    restart = watch_restart_;
  }
  // The push stream was opened with the old SVID: reopen it with the new one. Outside wake_mu_:
  // cancelling may run gRPC callbacks inline.
  restart.request_stop();
  TriggerSync();
}

SyncStatus SyncManager::status() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

uint64_t SyncManager::sync_count() const {
  std::lock_guard lock(status_mu_);
  return sync_count_;
}

void SyncManager::FetchJwtSvid(std::shared_ptr<const CachedEntry> entry,
                               std::vector<std::string> audience, Callback done) {
  jwt_->Fetch(std::move(entry), std::move(audience), std::move(done));
}

void SyncManager::RecordResult(const absl::Status& result) {
  std::lock_guard lock(status_mu_);
  ++sync_count_;
  if (result.ok()) {
    if (status_.consecutive_failures > 0) {
      spdlog::info("agent: sync with the server succeeded after {} failures",
                   status_.consecutive_failures);
    }
    status_.last_success = clock_->Now();
    status_.last_error = absl::OkStatus();
    status_.consecutive_failures = 0;
    status_.has_synced = true;
    return;
  }
  status_.last_error = result;
  ++status_.consecutive_failures;
  spdlog::warn("agent: sync with the server failed ({} in a row): {}", status_.consecutive_failures,
               AsStd(result.message()));
}

void SyncManager::SyncLoop(std::stop_token stop) {
  Steady::time_point next_sync = Steady::now();
  bool healthy = true;
  bool unreachable = false;
  int failures = 0;
  while (!stop.stop_requested()) {
    bool requested = false;
    {
      std::unique_lock lock(wake_mu_);
      Steady::time_point wake = next_sync;
      if (std::optional<Clock::TimePoint> event = NextEvent(healthy)) {
        const auto until = std::max(*event - clock_->Now(), Clock::TimePoint::duration::zero());
        wake = std::min(wake, Steady::now() + std::chrono::duration_cast<Steady::duration>(until));
      }
      wake_cv_.wait_until(lock, stop, wake, [&] { return sync_requested_; });
      if (stop.stop_requested()) return;
      requested = std::exchange(sync_requested_, false);
    }
    const Clock::TimePoint now = clock_->Now();
    if (requested || Steady::now() >= next_sync || (healthy && RotationDue(now))) {
      // Our backoff paces the retries, not gRPC's: it may otherwise keep failing fast for up to
      // max_backoff after the server is back.
      if (unreachable) client_->Reconnect();
      absl::Status result = SyncOnce();
      if (stop.stop_requested()) return;
      RecordResult(result);
      healthy = result.ok();
      unreachable = result.code() == absl::StatusCode::kUnavailable ||
                    result.code() == absl::StatusCode::kDeadlineExceeded;
      failures = healthy ? 0 : failures + 1;
      next_sync = Steady::now() + (healthy ? options_.sync_interval
                                           : Backoff(failures, options_.max_backoff, loop_rng_));
    } else if (PruneExpired(now)) {
      Publish(/*server_reachable=*/healthy);
    }
  }
}

void SyncManager::WatchLoop(std::stop_token stop) {
  std::mt19937_64 rng{std::random_device{}()};
  int failures = 0;
  bool said_poll_only = false;
  while (!stop.stop_requested()) {
    std::stop_source attempt;
    {
      std::lock_guard lock(wake_mu_);
      watch_restart_ = attempt;
    }
    std::atomic<bool> heard{false};
    absl::Status status;
    {
      std::stop_callback forward(stop, [&attempt] { attempt.request_stop(); });
      status = client_->Watch(
          [&](const PushNotification& notification) {
            heard = true;
            // Flags only say what is stale; a keepalive carries none.
            if (notification.entries_changed || notification.bundle_changed) TriggerSync();
          },
          attempt.get_token());
    }
    if (stop.stop_requested()) return;
    if (status.ok()) {  // restarted for a new agent SVID
      failures = 0;
      continue;
    }
    std::chrono::milliseconds delay;
    if (status.code() == absl::StatusCode::kUnimplemented) {
      if (!said_poll_only) {
        spdlog::info(
            "agent: the server does not serve the push stream (Watch is unimplemented, as on a "
            "SPIRE server); polling every {} ms",
            options_.sync_interval.count());
        said_poll_only = true;
      }
      delay = options_.max_backoff;
    } else {
      if (heard) failures = 0;
      ++failures;
      delay = Backoff(failures, options_.max_backoff, rng);
      spdlog::debug("agent: push stream ended ({}); reconnecting in {} ms", AsStd(status.message()),
                    delay.count());
    }
    {
      std::unique_lock lock(wake_mu_);
      wake_cv_.wait_for(lock, stop, delay, [] { return false; });
    }
    if (status.code() == absl::StatusCode::kUnavailable) client_->Reconnect();
  }
}

absl::Status SyncManager::SyncOnce() {
  absl::StatusOr<EntryMap> entries = client_->SyncAuthorizedEntries(entries_);
  absl::StatusOr<spiffe::Bundle> own_bundle =
      entries.ok() ? client_->GetBundle() : absl::StatusOr<spiffe::Bundle>(entries.status());
  if (!own_bundle.ok()) {
    // Keep serving what we have; only what expired goes.
    if (PruneExpired(clock_->Now())) Publish(/*server_reachable=*/false);
    return own_bundle.status();
  }
  bool changed = false;
  absl::Status partial;

  // Bundles: ours, and those of the trust domains the entries federate with.
  spiffe::BundleSet bundles;
  bundles.Put(*own_bundle);
  std::set<spiffe::TrustDomain> federated;
  for (const auto& [id, entry] : *entries) {
    for (const spiffe::TrustDomain& td : entry->federates_with) {
      if (td != options_.trust_domain) federated.insert(td);
    }
  }
  for (const spiffe::TrustDomain& td : federated) {
    absl::StatusOr<spiffe::Bundle> bundle = client_->GetFederatedBundle(td);
    if (bundle.ok()) {
      bundles.Put(*std::move(bundle));
    } else if (bundle.status().code() == absl::StatusCode::kNotFound) {
      spdlog::debug("agent: no bundle for federated trust domain {}", td.name());
    } else {
      // The last one we had is still better than none.
      if (const spiffe::Bundle* previous = bundles_.Find(td)) bundles.Put(*previous);
      if (partial.ok()) partial = bundle.status();
    }
  }
  if (!(bundles == bundles_)) {
    bundles_ = std::move(bundles);
    changed = true;
  }

  if (!SameEntries(*entries, entries_)) {
    spdlog::debug("agent: {} authorized entries (were {})", entries->size(), entries_.size());
    changed = true;
  }
  entries_ = *std::move(entries);
  jwt_->Retain(entries_);
  changed |=
      std::erase_if(svids_, [&](const auto& held) { return !entries_.contains(held.first); }) > 0;
  std::erase_if(mint_failures_,
                [&](const auto& failure) { return !entries_.contains(failure.first); });

  // A different own bundle (CA rotation) may have stopped vouching for SVIDs we hold.
  const spiffe::Bundle& own = *bundles_.Find(options_.trust_domain);
  const bool recheck = !checked_against_.has_value() || !(*checked_against_ == own);
  const Clock::TimePoint now = clock_->Now();
  std::vector<std::shared_ptr<const CachedEntry>> to_mint;
  for (const auto& [id, entry] : entries_) {
    if (NeedsMint(*entry, recheck, own, now)) to_mint.push_back(entry);
  }
  checked_against_ = own;
  MintResult minted = to_mint.empty() ? MintResult{} : Mint(to_mint, own);
  changed |= minted.minted > 0;
  changed |= PruneExpired(clock_->Now());
  if (changed) Publish(/*server_reachable=*/true);
  return minted.fatal.ok() ? partial : minted.fatal;
}
void SyncManager::Publish(bool server_reachable) {
  std::vector<CachedIdentity> identities;
  identities.reserve(entries_.size());
  for (const auto& [id, entry] : entries_) {
    auto held = svids_.find(id);
    if (held == svids_.end()) {
      identities.push_back({.entry = entry});
    } else {
      identities.push_back(
          {.entry = entry, .svid = held->second.svid, .encoded = held->second.encoded});
    }
  }
  // The only publisher: the next generation is always ours to take.
  const uint64_t generation = cache_.Current()->generation() + 1;
  cache_.Publish(std::make_shared<const CacheSnapshot>(options_.trust_domain, generation, bundles_,
                                                       std::move(identities), server_reachable));
}

}  // namespace tessera::agent
