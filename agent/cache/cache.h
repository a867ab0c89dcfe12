// The agent's cache: what it may hand out to workloads. It is the seam between the two halves of
// the agent: the sync manager (talks to the server, mints and rotates) WRITES it by publishing
// whole snapshots; the Workload API and SDS endpoints READ it and subscribe to changes.
//
// A CacheSnapshot is immutable: registration entries authorized for this agent, the X509-SVID
// minted for each (once minted), and the bundles (own trust domain and federated). Readers take a
// shared_ptr to the current snapshot and answer from it without holding any lock, so a stream
// always sees one consistent state (DESIGN.md, data flow 3).
//
// Thread-safety: CacheSnapshot is immutable and safe to share. Cache is safe to use from any
// thread; observers run on the publishing thread, in subscription order, outside the cache's lock,
// and must return quickly (schedule a write, never block on I/O).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "spiffe/bundle.h"
#include "spiffe/id.h"
#include "spiffe/selector.h"
#include "spiffe/x509_verify.h"

namespace tessera::agent {

// A registration entry as the server sends it to an agent (SPIRE's agent output mask: no parent
// ID, TTLs or DNS names; those only matter to the server).
struct CachedEntry {
  std::string id;
  spiffe::SpiffeId spiffe_id;
  spiffe::SelectorSet selectors;
  std::vector<spiffe::TrustDomain> federates_with;
  int64_t revision_number = 0;
  int64_t created_at = 0;  // seconds since the epoch
  std::string hint;
  bool admin = false;
  bool downstream = false;

  friend bool operator==(const CachedEntry&, const CachedEntry&) = default;
};

// An X509-SVID in the encodings the Workload API sends, made once when the SVID is minted: a
// bundle change or a new entry then re-sends it to thousands of streams without encoding the key
// (an OpenSSL encoder set-up each time) or the chain again for every one of them.
struct EncodedX509Svid {
  static absl::StatusOr<std::shared_ptr<const EncodedX509Svid>> Encode(
      const spiffe::X509Svid& svid);
  EncodedX509Svid() = default;
  EncodedX509Svid(const EncodedX509Svid&) = delete;
  EncodedX509Svid& operator=(const EncodedX509Svid&) = delete;
  // Wipes the key.
  ~EncodedX509Svid();

  std::string chain_der;      // the certificates, leaf first, concatenated
  std::string key_pkcs8_der;  // PKCS#8, unencrypted
};

// One identity the agent can hand out: an entry and the X509-SVID minted for it. `svid` is null
// while the first SVID for the entry is being minted (a new entry). Rotation replaces `svid` in
// the next snapshot; a reader holding the old pointer keeps a valid (older) SVID.
struct CachedIdentity {
  std::shared_ptr<const CachedEntry> entry;
  std::shared_ptr<const spiffe::X509Svid> svid;
  // `svid` encoded, when the publisher had it encoded (null: readers encode it themselves).
  std::shared_ptr<const EncodedX509Svid> encoded = nullptr;
};

class CacheSnapshot {
 public:
  // An empty snapshot: no entries, no bundles (before the first sync).
  explicit CacheSnapshot(spiffe::TrustDomain trust_domain);
  // `bundles` holds the own trust domain's bundle and any federated ones; identities may come in
  // any order (they are kept sorted by entry ID).
  CacheSnapshot(spiffe::TrustDomain trust_domain, uint64_t generation, spiffe::BundleSet bundles,
                std::vector<CachedIdentity> identities, bool server_reachable = true);

  const spiffe::TrustDomain& trust_domain() const { return trust_domain_; }
  // Increases with every published snapshot.
  uint64_t generation() const { return generation_; }
  // Own and federated bundles, one per trust domain (never merged).
  const spiffe::BundleSet& bundles() const { return bundles_; }
  // The own trust domain's bundle; nullptr before the first sync.
  const spiffe::Bundle* own_bundle() const { return bundles_.Find(trust_domain_); }
  // The own bundle's X.509 authorities concatenated in DER (the Workload API's `bundle` field),
  // encoded once per snapshot; empty before the first sync.
  const std::string& own_x509_authorities_der() const { return own_x509_der_; }
  // False when the agent could not reach the server at the time of this snapshot: an entry
  // without an SVID then will not get one soon, so a caller waiting for it is told so instead of
  // being kept waiting.
  bool server_reachable() const { return server_reachable_; }
  // Every identity, sorted by entry ID.
  const std::vector<CachedIdentity>& identities() const { return identities_; }
  // nullptr when no entry has this ID.
  const CachedIdentity* FindEntry(std::string_view entry_id) const;

  // The identities of a workload with `selectors`: every entry whose selectors are all among
  // them (SelectorSet::IsSubsetOf), including entries still waiting for their first SVID. In the
  // Workload API's order: the default identity first, i.e. by the entry's created_at, then entry
  // ID (stable across rotations and restarts). Cost: proportional to the entries sharing at least
  // one selector with the workload, not to the cache size.
  std::vector<CachedIdentity> Match(const spiffe::SelectorSet& selectors) const;

  // The federated bundles `identities` are entitled to: the union of their entries'
  // federates_with, for trust domains the cache has a bundle for (a missing one is skipped, as
  // SPIRE does), never including the own trust domain.
  spiffe::BundleSet FederatedBundlesFor(std::span<const CachedIdentity> identities) const;

 private:
  spiffe::TrustDomain trust_domain_;
  uint64_t generation_ = 0;
  bool server_reachable_ = true;
  spiffe::BundleSet bundles_;
  std::vector<CachedIdentity> identities_;  // sorted by entry ID
  std::string own_x509_der_;
  // Selector -> indexes into identities_ of the entries that carry it.
  std::unordered_map<spiffe::Selector, std::vector<uint32_t>> by_selector_;
};

class Cache {
 public:
  using Observer = std::function<void(const std::shared_ptr<const CacheSnapshot>&)>;

  // Ends a subscription when destroyed (or on Reset). After it returns, the observer is not
  // running and will not be called again. Must not be destroyed from inside its own observer.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&& other) noexcept;
    Subscription& operator=(Subscription&& other) noexcept;
    ~Subscription() { Reset(); }
    void Reset();

   private:
    friend class Cache;
    Subscription(Cache* cache, uint64_t id) : cache_(cache), id_(id) {}
    Cache* cache_ = nullptr;
    uint64_t id_ = 0;
  };

  explicit Cache(spiffe::TrustDomain trust_domain);
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // Never null: an empty snapshot until the first Publish.
  std::shared_ptr<const CacheSnapshot> Current() const;
  // Whether anything was published yet (the agent is ready to serve once it has a bundle).
  bool HasSynced() const;

  // Replaces the snapshot and calls every observer with it. Its generation must be greater than
  // the current one's (a stale publish is dropped and returns false).
  bool Publish(std::shared_ptr<const CacheSnapshot> snapshot);

  // `observer` is called on every later Publish (not with the current snapshot: read Current()
  // after subscribing to start from a state that cannot be missed).
  Subscription Subscribe(Observer observer);
  size_t subscriber_count() const;

 private:
  void Unsubscribe(uint64_t id);

  const spiffe::TrustDomain trust_domain_;
  mutable std::mutex mu_;
  std::shared_ptr<const CacheSnapshot> current_;
  bool synced_ = false;
  // Observers are held by shared_ptr so Publish can call them outside mu_; publish_mu_ makes
  // Unsubscribe wait for a Publish in progress (no call after Subscription::Reset returns).
  std::recursive_mutex publish_mu_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<Observer>> observers_;
};

}  // namespace tessera::agent
