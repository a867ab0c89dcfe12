// Workload API responses → WorkloadApiClient types, checking what the standard makes mandatory.
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "spiffe/bundle_json.h"
#include "spiffe/workload_client_internal.h"

namespace tessera::spiffe::internal {
namespace {

absl::Status Malformed(std::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

// Whether a hint is acceptable, and not a repeat of an earlier one (the first wins, so a repeat
// is dropped rather than rejected).
enum class HintCheck { kKeep, kDuplicate };
absl::StatusOr<HintCheck> CheckHint(const std::string& hint, std::set<std::string>& seen,
                                    std::string_view where) {
  if (hint.size() > kMaxHintBytes) {
    return Malformed(absl::StrCat(AsAbsl(where), ": hint longer than ", kMaxHintBytes, " bytes"));
  }
  if (hint.empty()) return HintCheck::kKeep;
  return seen.insert(hint).second ? HintCheck::kKeep : HintCheck::kDuplicate;
}

// Bundles of a bundle map; an empty value withdraws trust in that domain, so it is left out.
template <typename Map, typename ParseFn>
absl::StatusOr<BundleSet> BundlesFromMap(const Map& map, std::string_view field,
                                         const ParseFn& parse) {
  if (map.empty()) return Malformed(absl::StrCat(AsAbsl(field), " is empty"));
  // protobuf maps iterate in no particular order; sorting keeps errors reproducible.
  std::map<std::string, std::string> sorted(map.begin(), map.end());
  BundleSet set;
  for (const auto& [key, value] : sorted) {
    std::string where = absl::StrCat(AsAbsl(field), "[\"", key, "\"]");
    ASSIGN_OR_RETURN(TrustDomain td, TrustDomainFromBundleKey(key), Annotate(_, where));
    if (value.empty()) continue;
    ASSIGN_OR_RETURN(Bundle bundle, parse(td, value), Annotate(_, where));
    set.Put(std::move(bundle));
  }
  return set;
}

nlohmann::json ValueToJson(const google::protobuf::Value& value) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kNumberValue: {
      double d = value.number_value();
      // Struct has only doubles; claims like "exp" are integers and read better as such.
      constexpr double kMaxExact = 9007199254740992.0;  // 2^53
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) <= kMaxExact) {
        return static_cast<int64_t>(d);
      }
      return d;
    }
    case google::protobuf::Value::kStringValue:
      return value.string_value();
    case google::protobuf::Value::kBoolValue:
      return value.bool_value();
    case google::protobuf::Value::kStructValue:
      return StructToJson(value.struct_value());
    case google::protobuf::Value::kListValue: {
      nlohmann::json array = nlohmann::json::array();
      for (const auto& item : value.list_value().values()) array.push_back(ValueToJson(item));
      return array;
    }
    case google::protobuf::Value::kNullValue:
    case google::protobuf::Value::KIND_NOT_SET:
      break;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<TrustDomain> TrustDomainFromBundleKey(std::string_view key) {
  if (key.find(':') == std::string_view::npos) return TrustDomain::Parse(key);
  ASSIGN_OR_RETURN(SpiffeId id, SpiffeId::Parse(key));
  if (!id.IsTrustDomainId()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle key \"", AsAbsl(key), "\" is not a trust domain ID"));
  }
  return id.trust_domain();
}

