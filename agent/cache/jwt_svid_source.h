// Where the Workload API gets JWT-SVIDs: the agent's JWT-SVID cache, which answers from memory
// when it holds a token for the same entry and audiences that is not past half of its lifetime,
// and otherwise asks the server (NewJWTSVID) and remembers the answer. Implemented by the sync
// manager; an interface so the endpoints can be tested without a server.
//
// Thread-safety: implementations are safe to call from any thread, concurrently.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/cache/cache.h"

namespace tessera::agent {

class JwtSvidSource {
 public:
  // Receives the compact token, or why there is none (the server's status, e.g. UNAVAILABLE
  // while it is unreachable and nothing usable is cached).
  using Callback = std::function<void(absl::StatusOr<std::string> token)>;

  virtual ~JwtSvidSource() = default;

  // A JWT-SVID for `entry` with `audience` (non-empty; order and duplicates do not matter).
  // `done` runs exactly once: inline when the answer is cached, otherwise on another thread, so
  // a gRPC callback handler may call this and finish its RPC from `done`.
  virtual void FetchJwtSvid(std::shared_ptr<const CachedEntry> entry,
                            std::vector<std::string> audience, Callback done) = 0;
};

}  // namespace tessera::agent
