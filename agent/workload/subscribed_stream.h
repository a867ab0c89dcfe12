// SubscribedStream: what every long-lived stream on the agent's socket shares (the Workload
// API's FetchX509SVID / FetchX509Bundles / FetchJWTBundles, Envoy's StreamSecrets and
// DeltaSecrets): the caller's attestation, a cache subscription, and the "token" that makes one
// thread at a time do the stream's work.
//
// Whoever holds the token (busy_) is the only thread that composes, starts a read or a write, or
// finishes: the attestation holds it first, then the reactor passes it on (to a write until
// OnWriteDone, for instance) or gives it back in Drain. Everyone else only records what happened
// (a newer snapshot in pending_snapshot_, a finish status) under mu_ and leaves the work to the
// holder. So OnDone (which follows Finish) cannot come while a thread is about to touch the
// reactor, and gRPC is never called under mu_. After Finish the token is never given back: late
// callbacks do nothing.
//
// A reactor derives from its gRPC reactor type and from this class, calls StartAttestation once
// from its handler, implements Drain, forwards OnWriteDone to WriteDone and OnCancel to
// RequestFinish(CANCELLED), and in OnDone calls Leave() and then deletes itself. (A template base
// deriving from the gRPC reactor would save those three lines per reactor, but make every member
// here a dependent name in the reactors, which are templates.)
//
// Thread-safety: as described; members marked "token" are only touched by the token holder.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/cache/cache.h"
#include "agent/workload/workload_callers.h"
#include "agent/workload/workload_internal.h"

namespace tessera::agent::workload_internal {

class SubscribedStream : public StreamBase {
 public:
  SubscribedStream(const char* method, Cache& cache, StreamRegistry& registry)
      : method_(method), cache_(cache), registry_(registry) {}

  // Ends the stream with UNAVAILABLE "agent is shutting down" once the token holder sees it.
  void RequestShutdown() override { RequestFinish(ShuttingDown()); }

 protected:
  // Attests the caller of `context`'s call; the attestation holds the token until it answers.
  // Then OnCaller runs (with the token), the stream subscribes to the cache, and Drain runs with
  // the current snapshot pending. A failed attestation becomes the finish status.
  void StartAttestation(WorkloadCallers& callers, grpc::CallbackServerContext* context);

  // Records `status` (the first one wins), cancels a pending attestation, and drains if nobody
  // holds the token.
  void RequestFinish(const grpc::Status& status);

  // Takes the token if it is free; true when the caller now holds it and must Drain.
  bool TakeToken() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (busy_) return false;
    busy_ = true;
    return true;
  }

  // For OnWriteDone: a failed write ends the stream (CANCELLED); the token comes back to Drain.
  void WriteDone(bool ok);

  // Runs with the token: does the stream's work, then gives the token back (busy_ = false
  // under mu_), passes it to a read or write, or calls Finish.
  virtual void Drain() = 0;
  // After a successful attestation, with the token, before the first snapshot.
  virtual void OnCaller() {}

  // For OnDone: ends the subscription (waiting for an observer call in progress) and leaves the
  // registry. The reactor deletes itself afterwards.
  void Leave();

  // Immutable after construction.
  const char* const method_;
  Cache& cache_;
  StreamRegistry& registry_;

  // Token: written once before OnCaller.
  AttestedCaller caller_;

  absl::Mutex mu_;
  bool busy_ ABSL_GUARDED_BY(mu_) = true;  // the attestation holds the token at first
  std::shared_ptr<const CacheSnapshot> pending_snapshot_ ABSL_GUARDED_BY(mu_);
  uint64_t processed_generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<grpc::Status> finish_status_ ABSL_GUARDED_BY(mu_);

 private:
  void OnAttested(absl::StatusOr<AttestedCaller> caller);
  // Cache observer: runs on the publishing thread.
  void Offer(const std::shared_ptr<const CacheSnapshot>& snapshot);

  std::stop_source attestation_ ABSL_GUARDED_BY(mu_){std::nostopstate};
  Cache::Subscription subscription_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::agent::workload_internal
