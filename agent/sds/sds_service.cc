#include "agent/sds/sds_service.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/sds/sds_protocol.h"
#include "agent/workload/subscribed_stream.h"
#include "common/strings.h"
#include "spdlog/spdlog.h"

namespace tessera::agent {
namespace {

namespace discovery = envoy::service::discovery::v3;
using workload_internal::ShuttingDown;
using workload_internal::StreamRegistry;
using workload_internal::SubscribedStream;
using workload_internal::ToGrpc;
using workload_internal::UnaryCall;

grpc::Status NotSynced() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "agent is not ready: it has not synced with the server yet");
}

// One SDS stream (see subscribed_stream.h for the token). gRPC owns it from the handler until
// OnDone, where it deletes itself after leaving the cache and the registry. A read is started
// only after the previous request was handled, so at most one request waits in
// pending_request_; requests that arrive before the attestation answered wait for it.
template <typename Protocol, typename Request>
class SdsStream final : public grpc::ServerBidiReactor<Request, typename Protocol::Response>,
                        public SubscribedStream {
 public:
  using Response = typename Protocol::Response;

  SdsStream(const char* method, Cache& cache, StreamRegistry& registry, SdsSettings defaults)
      : SubscribedStream(method, cache, registry), defaults_(std::move(defaults)) {}

  // Called once by the handler, after the registry accepted the stream.
  void Start(WorkloadCallers& callers, grpc::CallbackServerContext* context) {
    this->StartRead(&in_);
    StartAttestation(callers, context);
  }

  void OnReadDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        // The proxy closed its side (or the call is ending): nothing more will be asked.
        if (!finish_status_.has_value()) finish_status_ = grpc::Status::OK;
      } else {
        pending_request_ = std::move(in_);
      }
      if (!TakeToken()) return;
    }
    Drain();
  }

  void OnWriteDone(bool ok) override { WriteDone(ok); }
  void OnCancel() override { RequestFinish(grpc::Status::CANCELLED); }
  void OnDone() override {
    Leave();
    delete this;
  }

 private:
  void OnCaller() override { protocol_.emplace(defaults_, absl::StrCat("pid ", caller_.pid)); }

  void Drain() override {
    for (;;) {
      std::optional<Request> request;
      std::shared_ptr<const CacheSnapshot> snapshot;
      std::optional<grpc::Status> finish;
      {
        absl::MutexLock lock(&mu_);
        if (finish_status_.has_value()) {
          finish = *finish_status_;
        } else if (!pending_request_.has_value() && pending_snapshot_ == nullptr) {
          busy_ = false;
          return;
        } else {
          request = std::move(pending_request_);
          pending_request_.reset();
          snapshot = std::move(pending_snapshot_);
          if (snapshot != nullptr) processed_generation_ = snapshot->generation();
        }
      }
      if (finish.has_value()) {
        if (!finish->ok()) {
          spdlog::log(
              finish->error_code() == grpc::StatusCode::INVALID_ARGUMENT ? spdlog::level::warn
                                                                         : spdlog::level::debug,
              "sds: {}: stream of pid {} ends: {}", method_, caller_.pid, finish->error_message());
        }
        this->Finish(*finish);  // OnDone may follow at once on another thread
        return;
      }
      // The first snapshot comes with the attestation, before any request is handled.
      if (snapshot != nullptr) latest_ = std::move(snapshot);
      typename Protocol::Step step = std::optional<Response>();
      if (request.has_value()) {
        step = protocol_->OnRequest(*request, *latest_, caller_.selectors);
      }
      if (step.ok() && !step->has_value() && latest_->generation() > composed_generation_) {
        step = protocol_->OnSnapshot(*latest_, caller_.selectors);
      }
      composed_generation_ = latest_->generation();
      if (!step.ok()) {
        absl::MutexLock lock(&mu_);
        if (!finish_status_.has_value()) finish_status_ = ToGrpc(step.status());
        continue;
      }
      if (request.has_value()) this->StartRead(&in_);
      if (step->has_value()) {
        out_ = std::move(**step);
        this->StartWrite(&out_);
        return;
      }
    }
  }

  // Immutable after construction.
  const SdsSettings defaults_;

  // Token (protocol_ is set once by OnCaller).
  std::optional<Protocol> protocol_;
  std::shared_ptr<const CacheSnapshot> latest_;
  uint64_t composed_generation_ = 0;
  // Written by gRPC while a read is in flight; moved out in OnReadDone.
  Request in_;
  // Owned by gRPC while a write is in flight.
  Response out_;

  std::optional<Request> pending_request_ ABSL_GUARDED_BY(mu_);
};

