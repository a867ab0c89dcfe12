// One FetchX509SVID stream of tessera-bench, read on its own thread, with every event timed: each
// response (the SPIFFE IDs it carries, the bundle bytes) and how the stream ended. The
// propagation scenario waits on it for "an SVID for X arrived" or "the stream ended with
// PermissionDenied".
//
// Thread-safety: the reader thread appends events; every public method is safe from any thread.
// The destructor cancels the stream and joins the thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace tessera::bench {

struct StreamEvent {
  std::chrono::steady_clock::time_point at;
  // A response: the SPIFFE IDs of its SVIDs in order. Empty for the end of the stream.
  std::vector<std::string> spiffe_ids;
  // Set for the end of the stream: how it ended.
  std::optional<absl::Status> ended;
};

class StreamWatch {
 public:
  // Opens FetchX509SVID on `target` ("unix:/path") over a new connection.
  explicit StreamWatch(const std::string& target);
  ~StreamWatch();
  StreamWatch(const StreamWatch&) = delete;
  StreamWatch& operator=(const StreamWatch&) = delete;

  // Number of events so far.
  size_t size() const;
  // Waits for the first event at index >= `from` that satisfies `match` and returns it with its
  // index; DeadlineExceeded after `timeout` (the events seen are named), Cancelled when
  // interrupted.
  absl::StatusOr<std::pair<size_t, StreamEvent>> WaitFor(
      size_t from, const std::function<bool(const StreamEvent&)>& match,
      std::chrono::milliseconds timeout) const;

 private:
  void Read(std::string target);

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::vector<StreamEvent> events_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::thread reader_;
};

// Whether `event` is a response carrying `spiffe_id`.
bool Carries(const StreamEvent& event, const std::string& spiffe_id);

// Opens streams on `target` until one's first event satisfies `match` (until the agent has
// published an identity, a new stream is refused with "no identity issued" or holds an older
// state); returns it and the index of its next event. DeadlineExceeded after `timeout`.
absl::StatusOr<std::pair<std::unique_ptr<StreamWatch>, size_t>> OpenStreamWhen(
    const std::string& target, const std::function<bool(const StreamEvent&)>& match,
    std::chrono::milliseconds timeout);

}  // namespace tessera::bench
