#include "agent/workload/workload_service.h"

#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "spdlog/spdlog.h"
#include "spiffe/workload_client.h"

namespace tessera::agent {
namespace workload_internal {

grpc::Status CheckSecurityHeader(const grpc::CallbackServerContext& context) {
  const std::string_view key = spiffe::kWorkloadApiHeaderKey;
  auto [begin, end] =
      context.client_metadata().equal_range(grpc::string_ref(key.data(), key.size()));
  int values = 0;
  bool ok = true;
  for (auto it = begin; it != end; ++it) {
    ++values;
    ok = ok &&
         std::string_view(it->second.data(), it->second.size()) == spiffe::kWorkloadApiHeaderValue;
  }
  if (values != 1 || !ok) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "security header missing from request");
  }
  return grpc::Status::OK;
}

grpc::Status Admit(const grpc::CallbackServerContext& context, const Cache& cache) {
  if (grpc::Status status = CheckSecurityHeader(context); !status.ok()) return status;
  if (!cache.HasSynced()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "agent is not ready: it has not synced with the server yet");
  }
  return grpc::Status::OK;
}

std::vector<CachedIdentity> UniqueHints(std::vector<CachedIdentity> identities) {
  absl::flat_hash_set<std::string> hints;
  std::vector<CachedIdentity> unique;
  unique.reserve(identities.size());
  for (CachedIdentity& identity : identities) {
    const std::string& hint = identity.entry->hint;
    if (!hint.empty() && !hints.insert(hint).second) {
      spdlog::warn("workload api: ignoring entry {} with duplicate hint \"{}\"", identity.entry->id,
                   hint);
      continue;
    }
    unique.push_back(std::move(identity));
  }
  return unique;
}

bool StreamRegistry::Add(StreamBase* stream) {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return false;
  streams_.insert(stream);
  return true;
}

void StreamRegistry::Remove(StreamBase* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

void StreamRegistry::Shutdown() {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return;
  shutting_down_ = true;
  // Under the lock: a stream unregisters (in OnDone) before it is deleted.
  for (StreamBase* stream : streams_) stream->RequestShutdown();
}

void StreamRegistry::WaitUntilEmpty() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &StreamRegistry::Empty));
}

size_t StreamRegistry::size() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

}  // namespace workload_internal

using workload_internal::CheckSecurityHeader;
using workload_internal::RefusedStream;

WorkloadApiService::WorkloadApiService(WorkloadApiOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : RealClock::Get()) {}

WorkloadApiService::~WorkloadApiService() {
  Shutdown();
  streams_.WaitUntilEmpty();
}

void WorkloadApiService::Shutdown() { streams_.Shutdown(); }

grpc::ServerWriteReactor<::WITSVIDResponse>* WorkloadApiService::FetchWITSVID(
    grpc::CallbackServerContext* context, const ::WITSVIDRequest* /*request*/) {
  grpc::Status status = CheckSecurityHeader(*context);
  if (status.ok()) {
    status = grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "WIT-SVIDs are not supported");
  }
  return new RefusedStream<::WITSVIDResponse>(status);
}

grpc::ServerWriteReactor<::WITBundlesResponse>* WorkloadApiService::FetchWITBundles(
    grpc::CallbackServerContext* context, const ::WITBundlesRequest* /*request*/) {
  grpc::Status status = CheckSecurityHeader(*context);
  if (status.ok()) {
    status = grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "WIT-SVIDs are not supported");
  }
  return new RefusedStream<::WITBundlesResponse>(status);
}

}  // namespace tessera::agent
