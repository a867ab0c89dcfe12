#include "spiffe/bundle_json.h"

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "spiffe/base64.h"
#include "spiffe/jwk.h"
#include "spiffe/strict_json.h"

namespace tessera::spiffe {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kUseX509 = "x509-svid";
constexpr std::string_view kUseJwt = "jwt-svid";

absl::Status Invalid(std::string_view context, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(AsAbsl(context), ": ", AsAbsl(why)));
}

// A member that must be a string when present: nullptr when absent.
absl::StatusOr<const std::string*> OptionalString(const Json& object, const char* name,
                                                  std::string_view context) {
  auto it = object.find(name);
  if (it == object.end()) return nullptr;
  if (!it->is_string()) {
    return Invalid(context, absl::StrCat("\"", name, "\" must be a string"));
  }
  return &it->get_ref<const std::string&>();
}

// The "keys" array of a JWK Set.
absl::StatusOr<const Json*> KeysArray(const Json& doc, std::string_view context) {
  if (!doc.is_object()) return Invalid(context, "must be a JSON object");
  auto keys = doc.find("keys");
  if (keys == doc.end()) return Invalid(context, "missing \"keys\"");
  if (!keys->is_array()) return Invalid(context, "\"keys\" must be an array");
  return &*keys;
}

// The entry's "kty" if this library can read it, nullptr for an entry to skip.
absl::StatusOr<const std::string*> SupportedKty(const Json& entry, std::string_view context) {
  if (!entry.is_object()) return Invalid(context, "must be a JSON object");
  ASSIGN_OR_RETURN(const std::string* kty, OptionalString(entry, "kty", context));
  if (kty == nullptr) return Invalid(context, "missing \"kty\"");
  if (!IsSupportedJwkKeyType(*kty)) return nullptr;
  return kty;
}

absl::Status AddX509Entry(const Json& entry, std::string_view context, Bundle& bundle) {
  auto x5c = entry.find("x5c");
  if (x5c == entry.end()) return absl::OkStatus();  // the format says: ignore the entry
  if (!x5c->is_array()) return Invalid(context, "\"x5c\" must be an array");
  if (x5c->empty()) return absl::OkStatus();
  // Each entry carries exactly one CA; go-spiffe errors on more, so a producer that packs a
  // chain here is broken and silently using its first element would hide that.
  if (x5c->size() != 1) {
    return Invalid(context,
                   absl::StrCat("\"x5c\" must hold exactly one certificate, got ", x5c->size()));
  }
  const Json& encoded = (*x5c)[0];
  if (!encoded.is_string()) return Invalid(context, "\"x5c\" must hold strings");
  ASSIGN_OR_RETURN(std::string der, Base64Decode(encoded.get_ref<const std::string&>()),
                   Annotate(_, absl::StrCat(AsAbsl(context), ": \"x5c\"")));
  ASSIGN_OR_RETURN(Certificate cert, Certificate::FromDer(der),
                   Annotate(_, absl::StrCat(AsAbsl(context), ": \"x5c\"")));
  ASSIGN_OR_RETURN(PublicKey key, PublicKeyFromJwk(entry), Annotate(_, context));
  if (!key.Equals(cert.public_key())) {
    return Invalid(context, "key parameters do not match the \"x5c\" certificate");
  }
  bundle.AddX509Authority(cert);
  return absl::OkStatus();
}

absl::Status AddJwtEntry(const Json& entry, std::string_view context, Bundle& bundle) {
  ASSIGN_OR_RETURN(const std::string* kid, OptionalString(entry, "kid", context));
  if (kid == nullptr || kid->empty()) return Invalid(context, "JWT authority has no \"kid\"");
  ASSIGN_OR_RETURN(PublicKey key, PublicKeyFromJwk(entry), Annotate(_, context));
  if (bundle.FindJwtAuthority(*kid) != nullptr) {
    return Invalid(context, absl::StrCat("duplicate \"kid\" \"", *kid, "\""));
  }
  return bundle.AddJwtAuthority(*kid, std::move(key));
}

std::string EntryContext(std::string_view prefix, size_t index) {
  return absl::StrCat(AsAbsl(prefix), ": keys[", index, "]");
}

