// ServerClient: channels and failover, cancellation, and the unary RPCs (bundles, X509-SVIDs,
// JWT-SVIDs). SyncAuthorizedEntries is in server_client_sync.cc, Watch in server_client_watch.cc.
#include "agent/server_client.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "agent/server_client_internal.h"
#include "common/status.h"
#include "common/strings.h"
#include "grpcpp/grpcpp.h"
#include "spdlog/spdlog.h"
#include "spiffe/grpc_tls.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"
#include "spire/api/server/svid/v1/svid.grpc.pb.h"

namespace tessera::agent {
namespace {

namespace bundlev1 = ::spire::api::server::bundle::v1;
namespace svidv1 = ::spire::api::server::svid::v1;
namespace types = ::spire::api::types;
using server_client_internal::FromGrpc;
using server_client_internal::Protocol;

constexpr std::string_view kBatchNewX509Svid = "batch new X509-SVID";
constexpr std::string_view kNewJwtSvid = "new JWT-SVID";

std::shared_ptr<const Clock> ClockOrReal(std::shared_ptr<const Clock> clock) {
  if (clock != nullptr) return clock;
  // RealClock::Get() is a process-wide static: share it without owning it.
  return std::shared_ptr<const Clock>(&RealClock::Get(), [](const Clock*) {});
}

int ClampMs(std::chrono::milliseconds ms) {
  return static_cast<int>(std::clamp<int64_t>(ms.count(), 1, std::numeric_limits<int>::max()));
}

// A google.rpc.Code value from the wire; anything out of range is Unknown.
absl::StatusCode CodeFromWire(int32_t code) {
  if (code < 0 || code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) {
    return absl::StatusCode::kUnknown;
  }
  return static_cast<absl::StatusCode>(code);
}

absl::StatusOr<std::vector<spiffe::Certificate>> ChainFromProto(
    const google::protobuf::RepeatedPtrField<std::string>& ders, std::string_view what) {
  if (ders.empty()) return Protocol(what, "empty certificate chain");
  std::vector<spiffe::Certificate> chain;
  chain.reserve(static_cast<size_t>(ders.size()));
  for (const std::string& der : ders) {
    absl::StatusOr<spiffe::Certificate> cert = spiffe::Certificate::FromDer(der);
    if (!cert.ok()) {
      return Protocol(what, absl::StrCat("bad certificate: ", cert.status().message()));
    }
    chain.push_back(*std::move(cert));
  }
  return chain;
}

// types.Bundle as the agent accepts it (SPIRE-API-FACTS §11): the trust domain must be the one
// asked for, every X.509 authority must parse, and a JWT authority without a key ID discards the
// whole bundle, as spire-agent does.
absl::StatusOr<spiffe::Bundle> BundleFromProto(const types::Bundle& in,
                                               const spiffe::TrustDomain& expected,
                                               std::string_view what) {
  absl::StatusOr<spiffe::TrustDomain> td = spiffe::TrustDomain::FromIdOrName(in.trust_domain());
  if (!td.ok()) return Protocol(what, absl::StrCat("bad trust domain: ", td.status().message()));
  if (*td != expected) {
    return Protocol(what, absl::StrCat("server sent the bundle of \"", td->name(),
                                       "\", expected \"", expected.name(), "\""));
  }
  spiffe::Bundle bundle(*td);
  for (const types::X509Certificate& authority : in.x509_authorities()) {
    absl::StatusOr<std::vector<spiffe::Certificate>> certs =
        spiffe::ParseDerChain(authority.asn1());
    if (!certs.ok()) {
      return Protocol(what, absl::StrCat("bad X.509 authority: ", certs.status().message()));
    }
    for (const spiffe::Certificate& cert : *certs) bundle.AddX509Authority(cert);
  }
  for (const types::JWTKey& key : in.jwt_authorities()) {
    if (key.key_id().empty()) return Protocol(what, "JWT authority without a key ID");
    absl::StatusOr<spiffe::PublicKey> public_key = spiffe::PublicKey::FromDer(key.public_key());
    if (!public_key.ok()) {
      return Protocol(what, absl::StrCat("bad JWT authority \"", key.key_id(),
                                         "\": ", public_key.status().message()));
    }
    absl::Status added = bundle.AddJwtAuthority(key.key_id(), *std::move(public_key));
    if (!added.ok()) return Protocol(what, AsStd(added.message()));
  }
  if (in.refresh_hint() > 0) bundle.set_refresh_hint(std::chrono::seconds(in.refresh_hint()));
  bundle.set_sequence_number(in.sequence_number());
  return bundle;
}

absl::StatusOr<IssuedJwtSvid> JwtFromProto(const types::JWTSVID& in) {
  // spire-agent's checks on the reply (SPIRE-API-FACTS §7).
  if (in.issued_at() == 0) return Protocol(kNewJwtSvid, "missing issued_at");
  if (in.expires_at() == 0) return Protocol(kNewJwtSvid, "missing expires_at");
  if (in.issued_at() > in.expires_at()) {
    return Protocol(kNewJwtSvid, "issued_at is after expires_at");
  }
  absl::StatusOr<spiffe::JwtSvid> svid = spiffe::ParseJwtSvidInsecure(in.token());
  if (!svid.ok()) {
    return Protocol(kNewJwtSvid, absl::StrCat("bad token: ", svid.status().message()));
  }
  return IssuedJwtSvid{.svid = *std::move(svid),
                       .issued_at = std::chrono::system_clock::from_time_t(in.issued_at()),
                       .expires_at = std::chrono::system_clock::from_time_t(in.expires_at())};
}

svidv1::NewJWTSVIDRequest JwtRequest(std::string_view entry_id,
                                     const std::vector<std::string>& audience) {
  svidv1::NewJWTSVIDRequest request;
  request.set_entry_id(std::string(entry_id));
  for (const std::string& value : audience) request.add_audience(value);
  return request;
}

}  // namespace

ServerClient::ServerClient(ServerClientOptions options, AgentIdentitySource& identity)
    : options_(std::move(options)), identity_(identity), clock_(ClockOrReal(options_.clock)) {
  channels_.resize(options_.servers.size());
}

ServerClient::~ServerClient() {
  Shutdown();
  std::unique_lock lock(mu_);
  async_done_.wait(lock, [&] { return async_outstanding_ == 0; });
}

void ServerClient::Shutdown() {
  std::lock_guard lock(track_mu_);
  shut_down_ = true;
  // Cancelling may complete (and untrack, and free) other calls inline: check each is still
  // tracked, hence alive, before touching it.
  std::vector<grpc::ClientContext*> snapshot(active_.begin(), active_.end());
  for (grpc::ClientContext* ctx : snapshot) {
    if (active_.contains(ctx)) ctx->TryCancel();
  }
}

bool ServerClient::Track(grpc::ClientContext* ctx) {
  std::lock_guard lock(track_mu_);
  if (shut_down_) return false;
  active_.insert(ctx);
  return true;
}

void ServerClient::Untrack(grpc::ClientContext* ctx) {
  std::lock_guard lock(track_mu_);
  active_.erase(ctx);
}

void ServerClient::SetDeadline(grpc::ClientContext& ctx) const {
  ctx.set_deadline(std::chrono::system_clock::now() + options_.rpc_timeout);
}

ServerAddress ServerClient::current_server() const {
  std::lock_guard lock(mu_);
  if (options_.servers.empty()) return {};
  return options_.servers[current_];
}

void ServerClient::Reconnect() {
  std::lock_guard lock(mu_);
  std::fill(channels_.begin(), channels_.end(), nullptr);
}

EntrySyncStats ServerClient::last_entry_sync_stats() const {
  std::lock_guard lock(mu_);
  return last_sync_stats_;
}

absl::StatusOr<ServerClient::Target> ServerClient::CurrentTarget() {
  if (options_.servers.empty()) return absl::FailedPreconditionError("no server address");
  if (shut_down_) return absl::UnavailableError("server client shut down");
  std::shared_ptr<const AgentState> state = identity_.CurrentAgentState();
  if (state == nullptr) return absl::FailedPreconditionError("no agent SVID (not attested)");

  std::lock_guard lock(mu_);
  if (state != channel_state_) {
    // A renewed SVID or a new bundle: connections made with the old one must not be reused.
    channel_state_ = state;
    std::fill(channels_.begin(), channels_.end(), nullptr);
  }
  const size_t index = current_;
  if (channels_[index] == nullptr) {
    ASSIGN_OR_RETURN(spiffe::SpiffeId server_id,
                     spiffe::SpiffeId::FromPath(options_.trust_domain, "/spire/server"));
    ASSIGN_OR_RETURN(
        std::shared_ptr<grpc::ChannelCredentials> creds,
        spiffe::SpiffeTlsChannelCredentials(
            state->bundle, server_id, spiffe::ClientIdentity{state->svid.key, state->svid.chain}));
    grpc::ChannelArguments args;
    // Our own subchannels: a connection made with another identity is never shared.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    const int max_backoff = ClampMs(options_.max_reconnect_backoff);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(1000, max_backoff));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, std::min(1000, max_backoff));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff);
    channels_[index] =
        grpc::CreateCustomChannel(options_.servers[index].HostPort(), std::move(creds), args);
  }
  return Target{.channel = channels_[index], .index = index, .state = std::move(state)};
}

void ServerClient::AfterAttempt(const Target& target, const absl::Status& status) {
  const absl::StatusCode code = status.code();
  if (code == absl::StatusCode::kPermissionDenied || code == absl::StatusCode::kUnauthenticated) {
    identity_.ReportRejected(status);
    return;
  }
  if (code != absl::StatusCode::kUnavailable && code != absl::StatusCode::kDeadlineExceeded) return;
  if (shut_down_) return;
  // The server refuses an expired client certificate in the handshake, which the client only
  // sees as UNAVAILABLE.
  if (code == absl::StatusCode::kUnavailable && !target.state->svid.chain.empty() &&
      target.state->svid.chain.front().NotAfter() <= clock_->Now()) {
    identity_.ReportRejected(status);
  }
  std::lock_guard lock(mu_);
  // Only the first failure on this address moves on: concurrent calls failing together must not
  // skip the next address.
  if (options_.servers.size() > 1 && current_ == target.index && channel_state_ == target.state) {
    current_ = (current_ + 1) % options_.servers.size();
    spdlog::warn("agent: server {} failed ({}); trying {}",
                 options_.servers[target.index].HostPort(), AsStd(status.message()),
                 options_.servers[current_].HostPort());
  }
}

absl::Status ServerClient::Call(std::string_view what, const Attempt& attempt) {
  absl::Status last;
  for (size_t tries = 0; tries < std::max<size_t>(1, options_.servers.size()); ++tries) {
    absl::StatusOr<Target> target = CurrentTarget();
    if (!target.ok()) return Annotate(target.status(), what);
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    if (!Track(&ctx)) return absl::UnavailableError(absl::StrCat(AsAbsl(what), ": shut down"));
    last = attempt(target->channel, ctx);
    Untrack(&ctx);
    AfterAttempt(*target, last);
    if (last.code() != absl::StatusCode::kUnavailable || shut_down_) return last;
  }
  return last;
}

absl::StatusOr<spiffe::Bundle> ServerClient::GetBundle() {
  constexpr std::string_view kWhat = "get bundle";
  types::Bundle bundle;
  RETURN_IF_ERROR(
      Call(kWhat, [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& ctx) {
        bundle.Clear();
        return FromGrpc(bundlev1::Bundle::NewStub(channel)->GetBundle(&ctx, {}, &bundle), kWhat);
      }));
  ASSIGN_OR_RETURN(spiffe::Bundle out, BundleFromProto(bundle, options_.trust_domain, kWhat));
  if (out.x509_authorities().empty()) return Protocol(kWhat, "no X.509 authorities");
  return out;
}

absl::StatusOr<spiffe::Bundle> ServerClient::GetFederatedBundle(
    const spiffe::TrustDomain& trust_domain) {
  const std::string what = absl::StrCat("get federated bundle of ", trust_domain.name());
  bundlev1::GetFederatedBundleRequest request;
  request.set_trust_domain(trust_domain.name());
  types::Bundle bundle;
  RETURN_IF_ERROR(
      Call(what, [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& ctx) {
        bundle.Clear();
        return FromGrpc(
            bundlev1::Bundle::NewStub(channel)->GetFederatedBundle(&ctx, request, &bundle), what);
      }));
  return BundleFromProto(bundle, trust_domain, what);
}

std::vector<absl::StatusOr<std::vector<spiffe::Certificate>>> ServerClient::BatchNewX509Svid(
    std::vector<X509SvidRequest> requests) {
  std::vector<absl::StatusOr<std::vector<spiffe::Certificate>>> results;
  results.reserve(requests.size());
  for (size_t start = 0; start < requests.size(); start += kMaxBatchParams) {
    const size_t end = std::min(requests.size(), start + kMaxBatchParams);
    svidv1::BatchNewX509SVIDRequest request;
    for (size_t i = start; i < end; ++i) {
      svidv1::NewX509SVIDParams* params = request.add_params();
      params->set_entry_id(std::move(requests[i].entry_id));
      params->set_csr(std::move(requests[i].csr_der));
    }
    svidv1::BatchNewX509SVIDResponse response;
    absl::Status status = Call(kBatchNewX509Svid, [&](const std::shared_ptr<grpc::Channel>& channel,
                                                      grpc::ClientContext& ctx) {
      response.Clear();
      return FromGrpc(svidv1::SVID::NewStub(channel)->BatchNewX509SVID(&ctx, request, &response),
                      kBatchNewX509Svid);
    });
    if (!status.ok()) {
      // An unreachable server stays so for the rest of the batch: do not knock again.
      while (results.size() < requests.size()) results.push_back(status);
      break;
    }
    if (static_cast<size_t>(response.results_size()) != end - start) {
      absl::Status bad =
          Protocol(kBatchNewX509Svid, absl::StrCat("server answered ", response.results_size(),
                                                   " results for ", end - start, " parameters"));
      for (size_t i = start; i < end; ++i) results.push_back(bad);
      continue;
    }
    for (int i = 0; i < response.results_size(); ++i) {
      const auto& result = response.results(i);
      const std::string& entry_id = request.params(i).entry_id();
      if (result.status().code() != 0) {
        results.push_back(absl::Status(
            CodeFromWire(result.status().code()),
            absl::StrCat("new X509-SVID for entry ", entry_id, ": ", result.status().message())));
        continue;
      }
      results.push_back(ChainFromProto(result.svid().cert_chain(),
                                       absl::StrCat("new X509-SVID for entry ", entry_id)));
    }
  }
  return results;
}

absl::StatusOr<IssuedJwtSvid> ServerClient::NewJwtSvid(std::string_view entry_id,
                                                       const std::vector<std::string>& audience) {
  const svidv1::NewJWTSVIDRequest request = JwtRequest(entry_id, audience);
  svidv1::NewJWTSVIDResponse response;
  RETURN_IF_ERROR(Call(
      kNewJwtSvid, [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& ctx) {
        response.Clear();
        return FromGrpc(svidv1::SVID::NewStub(channel)->NewJWTSVID(&ctx, request, &response),
                        kNewJwtSvid);
      }));
  return JwtFromProto(response.svid());
}

// One NewJwtSvidAsync call, across its attempts (one per address at most).
struct ServerClient::AsyncJwtCall {
  svidv1::NewJWTSVIDRequest request;
  JwtCallback done;
  size_t attempts = 0;
  // The current attempt's; replaced for each attempt.
  Target target;
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<svidv1::SVID::Stub> stub;
  svidv1::NewJWTSVIDResponse response;
};

void ServerClient::NewJwtSvidAsync(std::string entry_id, std::vector<std::string> audience,
                                   JwtCallback done) {
  auto call = std::make_shared<AsyncJwtCall>();
  call->request = JwtRequest(entry_id, audience);
  call->done = std::move(done);
  {
    std::lock_guard lock(mu_);
    ++async_outstanding_;
  }
  StartJwtAttempt(call);
}

void ServerClient::StartJwtAttempt(const std::shared_ptr<AsyncJwtCall>& call) {
  ++call->attempts;
  absl::StatusOr<Target> target = CurrentTarget();
  if (!target.ok()) {
    call->done(Annotate(target.status(), kNewJwtSvid));
    FinishAsync();
    return;
  }
  call->target = *std::move(target);
  call->ctx = std::make_unique<grpc::ClientContext>();
  SetDeadline(*call->ctx);
  call->response.Clear();
  call->stub = svidv1::SVID::NewStub(call->target.channel);
  if (!Track(call->ctx.get())) {
    call->done(absl::UnavailableError(absl::StrCat(AsAbsl(kNewJwtSvid), ": shut down")));
    FinishAsync();
    return;
  }
  // The completion may run inline (gRPC runs callbacks at the end of its own API calls): no lock
  // of ours is held here.
  call->stub->async()->NewJWTSVID(call->ctx.get(), &call->request, &call->response,
                                  [this, call](grpc::Status grpc_status) {
                                    Untrack(call->ctx.get());
                                    absl::Status status = FromGrpc(grpc_status, kNewJwtSvid);
                                    AfterAttempt(call->target, status);
                                    if (status.code() == absl::StatusCode::kUnavailable &&
                                        !shut_down_ && call->attempts < options_.servers.size()) {
                                      StartJwtAttempt(call);
                                      return;
                                    }
                                    if (status.ok()) {
                                      call->done(JwtFromProto(call->response.svid()));
                                    } else {
                                      call->done(std::move(status));
                                    }
                                    FinishAsync();
                                  });
}

void ServerClient::FinishAsync() {
  std::lock_guard lock(mu_);
  --async_outstanding_;
  async_done_.notify_all();
}

}  // namespace tessera::agent
