#include "agent/jwt_svid_cache.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "spdlog/spdlog.h"

namespace tessera::agent {

JwtSvidCache::JwtSvidCache(Fetcher fetch, std::shared_ptr<const Clock> clock)
    : fetch_(std::move(fetch)), clock_(std::move(clock)) {}

void JwtSvidCache::Fetch(std::shared_ptr<const CachedEntry> entry,
                         std::vector<std::string> audience, JwtSvidSource::Callback done) {
  if (entry == nullptr) {
    done(absl::InvalidArgumentError("JWT-SVID: no entry"));
    return;
  }
  if (audience.empty()) {
    done(absl::InvalidArgumentError("JWT-SVID: audience is required"));
    return;
  }
  std::sort(audience.begin(), audience.end());
  audience.erase(std::unique(audience.begin(), audience.end()), audience.end());
  Key key(entry->id, std::move(audience));
  {
    std::unique_lock lock(mu_);
    auto it = tokens_.find(key);
    if (it != tokens_.end() && it->second.subject == entry->spiffe_id) {
      const Token& cached = it->second;
      const auto half_life = cached.issued_at + (cached.expires_at - cached.issued_at) / 2;
      if (clock_->Now() < half_life) {
        std::string token = cached.token;
        lock.unlock();
        done(std::move(token));
        return;
      }
    }
    auto [pending, first] = pending_.try_emplace(key);
    pending->second.push_back(std::move(done));
    // Someone is already asking the server for this key: the answer is shared.
    if (!first) return;
    ++fetches_;
  }
  // Outside the lock: the fetcher may call back inline.
  fetch_(key.first, key.second,
         [this, key, subject = entry->spiffe_id](absl::StatusOr<IssuedJwtSvid> result) {
           OnFetched(key, subject, std::move(result));
         });
}

void JwtSvidCache::OnFetched(const Key& key, const spiffe::SpiffeId& subject,
                             absl::StatusOr<IssuedJwtSvid> result) {
  if (result.ok() && result->svid.subject != subject) {
    result = absl::InternalError(absl::StrCat("JWT-SVID: server issued a token for \"",
                                              result->svid.subject.str(), "\", expected \"",
                                              subject.str(), "\""));
  }
  std::vector<JwtSvidSource::Callback> callbacks;
  absl::StatusOr<std::string> answer;
  {
    std::lock_guard lock(mu_);
    auto pending = pending_.find(key);
    if (pending != pending_.end()) {
      callbacks = std::move(pending->second);
      pending_.erase(pending);
    }
    const auto now = clock_->Now();
    if (result.ok()) {
      answer = result->svid.token;
      if (now < result->expires_at) {
        tokens_.insert_or_assign(key, Token{.token = result->svid.token,
                                            .subject = subject,
                                            .issued_at = result->issued_at,
                                            .expires_at = result->expires_at});
      }
    } else {
      auto cached = tokens_.find(key);
      if (cached != tokens_.end() && cached->second.subject == subject &&
          now < cached->second.expires_at) {
        // Past half-life but still valid: better than nothing while the server is away.
        spdlog::warn("agent: renew JWT-SVID for entry {}: {}; serving the cached one", key.first,
                     AsStd(result.status().message()));
        answer = cached->second.token;
      } else {
        answer = result.status();
      }
    }
  }
  for (JwtSvidSource::Callback& callback : callbacks) callback(answer);
}

void JwtSvidCache::Retain(const EntryMap& entries) {
  std::lock_guard lock(mu_);
  const auto now = clock_->Now();
  std::erase_if(tokens_, [&](const auto& item) {
    const auto& [key, token] = item;
    auto entry = entries.find(key.first);
    return entry == entries.end() || entry->second->spiffe_id != token.subject ||
           now >= token.expires_at;
  });
}

size_t JwtSvidCache::size() const {
  std::lock_guard lock(mu_);
  return tokens_.size();
}

uint64_t JwtSvidCache::fetches() const {
  std::lock_guard lock(mu_);
  return fetches_;
}

}  // namespace tessera::agent
