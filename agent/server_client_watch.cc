// ServerClient::Watch: Tessera's push stream (proto/tessera/server/v1/notify.proto) as a gRPC
// callback reactor, so that an idle stream costs no gRPC thread; the calling thread only waits,
// and cancels the stream on stop or after too long a silence.
#include <condition_variable>
#include <mutex>

#include "agent/server_client.h"
#include "agent/server_client_internal.h"
#include "common/status.h"
#include "common/strings.h"
#include "grpcpp/grpcpp.h"
#include "tessera/server/v1/notify.grpc.pb.h"

namespace tessera::agent {
namespace {

namespace notifyv1 = ::tessera::server::v1;
using server_client_internal::FromGrpc;

constexpr std::string_view kWatch = "watch";

}  // namespace

// Reads notifications until the stream ends. Owned by Watch's frame, which destroys it only
// after OnDone (gRPC's last call into it) has returned its lock.
class ServerClient::WatchReactor final : public grpc::ClientReadReactor<notifyv1::Notification> {
 public:
  explicit WatchReactor(const NotificationCallback& on_notification)
      : on_notification_(on_notification) {}

  grpc::ClientContext& context() { return ctx_; }

  void Begin(notifyv1::Notifier::Stub& stub) {
    stub.async()->Watch(&ctx_, &request_, this);
    StartRead(&message_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is over; OnDone follows
    {
      std::lock_guard lock(mu_);
      last_activity_ = std::chrono::steady_clock::now();
    }
    on_notification_(PushNotification{.revision = message_.revision(),
                                      .entries_changed = message_.entries_changed(),
                                      .bundle_changed = message_.bundle_changed(),
                                      .bundle_sequence_number = message_.bundle_sequence_number()});
    StartRead(&message_);
  }

  void OnDone(const grpc::Status& status) override {
    std::lock_guard lock(mu_);
    status_ = status;
    done_ = true;
    cv_.notify_all();
  }

  // Blocks until OnDone. Cancels the call once `idle` passes without a message; returns whether
  // that happened.
  bool WaitDone(std::chrono::milliseconds idle) {
    std::unique_lock lock(mu_);
    bool idle_cancelled = false;
    while (!done_) {
      if (idle_cancelled) {
        cv_.wait(lock, [&] { return done_; });
        break;
      }
      const auto deadline = last_activity_ + idle;
      if (cv_.wait_until(lock, deadline, [&] { return done_; })) break;
      if (std::chrono::steady_clock::now() < last_activity_ + idle) continue;
      idle_cancelled = true;
      // TryCancel may run OnDone inline, which takes mu_.
      lock.unlock();
      ctx_.TryCancel();
      lock.lock();
    }
    return idle_cancelled;
  }

  grpc::Status status() {
    std::lock_guard lock(mu_);
    return status_;
  }

 private:
  const NotificationCallback& on_notification_;
  grpc::ClientContext ctx_;
  notifyv1::WatchRequest request_;
  notifyv1::Notification message_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
  bool done_ = false;
  grpc::Status status_;
};

absl::Status ServerClient::Watch(const NotificationCallback& on_notification,
                                 std::stop_token stop) {
  if (stop.stop_requested()) return absl::OkStatus();
  absl::StatusOr<Target> target = CurrentTarget();
  if (!target.ok()) return Annotate(target.status(), kWatch);
  std::unique_ptr<notifyv1::Notifier::Stub> stub = notifyv1::Notifier::NewStub(target->channel);
  WatchReactor reactor(on_notification);
  if (!Track(&reactor.context())) {
    return absl::UnavailableError(absl::StrCat(AsAbsl(kWatch), ": shut down"));
  }
  bool idle_cancelled = false;
  {
    // Registered before the call starts, so a stop requested meanwhile cancels it too.
    std::stop_callback on_stop(stop, [&reactor] { reactor.context().TryCancel(); });
    reactor.Begin(*stub);
    idle_cancelled = reactor.WaitDone(options_.watch_idle_timeout);
  }
  Untrack(&reactor.context());
  if (stop.stop_requested()) return absl::OkStatus();
  absl::Status status =
      idle_cancelled
          ? absl::DeadlineExceededError(absl::StrCat("watch: no notification for ",
                                                     options_.watch_idle_timeout.count(), " ms"))
          : FromGrpc(reactor.status(), kWatch);
  AfterAttempt(*target, status);
  if (status.ok()) return absl::UnavailableError("watch: server ended the stream");
  return status;
}

}  // namespace tessera::agent