absl::Status ReadSpiffeMembers(const Json& doc, std::string_view context, Bundle& bundle) {
  if (auto it = doc.find("spiffe_sequence"); it != doc.end()) {
    // nlohmann stores non-negative integers as unsigned; negatives and fractions are other types.
    if (!it->is_number_unsigned()) {
      return Invalid(context, "\"spiffe_sequence\" must be a non-negative integer");
    }
    bundle.set_sequence_number(it->get<uint64_t>());
  }
  if (auto it = doc.find("spiffe_refresh_hint"); it != doc.end()) {
    if (!it->is_number_unsigned() ||
        it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(context, "\"spiffe_refresh_hint\" must be a non-negative integer");
    }
    bundle.set_refresh_hint(std::chrono::seconds(static_cast<int64_t>(it->get<uint64_t>())));
  }
  return absl::OkStatus();
}

absl::StatusOr<Json> KeyToJwk(const PublicKey& key, std::string_view context) {
  ASSIGN_OR_RETURN(Json jwk, PublicKeyToJwk(key), Annotate(_, context));
  return jwk;
}

absl::StatusOr<Json> ParseDocument(std::string_view text, std::string_view context, int depth) {
  ASSIGN_OR_RETURN(Json doc, ParseStrictJson(text, kMaxBundleJsonBytes, depth),
                   Annotate(_, context));
  return doc;
}

absl::StatusOr<Bundle> SpiffeBundleFromJsonWithContext(const TrustDomain& trust_domain,
                                                       const Json& doc, std::string_view context) {
  ASSIGN_OR_RETURN(const Json* keys, KeysArray(doc, context));
  Bundle bundle(trust_domain);
  for (size_t i = 0; i < keys->size(); ++i) {
    const Json& entry = (*keys)[i];
    std::string entry_context = EntryContext(context, i);
    ASSIGN_OR_RETURN(const std::string* kty, SupportedKty(entry, entry_context));
    if (kty == nullptr) continue;
    ASSIGN_OR_RETURN(const std::string* use, OptionalString(entry, "use", entry_context));
    if (use == nullptr) continue;
    if (*use == kUseX509) {
      RETURN_IF_ERROR(AddX509Entry(entry, entry_context, bundle));
    } else if (*use == kUseJwt) {
      RETURN_IF_ERROR(AddJwtEntry(entry, entry_context, bundle));
    }
  }
  RETURN_IF_ERROR(ReadSpiffeMembers(doc, context, bundle));
  return bundle;
}

std::string SpiffeContext(const TrustDomain& trust_domain) {
  return absl::StrCat("spiffe bundle for \"", trust_domain.name(), "\"");
}

}  // namespace

absl::StatusOr<Bundle> SpiffeBundleFromJson(const TrustDomain& trust_domain, const Json& doc) {
  return SpiffeBundleFromJsonWithContext(trust_domain, doc, SpiffeContext(trust_domain));
}

absl::StatusOr<Bundle> ParseSpiffeBundle(const TrustDomain& trust_domain, std::string_view json) {
  std::string context = SpiffeContext(trust_domain);
  ASSIGN_OR_RETURN(Json doc, ParseDocument(json, context, kMaxBundleJsonDepth));
  return SpiffeBundleFromJsonWithContext(trust_domain, doc, context);
}

absl::StatusOr<Json> SpiffeBundleToJsonValue(const Bundle& bundle, bool include_refresh_hint) {
  std::string context = SpiffeContext(bundle.trust_domain());
  Json keys = Json::array();
  for (const Certificate& cert : bundle.x509_authorities()) {
    ASSIGN_OR_RETURN(Json jwk,
                     KeyToJwk(cert.public_key(), absl::StrCat(context, ": X.509 authority \"",
                                                              cert.SubjectString(), "\"")));
    jwk["use"] = kUseX509;
    jwk["x5c"] = Json::array({Base64Encode(cert.ToDer())});
    keys.push_back(std::move(jwk));
  }
  for (const auto& [kid, key] : bundle.jwt_authorities()) {
    ASSIGN_OR_RETURN(Json jwk,
                     KeyToJwk(key, absl::StrCat(context, ": JWT authority \"", kid, "\"")));
    jwk["use"] = kUseJwt;
    jwk["kid"] = kid;
    keys.push_back(std::move(jwk));
  }
  Json doc = {{"keys", std::move(keys)}};
  if (bundle.sequence_number()) doc["spiffe_sequence"] = *bundle.sequence_number();
  if (include_refresh_hint && bundle.refresh_hint()) {
    doc["spiffe_refresh_hint"] = bundle.refresh_hint()->count();
  }
  return doc;
}

