// The streaming RPCs of WorkloadApiService: FetchX509SVID, FetchX509Bundles, FetchJWTBundles.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/workload/subscribed_stream.h"
#include "agent/workload/workload_service.h"
#include "common/strings.h"
#include "google/protobuf/util/message_differencer.h"
#include "spdlog/spdlog.h"
#include "spiffe/bundle_json.h"
#include "spiffe/certificate.h"

namespace tessera::agent {
namespace {

using workload_internal::NoIdentity;
using workload_internal::ShuttingDown;
using workload_internal::StreamRegistry;
using workload_internal::SubscribedStream;
using workload_internal::ToGrpc;

// What one snapshot means for one stream.
struct Step {
  enum class Kind {
    kSend,    // the composed message (sent unless equal to the last one)
    kSkip,    // nothing to send for this snapshot (e.g. the caller's SVIDs are being minted)
    kFinish,  // end the stream with `status`
  };
  Kind kind = Kind::kSend;
  grpc::Status status;

  static Step Send() { return {}; }
  static Step Skip() { return {.kind = Kind::kSkip}; }
  static Step Finish(grpc::Status status) {
    return {.kind = Kind::kFinish, .status = std::move(status)};
  }
};

template <typename Response>
using Composer =
    std::function<Step(const CacheSnapshot&, const AttestedCaller&, Response* response)>;

// One open stream (see subscribed_stream.h for the token). gRPC owns it from the handler until
// OnDone, where it deletes itself after leaving the cache and the registry. The token passes to
// each write until OnWriteDone.
template <typename Response>
class SnapshotStream final : public grpc::ServerWriteReactor<Response>, public SubscribedStream {
 public:
  SnapshotStream(const char* method, Cache& cache, StreamRegistry& registry,
                 Composer<Response> composer)
      : SubscribedStream(method, cache, registry), composer_(std::move(composer)) {}

  // Called once by the handler, after the registry accepted the stream.
  void Start(WorkloadCallers& callers, grpc::CallbackServerContext* context) {
    StartAttestation(callers, context);
  }

  void OnWriteDone(bool ok) override { WriteDone(ok); }
  void OnCancel() override { RequestFinish(grpc::Status::CANCELLED); }
  void OnDone() override {
    Leave();
    delete this;
  }

 private:
  void Drain() override {
    for (;;) {
      std::shared_ptr<const CacheSnapshot> snapshot;
      std::optional<grpc::Status> finish;
      {
        absl::MutexLock lock(&mu_);
        if (finish_status_.has_value()) {
          finish = *finish_status_;
        } else if (pending_snapshot_ == nullptr) {
          busy_ = false;
          return;
        } else {
          snapshot = std::move(pending_snapshot_);
          processed_generation_ = snapshot->generation();
        }
      }
      if (finish.has_value()) {
        spdlog::debug("workload api: {}: stream of pid {} ends: {}", method_, caller_.pid,
                      finish->error_message());
        // OnDone (and the deletion of this object) may follow at once on another thread.
        this->Finish(*finish);
        return;
      }
      Response candidate;
      Step step = composer_(*snapshot, caller_, &candidate);
      if (step.kind == Step::Kind::kSkip) continue;
      if (step.kind == Step::Kind::kFinish) {
        absl::MutexLock lock(&mu_);
        if (!finish_status_.has_value()) finish_status_ = step.status;
        continue;
      }
      if (sent_ && google::protobuf::util::MessageDifferencer::Equals(candidate, out_)) continue;
      out_ = std::move(candidate);
      sent_ = true;
      this->StartWrite(&out_);
      return;
    }
  }

  // Immutable after construction.
  const Composer<Response> composer_;

  // The last message written; owned by the token holder, by gRPC while a write is in flight.
  Response out_;
  bool sent_ = false;
};

Step NoIdentityStep(std::string_view method, const AttestedCaller& caller) {
  spdlog::info("workload api: {}: no identity issued to pid {} (uid {}, selectors {})", method,
               caller.pid, caller.uid, caller.selectors.ToString());
  return Step::Finish(NoIdentity());
}

Step SerializationFailed(std::string_view method, const absl::Status& status) {
  spdlog::error("workload api: {}: could not serialize response: {}", method,
                AsStd(status.message()));
  return Step::Finish(
      grpc::Status(grpc::StatusCode::UNAVAILABLE,
                   absl::StrCat("could not serialize response: ", status.message())));
}

Step ComposeX509Svid(const CacheSnapshot& snapshot, const AttestedCaller& caller,
                     ::X509SVIDResponse* response) {
  constexpr std::string_view kMethod = "FetchX509SVID";
  std::vector<CachedIdentity> matched = snapshot.Match(caller.selectors);
  if (matched.empty()) return NoIdentityStep(kMethod, caller);
  std::vector<CachedIdentity> minted;
  for (CachedIdentity& identity : matched) {
    if (identity.svid != nullptr) minted.push_back(std::move(identity));
  }
  const spiffe::Bundle* own = snapshot.own_bundle();
  if (minted.empty() && !snapshot.server_reachable()) {
    // Its SVIDs expired (or were never minted) and the server is away: waiting could last
    // indefinitely, so say so; the client retries with backoff.
    return Step::Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                     "no X509-SVID available: the agent cannot reach the server"));
  }
  if (minted.empty() || own == nullptr) {
    spdlog::debug("workload api: {}: pid {} waits for its X509-SVIDs", kMethod, caller.pid);
    return Step::Skip();
  }
  minted = workload_internal::UniqueHints(std::move(minted));
  const std::string& bundle = snapshot.own_x509_authorities_der();
  for (const CachedIdentity& identity : minted) {
    std::shared_ptr<const EncodedX509Svid> encoded = identity.encoded;
    if (encoded == nullptr) {
      absl::StatusOr<std::shared_ptr<const EncodedX509Svid>> made =
          EncodedX509Svid::Encode(*identity.svid);
      if (!made.ok()) return SerializationFailed(kMethod, made.status());
      encoded = *std::move(made);
    }
    ::X509SVID* svid = response->add_svids();
    svid->set_spiffe_id(identity.entry->spiffe_id.str());
    svid->set_x509_svid(encoded->chain_der);
    svid->set_x509_svid_key(encoded->key_pkcs8_der);
    svid->set_bundle(bundle);
    svid->set_hint(identity.entry->hint);
  }
  for (const auto& [td, federated] : snapshot.FederatedBundlesFor(minted)) {
    (*response->mutable_federated_bundles())[td.IdString()] =
        spiffe::X509AuthoritiesToDer(federated);
  }
  return Step::Send();
}

