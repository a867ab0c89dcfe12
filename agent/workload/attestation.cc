#include "agent/workload/attestation.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "grpcpp/server_context.h"
#include "spdlog/spdlog.h"

namespace tessera::agent {

// One caller's attestation. Shared by the tasks running its attestors, the timer and the stop
// callback; whichever finishes it first takes `done` and calls it, outside the lock.
struct CallerAttestation::Call {
  std::shared_ptr<const ConnectedCaller> caller;
  std::vector<std::shared_ptr<attestors::WorkloadAttestor>> attestors;
  std::chrono::milliseconds timeout{0};
  std::stop_source stop;
  attestors::AttestationDeadline deadline;

  std::mutex mu;
  Callback done;  // empty once taken (guarded by mu)
  std::vector<bool> answered;
  size_t remaining = 0;
  spiffe::SelectorSet selectors;

  std::optional<std::stop_callback<std::function<void()>>> on_stop;

  // Takes `done` unless someone already did; the caller then calls it.
  Callback TakeLocked() { return std::exchange(done, nullptr); }
};

struct CallerAttestation::Workers {
  absl::Mutex mu;
  std::deque<std::function<void()>> queue ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
  int live ABSL_GUARDED_BY(mu) = 0;

  void Run() {
    for (;;) {
      std::function<void()> task;
      {
        absl::MutexLock lock(&mu);
        mu.Await(absl::Condition(
            +[](Workers* w)
                 ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu) { return w->stopping || !w->queue.empty(); },
            this));
        if (stopping) {
          --live;
          return;
        }
        task = std::move(queue.front());
        queue.pop_front();
      }
      task();
    }
  }
};

namespace {

absl::Status ShuttingDown() { return absl::UnavailableError("agent is shutting down"); }

// The end of every successful attestation: the answer is only given to the process that
// connected, never to whoever holds its pid now.
void Answer(const std::shared_ptr<const ConnectedCaller>& caller, spiffe::SelectorSet selectors,
            const WorkloadCallers::Callback& done) {
  if (absl::Status alive = caller->CheckAlive(); !alive.ok()) {
    spdlog::warn("workload api: pid {}: could not verify existence of the original caller: {}",
                 caller->pid, AsStd(alive.message()));
    done(absl::UnauthenticatedError(
        absl::StrCat("could not verify existence of the original caller: ", alive.message())));
    return;
  }
  done(AttestedCaller{.pid = caller->pid,
                      .uid = caller->uid,
                      .gid = caller->gid,
                      .selectors = std::move(selectors)});
}

}  // namespace

void CallerAttestation::RunAttestor(const std::shared_ptr<Call>& call, size_t index) {
  const std::shared_ptr<attestors::WorkloadAttestor>& attestor = call->attestors[index];
  const std::string name(attestor->name());
  {
    std::lock_guard lock(call->mu);
    if (!call->done) return;  // answered already (deadline, cancel, shutdown)
  }
  absl::StatusOr<spiffe::SelectorSet> result;
  if (absl::Status check = call->deadline.Check(name); !check.ok()) {
    result = std::move(check);
  } else {
    attestors::WorkloadProcess process{.pid = call->caller->pid,
                                       .uid = call->caller->uid,
                                       .gid = call->caller->gid,
                                       .pidfd = call->caller->pidfd.get()};
    result = attestor->Attest(process, call->deadline);
  }
  WorkloadCallers::Callback done;
  spiffe::SelectorSet selectors;
  {
    std::lock_guard lock(call->mu);
    if (!call->done) {
      spdlog::debug("workload api: attestor {} answered for pid {} after the attestation ended",
                    name, call->caller->pid);
      return;
    }
    if (result.ok()) {
      std::vector<spiffe::Selector> own_type;
      for (const spiffe::Selector& selector : *result) {
        if (selector.type() == attestor->name()) {
          own_type.push_back(selector);
        } else {
          spdlog::warn("workload api: attestor {} returned selector {} of another type for pid {}",
                       name, selector.ToString(), call->caller->pid);
        }
      }
      call->selectors.Merge(spiffe::SelectorSet(std::move(own_type)));
    } else {
      spdlog::warn("workload api: workload attestor {} failed for pid {}: {}", name,
                   call->caller->pid, AsStd(result.status().message()));
    }
    call->answered[index] = true;
    if (--call->remaining > 0) return;
    done = call->TakeLocked();
    selectors = std::move(call->selectors);
  }
  Answer(call->caller, std::move(selectors), done);
  call->stop.request_stop();
}

CallerAttestation::CallerAttestation(const CallerTable& table, CallerAttestationOptions options)
    : table_(table), options_(std::move(options)), workers_(std::make_shared<Workers>()) {
  int threads = std::max(1, options_.threads);
  {
    absl::MutexLock lock(&workers_->mu);
    workers_->live = threads;
  }
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([workers = workers_] { workers->Run(); });
  }
  timer_thread_ = std::jthread([this](std::stop_token stop) { TimerLoop(std::move(stop)); });
}

CallerAttestation::~CallerAttestation() { Shutdown(); }

std::stop_source CallerAttestation::Attest(grpc::CallbackServerContext* context, Callback done) {
  std::string peer = context->peer();
  std::shared_ptr<const ConnectedCaller> caller = table_.FindByPeer(peer);
  if (caller == nullptr) {
    spdlog::error("workload api: caller of connection {} is unknown to the agent", peer);
    done(absl::InternalError(
        absl::StrCat("caller of connection ", peer, " is unknown to the agent")));
    return std::stop_source(std::nostopstate);
  }
  return AttestCaller(std::move(caller), std::move(done));
}

