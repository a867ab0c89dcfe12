#include "agent/cache/cache.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <utility>

#include "common/status.h"

namespace tessera::agent {

absl::StatusOr<std::shared_ptr<const EncodedX509Svid>> EncodedX509Svid::Encode(
    const spiffe::X509Svid& svid) {
  auto out = std::make_shared<EncodedX509Svid>();
  ASSIGN_OR_RETURN(out->key_pkcs8_der, svid.key.ToPkcs8Der());
  out->chain_der = spiffe::ChainToDer(svid.chain);
  return out;
}

EncodedX509Svid::~EncodedX509Svid() { OPENSSL_cleanse(key_pkcs8_der.data(), key_pkcs8_der.size()); }

CacheSnapshot::CacheSnapshot(spiffe::TrustDomain trust_domain)
    : trust_domain_(std::move(trust_domain)) {}

CacheSnapshot::CacheSnapshot(spiffe::TrustDomain trust_domain, uint64_t generation,
                             spiffe::BundleSet bundles, std::vector<CachedIdentity> identities,
                             bool server_reachable)
    : trust_domain_(std::move(trust_domain)),
      generation_(generation),
      server_reachable_(server_reachable),
      bundles_(std::move(bundles)),
      identities_(std::move(identities)) {
  if (const spiffe::Bundle* own = own_bundle()) own_x509_der_ = spiffe::X509AuthoritiesToDer(*own);
  std::sort(
      identities_.begin(), identities_.end(),
      [](const CachedIdentity& a, const CachedIdentity& b) { return a.entry->id < b.entry->id; });
  for (uint32_t i = 0; i < identities_.size(); ++i) {
    for (const spiffe::Selector& selector : identities_[i].entry->selectors) {
      by_selector_[selector].push_back(i);
    }
  }
}

const CachedIdentity* CacheSnapshot::FindEntry(std::string_view entry_id) const {
  auto it = std::lower_bound(
      identities_.begin(), identities_.end(), entry_id,
      [](const CachedIdentity& identity, std::string_view id) { return identity.entry->id < id; });
  if (it == identities_.end() || it->entry->id != entry_id) return nullptr;
  return &*it;
}

std::vector<CachedIdentity> CacheSnapshot::Match(const spiffe::SelectorSet& selectors) const {
  // Candidates share at least one selector with the workload; each is then checked whole.
  std::vector<uint32_t> candidates;
  for (const spiffe::Selector& selector : selectors) {
    auto it = by_selector_.find(selector);
    if (it == by_selector_.end()) continue;
    candidates.insert(candidates.end(), it->second.begin(), it->second.end());
  }
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());

  std::vector<CachedIdentity> matched;
  for (uint32_t index : candidates) {
    const CachedIdentity& identity = identities_[index];
    if (identity.entry->selectors.IsSubsetOf(selectors)) matched.push_back(identity);
  }
  std::sort(matched.begin(), matched.end(), [](const CachedIdentity& a, const CachedIdentity& b) {
    if (a.entry->created_at != b.entry->created_at) {
      return a.entry->created_at < b.entry->created_at;
    }
    return a.entry->id < b.entry->id;
  });
  return matched;
}

spiffe::BundleSet CacheSnapshot::FederatedBundlesFor(
    std::span<const CachedIdentity> identities) const {
  spiffe::BundleSet federated;
  for (const CachedIdentity& identity : identities) {
    for (const spiffe::TrustDomain& td : identity.entry->federates_with) {
      if (td == trust_domain_ || federated.Find(td) != nullptr) continue;
      if (const spiffe::Bundle* bundle = bundles_.Find(td)) federated.Put(*bundle);
    }
  }
  return federated;
}

Cache::Subscription::Subscription(Subscription&& other) noexcept
    : cache_(std::exchange(other.cache_, nullptr)), id_(std::exchange(other.id_, 0)) {}

Cache::Subscription& Cache::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    Reset();
    cache_ = std::exchange(other.cache_, nullptr);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void Cache::Subscription::Reset() {
  if (cache_ != nullptr) cache_->Unsubscribe(id_);
  cache_ = nullptr;
  id_ = 0;
}

Cache::Cache(spiffe::TrustDomain trust_domain)
    : trust_domain_(std::move(trust_domain)),
      current_(std::make_shared<const CacheSnapshot>(trust_domain_)) {}

Cache::~Cache() = default;

std::shared_ptr<const CacheSnapshot> Cache::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

bool Cache::HasSynced() const {
  std::lock_guard lock(mu_);
  return synced_;
}

bool Cache::Publish(std::shared_ptr<const CacheSnapshot> snapshot) {
  std::lock_guard publishing(publish_mu_);
  std::vector<std::pair<uint64_t, std::shared_ptr<Observer>>> observers;
  {
    std::lock_guard lock(mu_);
    if (snapshot == nullptr || snapshot->generation() <= current_->generation()) return false;
    current_ = snapshot;
    synced_ = true;
    observers.reserve(observers_.size());
    observers.assign(observers_.begin(), observers_.end());
  }
  for (const auto& [id, observer] : observers) {
    // Skip observers unsubscribed by an earlier observer of this same round.
    bool live;
    {
      std::lock_guard lock(mu_);
      live = observers_.contains(id);
    }
    if (live) (*observer)(snapshot);
  }
  return true;
}

Cache::Subscription Cache::Subscribe(Observer observer) {
  std::lock_guard lock(mu_);
  uint64_t id = next_id_++;
  observers_.emplace(id, std::make_shared<Observer>(std::move(observer)));
  return Subscription(this, id);
}

size_t Cache::subscriber_count() const {
  std::lock_guard lock(mu_);
  return observers_.size();
}

void Cache::Unsubscribe(uint64_t id) {
  // Waits for a Publish in progress on another thread; re-entrant from inside an observer.
  std::lock_guard publishing(publish_mu_);
  std::lock_guard lock(mu_);
  observers_.erase(id);
}

}  // namespace tessera::agent