Step ComposeX509Bundles(const CacheSnapshot& snapshot, const AttestedCaller& caller,
                        ::X509BundlesResponse* response) {
  std::vector<CachedIdentity> matched = snapshot.Match(caller.selectors);
  if (matched.empty()) return NoIdentityStep("FetchX509Bundles", caller);
  const spiffe::Bundle* own = snapshot.own_bundle();
  if (own == nullptr) return Step::Skip();
  auto& bundles = *response->mutable_bundles();
  bundles[own->trust_domain().IdString()] = snapshot.own_x509_authorities_der();
  for (const auto& [td, federated] : snapshot.FederatedBundlesFor(matched)) {
    bundles[td.IdString()] = spiffe::X509AuthoritiesToDer(federated);
  }
  return Step::Send();
}

Step ComposeJwtBundles(const CacheSnapshot& snapshot, const AttestedCaller& caller,
                       ::JWTBundlesResponse* response) {
  constexpr std::string_view kMethod = "FetchJWTBundles";
  std::vector<CachedIdentity> matched = snapshot.Match(caller.selectors);
  if (matched.empty()) return NoIdentityStep(kMethod, caller);
  const spiffe::Bundle* own = snapshot.own_bundle();
  if (own == nullptr) return Step::Skip();
  auto& bundles = *response->mutable_bundles();
  absl::StatusOr<std::string> jwks = spiffe::JwtBundleToJwks(*own);
  if (!jwks.ok()) return SerializationFailed(kMethod, jwks.status());
  bundles[own->trust_domain().IdString()] = std::move(*jwks);
  for (const auto& [td, federated] : snapshot.FederatedBundlesFor(matched)) {
    jwks = spiffe::JwtBundleToJwks(federated);
    if (!jwks.ok()) return SerializationFailed(kMethod, jwks.status());
    bundles[td.IdString()] = std::move(*jwks);
  }
  return Step::Send();
}

template <typename Response>
grpc::ServerWriteReactor<Response>* OpenStream(const char* method,
                                               grpc::CallbackServerContext* context,
                                               const WorkloadApiOptions& options,
                                               StreamRegistry& registry,
                                               Composer<Response> composer) {
  if (grpc::Status status = workload_internal::Admit(*context, *options.cache); !status.ok()) {
    return new workload_internal::RefusedStream<Response>(status);
  }
  auto* stream =
      new SnapshotStream<Response>(method, *options.cache, registry, std::move(composer));
  if (!registry.Add(stream)) {
    delete stream;
    return new workload_internal::RefusedStream<Response>(ShuttingDown());
  }
  // Anything the stream does before it is returned is kept by gRPC until it is bound.
  stream->Start(*options.callers, context);
  return stream;
}

}  // namespace

grpc::ServerWriteReactor<::X509SVIDResponse>* WorkloadApiService::FetchX509SVID(
    grpc::CallbackServerContext* context, const ::X509SVIDRequest* /*request*/) {
  return OpenStream<::X509SVIDResponse>("FetchX509SVID", context, options_, streams_,
                                        ComposeX509Svid);
}

grpc::ServerWriteReactor<::X509BundlesResponse>* WorkloadApiService::FetchX509Bundles(
    grpc::CallbackServerContext* context, const ::X509BundlesRequest* /*request*/) {
  return OpenStream<::X509BundlesResponse>("FetchX509Bundles", context, options_, streams_,
                                           ComposeX509Bundles);
}

grpc::ServerWriteReactor<::JWTBundlesResponse>* WorkloadApiService::FetchJWTBundles(
    grpc::CallbackServerContext* context, const ::JWTBundlesRequest* /*request*/) {
  return OpenStream<::JWTBundlesResponse>("FetchJWTBundles", context, options_, streams_,
                                          ComposeJwtBundles);
}

}  // namespace tessera::agent
