// Workload attestation: what the agent learns about the process at the other end of a Workload
// API connection. An attestor turns the caller's kernel identity (its pid, and the uid/gid the
// socket reported) into selectors of its own type ("unix:uid:1000", "k8s:ns:web"). The agent runs
// every configured attestor concurrently under one deadline, unions what they return and matches
// the union against registration entries; a failing attestor is logged and contributes nothing,
// which can only shrink the set of matching entries (an entry matches when ALL its selectors are
// present), never grant more.
//
// Thread-safety: an attestor is configured once, at construction, and Attest is safe to call from
// many threads at once, for the same or different processes. Attest may outlive the deadline when
// it blocks in a call it cannot interrupt (an NSS lookup, a slow runtime API): the agent stops
// waiting, ignores the late answer, and must keep the attestor alive until the call returns
// (hold it in a std::shared_ptr captured by the task).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "spiffe/selector.h"

namespace tessera::attestors {

// The caller, as the agent knows it from the accepted socket.
struct WorkloadProcess {
  pid_t pid = 0;
  // SO_PEERCRED: the credentials the caller had when it connected. Attestors that read /proc
  // report what the process holds now, as SPIRE does; these are for attestors with no other
  // source.
  uid_t uid = 0;
  gid_t gid = 0;
  // A pidfd the agent opened for `pid` when it accepted the connection, or -1 when it has none.
  // Borrowed: valid for the duration of the Attest call only. Attestors that look up the process
  // by pid check it to make sure what they read belongs to the caller and not to a later process
  // that was given the same pid.
  int pidfd = -1;
};

// How long an attestation may run: a point on the steady clock plus a stop token the agent
// triggers when it gives up early (the caller hung up, the agent is shutting down). Long-running
// attestors poll Check() between steps; those blocked in I/O can register a std::stop_callback
// or pass Remaining() on as a timeout. A copyable value; safe to read from any thread.
class AttestationDeadline {
 public:
  using Clock = std::chrono::steady_clock;

  // No deadline and no stop token: runs to completion (tools and tests).
  AttestationDeadline() = default;
  explicit AttestationDeadline(Clock::time_point deadline, std::stop_token stop = {})
      : deadline_(deadline), stop_(std::move(stop)) {}
  static AttestationDeadline After(Clock::duration timeout, std::stop_token stop = {}) {
    return AttestationDeadline(Clock::now() + timeout, std::move(stop));
  }

  Clock::time_point deadline() const { return deadline_; }
  const std::stop_token& stop_token() const { return stop_; }

  // Time left: zero once passed, Clock::duration::max() without a deadline.
  Clock::duration Remaining() const {
    if (deadline_ == Clock::time_point::max()) return Clock::duration::max();
    Clock::time_point now = Clock::now();
    return now >= deadline_ ? Clock::duration::zero() : deadline_ - now;
  }

  // OK while the attestation may go on; otherwise Cancelled "<what>: cancelled" when a stop was
  // requested, or DeadlineExceeded "<what>: deadline exceeded" once the deadline has passed.
  absl::Status Check(std::string_view what) const {
    if (stop_.stop_requested()) {
      return absl::CancelledError(absl::StrCat(AsAbsl(what), ": cancelled"));
    }
    if (deadline_ != Clock::time_point::max() && Clock::now() >= deadline_) {
      return absl::DeadlineExceededError(absl::StrCat(AsAbsl(what), ": deadline exceeded"));
    }
    return absl::OkStatus();
  }

 private:
  Clock::time_point deadline_ = Clock::time_point::max();
  std::stop_token stop_;
};

// One kind of workload attestor ("unix", "systemd", "k8s", "docker"). Implementations live in
// attestors/<name>/ and are listed by hand in the agent's registry, each with a factory that
// reads its [workload_attestor.<name>] table.
class WorkloadAttestor {
 public:
  virtual ~WorkloadAttestor() = default;

  // The plugin name: the key of its config table and the type of every selector it returns.
  virtual std::string_view name() const = 0;

  // The selectors for `process`, all of type name(). An empty set is a valid answer (e.g. the
  // process is not in a container this attestor knows). Errors name the attestor and say what
  // failed ("unix: open /proc/42: No such file or directory"); a process that has gone away is
  // NOT_FOUND, a deadline or stop seen by Check() is DEADLINE_EXCEEDED or CANCELLED.
  virtual absl::StatusOr<spiffe::SelectorSet> Attest(const WorkloadProcess& process,
                                                     const AttestationDeadline& deadline) = 0;
};

}  // namespace tessera::attestors
