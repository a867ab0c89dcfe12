// ServerClient: the agent's calls to tessera-server (or spire-server) over mTLS with the agent
// SVID: SyncAuthorizedEntries, BatchNewX509SVID, NewJWTSVID, GetBundle, GetFederatedBundle
// (SPIRE-API-FACTS §7, §9, §11) and Tessera's push stream (tessera.server.v1.Notifier/Watch).
//
// The identity is borrowed from an AgentIdentitySource: each call reads CurrentAgentState() and
// builds new channels (client certificate = agent SVID, roots = agent bundle, server must be
// spiffe://<td>/spire/server) whenever it returns a different state. With several server
// addresses, a call that fails UNAVAILABLE or DEADLINE_EXCEEDED moves the client on to the next
// address (an UNAVAILABLE one is retried there at once, at most once per address). A server that
// refuses the agent SVID (PERMISSION_DENIED or UNAUTHENTICATED, or any handshake failure while
// the SVID has expired) is reported with identity.ReportRejected.
//
// Thread-safety: every method is safe to call from any thread, concurrently. Blocking methods
// wait at most `rpc_timeout` per attempt (Watch until its stream ends). Shutdown() cancels every
// call in flight and makes later calls fail UNAVAILABLE; the destructor calls it and waits for
// the asynchronous calls' callbacks to have run (blocking calls, Watch included, must have
// returned before it is destroyed).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/agent_identity.h"
#include "agent/cache/cache.h"
#include "agent/server_address.h"
#include "common/clock.h"
#include "spiffe/bundle.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"
#include "spiffe/jwt_svid.h"
#include "spire/api/types/entry.pb.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace tessera::agent {

// Authorized entries by entry ID.
using EntryMap = std::map<std::string, std::shared_ptr<const CachedEntry>>;

