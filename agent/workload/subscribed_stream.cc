#include "agent/workload/subscribed_stream.h"

#include <utility>

namespace tessera::agent::workload_internal {

void SubscribedStream::StartAttestation(WorkloadCallers& callers,
                                        grpc::CallbackServerContext* context) {
  std::stop_source stop = callers.Attest(
      context, [this](absl::StatusOr<AttestedCaller> caller) { OnAttested(std::move(caller)); });
  bool stop_now;
  {
    absl::MutexLock lock(&mu_);
    attestation_ = stop;
    stop_now = finish_status_.has_value();
  }
  if (stop_now) stop.request_stop();
}

void SubscribedStream::RequestFinish(const grpc::Status& status) {
  std::stop_source attestation{std::nostopstate};
  bool drain;
  {
    absl::MutexLock lock(&mu_);
    if (!finish_status_.has_value()) finish_status_ = status;
    attestation = attestation_;
    drain = TakeToken();
  }
  // Answers a pending attestation now (the token holder then finishes the stream).
  attestation.request_stop();
  if (drain) Drain();
}

void SubscribedStream::OnAttested(absl::StatusOr<AttestedCaller> caller) {
  if (!caller.ok()) {
    {
      absl::MutexLock lock(&mu_);
      if (!finish_status_.has_value()) finish_status_ = ToGrpc(caller.status());
    }
    Drain();
    return;
  }
  caller_ = std::move(*caller);
  OnCaller();
  Cache::Subscription subscription =
      cache_.Subscribe([this](const std::shared_ptr<const CacheSnapshot>& s) { Offer(s); });
  // Read after subscribing: a snapshot published in between reaches Offer, so none is missed.
  std::shared_ptr<const CacheSnapshot> current = cache_.Current();
  {
    absl::MutexLock lock(&mu_);
    subscription_ = std::move(subscription);
    if (pending_snapshot_ == nullptr || pending_snapshot_->generation() < current->generation()) {
      pending_snapshot_ = std::move(current);
    }
  }
  Drain();
}

void SubscribedStream::Offer(const std::shared_ptr<const CacheSnapshot>& snapshot) {
  {
    absl::MutexLock lock(&mu_);
    if (finish_status_.has_value() || snapshot->generation() <= processed_generation_) return;
    if (pending_snapshot_ == nullptr || pending_snapshot_->generation() < snapshot->generation()) {
      pending_snapshot_ = snapshot;
    }
    if (!TakeToken()) return;  // the holder picks it up
  }
  Drain();
}

void SubscribedStream::WriteDone(bool ok) {
  if (!ok) {
    absl::MutexLock lock(&mu_);
    if (!finish_status_.has_value()) finish_status_ = grpc::Status::CANCELLED;
  }
  Drain();
}

void SubscribedStream::Leave() {
  Cache::Subscription subscription;
  {
    absl::MutexLock lock(&mu_);
    subscription = std::move(subscription_);
  }
  subscription.Reset();  // waits for an observer call in progress
  registry_.Remove(this);
}

}  // namespace tessera::agent::workload_internal
