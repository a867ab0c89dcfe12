#include "spiffe/workload_client.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "grpcpp/grpcpp.h"
#include "spiffe/workload/workload.grpc.pb.h"
#include "spiffe/workload_client_internal.h"

namespace tessera::spiffe {
namespace internal {

// The generated stub (it holds the channel), kept out of the public header so that embedders do
// not see the generated classes.
struct WorkloadStub {
  std::unique_ptr<::SpiffeWorkloadAPI::Stub> stub;
};

}  // namespace internal

namespace {

// gRPC and absl share the canonical code numbering (0..16).
absl::Status FromGrpc(const grpc::Status& status, std::string_view method) {
  std::string message = status.error_message().empty()
                            ? absl::StrCat("failed with code ", status.error_code())
                            : status.error_message();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("workload api ", AsAbsl(method), ": ", message));
}

absl::Status MalformedResponse(const absl::Status& status, std::string_view method) {
  return absl::InternalError(
      absl::StrCat("workload api ", AsAbsl(method), ": malformed response: ", status.message()));
}

// Codes the standard says to report and not retry.
bool IsTerminal(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kUnimplemented;
}

// Capped exponential backoff; each wait is shortened by a random part of up to a fifth.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(std::max(initial, std::chrono::milliseconds(1))),
        max_(std::max(max, initial_)),
        next_(initial_),
        rng_(std::random_device{}()) {}

  std::chrono::milliseconds Next() {
    std::chrono::milliseconds wait = next_;
    next_ = std::min(next_ * 2, max_);
    std::uniform_int_distribution<int64_t> cut(0, wait.count() / 5);
    return wait - std::chrono::milliseconds(cut(rng_));
  }
  void Reset() { next_ = initial_; }

 private:
  const std::chrono::milliseconds initial_;
  const std::chrono::milliseconds max_;
  std::chrono::milliseconds next_;
  std::minstd_rand rng_;
};

// Sleeps for `duration` unless `stop` is triggered first; returns whether to go on.
bool SleepUnlessStopped(std::chrono::milliseconds duration, const std::stop_token& stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_for(lock, stop, duration, [] { return false; });
  return !stop.stop_requested();
}

// What the callers of the generic helpers below provide for one streaming RPC.
template <typename Response>
using OpenStream =
    std::function<std::unique_ptr<grpc::ClientReaderInterface<Response>>(grpc::ClientContext*)>;
template <typename Response, typename Value>
using ParseResponse = std::function<absl::StatusOr<Value>(const Response&)>;

void AddHeader(grpc::ClientContext& context) {
  context.AddMetadata(std::string(kWorkloadApiHeaderKey), std::string(kWorkloadApiHeaderValue));
}

// A unary call or a one-shot fetch.
void PrepareCall(grpc::ClientContext& context, const WorkloadApiClientOptions& options) {
  AddHeader(context);
  context.set_deadline(std::chrono::system_clock::now() + options.timeout);
  context.set_wait_for_ready(options.wait_for_ready);
}

template <typename Response, typename Value>
absl::StatusOr<Value> FetchFirst(std::string_view method, const WorkloadApiClientOptions& options,
                                 const OpenStream<Response>& open,
                                 const ParseResponse<Response, Value>& parse) {
  grpc::ClientContext context;
  PrepareCall(context, options);
  std::unique_ptr<grpc::ClientReaderInterface<Response>> reader = open(&context);
  Response response;
  if (!reader->Read(&response)) {
    grpc::Status status = reader->Finish();
    if (!status.ok()) return FromGrpc(status, method);
    return absl::UnavailableError(
        absl::StrCat("workload api ", AsAbsl(method), ": stream ended without a response"));
  }
  // One message is all a fetch wants; the stream would otherwise stay open for updates.
  context.TryCancel();
  (void)reader->Finish();
  absl::StatusOr<Value> value = parse(response);
  if (!value.ok()) return MalformedResponse(value.status(), method);
  return value;
}

