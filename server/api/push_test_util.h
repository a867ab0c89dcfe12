// Test helpers for PushService over real gRPC with TLS: a Watch client that reads only when
// asked, and the fixture that serves a PushService to agents. Included by tests only.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/api/push_service.h"
#include "server/api/service_test_util.h"
#include "spiffe/grpc_tls.h"

namespace tessera::server::testing {

using Notification = notifyv1::Notification;

inline constexpr char kAgentA[] = "spiffe://example.org/spire/agent/x/a";
inline constexpr char kAgentB[] = "spiffe://example.org/spire/agent/x/b";
inline constexpr char kAgentC[] = "spiffe://example.org/spire/agent/x/c";
// Long enough for anything that should arrive, on a loaded machine under sanitizers.
inline constexpr absl::Duration kWait = absl::Seconds(10);
// How long a stream that should hear nothing is watched.
inline constexpr absl::Duration kQuiet = absl::Milliseconds(300);

// A Watch client that reads only when asked, so a test can stop reading and let the server's
// writes back up. Thread-safe.
class WatchClient final : public grpc::ClientReadReactor<Notification> {
 public:
  explicit WatchClient(const std::shared_ptr<grpc::Channel>& channel)
      : stub_(notifyv1::Notifier::NewStub(channel)) {
    stub_->async()->Watch(&context_, &request_, this);
    // Reads start outside the reactions; the hold keeps the call alive until a read fails.
    AddHold();
    StartCall();
  }

  ~WatchClient() override {
    context_.TryCancel();
    WaitEnd(absl::Seconds(30));
    absl::MutexLock lock(&mu_);
    if (!done_) {
      // Deleting the reactor before OnDone would be a use-after-free inside gRPC.
      std::fprintf(stderr, "WatchClient: stream did not end\n");
      std::abort();
    }
  }

  // The next notification, or nullopt when none arrives within `timeout` or the stream ended.
  std::optional<Notification> Next(absl::Duration timeout) {
    bool start = false;
    {
      absl::MutexLock lock(&mu_);
      if (!ready_.has_value() && !read_pending_ && !read_failed_) {
        read_pending_ = true;
        start = true;
      }
    }
    if (start) StartRead(&incoming_);
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(this, &WatchClient::ReadyOrEnded), timeout);
    std::optional<Notification> out = std::move(ready_);
    ready_.reset();
    return out;
  }

  // Every notification until none arrives for `quiet`.
  std::vector<Notification> ReadUntilQuiet(absl::Duration quiet) {
    std::vector<Notification> out;
    while (auto n = Next(quiet)) out.push_back(std::move(*n));
    return out;
  }

  // Reads (and drops) notifications until the stream ends; its status, or nullopt when it is
  // still open after `timeout`.
  std::optional<grpc::Status> WaitEnd(absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        if (read_failed_) break;
      }
      if (absl::Now() >= deadline) return std::nullopt;
      Next(deadline - absl::Now());
    }
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&done_), deadline - absl::Now())) {
      return std::nullopt;
    }
    return status_;
  }

  void Cancel() { context_.TryCancel(); }

 private:
  void OnReadDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      read_pending_ = false;
      if (ok) {
        ready_ = incoming_;
      } else {
        read_failed_ = true;
      }
    }
    if (!ok) RemoveHold();  // no more reads: let the call end
  }

  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    done_ = true;
  }

  bool ReadyOrEnded() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ready_.has_value() || read_failed_;
  }

  std::unique_ptr<notifyv1::Notifier::Stub> stub_;
  grpc::ClientContext context_;
  notifyv1::WatchRequest request_;
  Notification incoming_;  // owned by gRPC while a read is pending

  absl::Mutex mu_;
  std::optional<Notification> ready_ ABSL_GUARDED_BY(mu_);
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool read_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

class PushServiceTest : public ServiceTest {
 protected:
  void TearDown() override {
    // Before grpc::Server::Shutdown, which would otherwise wait for the open streams.
    if (push_) push_->Shutdown();
    ServiceTest::TearDown();
  }

  void Start(PushServiceOptions options = {}) {
    push_ = std::make_unique<PushService>(
        *authorizer_,
        [this] {
          ++writes_;
          return sequence_.load();
        },
        options);
    StartServer({push_.get()});
  }

  // An agent's channel whose transport grants the server only a small flow-control window (no
  // BDP probing, little lookahead): once the client stops reading, the server's writes stall
  // after a few dozen notifications instead of filling megabytes of client buffers.
  std::shared_ptr<grpc::Channel> SmallWindowChannel(const spiffe::ClientIdentity& identity) {
    auto creds = spiffe::SpiffeTlsChannelCredentials(ca_->bundle()->bundle.x509_authorities(),
                                                     Id(kServerId), identity);
    EXPECT_TRUE(creds.ok()) << creds.status();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), *creds, args);
  }

  // Announces changes for `agent`, one per completed write, until a write stops completing (its
  // client is not reading and the window is full). Returns the writes started so far; 0 when the
  // stream never stalled.
  uint64_t FloodUntilStalled(std::string_view agent) {
    const EntryIndex::AffectedAgents agents = {Id(agent)};
    for (int i = 0; i < 100000; ++i) {
      uint64_t before = writes_.load();
      push_->EntriesChanged(agents);
      absl::Time deadline = absl::Now() + absl::Milliseconds(300);
      while (writes_.load() == before && absl::Now() < deadline) {
        absl::SleepFor(absl::Microseconds(50));
      }
      if (writes_.load() == before) return before;
    }
    return 0;
  }

  // open_streams() once it reaches `want` (gRPC releases streams asynchronously).
  size_t WaitForOpenStreams(size_t want) {
    absl::Time deadline = absl::Now() + kWait;
    while (push_->open_streams() != want && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return push_->open_streams();
  }

  std::atomic<uint64_t> sequence_{1};
  // Writes the service started: it reads the bundle sequence once per notification it sends.
  std::atomic<uint64_t> writes_{0};
  std::unique_ptr<PushService> push_;
};

}  // namespace tessera::server::testing
