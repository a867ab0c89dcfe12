// The unary RPCs of WorkloadApiService: FetchJWTSVID and ValidateJWTSVID.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "agent/workload/workload_service.h"
#include "common/strings.h"
#include "google/protobuf/struct.pb.h"
#include "spdlog/spdlog.h"
#include "spiffe/jwt_svid.h"

namespace tessera::agent {
namespace {

using workload_internal::NoIdentity;
using workload_internal::RefusedUnary;
using workload_internal::ToGrpc;
using workload_internal::UnaryCall;

grpc::Status InvalidArgument(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

// The answers of JwtSvidSource for one FetchJWTSVID, collected in the identities' order.
struct JwtFetch {
  std::vector<CachedIdentity> identities;
  absl::Mutex mu;
  std::vector<std::optional<absl::StatusOr<std::string>>> tokens ABSL_GUARDED_BY(mu);
  size_t remaining ABSL_GUARDED_BY(mu) = 0;
};

void FinishJwtFetch(const std::shared_ptr<UnaryCall::State>& call,
                    const std::shared_ptr<JwtFetch>& fetch, ::JWTSVIDResponse* response) {
  std::vector<std::string> tokens;
  {
    absl::MutexLock lock(&fetch->mu);
    for (size_t i = 0; i < fetch->tokens.size(); ++i) {
      const absl::StatusOr<std::string>& token = *fetch->tokens[i];
      if (!token.ok()) {
        spdlog::error("workload api: FetchJWTSVID: could not fetch JWT-SVID for {}: {}",
                      fetch->identities[i].entry->spiffe_id.str(), AsStd(token.status().message()));
        UnaryCall::FinishOnce(call, grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                                 absl::StrCat("could not fetch JWT-SVID: ",
                                                              token.status().message())));
        return;
      }
      tokens.push_back(*token);
    }
  }
  UnaryCall::FinishOnce(call, grpc::Status::OK, [&] {
    for (size_t i = 0; i < tokens.size(); ++i) {
      ::JWTSVID* svid = response->add_svids();
      svid->set_spiffe_id(fetch->identities[i].entry->spiffe_id.str());
      svid->set_svid(std::move(tokens[i]));
      svid->set_hint(fetch->identities[i].entry->hint);
    }
  });
}

void FetchJwtSvids(const std::shared_ptr<UnaryCall::State>& call, const AttestedCaller& caller,
                   const std::shared_ptr<const CacheSnapshot>& snapshot,
                   const std::optional<spiffe::SpiffeId>& requested,
                   const std::vector<std::string>& audience, JwtSvidSource& source,
                   ::JWTSVIDResponse* response) {
  auto fetch = std::make_shared<JwtFetch>();
  for (CachedIdentity& identity :
       workload_internal::UniqueHints(snapshot->Match(caller.selectors))) {
    if (requested.has_value() && identity.entry->spiffe_id != *requested) continue;
    fetch->identities.push_back(std::move(identity));
  }
  if (fetch->identities.empty()) {
    spdlog::info("workload api: FetchJWTSVID: no identity issued to pid {} (uid {}, selectors {})",
                 caller.pid, caller.uid, caller.selectors.ToString());
    UnaryCall::FinishOnce(call, NoIdentity());
    return;
  }
  {
    absl::MutexLock lock(&fetch->mu);
    fetch->tokens.resize(fetch->identities.size());
    fetch->remaining = fetch->identities.size();
  }
  for (size_t i = 0; i < fetch->identities.size(); ++i) {
    source.FetchJwtSvid(fetch->identities[i].entry, audience,
                        [call, fetch, i, response](absl::StatusOr<std::string> token) {
                          {
                            absl::MutexLock lock(&fetch->mu);
                            fetch->tokens[i] = std::move(token);
                            if (--fetch->remaining > 0) return;
                          }
                          FinishJwtFetch(call, fetch, response);
                        });
  }
}

// JSON (as parsed from a token: bounded depth, valid UTF-8) to google.protobuf.Value; numbers
// become doubles, as protobuf's JSON mapping does.
void ToValue(const nlohmann::json& json, google::protobuf::Value* value) {
  switch (json.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      value->set_null_value(google::protobuf::NULL_VALUE);
      return;
    case nlohmann::json::value_t::boolean:
      value->set_bool_value(json.get<bool>());
      return;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      value->set_number_value(json.get<double>());
      return;
    case nlohmann::json::value_t::string:
      value->set_string_value(json.get_ref<const std::string&>());
      return;
    case nlohmann::json::value_t::array: {
      google::protobuf::ListValue* list = value->mutable_list_value();
      for (const nlohmann::json& item : json) ToValue(item, list->add_values());
      return;
    }
    case nlohmann::json::value_t::object: {
      auto* fields = value->mutable_struct_value()->mutable_fields();
      for (const auto& [key, item] : json.items()) ToValue(item, &(*fields)[key]);
      return;
    }
    case nlohmann::json::value_t::binary:
      value->set_null_value(google::protobuf::NULL_VALUE);
      return;
  }
}

void ValidateJwtSvid(const std::shared_ptr<UnaryCall::State>& call, const AttestedCaller& caller,
                     const std::shared_ptr<const CacheSnapshot>& snapshot, const std::string& token,
                     const std::string& audience, const std::vector<std::string>& allowed_claims,
                     const Clock& clock, ::ValidateJWTSVIDResponse* response) {
  // The own trust domain's keys and those of the trust domains the caller federates with.
  spiffe::BundleSet authorities = snapshot->FederatedBundlesFor(snapshot->Match(caller.selectors));
  if (const spiffe::Bundle* own = snapshot->own_bundle()) authorities.Put(*own);
  absl::StatusOr<spiffe::JwtSvid> svid =
      spiffe::ParseAndValidateJwtSvid(token, authorities, {audience}, clock.Now());
  if (!svid.ok()) {
    spdlog::warn("workload api: ValidateJWTSVID for pid {}: {}", caller.pid,
                 AsStd(svid.status().message()));
    UnaryCall::FinishOnce(call, InvalidArgument(std::string(svid.status().message())));
    return;
  }
  nlohmann::json claims = svid->claims;
  if (!svid->subject.MemberOf(snapshot->trust_domain())) {
    absl::flat_hash_set<std::string> allowed(allowed_claims.begin(), allowed_claims.end());
    for (const char* claim : {"sub", "aud", "exp"}) allowed.insert(claim);
    for (auto it = claims.begin(); it != claims.end();) {
      it = allowed.contains(it.key()) ? std::next(it) : claims.erase(it);
    }
  }
  // Always a list, as SPIRE returns it, whatever form the token used.
  if (claims.contains("aud") && claims["aud"].is_string()) {
    claims["aud"] = nlohmann::json::array({claims["aud"]});
  }
  spdlog::debug("workload api: ValidateJWTSVID for pid {}: valid token of {} for {}", caller.pid,
                svid->subject.str(), audience);
  UnaryCall::FinishOnce(call, grpc::Status::OK, [&] {
    response->set_spiffe_id(svid->subject.str());
    google::protobuf::Value value;
    ToValue(claims, &value);
    response->mutable_claims()->Swap(value.mutable_struct_value());
  });
}

}  // namespace

grpc::ServerUnaryReactor* WorkloadApiService::FetchJWTSVID(grpc::CallbackServerContext* context,
                                                           const ::JWTSVIDRequest* request,
                                                           ::JWTSVIDResponse* response) {
  if (grpc::Status status = workload_internal::CheckSecurityHeader(*context); !status.ok()) {
    return RefusedUnary(context, status);
  }
  if (request->audience().empty()) {
    return RefusedUnary(context, InvalidArgument("audience must be specified"));
  }
  for (const std::string& audience : request->audience()) {
    if (audience.empty()) {
      return RefusedUnary(context, InvalidArgument("audience must not contain an empty value"));
    }
  }
  std::optional<spiffe::SpiffeId> requested;
  if (!request->spiffe_id().empty()) {
    absl::StatusOr<spiffe::SpiffeId> id = spiffe::SpiffeId::Parse(request->spiffe_id());
    if (!id.ok()) {
      return RefusedUnary(context, InvalidArgument(absl::StrCat("invalid requested SPIFFE ID: ",
                                                                id.status().message())));
    }
    requested = std::move(*id);
  }
  if (grpc::Status status = workload_internal::Admit(*context, *options_.cache); !status.ok()) {
    return RefusedUnary(context, status);
  }

  auto* reactor = new UnaryCall();
  std::shared_ptr<UnaryCall::State> call = reactor->state();
  std::vector<std::string> audience(request->audience().begin(), request->audience().end());
  std::stop_source stop = options_.callers->Attest(
      context, [this, call, requested = std::move(requested), audience = std::move(audience),
                response](absl::StatusOr<AttestedCaller> caller) {
        if (!caller.ok()) {
          UnaryCall::FinishOnce(call, ToGrpc(caller.status()));
          return;
        }
        FetchJwtSvids(call, *caller, options_.cache->Current(), requested, audience,
                      *options_.jwt_source, response);
      });
  absl::MutexLock lock(&call->mu);
  call->attestation = std::move(stop);
  return reactor;
}

grpc::ServerUnaryReactor* WorkloadApiService::ValidateJWTSVID(
    grpc::CallbackServerContext* context, const ::ValidateJWTSVIDRequest* request,
    ::ValidateJWTSVIDResponse* response) {
  if (grpc::Status status = workload_internal::CheckSecurityHeader(*context); !status.ok()) {
    return RefusedUnary(context, status);
  }
  if (request->audience().empty()) {
    return RefusedUnary(context, InvalidArgument("audience must be specified"));
  }
  if (request->svid().empty()) {
    return RefusedUnary(context, InvalidArgument("svid must be specified"));
  }
  if (grpc::Status status = workload_internal::Admit(*context, *options_.cache); !status.ok()) {
    return RefusedUnary(context, status);
  }

  auto* reactor = new UnaryCall();
  std::shared_ptr<UnaryCall::State> call = reactor->state();
  std::stop_source stop = options_.callers->Attest(
      context, [this, call, token = request->svid(), audience = request->audience(),
                response](absl::StatusOr<AttestedCaller> caller) {
        if (!caller.ok()) {
          UnaryCall::FinishOnce(call, ToGrpc(caller.status()));
          return;
        }
        ValidateJwtSvid(call, *caller, options_.cache->Current(), token, audience,
                        options_.allowed_foreign_jwt_claims, clock_, response);
      });
  absl::MutexLock lock(&call->mu);
  call->attestation = std::move(stop);
  return reactor;
}

}  // namespace tessera::agent
