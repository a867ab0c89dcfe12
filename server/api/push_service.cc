#include "server/api/push_service.h"

#include <optional>
#include <utility>

#include "absl/time/time.h"
#include "server/api/grpc_status.h"

namespace tessera::server {

// One Watch stream. gRPC owns it from Watch() until OnDone, where it deletes itself after
// PushService has forgotten it.
//
// Lifetime rule that makes calling gRPC without the lock safe: OnDone comes only after Finish,
// and Finish is only called once no write is in flight and no other thread is about to touch the
// reactor (`pins`). So a thread that, under the lock, set write_in_flight, set finished or took a
// pin may use the stream after releasing the lock, until its StartWrite, Finish or unpin.
class PushService::Stream final : public grpc::ServerWriteReactor<notifyv1::Notification> {
 public:
  Stream(PushService& service, grpc::CallbackServerContext* context, std::string agent)
      : service_(service), context_(context), agent_(std::move(agent)) {}

  void OnWriteDone(bool ok) override { service_.OnWriteDone(*this, ok); }
  void OnCancel() override { service_.OnCancel(*this); }
  void OnDone() override { service_.OnDone(this); }

  PushService& service_;
  grpc::CallbackServerContext* const context_;
  const std::string agent_;

  // Guarded by service_.mu_.
  uint64_t revision_ = 0;
  bool pending_entries_ = false;
  bool pending_bundle_ = false;
  bool pending_keepalive_ = false;
  bool write_in_flight_ = false;
  // A write started since the keepalive thread last looked.
  bool wrote_this_period_ = false;
  // Threads about to call into gRPC for this stream without the lock (Shutdown's TryCancel).
  int pins_ = 0;
  // Set once: how the stream ends, as soon as nothing is in flight.
  std::optional<grpc::Status> finish_status_;
  // The pending entries hint still goes out before finish_status_ does (an agent that was
  // removed is told to sync, so it learns at once why its stream ended).
  bool hint_before_finish_ = false;
  // Finish was (or is about to be) called.
  bool finished_ = false;

  // The notification being written. Owned by the thread that set write_in_flight_ until it calls
  // StartWrite, then by gRPC until OnWriteDone.
  notifyv1::Notification out_;
};

namespace {

// A stream refused before it started (authorization, shutdown): ends with `status` at once.
class RefusedStream final : public grpc::ServerWriteReactor<notifyv1::Notification> {
 public:
  explicit RefusedStream(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

grpc::Status ShuttingDown() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down");
}

}  // namespace

PushService::PushService(const Authorizer& authorizer, std::function<uint64_t()> bundle_sequence,
                         PushServiceOptions options)
    : authorizer_(authorizer), bundle_sequence_(std::move(bundle_sequence)), options_(options) {
  if (options_.keepalive_interval > std::chrono::milliseconds::zero()) {
    absl::MutexLock lock(&mu_);
    keepalive_thread_ = std::jthread([this] { KeepaliveLoop(); });
  }
}

PushService::~PushService() {
  Shutdown();
  // gRPC releases each stream promptly once Finish is called (or the call was cancelled); the
  // reactors call back into this object until then.
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &PushService::NoStreams));
}

grpc::ServerWriteReactor<notifyv1::Notification>* PushService::Watch(
    grpc::CallbackServerContext* context, const notifyv1::WatchRequest* /*request*/) {
  auto caller = authorizer_.Authorize(*context, kWatchMethod, Access::kAgent);
  if (!caller.ok()) return new RefusedStream(ToGrpcStatus(caller.status()));
  if (!caller->id.has_value()) {
    // kAgent admits only callers with an SVID; refuse rather than trust that forever.
    return new RefusedStream(
        grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "caller does not have an X509-SVID"));
  }
  Stream* stream;
  Action action;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return new RefusedStream(ShuttingDown());
    stream = new Stream(*this, context, caller->id->str());
    streams_[stream->agent_].insert(stream);
    ++stream_count_;
    ++unfinished_count_;
    // The agent may have missed anything while it was not connected: it syncs everything once.
    stream->pending_entries_ = true;
    stream->pending_bundle_ = true;
    action = NextActionLocked(*stream);
  }
  // Before the reactor is returned gRPC keeps the write in the reactor's backlog.
  Perform(*stream, action);
  return stream;
}

void PushService::EntriesChanged(const EntryIndex::AffectedAgents& agents) {
  std::vector<Step> steps;
  {
    absl::MutexLock lock(&mu_);
    for (const spiffe::SpiffeId& agent : agents) {
      auto it = streams_.find(agent.str());
      if (it == streams_.end()) continue;
      for (Stream* stream : it->second) {
        stream->pending_entries_ = true;
        if (Action a = NextActionLocked(*stream); a != Action::kNone) steps.push_back({stream, a});
      }
    }
  }
  PerformAll(steps);
}

void PushService::AgentRemoved(const spiffe::SpiffeId& agent) {
  std::vector<Step> steps;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(agent.str());
    if (it == streams_.end()) return;
    for (Stream* stream : it->second) {
      const bool open = !stream->finish_status_.has_value();
      RequestFinishLocked(*stream, grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                                "agent is banned or was deleted"));
      if (open) {
        stream->pending_entries_ = true;
        stream->hint_before_finish_ = true;
      }
      if (Action a = NextActionLocked(*stream); a != Action::kNone) steps.push_back({stream, a});
    }
  }
  PerformAll(steps);
}

