// CallerAttestation: the agent's WorkloadCallers. Each call's caller is attested by every
// configured workload attestor at once, on a small fixed pool of the agent's own threads (never on
// gRPC's callback threads, which must not block), all under one AttestationDeadline. An attestor
// that fails, returns selectors of another type than its name, or has not answered by the
// deadline is logged (warning: attestor name, pid, error) and contributes nothing; the answer is
// the union of the rest. A dedicated timer thread enforces the deadline, so the answer comes in
// time even when every pool thread is stuck in an attestor that cannot be interrupted.
//
// Before answering, the caller's pidfd is polled: a process that has exited (POLLIN) gets
// Unauthenticated "could not verify existence of the original caller: process <pid> has exited",
// the code and wording SPIRE uses, so no process is ever given the identity of an earlier holder
// of its pid.
//
// Thread-safety: Attest and AttestCaller are safe from any thread. Shutdown (also run by the
// destructor) answers every pending attestation with Unavailable, stops the timer, and waits up
// to `shutdown_grace` for pool threads still inside an attestor; threads still stuck after that
// are detached (they hold only shared state, and the attestor they run, alive).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <queue>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include "agent/workload/caller_table.h"
#include "agent/workload/workload_callers.h"
#include "attestors/workload_attestor.h"

namespace tessera::agent {

struct CallerAttestationOptions {
  std::vector<std::shared_ptr<attestors::WorkloadAttestor>> attestors;
  // The deadline of one caller's attestation, all attestors together.
  std::chrono::milliseconds timeout = std::chrono::seconds(5);
  // Pool threads running attestors (at least 1).
  int threads = 4;
  // How long Shutdown waits for attestors that are still running.
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(2);
};

class CallerAttestation final : public WorkloadCallers {
 public:
  // `table` must outlive this object.
  CallerAttestation(const CallerTable& table, CallerAttestationOptions options);
  ~CallerAttestation() override;
  CallerAttestation(const CallerAttestation&) = delete;
  CallerAttestation& operator=(const CallerAttestation&) = delete;

  // WorkloadCallers: looks up the connection of `context` (its peer "fd:<n>") in the table.
  std::stop_source Attest(grpc::CallbackServerContext* context, Callback done) override;

  // Attests a caller the agent already has in hand (same contract as Attest).
  std::stop_source AttestCaller(std::shared_ptr<const ConnectedCaller> caller, Callback done);

  // Idempotent.
  void Shutdown();

 private:
  struct Call;
  struct Workers;

  // Runs attestor `index` of `call` on a pool thread. Touches nothing but the call, so a
  // detached thread finishing after Shutdown is harmless.
  static void RunAttestor(const std::shared_ptr<Call>& call, size_t index);
  void TimerLoop(std::stop_token stop);

  // Immutable after construction.
  const CallerTable& table_;
  const CallerAttestationOptions options_;

  // Shared with the pool threads, which may outlive this object after Shutdown detached them.
  const std::shared_ptr<Workers> workers_;
  std::vector<std::thread> threads_;  // owned by the constructor and Shutdown

  // Deadlines of calls not yet timed out, earliest first. Every call is answered at the latest
  // when its deadline fires, so this also lists every call that may still be pending.
  using TimerEntry = std::pair<std::chrono::steady_clock::time_point, std::weak_ptr<Call>>;
  struct Later {
    bool operator()(const TimerEntry& a, const TimerEntry& b) const { return a.first > b.first; }
  };
  std::mutex timer_mu_;
  std::condition_variable_any timer_cv_;
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, Later> timers_;  // guarded by timer_mu_
  bool shut_down_ = false;                                                  // guarded by timer_mu_
  std::jthread timer_thread_;
};

}  // namespace tessera::agent
