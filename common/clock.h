// Clock: the seam through which everything reads the time, so tests can move it by hand.
// RealClock is safe for concurrent use; FakeClock is too (its time is guarded by a mutex).
#pragma once

#include <chrono>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tessera {

class Clock {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  // Wall-clock time: certificate and token validity are judged against it.
  virtual TimePoint Now() const = 0;
};

class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  // A process-wide instance; stateless, so sharing it is not global mutable state.
  static const Clock& Get() {
    static const RealClock clock;
    return clock;
  }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = std::chrono::system_clock::from_time_t(1'800'000'000))
      : now_(start) {}
  TimePoint Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Set(TimePoint t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }
  void Advance(std::chrono::nanoseconds d) {
    absl::MutexLock lock(&mu_);
    now_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  }

 private:
  mutable absl::Mutex mu_;
  TimePoint now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera
