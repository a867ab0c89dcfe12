// JwtSvidCache: the agent's JWT-SVIDs, per (entry ID, sorted unique audiences). A cached token
// is handed out while less than half of its lifetime (issued_at to expires_at) has passed;
// after that the next request fetches a new one. Concurrent requests for the same key share one
// fetch. When a fetch fails, a cached token that has not expired yet is still handed out.
//
// Thread-safety: safe for concurrent use. Callbacks run outside the cache's lock: inline for a
// cached token or a fetch that fails at once, otherwise on the fetcher's thread. The cache must
// outlive every fetch it started (the fetcher's owner waits for them).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/cache/jwt_svid_source.h"
#include "agent/server_client.h"
#include "common/clock.h"

namespace tessera::agent {

class JwtSvidCache {
 public:
  // Starts a NewJWTSVID for the entry ID and audiences and calls `done` exactly once
  // (ServerClient::NewJwtSvidAsync).
  using Fetcher = std::function<void(std::string entry_id, std::vector<std::string> audience,
                                     ServerClient::JwtCallback done)>;

  JwtSvidCache(Fetcher fetch, std::shared_ptr<const Clock> clock);
  JwtSvidCache(const JwtSvidCache&) = delete;
  JwtSvidCache& operator=(const JwtSvidCache&) = delete;

  // JwtSvidSource::FetchJwtSvid's contract. No audience at all is InvalidArgument, inline; an
  // empty value among them is left for the server to refuse.
  void Fetch(std::shared_ptr<const CachedEntry> entry, std::vector<std::string> audience,
             JwtSvidSource::Callback done);

  // Forgets the tokens of entries that are gone from `entries` or now name another SPIFFE ID,
  // and every expired token.
  void Retain(const EntryMap& entries);

  // Tokens held; fetches started (not counting shared ones). For tests and metrics.
  size_t size() const;
  uint64_t fetches() const;

 private:
  using Key = std::pair<std::string, std::vector<std::string>>;
  struct Token {
    std::string token;
    spiffe::SpiffeId subject;
    std::chrono::system_clock::time_point issued_at;
    std::chrono::system_clock::time_point expires_at;
  };

  void OnFetched(const Key& key, const spiffe::SpiffeId& subject,
                 absl::StatusOr<IssuedJwtSvid> result);

  // Immutable after construction.
  const Fetcher fetch_;
  const std::shared_ptr<const Clock> clock_;

  mutable std::mutex mu_;
  std::map<Key, Token> tokens_;                                  // guarded by mu_
  std::map<Key, std::vector<JwtSvidSource::Callback>> pending_;  // guarded by mu_
  uint64_t fetches_ = 0;                                         // guarded by mu_
};

}  // namespace tessera::agent
