// SyncManager's X509-SVID bookkeeping: which entries need minting, minting in batches with keys
// generated here, checking what the server returned, rotation and expiry times.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agent/sync_manager.h"
#include "common/status.h"
#include "common/strings.h"
#include "spdlog/spdlog.h"
#include "spiffe/csr.h"
#include "spiffe/x509_verify.h"

namespace tessera::agent {
namespace {

// An SVID is rotated once this share of its lifetime (from when we got it) has passed: a fixed
// random point per SVID, so agents minted together do not all come back at once.
constexpr double kRotateFrom = 0.4;
constexpr double kRotateTo = 0.5;

// A per-item failure that concerns one entry only (it was deleted meanwhile, the server did not
// like this CSR); anything else means the server as a whole is in trouble.
bool EntrySpecific(absl::StatusCode code) {
  return code == absl::StatusCode::kNotFound || code == absl::StatusCode::kInvalidArgument;
}

spiffe::X509AuthoritiesSource OwnAuthorities(const spiffe::Bundle& own_bundle) {
  return [&own_bundle](
             const spiffe::TrustDomain& td) -> std::optional<std::vector<spiffe::Certificate>> {
    if (td != own_bundle.trust_domain()) return std::nullopt;
    return own_bundle.x509_authorities();
  };
}

}  // namespace

bool SyncManager::NeedsMint(const CachedEntry& entry, bool recheck_trust,
                            const spiffe::Bundle& own_bundle, Clock::TimePoint now) const {
  if (auto failure = mint_failures_.find(entry.id);
      failure != mint_failures_.end() && now < failure->second.retry_at) {
    return false;
  }
  auto it = svids_.find(entry.id);
  if (it == svids_.end()) return true;
  const HeldSvid& held = it->second;
  if (held.revision_number != entry.revision_number || held.svid->id != entry.spiffe_id) {
    return true;
  }
  if (now >= held.rotate_at) return true;
  if (recheck_trust &&
      !spiffe::VerifyX509Svid(held.svid->chain, OwnAuthorities(own_bundle), now).ok()) {
    spdlog::info("agent: X509-SVID of entry {} no longer verifies against the bundle; renewing",
                 entry.id);
    return true;
  }
  return false;
}

SyncManager::MintResult SyncManager::Mint(
    const std::vector<std::shared_ptr<const CachedEntry>>& entries,
    const spiffe::Bundle& own_bundle) {
  std::vector<spiffe::PrivateKey> keys;
  std::vector<X509SvidRequest> requests;
  keys.reserve(entries.size());
  requests.reserve(entries.size());
  for (const std::shared_ptr<const CachedEntry>& entry : entries) {
    // The key never leaves this process: only its CSR goes to the server.
    ASSIGN_OR_RETURN(spiffe::PrivateKey key, spiffe::PrivateKey::Generate(options_.key_type),
                     MintResult{.fatal = Annotate(_, "generate workload key")});
    ASSIGN_OR_RETURN(std::string csr, spiffe::CreateCsr(key, entry->spiffe_id),
                     MintResult{.fatal = Annotate(_, "create CSR")});
    keys.push_back(std::move(key));
    requests.push_back({.entry_id = entry->id, .csr_der = std::move(csr)});
  }
  std::vector<absl::StatusOr<std::vector<spiffe::Certificate>>> results =
      client_->BatchNewX509Svid(std::move(requests));
  const Clock::TimePoint now = clock_->Now();
  MintResult result;
  for (size_t i = 0; i < entries.size() && i < results.size(); ++i) {
    const CachedEntry& entry = *entries[i];
    absl::StatusOr<HeldSvid> held =
        results[i].ok() ? Accept(entry, keys[i], *std::move(results[i]), own_bundle, now)
                        : absl::StatusOr<HeldSvid>(results[i].status());
    if (held.ok()) {
      svids_[entry.id] = *std::move(held);
      mint_failures_.erase(entry.id);
      ++result.minted;
      continue;
    }
    if (!EntrySpecific(held.status().code())) {
      // The whole sync is retried with backoff; one message is enough.
      if (result.fatal.ok()) result.fatal = held.status();
      continue;
    }
    MintFailure& failure = mint_failures_[entry.id];
    ++failure.count;
    failure.retry_at = now + Backoff(failure.count, options_.max_backoff, loop_rng_);
    spdlog::warn("agent: X509-SVID for entry {} ({}): {}", entry.id, entry.spiffe_id.str(),
                 AsStd(held.status().message()));
  }
  if (result.minted > 0) spdlog::info("agent: minted {} X509-SVIDs", result.minted);
  return result;
}

absl::StatusOr<SyncManager::HeldSvid> SyncManager::Accept(const CachedEntry& entry,
                                                          const spiffe::PrivateKey& key,
                                                          std::vector<spiffe::Certificate> chain,
                                                          const spiffe::Bundle& own_bundle,
                                                          Clock::TimePoint now) {
  // What the server signed must be what we asked for, and usable by a workload now.
  if (chain.empty()) return absl::InvalidArgumentError("empty chain");
  ASSIGN_OR_RETURN(spiffe::SpiffeId id, spiffe::ValidateLeafProfile(chain.front()),
                   Annotate(_, "bad X509-SVID"));
  if (id != entry.spiffe_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("server issued an X509-SVID for \"", id.str(), "\""));
  }
  if (!chain.front().public_key().Equals(key.public_key())) {
    return absl::InvalidArgumentError("server issued an X509-SVID for another key");
  }
  RETURN_IF_ERROR(spiffe::VerifyX509Svid(chain, OwnAuthorities(own_bundle), now).status());
  const Clock::TimePoint expires_at = chain.front().NotAfter();
  if (expires_at <= now) return absl::InvalidArgumentError("server issued an expired X509-SVID");
  std::uniform_real_distribution<double> share(kRotateFrom, kRotateTo);
  const auto lifetime = expires_at - now;
  const auto rotate_after =
      std::chrono::duration_cast<Clock::TimePoint::duration>(lifetime * share(loop_rng_));
  spdlog::debug("agent: X509-SVID for {} (entry {}), serial {}, expires in {} s", id.str(),
                entry.id, chain.front().SerialHex(),
                std::chrono::duration_cast<std::chrono::seconds>(lifetime).count());
  auto svid = std::make_shared<const spiffe::X509Svid>(
      spiffe::X509Svid{.id = std::move(id), .chain = std::move(chain), .key = key});
  ASSIGN_OR_RETURN(std::shared_ptr<const EncodedX509Svid> encoded, EncodedX509Svid::Encode(*svid));
  return HeldSvid{
      .svid = std::move(svid),
      .encoded = std::move(encoded),
      .revision_number = entry.revision_number,
      .rotate_at = now + rotate_after,
      .expires_at = expires_at,
  };
}