template <typename Response, typename Value>
absl::Status Watch(std::string_view method, const WorkloadApiClientOptions& options,
                   const OpenStream<Response>& open, const ParseResponse<Response, Value>& parse,
                   const std::function<void(const absl::StatusOr<Value>&)>& callback,
                   const std::stop_token& stop) {
  Backoff backoff(options.initial_backoff, options.max_backoff);
  while (!stop.stop_requested()) {
    bool received = false;
    grpc::Status status;
    {
      grpc::ClientContext context;
      AddHeader(context);
      // Declared after the context, so it is gone (and any cancellation on another thread has
      // finished) before the context is destroyed.
      std::stop_callback cancel(stop, [&context] { context.TryCancel(); });
      std::unique_ptr<grpc::ClientReaderInterface<Response>> reader = open(&context);
      Response response;
      while (reader->Read(&response)) {
        absl::StatusOr<Value> value = parse(response);
        if (value.ok()) {
          received = true;
          backoff.Reset();
          callback(value);
        } else {
          // The standard asks clients to discard such a message; the stream stays useful.
          callback(MalformedResponse(value.status(), method));
        }
      }
      status = reader->Finish();
    }
    if (stop.stop_requested()) break;
    // A server may end a healthy stream (e.g. on shutdown): reconnect at once.
    if (status.ok() && received) continue;
    absl::Status error =
        status.ok() ? absl::UnavailableError(absl::StrCat("workload api ", AsAbsl(method),
                                                          ": stream ended without a response"))
                    : FromGrpc(status, method);
    callback(error);
    if (IsTerminal(error.code())) return error;
    if (!SleepUnlessStopped(backoff.Next(), stop)) break;
  }
  return absl::OkStatus();
}

absl::Status CheckAudience(const std::vector<std::string>& audience) {
  if (audience.empty() ||
      std::any_of(audience.begin(), audience.end(), [](const auto& a) { return a.empty(); })) {
    return absl::InvalidArgumentError("audience must be specified");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<WorkloadApiClient>> WorkloadApiClient::Create(
    WorkloadApiClientOptions options) {
  ASSIGN_OR_RETURN(WorkloadApiAddress address, ResolveWorkloadApiAddress(options.address));
  grpc::ChannelArguments args;
  // gRPC keeps a failed channel down for its own backoff (up to two minutes by default); bound
  // it by ours so a restarted agent is found as soon as a watch retries.
  auto ms = [](std::chrono::milliseconds d) {
    return static_cast<int>(std::clamp<int64_t>(d.count(), 1, 1 << 30));
  };
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, ms(options.initial_backoff));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              ms(std::max(options.max_backoff, options.initial_backoff)));
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(address.grpc_target, grpc::InsecureChannelCredentials(), args);
  return std::unique_ptr<WorkloadApiClient>(
      new WorkloadApiClient(address.grpc_target, channel, std::move(options)));
}

std::unique_ptr<WorkloadApiClient> WorkloadApiClient::CreateForChannel(
    const std::shared_ptr<grpc::Channel>& channel, WorkloadApiClientOptions options) {
  return std::unique_ptr<WorkloadApiClient>(new WorkloadApiClient("", channel, std::move(options)));
}

WorkloadApiClient::WorkloadApiClient(std::string target,
                                     const std::shared_ptr<grpc::Channel>& channel,
                                     WorkloadApiClientOptions options)
    : target_(std::move(target)),
      options_(std::move(options)),
      stub_(new internal::WorkloadStub{.stub = ::SpiffeWorkloadAPI::NewStub(channel)}) {}

WorkloadApiClient::~WorkloadApiClient() = default;

absl::StatusOr<X509Context> WorkloadApiClient::FetchX509Context() const {
  return FetchFirst<::X509SVIDResponse, X509Context>(
      "FetchX509SVID", options_,
      [this](grpc::ClientContext* c) { return stub_->stub->FetchX509SVID(c, {}); },
      internal::X509ContextFromResponse);
}

absl::Status WorkloadApiClient::WatchX509Context(const X509ContextCallback& callback,
                                                 const std::stop_token& stop) const {
  return Watch<::X509SVIDResponse, X509Context>(
      "FetchX509SVID", options_,
      [this](grpc::ClientContext* c) { return stub_->stub->FetchX509SVID(c, {}); },
      internal::X509ContextFromResponse, callback, stop);
}

absl::StatusOr<BundleSet> WorkloadApiClient::FetchX509Bundles() const {
  return FetchFirst<::X509BundlesResponse, BundleSet>(
      "FetchX509Bundles", options_,
      [this](grpc::ClientContext* c) { return stub_->stub->FetchX509Bundles(c, {}); },
      internal::X509BundlesFromResponse);
}