// A stream refused before it started: ends with `status` at once.
template <typename Request, typename Response>
class RefusedBidi final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RefusedBidi(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

template <typename Protocol, typename Request>
grpc::ServerBidiReactor<Request, typename Protocol::Response>* OpenStream(
    const char* method, grpc::CallbackServerContext* context, const SdsServiceOptions& options,
    StreamRegistry& registry) {
  using Response = typename Protocol::Response;
  if (!options.cache->HasSynced()) return new RefusedBidi<Request, Response>(NotSynced());
  auto* stream =
      new SdsStream<Protocol, Request>(method, *options.cache, registry, options.defaults);
  if (!registry.Add(stream)) {
    delete stream;
    return new RefusedBidi<Request, Response>(ShuttingDown());
  }
  stream->Start(*options.callers, context);
  return stream;
}

// FetchSecrets once the caller is known.
void FetchFor(const std::shared_ptr<UnaryCall::State>& call, const AttestedCaller& caller,
              const discovery::DiscoveryRequest& request, const SdsServiceOptions& options,
              discovery::DiscoveryResponse* response) {
  SdsPeer peer(options.defaults, absl::StrCat("pid ", caller.pid));
  bool ignored;
  absl::Status status =
      peer.Update(request.type_url(), request.has_node() ? &request.node() : nullptr, &ignored);
  // Sorted, as StreamSecrets sends them.
  std::vector<std::string> names(request.resource_names().begin(), request.resource_names().end());
  std::sort(names.begin(), names.end());
  absl::StatusOr<SecretSet> set;
  if (status.ok()) {
    set = BuildSecrets(*options.cache->Current(), caller.selectors, names, peer.settings());
    status = set.status();
  }
  if (status.ok() && !set->unknown.empty()) status = UnknownNamesError(set->unknown);
  if (status.ok() && set->waiting) {
    status = absl::UnavailableError("an X509-SVID of this workload is being minted: retry shortly");
  }
  if (!status.ok()) {
    spdlog::warn("sds: FetchSecrets of {}: {}", peer.Describe(), AsStd(status.message()));
    UnaryCall::FinishOnce(call, ToGrpc(status));
    return;
  }
  UnaryCall::FinishOnce(call, grpc::Status::OK, [&] {
    response->set_type_url(std::string(kSecretTypeUrl));
    for (const NamedSecret& secret : set->secrets) {
      response->add_resources()->PackFrom(secret.secret);
    }
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<SdsService>> SdsService::Create(SdsServiceOptions options) {
  if (options.cache == nullptr || options.callers == nullptr) {
    return absl::InvalidArgumentError("sds: cache and callers are required");
  }
  if (absl::Status status = ValidateSdsSettings(options.defaults); !status.ok()) return status;
  return std::unique_ptr<SdsService>(new SdsService(std::move(options)));
}

SocketServiceFactory SdsService::Factory(Cache* cache, SdsSettings defaults) {
  return [cache, defaults = std::move(defaults)](
             WorkloadCallers& callers) -> absl::StatusOr<std::unique_ptr<SocketService>> {
    absl::StatusOr<std::unique_ptr<SdsService>> service =
        Create({.cache = cache, .callers = &callers, .defaults = defaults});
    if (!service.ok()) return service.status();
    return std::unique_ptr<SocketService>(std::move(*service));
  };
}

SdsService::~SdsService() {
  Shutdown();
  streams_.WaitUntilEmpty();
}

void SdsService::Shutdown() { streams_.Shutdown(); }

grpc::ServerBidiReactor<discovery::DiscoveryRequest, discovery::DiscoveryResponse>*
SdsService::StreamSecrets(grpc::CallbackServerContext* context) {
  return OpenStream<SotwProtocol, discovery::DiscoveryRequest>("StreamSecrets", context, options_,
                                                               streams_);
}

grpc::ServerBidiReactor<discovery::DeltaDiscoveryRequest, discovery::DeltaDiscoveryResponse>*
SdsService::DeltaSecrets(grpc::CallbackServerContext* context) {
  return OpenStream<DeltaProtocol, discovery::DeltaDiscoveryRequest>("DeltaSecrets", context,
                                                                     options_, streams_);
}

grpc::ServerUnaryReactor* SdsService::FetchSecrets(grpc::CallbackServerContext* context,
                                                   const discovery::DiscoveryRequest* request,
                                                   discovery::DiscoveryResponse* response) {
  if (!options_.cache->HasSynced()) return workload_internal::RefusedUnary(context, NotSynced());
  auto* reactor = new UnaryCall();
  std::shared_ptr<UnaryCall::State> call = reactor->state();
  std::stop_source stop = options_.callers->Attest(
      context, [this, call, request = *request, response](absl::StatusOr<AttestedCaller> caller) {
        if (!caller.ok()) {
          UnaryCall::FinishOnce(call, ToGrpc(caller.status()));
          return;
        }
        FetchFor(call, *caller, request, options_, response);
      });
  absl::MutexLock lock(&call->mu);
  call->attestation = stop;
  return reactor;
}

}  // namespace tessera::agent
