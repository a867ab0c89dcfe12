// The few admin calls tessera-bench makes to a tessera-server over its admin Unix socket (local
// callers are admins): create join tokens and registration entries. Going through the API, not
// the datastore, means the server's entry index and push notifications see the entries exactly
// as they see the CLI's.
//
// Stateless functions; safe to call from any thread. Each call opens its own channel.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::bench {

struct EntrySpec {
  std::string spiffe_id;               // "spiffe://example.org/bench/w1"
  std::string parent_id;               // the agent's SPIFFE ID (or an alias of it)
  std::vector<std::string> selectors;  // "type:value"
};

// A join token valid for `ttl_seconds`; with `agent_alias`, the server also creates an entry
// aliasing that ID to the agent (as `tessera-server token generate --spiffe-id` does).
absl::StatusOr<std::string> CreateJoinToken(const std::filesystem::path& admin_socket,
                                            int ttl_seconds, const std::string& agent_alias = "");

// Creates every entry with BatchCreateEntry, `batch` entries per call; their IDs in order. Any
// entry the server refuses fails the whole call.
absl::StatusOr<std::vector<std::string>> CreateEntries(const std::filesystem::path& admin_socket,
                                                       const std::vector<EntrySpec>& entries,
                                                       size_t batch = 500);

// Deletes the entries with BatchDeleteEntry in one call; any entry the server could not delete
// fails the call.
absl::Status DeleteEntries(const std::filesystem::path& admin_socket,
                           const std::vector<std::string>& entry_ids);

// AppendBundle: adds an X.509 authority (DER) to the server's own trust bundle, which every
// agent then hands to every workload.
absl::Status AppendX509Authority(const std::filesystem::path& admin_socket,
                                 const std::string& certificate_der);

}  // namespace tessera::bench
