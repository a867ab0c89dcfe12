// A timed FetchX509SVID stream for tessera-bench.
#include "bench/tool/stream_watch.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/tool/scenario.h"
#include "grpcpp/grpcpp.h"
#include "spiffe/workload/workload.grpc.pb.h"

namespace tessera::bench {

StreamWatch::StreamWatch(const std::string& target)
    : ctx_(std::make_unique<grpc::ClientContext>()) {
  ctx_->AddMetadata("workload.spiffe.io", "true");
  reader_ = std::thread([this, target] { Read(target); });
}

StreamWatch::~StreamWatch() {
  ctx_->TryCancel();
  reader_.join();
}

void StreamWatch::Read(std::string target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = SpiffeWorkloadAPI::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  std::unique_ptr<grpc::ClientReader<X509SVIDResponse>> reader =
      stub->FetchX509SVID(ctx_.get(), X509SVIDRequest());
  X509SVIDResponse response;
  while (reader->Read(&response)) {
    StreamEvent event{.at = std::chrono::steady_clock::now()};
    for (const X509SVID& svid : response.svids()) event.spiffe_ids.push_back(svid.spiffe_id());
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
    changed_.notify_all();
  }
  const grpc::Status status = reader->Finish();
  StreamEvent end{.at = std::chrono::steady_clock::now(),
                  .ended = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                                        status.error_message())};
  std::lock_guard lock(mu_);
  events_.push_back(std::move(end));
  changed_.notify_all();
}

size_t StreamWatch::size() const {
  std::lock_guard lock(mu_);
  return events_.size();
}

absl::StatusOr<std::pair<size_t, StreamEvent>> StreamWatch::WaitFor(
    size_t from, const std::function<bool(const StreamEvent&)>& match,
    std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  for (size_t i = from;; ++i) {
    while (i >= events_.size()) {
      if (Interrupted()) return absl::CancelledError("interrupted");
      if (std::chrono::steady_clock::now() >= deadline) {
        std::vector<std::string> seen;
        for (size_t k = from; k < events_.size(); ++k) {
          seen.push_back(events_[k].ended ? events_[k].ended->ToString()
                                          : absl::StrJoin(events_[k].spiffe_ids, ","));
        }
        return absl::DeadlineExceededError(
            absl::StrCat("stream: not the awaited event; seen: [", absl::StrJoin(seen, "; "), "]"));
      }
      // Wakes up now and then to notice an interruption.
      changed_.wait_for(lock, std::chrono::milliseconds(50));
    }
    if (match(events_[i])) return std::make_pair(i, events_[i]);
  }
}

bool Carries(const StreamEvent& event, const std::string& spiffe_id) {
  return std::find(event.spiffe_ids.begin(), event.spiffe_ids.end(), spiffe_id) !=
         event.spiffe_ids.end();
}

absl::StatusOr<std::pair<std::unique_ptr<StreamWatch>, size_t>> OpenStreamWhen(
    const std::string& target, const std::function<bool(const StreamEvent&)>& match,
    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (Interrupted()) return absl::CancelledError("interrupted");
    auto stream = std::make_unique<StreamWatch>(target);
    auto first = stream->WaitFor(
        0, [](const StreamEvent&) { return true; }, timeout);
    if (!first.ok()) return first.status();
    if (match(first->second)) return std::make_pair(std::move(stream), first->first + 1);
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError("no stream with the awaited first response");
    }
    SleepUnlessInterrupted(std::chrono::milliseconds(5));
  }
}

}  // namespace tessera::bench