bool SyncManager::RotationDue(Clock::TimePoint now) const {
  for (const auto& [id, entry] : entries_) {
    auto failure = mint_failures_.find(id);
    if (failure != mint_failures_.end() && now < failure->second.retry_at) continue;
    auto held = svids_.find(id);
    if (held == svids_.end() || now >= held->second.rotate_at) return true;
  }
  return false;
}

std::optional<Clock::TimePoint> SyncManager::NextEvent(bool healthy) const {
  std::optional<Clock::TimePoint> next;
  auto consider = [&](Clock::TimePoint t) {
    if (!next.has_value() || t < *next) next = t;
  };
  for (const auto& [id, held] : svids_) {
    consider(held.expires_at);
    if (healthy) consider(held.rotate_at);
  }
  if (healthy) {
    for (const auto& [id, failure] : mint_failures_) consider(failure.retry_at);
  }
  return next;
}

bool SyncManager::PruneExpired(Clock::TimePoint now) {
  return std::erase_if(svids_, [&](const auto& item) {
           const auto& [id, held] = item;
           if (now < held.expires_at) return false;
           spdlog::warn(
               "agent: X509-SVID of entry {} expired before it could be renewed; no "
               "longer served",
               id);
           return true;
         }) > 0;
}

}  // namespace tessera::agent