absl::StatusOr<X509Context> X509ContextFromResponse(const ::X509SVIDResponse& response) {
  if (response.svids().empty()) return Malformed("svids is empty");
  X509Context context;
  std::set<std::string> hints;
  std::set<TrustDomain> own_domains;
  for (int i = 0; i < response.svids_size(); ++i) {
    const ::X509SVID& in = response.svids(i);
    std::string where = absl::StrCat("svids[", i, "]");
    if (in.spiffe_id().empty()) return Malformed(absl::StrCat(where, ": spiffe_id is empty"));
    ASSIGN_OR_RETURN(SpiffeId id, SpiffeId::Parse(in.spiffe_id()),
                     Annotate(_, absl::StrCat(where, ": spiffe_id")));
    absl::StrAppend(&where, " (", id.str(), ")");
    if (in.x509_svid().empty()) return Malformed(absl::StrCat(where, ": x509_svid is empty"));
    if (in.x509_svid_key().empty()) {
      return Malformed(absl::StrCat(where, ": x509_svid_key is empty"));
    }
    if (in.bundle().empty()) return Malformed(absl::StrCat(where, ": bundle is empty"));
    ASSIGN_OR_RETURN(HintCheck hint, CheckHint(in.hint(), hints, where));
    if (hint == HintCheck::kDuplicate) continue;

    ASSIGN_OR_RETURN(X509Svid svid, ParseX509Svid(in.x509_svid(), in.x509_svid_key()),
                     Annotate(_, where));
    if (svid.id != id) {
      return Malformed(absl::StrCat(where, ": the certificate is for ", svid.id.str()));
    }
    TrustDomain td = id.trust_domain();
    // Several SVIDs of one trust domain carry its bundle each; the first one is kept.
    if (own_domains.insert(td).second) {
      ASSIGN_OR_RETURN(Bundle bundle, BundleFromX509Der(td, in.bundle()),
                       Annotate(_, absl::StrCat(where, ": bundle")));
      context.bundles.Put(std::move(bundle));
    }
    context.svids.push_back(WorkloadX509Svid{.svid = std::move(svid), .hint = in.hint()});
  }

  if (!response.federated_bundles().empty()) {
    ASSIGN_OR_RETURN(BundleSet federated, BundlesFromMap(response.federated_bundles(),
                                                         "federated_bundles", BundleFromX509Der));
    for (const auto& [td, bundle] : federated) {
      // Only the SVIDs' own bundle speaks for their trust domains.
      if (own_domains.contains(td)) continue;
      context.bundles.Put(bundle);
    }
  }
  return context;
}

absl::StatusOr<BundleSet> X509BundlesFromResponse(const ::X509BundlesResponse& response) {
  return BundlesFromMap(response.bundles(), "bundles", BundleFromX509Der);
}

absl::StatusOr<BundleSet> JwtBundlesFromResponse(const ::JWTBundlesResponse& response) {
  return BundlesFromMap(response.bundles(), "bundles", ParseJwtBundleJwks);
}

absl::StatusOr<std::vector<WorkloadJwtSvid>> JwtSvidsFromResponse(
    const ::JWTSVIDResponse& response) {
  if (response.svids().empty()) return Malformed("svids is empty");
  std::vector<WorkloadJwtSvid> out;
  std::set<std::string> hints;
  for (int i = 0; i < response.svids_size(); ++i) {
    const ::JWTSVID& in = response.svids(i);
    std::string where = absl::StrCat("svids[", i, "]");
    if (in.spiffe_id().empty()) return Malformed(absl::StrCat(where, ": spiffe_id is empty"));
    ASSIGN_OR_RETURN(SpiffeId id, SpiffeId::Parse(in.spiffe_id()),
                     Annotate(_, absl::StrCat(where, ": spiffe_id")));
    absl::StrAppend(&where, " (", id.str(), ")");
    if (in.svid().empty()) return Malformed(absl::StrCat(where, ": svid is empty"));
    ASSIGN_OR_RETURN(HintCheck hint, CheckHint(in.hint(), hints, where));
    if (hint == HintCheck::kDuplicate) continue;
    ASSIGN_OR_RETURN(JwtSvid svid, ParseJwtSvidInsecure(in.svid()), Annotate(_, where));
    if (svid.subject != id) {
      return Malformed(absl::StrCat(where, ": the token's subject is ", svid.subject.str()));
    }
    out.push_back(WorkloadJwtSvid{.svid = std::move(svid), .hint = in.hint()});
  }
  return out;
}

absl::StatusOr<ValidatedJwtSvid> ValidatedJwtSvidFromResponse(
    const ::ValidateJWTSVIDResponse& response) {
  if (response.spiffe_id().empty()) return Malformed("spiffe_id is empty");
  ASSIGN_OR_RETURN(SpiffeId id, SpiffeId::Parse(response.spiffe_id()), Annotate(_, "spiffe_id"));
  if (!response.has_claims()) return Malformed("claims are missing");
  return ValidatedJwtSvid{.spiffe_id = std::move(id), .claims = StructToJson(response.claims())};
}

nlohmann::json StructToJson(const google::protobuf::Struct& value) {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& [key, item] : value.fields()) object[key] = ValueToJson(item);
  return object;
}

}  // namespace tessera::spiffe::internal
