// PushService: Tessera's push channel to agents (proto/tessera/server/v1/notify.proto). It is
// both the ChangeNotifier the other services announce changes to and the server of
// `/tessera.server.v1.Notifier/Watch`, a long-lived server stream per agent connection that
// carries hints ("your entries changed", "the bundle changed"), never data.
//
// Streams use gRPC's callback API: an idle stream is a small object waiting for a change, not a
// thread, so thousands of agents cost memory only. Per stream there is at most one write in
// flight; changes that arrive meanwhile are OR-ed into pending flags and go out as one
// notification when that write completes, so a slow or stalled reader costs a fixed amount of
// memory however many changes happen. An agent may hold several streams at once (it reconnects
// before the server notices the old connection died); every one of them is notified.
//
// Keepalive: one shared timer thread wakes every keepalive interval and sends a notification
// without flags on each stream that sent nothing during the whole previous interval, so a dead
// connection eventually fails a write. A thread for the whole service rather than a grpc::Alarm
// per stream: an alarm is one more outstanding operation whose completion every stream would
// have to wait for before it may finish, while walking even tens of thousands of streams once a
// minute takes well under a millisecond.
//
// Shutdown order: call Shutdown() before grpc::Server::Shutdown() (which otherwise waits forever
// for the open streams). Shutdown finishes every stream with UNAVAILABLE "server shutting down",
// lets a write already in flight complete first for up to `shutdown_grace`, then cancels the
// streams whose client stopped reading. The destructor calls Shutdown and waits until gRPC has
// released every stream; like any service it must outlive the grpc::Server's use of it, so
// destroy it after grpc::Server::Shutdown.
//
// Authorization (Access::kAgent, whose agent check reads the datastore) runs on the gRPC
// callback thread that opens the stream: once per connection, never per notification.
//
// Thread-safety: every public method is safe to call from any thread. ChangeNotifier calls only
// update flags under a mutex and start writes; they never wait for the network. gRPC is never
// called with the mutex held.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "server/api/authorizer.h"
#include "server/api/service_deps.h"
#include "tessera/server/v1/notify.grpc.pb.h"

namespace tessera::server {

namespace notifyv1 = ::tessera::server::v1;

struct PushServiceOptions {
  // A stream that sent nothing for this long gets a notification without flags; zero or less
  // turns keepalives off.
  std::chrono::milliseconds keepalive_interval = std::chrono::seconds(60);
  // How long Shutdown lets writes already in flight complete before it cancels their streams.
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(1);
};

class PushService final : public notifyv1::Notifier::CallbackService, public ChangeNotifier {
 public:
  static constexpr char kWatchMethod[] = "/tessera.server.v1.Notifier/Watch";

  // `bundle_sequence` returns the current sequence number of the trust domain's own bundle
  // (e.g. the CA's); it is called without PushService's lock held, on whatever thread starts a
  // write, and must be cheap and non-blocking.
  PushService(const Authorizer& authorizer, std::function<uint64_t()> bundle_sequence,
              PushServiceOptions options = {});
  ~PushService() override;

  PushService(const PushService&) = delete;
  PushService& operator=(const PushService&) = delete;

  // The Watch RPC (Access::kAgent). A refused caller's stream ends at once with the
  // authorizer's status; after Shutdown every new stream ends with UNAVAILABLE.
  using notifyv1::Notifier::CallbackService::Watch;
  grpc::ServerWriteReactor<notifyv1::Notification>* Watch(
      grpc::CallbackServerContext* context, const notifyv1::WatchRequest* request) override;

  // ChangeNotifier.
  void EntriesChanged(const EntryIndex::AffectedAgents& agents) override;
  void BundleChanged() override;
  // Ends every stream of `agent` with PERMISSION_DENIED "agent is banned or was deleted", after
  // a write already in flight and one last notification with entries_changed (so the agent
  // syncs and learns why). Its new streams are refused by the authorizer from then on.
  void AgentRemoved(const spiffe::SpiffeId& agent) override;

  // Ends every open stream and refuses new ones (see the header comment). Idempotent; returns
  // after at most about `shutdown_grace`.
  void Shutdown();

  // Streams gRPC has not released yet (open, or finishing); for tests and metrics.
  size_t open_streams() const;

 private:
  class Stream;
  enum class Action { kNone, kWrite, kFinish };
  struct Step {
    Stream* stream;
    Action action;
  };

  // Decides, after any change of `stream`'s state, whether the caller must now start a write or
  // finish the stream; the caller then calls Perform without the lock.
  Action NextActionLocked(Stream& stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Perform(Stream& stream, Action action) ABSL_LOCKS_EXCLUDED(mu_);
  void PerformAll(const std::vector<Step>& steps) ABSL_LOCKS_EXCLUDED(mu_);
  // Marks `stream` finished with `status` unless it already is; the stream ends once its write
  // in flight (if any) completes.
  void RequestFinishLocked(Stream& stream, const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Called by Stream's reactions.
  void OnWriteDone(Stream& stream, bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  void OnCancel(Stream& stream) ABSL_LOCKS_EXCLUDED(mu_);
  void OnDone(Stream* stream) ABSL_LOCKS_EXCLUDED(mu_);

  void KeepaliveLoop();
  bool AllFinished() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return unfinished_count_ == 0; }
  bool NoStreams() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stream_count_ == 0; }

  // Immutable after construction.
  const Authorizer& authorizer_;
  const std::function<uint64_t()> bundle_sequence_;
  const PushServiceOptions options_;

  mutable absl::Mutex mu_;
  // Every stream gRPC has not released, by agent SPIFFE ID.
  absl::flat_hash_map<std::string, absl::flat_hash_set<Stream*>> streams_ ABSL_GUARDED_BY(mu_);
  size_t stream_count_ ABSL_GUARDED_BY(mu_) = 0;
  // Streams Finish has not been called for yet.
  size_t unfinished_count_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // Taken by the first Shutdown, which joins it.
  std::jthread keepalive_thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::server