void PushService::BundleChanged() {
  std::vector<Step> steps;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [agent, streams] : streams_) {
      for (Stream* stream : streams) {
        stream->pending_bundle_ = true;
        if (Action a = NextActionLocked(*stream); a != Action::kNone) steps.push_back({stream, a});
      }
    }
  }
  PerformAll(steps);
}

void PushService::Shutdown() {
  std::vector<Step> steps;
  std::jthread keepalive;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    keepalive = std::move(keepalive_thread_);
    for (auto& [agent, streams] : streams_) {
      for (Stream* stream : streams) {
        RequestFinishLocked(*stream, ShuttingDown());
        if (Action a = NextActionLocked(*stream); a != Action::kNone) steps.push_back({stream, a});
      }
    }
  }
  if (keepalive.joinable()) keepalive.join();  // it wakes up on shutting_down_
  PerformAll(steps);

  // Streams still unfinished have a write in flight: let a reading client take it (and then
  // hear UNAVAILABLE), but a client that stopped reading would hold its write, and with it
  // grpc::Server::Shutdown, forever.
  std::vector<Stream*> stuck;
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(this, &PushService::AllFinished),
                         absl::FromChrono(options_.shutdown_grace));
    for (auto& [agent, streams] : streams_) {
      for (Stream* stream : streams) {
        if (stream->finished_) continue;
        ++stream->pins_;
        stuck.push_back(stream);
      }
    }
  }
  // Cancelling fails the write in flight; OnWriteDone then finishes the stream.
  for (Stream* stream : stuck) stream->context_->TryCancel();
  steps.clear();
  {
    absl::MutexLock lock(&mu_);
    for (Stream* stream : stuck) {
      --stream->pins_;
      if (Action a = NextActionLocked(*stream); a != Action::kNone) steps.push_back({stream, a});
    }
  }
  PerformAll(steps);
}

size_t PushService::open_streams() const {
  absl::MutexLock lock(&mu_);
  return stream_count_;
}

PushService::Action PushService::NextActionLocked(Stream& stream) {
  if (stream.finished_ || stream.write_in_flight_) return Action::kNone;
  if (stream.finish_status_.has_value() &&
      !(stream.hint_before_finish_ && stream.pending_entries_)) {
    if (stream.pins_ > 0) return Action::kNone;
    stream.finished_ = true;
    --unfinished_count_;
    return Action::kFinish;
  }
  if (!stream.pending_entries_ && !stream.pending_bundle_ && !stream.pending_keepalive_) {
    return Action::kNone;
  }
  stream.out_.Clear();
  stream.out_.set_revision(++stream.revision_);
  stream.out_.set_entries_changed(stream.pending_entries_);
  stream.out_.set_bundle_changed(stream.pending_bundle_);
  stream.pending_entries_ = false;
  stream.pending_bundle_ = false;
  stream.pending_keepalive_ = false;
  stream.write_in_flight_ = true;
  stream.wrote_this_period_ = true;
  return Action::kWrite;
}

void PushService::Perform(Stream& stream, Action action) {
  switch (action) {
    case Action::kNone:
      return;
    case Action::kWrite:
      // Read at send time, not when the change was announced, so it is never older than the
      // change the notification reports.
      stream.out_.set_bundle_sequence_number(bundle_sequence_());
      stream.StartWrite(&stream.out_);
      return;
    case Action::kFinish:
      // finish_status_ never changes once finished_ is set.
      stream.Finish(*stream.finish_status_);
      return;
  }
}

void PushService::PerformAll(const std::vector<Step>& steps) {
  for (const Step& step : steps) Perform(*step.stream, step.action);
}

void PushService::RequestFinishLocked(Stream& stream, const grpc::Status& status) {
  // Any reason to end but removal (cancelled, a failed write, shutdown) ends without the hint.
  stream.hint_before_finish_ = false;
  if (!stream.finish_status_.has_value()) stream.finish_status_ = status;
}

void PushService::OnWriteDone(Stream& stream, bool ok) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    stream.write_in_flight_ = false;
    // A failed write means the call is gone (cancelled, connection lost): nobody hears the
    // status, but Finish is still what lets gRPC release the stream.
    if (!ok) RequestFinishLocked(stream, grpc::Status::CANCELLED);
    action = NextActionLocked(stream);
  }
  Perform(stream, action);
}

void PushService::OnCancel(Stream& stream) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    RequestFinishLocked(stream, grpc::Status::CANCELLED);
    action = NextActionLocked(stream);
  }
  Perform(stream, action);
}

void PushService::OnDone(Stream* stream) {
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(stream->agent_);
    if (it != streams_.end()) {
      it->second.erase(stream);
      if (it->second.empty()) streams_.erase(it);
    }
    --stream_count_;
  }
  delete stream;
}

void PushService::KeepaliveLoop() {
  const absl::Duration period = absl::FromChrono(options_.keepalive_interval);
  for (;;) {
    std::vector<Step> steps;
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&shutting_down_), period)) return;
      for (auto& [agent, streams] : streams_) {
        for (Stream* stream : streams) {
          bool idle = !stream->wrote_this_period_;
          stream->wrote_this_period_ = false;
          if (!idle) continue;
          // A write still in flight keeps the keepalive pending until it completes.
          stream->pending_keepalive_ = true;
          if (Action a = NextActionLocked(*stream); a != Action::kNone) {
            steps.push_back({stream, a});
          }
        }
      }
    }
    PerformAll(steps);
  }
}

}  // namespace tessera::server