absl::StatusOr<std::string> SpiffeBundleToJson(const Bundle& bundle) {
  ASSIGN_OR_RETURN(Json doc, SpiffeBundleToJsonValue(bundle));
  return DumpJson(doc);
}

absl::StatusOr<Bundle> ParseJwtBundleJwks(const TrustDomain& trust_domain, std::string_view json) {
  std::string context = absl::StrCat("JWT bundle for \"", trust_domain.name(), "\"");
  ASSIGN_OR_RETURN(Json doc, ParseDocument(json, context, kMaxBundleJsonDepth));
  ASSIGN_OR_RETURN(const Json* keys, KeysArray(doc, context));
  Bundle bundle(trust_domain);
  for (size_t i = 0; i < keys->size(); ++i) {
    const Json& entry = (*keys)[i];
    std::string entry_context = EntryContext(context, i);
    ASSIGN_OR_RETURN(const std::string* kty, SupportedKty(entry, entry_context));
    if (kty == nullptr) continue;
    ASSIGN_OR_RETURN(const std::string* use, OptionalString(entry, "use", entry_context));
    if (use != nullptr && *use != kUseJwt) continue;
    RETURN_IF_ERROR(AddJwtEntry(entry, entry_context, bundle));
  }
  return bundle;
}

absl::StatusOr<std::string> JwtBundleToJwks(const Bundle& bundle) {
  std::string context = absl::StrCat("JWT bundle for \"", bundle.trust_domain().name(), "\"");
  Json keys = Json::array();
  for (const auto& [kid, key] : bundle.jwt_authorities()) {
    ASSIGN_OR_RETURN(Json jwk,
                     KeyToJwk(key, absl::StrCat(context, ": JWT authority \"", kid, "\"")));
    jwk["kid"] = kid;
    keys.push_back(std::move(jwk));
  }
  return DumpJson(Json{{"keys", std::move(keys)}});
}

absl::StatusOr<BundleSet> ParseBundleMap(std::string_view json) {
  constexpr std::string_view kContext = "bundle map";
  // Duplicate trust-domain names are caught here: the strict parser rejects repeated members.
  ASSIGN_OR_RETURN(Json doc, ParseDocument(json, kContext, kMaxBundleJsonDepth + 2));
  if (!doc.is_object()) return Invalid(kContext, "must be a JSON object");
  auto domains = doc.find("trust_domains");
  if (domains == doc.end()) return Invalid(kContext, "missing \"trust_domains\"");
  if (!domains->is_object()) return Invalid(kContext, "\"trust_domains\" must be an object");
  BundleSet set;
  for (const auto& [name, value] : domains->items()) {
    ASSIGN_OR_RETURN(TrustDomain td, TrustDomain::Parse(name),
                     Annotate(_, absl::StrCat(AsAbsl(kContext), ": key \"", name, "\"")));
    ASSIGN_OR_RETURN(Bundle bundle,
                     SpiffeBundleFromJsonWithContext(
                         td, value, absl::StrCat(AsAbsl(kContext), ": \"", name, "\"")));
    bundle.set_refresh_hint(std::nullopt);
    set.Put(std::move(bundle));
  }
  return set;
}

absl::StatusOr<std::string> BundleMapToJson(const BundleSet& bundles) {
  Json domains = Json::object();
  for (const auto& [td, bundle] : bundles) {
    ASSIGN_OR_RETURN(domains[td.name()],
                     SpiffeBundleToJsonValue(bundle, /*include_refresh_hint=*/false));
  }
  return DumpJson(Json{{"trust_domains", std::move(domains)}});
}

}  // namespace tessera::spiffe
