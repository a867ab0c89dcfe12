// Internals shared by the files of WorkloadApiService (workload_service.cc, workload_streams.cc,
// workload_jwt.cc). Not part of the library's interface.
//
// Thread-safety: StreamRegistry is safe for concurrent use; UnaryCall follows gRPC's reactor
// rules (see below).
#pragma once

#include <cstddef>
#include <memory>
#include <stop_token>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "agent/cache/cache.h"
#include "agent/workload/workload_callers.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"

namespace tessera::agent::workload_internal {

// gRPC and absl share the canonical code numbering.
inline grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline grpc::Status NoIdentity() {
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no identity issued");
}
inline grpc::Status ShuttingDown() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "agent is shutting down");
}

// SPIFFE-FACTS §4: exactly one `workload.spiffe.io` value, equal to "true".
grpc::Status CheckSecurityHeader(const grpc::CallbackServerContext& context);

// The checks every SpiffeWorkloadAPI call passes before attestation: the security header, then
// whether the agent has anything to serve yet.
grpc::Status Admit(const grpc::CallbackServerContext& context, const Cache& cache);

// Drops every identity whose non-empty hint repeats an earlier one's (the earlier is the older
// entry, in Match order), as SPIRE does: hints must be unique within one response.
std::vector<CachedIdentity> UniqueHints(std::vector<CachedIdentity> identities);

// An open stream, as the service's registry sees it.
class StreamBase {
 public:
  virtual ~StreamBase() = default;
  // Ends the stream with UNAVAILABLE as soon as no write is in flight. Called with the registry's
  // lock held: must not call back into the registry.
  virtual void RequestShutdown() = 0;
};

// The streams gRPC has not released yet, so Shutdown can end them and the service's destructor
// can wait for them.
class StreamRegistry {
 public:
  // False once Shutdown was called: refuse the stream.
  bool Add(StreamBase* stream);
  void Remove(StreamBase* stream);
  void Shutdown();
  void WaitUntilEmpty();
  size_t size() const;

 private:
  bool Empty() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.empty(); }

  mutable absl::Mutex mu_;
  absl::flat_hash_set<StreamBase*> streams_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

// A unary call that finishes later, from whatever thread has the answer (attestation threads,
// the JWT-SVID source). gRPC deletes the reactor in OnDone, which may come before late callbacks
// run (the client cancelled), so callbacks hold the shared State, never the reactor: the first
// Finish wins, later ones do nothing.
class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  struct State {
    absl::Mutex mu;
    UnaryCall* reactor ABSL_GUARDED_BY(mu) = nullptr;  // null after OnDone
    bool finished ABSL_GUARDED_BY(mu) = false;
    std::stop_source attestation ABSL_GUARDED_BY(mu){std::nostopstate};
  };

  UnaryCall() : state_(std::make_shared<State>()) {
    absl::MutexLock lock(&state_->mu);
    state_->reactor = this;
  }

  const std::shared_ptr<State>& state() const { return state_; }

  // Finishes the call with `status` unless it already finished; `fill` (only run by the winner,
  // before gRPC may release the response) writes the response of an OK status.
  template <typename Fill>
  static void FinishOnce(const std::shared_ptr<State>& state, const grpc::Status& status,
                         Fill&& fill) {
    UnaryCall* reactor;
    {
      absl::MutexLock lock(&state->mu);
      if (state->finished || state->reactor == nullptr) return;
      state->finished = true;
      reactor = state->reactor;
    }
    // OnDone cannot run before this Finish, so the reactor and the response are still alive.
    if (status.ok()) std::forward<Fill>(fill)();
    reactor->Finish(status);
  }
  static void FinishOnce(const std::shared_ptr<State>& state, const grpc::Status& status) {
    FinishOnce(state, status, [] {});
  }

  void OnCancel() override {
    std::stop_source attestation{std::nostopstate};
    {
      absl::MutexLock lock(&state_->mu);
      attestation = state_->attestation;
    }
    attestation.request_stop();
    FinishOnce(state_, grpc::Status::CANCELLED);
  }
  void OnDone() override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->reactor = nullptr;
    }
    delete this;
  }

 private:
  const std::shared_ptr<State> state_;
};

// A stream refused before it started: ends with `status` at once.
template <typename Response>
class RefusedStream final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit RefusedStream(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

inline grpc::ServerUnaryReactor* RefusedUnary(grpc::CallbackServerContext* context,
                                              const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace tessera::agent::workload_internal