absl::Status WorkloadApiClient::WatchX509Bundles(const BundlesCallback& callback,
                                                 const std::stop_token& stop) const {
  return Watch<::X509BundlesResponse, BundleSet>(
      "FetchX509Bundles", options_,
      [this](grpc::ClientContext* c) { return stub_->stub->FetchX509Bundles(c, {}); },
      internal::X509BundlesFromResponse, callback, stop);
}

absl::StatusOr<BundleSet> WorkloadApiClient::FetchJwtBundles() const {
  return FetchFirst<::JWTBundlesResponse, BundleSet>(
      "FetchJWTBundles", options_,
      [this](grpc::ClientContext* c) { return stub_->stub->FetchJWTBundles(c, {}); },
      internal::JwtBundlesFromResponse);
}

absl::Status WorkloadApiClient::WatchJwtBundles(const BundlesCallback& callback,
                                                const std::stop_token& stop) const {
  return Watch<::JWTBundlesResponse, BundleSet>(
      "FetchJWTBundles", options_,
      [this](grpc::ClientContext* c) { return stub_->stub->FetchJWTBundles(c, {}); },
      internal::JwtBundlesFromResponse, callback, stop);
}

absl::StatusOr<std::vector<WorkloadJwtSvid>> WorkloadApiClient::FetchJwtSvids(
    const std::vector<std::string>& audience, const std::optional<SpiffeId>& spiffe_id) const {
  constexpr std::string_view kMethod = "FetchJWTSVID";
  RETURN_IF_ERROR(
      Annotate(CheckAudience(audience), absl::StrCat("workload api ", AsAbsl(kMethod))));
  ::JWTSVIDRequest request;
  for (const std::string& a : audience) request.add_audience(a);
  if (spiffe_id.has_value()) request.set_spiffe_id(spiffe_id->str());

  grpc::ClientContext context;
  PrepareCall(context, options_);
  ::JWTSVIDResponse response;
  grpc::Status status = stub_->stub->FetchJWTSVID(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, kMethod);
  absl::StatusOr<std::vector<WorkloadJwtSvid>> svids = internal::JwtSvidsFromResponse(response);
  if (!svids.ok()) return MalformedResponse(svids.status(), kMethod);
  if (spiffe_id.has_value()) {
    for (const WorkloadJwtSvid& svid : *svids) {
      if (svid.svid.subject != *spiffe_id) {
        return MalformedResponse(
            absl::InvalidArgumentError(
                absl::StrCat("asked for ", spiffe_id->str(), ", got ", svid.svid.subject.str())),
            kMethod);
      }
    }
  }
  return svids;
}

absl::StatusOr<WorkloadJwtSvid> WorkloadApiClient::FetchJwtSvid(
    const std::vector<std::string>& audience, const std::optional<SpiffeId>& spiffe_id) const {
  ASSIGN_OR_RETURN(std::vector<WorkloadJwtSvid> svids, FetchJwtSvids(audience, spiffe_id));
  return std::move(svids.front());
}

absl::StatusOr<ValidatedJwtSvid> WorkloadApiClient::ValidateJwtSvid(
    std::string_view token, std::string_view audience) const {
  constexpr std::string_view kMethod = "ValidateJWTSVID";
  if (audience.empty()) {
    return absl::InvalidArgumentError("workload api ValidateJWTSVID: audience must be specified");
  }
  if (token.empty()) {
    return absl::InvalidArgumentError("workload api ValidateJWTSVID: svid must be specified");
  }
  ::ValidateJWTSVIDRequest request;
  request.set_audience(std::string(audience));
  request.set_svid(std::string(token));

  grpc::ClientContext context;
  PrepareCall(context, options_);
  ::ValidateJWTSVIDResponse response;
  grpc::Status status = stub_->stub->ValidateJWTSVID(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, kMethod);
  absl::StatusOr<ValidatedJwtSvid> validated = internal::ValidatedJwtSvidFromResponse(response);
  if (!validated.ok()) return MalformedResponse(validated.status(), kMethod);
  return validated;
}

}  // namespace tessera::spiffe