std::stop_source CallerAttestation::AttestCaller(std::shared_ptr<const ConnectedCaller> caller,
                                                 Callback done) {
  auto call = std::make_shared<Call>();
  call->caller = std::move(caller);
  call->attestors = options_.attestors;
  call->timeout = options_.timeout;
  call->deadline = attestors::AttestationDeadline::After(options_.timeout, call->stop.get_token());
  call->answered.assign(call->attestors.size(), false);
  call->remaining = call->attestors.size();
  call->done = std::move(done);

  {
    std::lock_guard lock(timer_mu_);
    if (shut_down_) {
      Callback cb = call->TakeLocked();
      cb(ShuttingDown());
      return std::stop_source(std::nostopstate);
    }
    if (!call->attestors.empty()) {
      // The timer thread sleeps until the earliest deadline; it needs waking only when this one
      // is now the earliest. With one timeout for every call that is rare, and each needless
      // wake-up costs a thread switch per Workload API call.
      bool earliest = timers_.empty() || call->deadline.deadline() < timers_.top().first;
      timers_.emplace(call->deadline.deadline(), call);
      if (earliest) timer_cv_.notify_one();
    }
  }
  if (call->attestors.empty()) {
    Callback cb = call->TakeLocked();
    Answer(call->caller, {}, cb);
    return std::stop_source(std::nostopstate);
  }

  // Runs on the thread that triggers the stop (e.g. gRPC's OnCancel): answers at once.
  std::weak_ptr<Call> weak = call;
  call->on_stop.emplace(call->stop.get_token(), std::function<void()>([weak] {
                          std::shared_ptr<Call> c = weak.lock();
                          if (c == nullptr) return;
                          Callback cb;
                          {
                            std::lock_guard lock(c->mu);
                            cb = c->TakeLocked();
                          }
                          if (cb) cb(absl::CancelledError("attestation cancelled"));
                        }));
  {
    absl::MutexLock lock(&workers_->mu);
    for (size_t i = 0; i < call->attestors.size(); ++i) {
      workers_->queue.push_back([call, i] { RunAttestor(call, i); });
    }
  }
  return call->stop;
}

void CallerAttestation::TimerLoop(std::stop_token stop) {
  std::unique_lock lock(timer_mu_);
  while (!stop.stop_requested()) {
    // Calls that have ended are dropped without waiting for their deadlines, so the thread sleeps
    // until the earliest call that may still need it and wakes about once per timeout, not once
    // per call.
    while (!timers_.empty() && timers_.top().second.expired()) timers_.pop();
    if (timers_.empty()) {
      timer_cv_.wait(lock, stop, [this] { return !timers_.empty(); });
      continue;
    }
    auto next = timers_.top().first;
    if (std::chrono::steady_clock::now() < next) {
      timer_cv_.wait_until(lock, stop, next,
                           [this, next] { return !timers_.empty() && timers_.top().first < next; });
      continue;
    }
    std::shared_ptr<Call> call = timers_.top().second.lock();
    timers_.pop();
    if (call == nullptr) continue;
    lock.unlock();
    Callback done;
    spiffe::SelectorSet selectors;
    {
      std::lock_guard call_lock(call->mu);
      done = call->TakeLocked();
      if (done) {
        for (size_t i = 0; i < call->attestors.size(); ++i) {
          if (call->answered[i]) continue;
          spdlog::warn(
              "workload api: workload attestor {} failed for pid {}: no answer within {} ms",
              std::string(call->attestors[i]->name()), call->caller->pid, call->timeout.count());
        }
        selectors = std::move(call->selectors);
      }
    }
    if (done) {
      Answer(call->caller, std::move(selectors), done);
      call->stop.request_stop();  // tells the late attestors to give up
    }
    lock.lock();
  }
}

void CallerAttestation::Shutdown() {
  std::vector<std::shared_ptr<Call>> pending;
  {
    std::lock_guard lock(timer_mu_);
    if (shut_down_) return;
    shut_down_ = true;
    while (!timers_.empty()) {
      if (std::shared_ptr<Call> call = timers_.top().second.lock()) pending.push_back(call);
      timers_.pop();
    }
  }
  timer_thread_.request_stop();
  if (timer_thread_.joinable()) timer_thread_.join();
  for (const std::shared_ptr<Call>& call : pending) {
    Callback done;
    {
      std::lock_guard lock(call->mu);
      done = call->TakeLocked();
    }
    if (done) done(ShuttingDown());
    call->stop.request_stop();
  }

  bool all_exited;
  {
    absl::MutexLock lock(&workers_->mu);
    workers_->stopping = true;
    workers_->queue.clear();
    all_exited = workers_->mu.AwaitWithTimeout(
        absl::Condition(
            +[](Workers* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu) { return w->live == 0; },
            workers_.get()),
        absl::FromChrono(options_.shutdown_grace));
  }
  if (!all_exited) {
    spdlog::warn("workload api: workload attestors still running after {} ms; leaving them behind",
                 options_.shutdown_grace.count());
  }
  for (std::thread& thread : threads_) {
    if (all_exited) {
      thread.join();
    } else {
      thread.detach();
    }
  }
  threads_.clear();
}

}  // namespace tessera::agent