struct ServerClientOptions {
  spiffe::TrustDomain trust_domain;
  // At least one; tried in order, the client stays on one until it fails.
  std::vector<ServerAddress> servers;
  // Deadline of each unary call and of a whole SyncAuthorizedEntries conversation.
  std::chrono::seconds rpc_timeout{30};
  // Upper bound of gRPC's own reconnection backoff, so a server that comes back on the same
  // address is found again within this time.
  std::chrono::milliseconds max_reconnect_backoff{60'000};
  // A Watch stream that carried nothing (not even a keepalive) this long is presumed dead and
  // cancelled; the server sends a keepalive every minute by default.
  std::chrono::milliseconds watch_idle_timeout{180'000};
  // Judges whether the agent SVID has expired; RealClock when null.
  std::shared_ptr<const Clock> clock;
};

// One BatchNewX509SVID parameter.
struct X509SvidRequest {
  std::string entry_id;
  std::string csr_der;
};

// A JWT-SVID from NewJWTSVID: the parsed token (signature not checked: it comes from our server
// over mTLS) and the issue and expiry times the server reported beside it.
struct IssuedJwtSvid {
  spiffe::JwtSvid svid;
  std::chrono::system_clock::time_point issued_at;
  std::chrono::system_clock::time_point expires_at;
};

// One message of the push stream (notify.proto), copied out of the proto.
struct PushNotification {
  uint64_t revision = 0;
  bool entries_changed = false;
  bool bundle_changed = false;
  uint64_t bundle_sequence_number = 0;
};

// What the last successful SyncAuthorizedEntries did, for logs and tests.
struct EntrySyncStats {
  // The server sent revisions first (more than one page of entries).
  bool paged = false;
  // Entry revisions received (0 when not paged).
  size_t revisions = 0;
  // IDs asked for in full after the revisions phase.
  size_t requested = 0;
  // Full entries received (all of them when not paged).
  size_t received = 0;
  // Received entries dropped as invalid.
  size_t dropped = 0;
  // Entries in the result.
  size_t total = 0;
};

// The entry mask an agent sends (SPIRE-API-FACTS §9).
spire::api::types::EntryMask AgentEntryMask();

// An entry as the server sent it, checked as spire-agent does: a non-empty ID, a SPIFFE ID that
// parses, a non-empty set of valid selectors, federates_with values that parse as trust domains
// (names or spiffe:// IDs). InvalidArgument naming the problem otherwise.
absl::StatusOr<CachedEntry> EntryFromAgentProto(const spire::api::types::Entry& entry);

class ServerClient {
 public:
  // The most params sent in one BatchNewX509SVID call (spire-agent's batch size).
  static constexpr size_t kMaxBatchParams = 500;

  using JwtCallback = std::function<void(absl::StatusOr<IssuedJwtSvid>)>;
  using NotificationCallback = std::function<void(const PushNotification&)>;

  // `identity` must outlive the client.
  ServerClient(ServerClientOptions options, AgentIdentitySource& identity);
  ~ServerClient();
  ServerClient(const ServerClient&) = delete;
  ServerClient& operator=(const ServerClient&) = delete;

  // Cancels every call in flight (they end CANCELLED) and refuses new ones (UNAVAILABLE).
  // Idempotent; does not wait for asynchronous callbacks (the destructor does).
  void Shutdown();

  // The agent side of SyncAuthorizedEntries (SPIRE-API-FACTS §9): the complete new set of
  // authorized entries given the `cached` ones. Entries whose revision is unchanged are taken
  // from `cached` (the same pointer); so is a received entry equal to its cached one. Invalid
  // entries are dropped with a warning. A protocol violation by the server is Internal.
  absl::StatusOr<EntryMap> SyncAuthorizedEntries(const EntryMap& cached);
  EntrySyncStats last_entry_sync_stats() const;

  // One result per request, in request order: the SVID chain (leaf first) or why there is none
  // (the server's per-item status, or the status of the RPC that carried it). Requests go out in
  // calls of at most kMaxBatchParams; after a call fails, the later requests are not sent and
  // carry that call's status. The chain is parsed but not verified.
  std::vector<absl::StatusOr<std::vector<spiffe::Certificate>>> BatchNewX509Svid(
      std::vector<X509SvidRequest> requests);

  // NewJWTSVID for `entry_id` and `audience` (non-empty). Checks that the server reported
  // non-zero issued_at and expires_at with issued_at <= expires_at and that the token parses.
  absl::StatusOr<IssuedJwtSvid> NewJwtSvid(std::string_view entry_id,
                                           const std::vector<std::string>& audience);
  // The same without blocking a thread: `done` runs exactly once, on a gRPC thread (inline only
  // when the call cannot even start: no identity, shut down).
  void NewJwtSvidAsync(std::string entry_id, std::vector<std::string> audience, JwtCallback done);

  // The own trust domain's bundle. Its trust domain must be ours and it must hold at least one
  // X.509 authority.
  absl::StatusOr<spiffe::Bundle> GetBundle();
  // A federated trust domain's bundle; NOT_FOUND (no such bundle on the server) passed through.
  absl::StatusOr<spiffe::Bundle> GetFederatedBundle(const spiffe::TrustDomain& trust_domain);

  // Opens the push stream and calls `on_notification` (on a gRPC thread; it must return quickly)
  // for every notification until the stream ends or `stop` is requested. Returns OK when stopped,
  // UNIMPLEMENTED when the server has no push service (a real spire-server: poll only),
  // DEADLINE_EXCEEDED after watch_idle_timeout of silence, otherwise how the stream ended.
  absl::Status Watch(const NotificationCallback& on_notification, std::stop_token stop);

  // The address the next call goes to.
  ServerAddress current_server() const;

  // Drops the channels, so the next call connects afresh instead of failing fast until gRPC's
  // reconnection backoff ends. For a retry after the server was unreachable; calls in flight are
  // not affected.
  void Reconnect();

 private:
  struct Target {
    std::shared_ptr<grpc::Channel> channel;
    size_t index = 0;
    std::shared_ptr<const AgentState> state;
  };
  struct AsyncJwtCall;
  class WatchReactor;

  // A channel to the current address for the current agent state.
  absl::StatusOr<Target> CurrentTarget();
  // Runs `attempt` (one RPC with the context it is given, whose deadline is set) on the current
  // address, and again on the next address after UNAVAILABLE while untried addresses remain.
  using Attempt =
      std::function<absl::Status(const std::shared_ptr<grpc::Channel>&, grpc::ClientContext&)>;
  absl::Status Call(std::string_view what, const Attempt& attempt);
  // Failover and rejection reporting after an attempt on `target` ended with `status`.
  void AfterAttempt(const Target& target, const absl::Status& status);
  // Registers a context so Shutdown can cancel it; false after Shutdown. A context is untracked
  // before it is destroyed.
  bool Track(grpc::ClientContext* ctx);
  void Untrack(grpc::ClientContext* ctx);
  void SetDeadline(grpc::ClientContext& ctx) const;

  void StartJwtAttempt(const std::shared_ptr<AsyncJwtCall>& call);
  void FinishAsync();

  // Immutable after construction.
  const ServerClientOptions options_;
  AgentIdentitySource& identity_;
  const std::shared_ptr<const Clock> clock_;

  // Guards the channels, the failover position, the async count and the stats. Never held
  // across an RPC or a call into the identity source.
  mutable std::mutex mu_;
  // The state the channels were built for; channels_[i] for options_.servers[i], made lazily.
  std::shared_ptr<const AgentState> channel_state_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  size_t current_ = 0;
  size_t async_outstanding_ = 0;
  std::condition_variable async_done_;
  EntrySyncStats last_sync_stats_;

  // Guards active_. Recursive because cancelling a callback-API call may run its completion
  // (which untracks it) inline, on the thread that holds this lock in Shutdown.
  std::recursive_mutex track_mu_;
  std::set<grpc::ClientContext*> active_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace tessera::agent
