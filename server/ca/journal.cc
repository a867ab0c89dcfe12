#include "server/ca/journal.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"
#include "spiffe/base64.h"
#include "spiffe/strict_json.h"

namespace tessera::server::ca {
namespace {

using nlohmann::json;

constexpr int kJournalVersion = 1;
constexpr int kMaxJournalDepth = 8;
// 9999-12-31T23:59:59Z: the last instant an X.509 GeneralizedTime can carry.
constexpr int64_t kMaxUnixSeconds = 253402300799;

int64_t ToUnix(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

absl::Status Malformed(std::string_view where, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("ca journal: ", AsAbsl(where), ": ", AsAbsl(what)));
}

absl::StatusOr<const json*> Member(const json& obj, std::string_view where, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end()) return Malformed(where, absl::StrCat("missing \"", name, "\""));
  return &*it;
}

absl::StatusOr<std::string> GetString(const json& obj, std::string_view where, const char* name) {
  ASSIGN_OR_RETURN(const json* v, Member(obj, where, name));
  if (!v->is_string()) return Malformed(where, absl::StrCat("\"", name, "\" is not a string"));
  return v->get<std::string>();
}

absl::StatusOr<int64_t> GetInt(const json& obj, std::string_view where, const char* name,
                               int64_t max) {
  ASSIGN_OR_RETURN(const json* v, Member(obj, where, name));
  if (!v->is_number_integer()) {
    return Malformed(where, absl::StrCat("\"", name, "\" is not an integer"));
  }
  // Unsigned values above int64 range come out negative here and are rejected with the rest.
  int64_t n = v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max)
                  ? -1
                  : v->get<int64_t>();
  if (n < 0 || n > max) return Malformed(where, absl::StrCat("\"", name, "\" is out of range"));
  return n;
}

absl::StatusOr<TimePoint> GetTime(const json& obj, std::string_view where, const char* name) {
  ASSIGN_OR_RETURN(int64_t secs, GetInt(obj, where, name, kMaxUnixSeconds));
  return TimePoint(std::chrono::seconds(secs));
}

absl::StatusOr<std::string> GetBase64(const json& obj, std::string_view where, const char* name) {
  ASSIGN_OR_RETURN(std::string text, GetString(obj, where, name));
  ASSIGN_OR_RETURN(std::string bytes, spiffe::Base64Decode(text),
                   Malformed(where, absl::StrCat("\"", name, "\": ", _.message())));
  return bytes;
}

absl::StatusOr<spiffe::Certificate> GetCert(const json& obj, std::string_view where,
                                            const char* name) {
  ASSIGN_OR_RETURN(std::string der, GetBase64(obj, where, name));
  ASSIGN_OR_RETURN(spiffe::Certificate cert, spiffe::Certificate::FromDer(der),
                   Malformed(where, absl::StrCat("\"", name, "\": ", _.message())));
  return cert;
}

absl::StatusOr<spiffe::PublicKey> GetPublicKey(const json& obj, std::string_view where,
                                               const char* name) {
  ASSIGN_OR_RETURN(std::string der, GetBase64(obj, where, name));
  ASSIGN_OR_RETURN(spiffe::PublicKey key, spiffe::PublicKey::FromDer(der),
                   Malformed(where, absl::StrCat("\"", name, "\": ", _.message())));
  return key;
}

absl::StatusOr<const json*> GetArray(const json& obj, std::string_view where, const char* name) {
  ASSIGN_OR_RETURN(const json* v, Member(obj, where, name));
  if (!v->is_array()) return Malformed(where, absl::StrCat("\"", name, "\" is not an array"));
  return v;
}

// ---- records ----

absl::StatusOr<json> EncodeX509(const X509CaRecord& r) {
  json tail = json::array();
  for (const spiffe::Certificate& c : r.chain_tail) tail.push_back(spiffe::Base64Encode(c.ToDer()));
  return json{{"key_id", r.key_id},
              {"ca_cert", spiffe::Base64Encode(r.ca_cert.ToDer())},
              {"chain_tail", std::move(tail)},
              {"issued_at", ToUnix(r.issued_at)}};
}

absl::StatusOr<X509CaRecord> DecodeX509(const json& obj, std::string_view where) {
  if (!obj.is_object()) return Malformed(where, "not an object");
  ASSIGN_OR_RETURN(std::string key_id, GetString(obj, where, "key_id"));
  ASSIGN_OR_RETURN(spiffe::Certificate ca_cert, GetCert(obj, where, "ca_cert"));
  ASSIGN_OR_RETURN(const json* tail, GetArray(obj, where, "chain_tail"));
  std::vector<spiffe::Certificate> chain_tail;
  for (const json& item : *tail) {
    if (!item.is_string()) return Malformed(where, "\"chain_tail\" holds a non-string");
    ASSIGN_OR_RETURN(std::string der, spiffe::Base64Decode(item.get<std::string>()),
                     Malformed(where, absl::StrCat("\"chain_tail\": ", _.message())));
    ASSIGN_OR_RETURN(spiffe::Certificate cert, spiffe::Certificate::FromDer(der),
                     Malformed(where, absl::StrCat("\"chain_tail\": ", _.message())));
    chain_tail.push_back(std::move(cert));
  }
  ASSIGN_OR_RETURN(TimePoint issued_at, GetTime(obj, where, "issued_at"));
  return X509CaRecord{std::move(key_id), std::move(ca_cert), std::move(chain_tail), issued_at};
}

absl::StatusOr<json> EncodeJwt(const JwtKeyRecord& r) {
  ASSIGN_OR_RETURN(std::string spki, r.public_key.ToDer());
  return json{{"key_id", r.key_id},
              {"kid", r.kid},
              {"public_key", spiffe::Base64Encode(spki)},
              {"issued_at", ToUnix(r.issued_at)},
              {"not_after", ToUnix(r.not_after)}};
}

absl::StatusOr<JwtKeyRecord> DecodeJwt(const json& obj, std::string_view where) {
  if (!obj.is_object()) return Malformed(where, "not an object");
  ASSIGN_OR_RETURN(std::string key_id, GetString(obj, where, "key_id"));
  ASSIGN_OR_RETURN(std::string kid, GetString(obj, where, "kid"));
  if (kid.empty()) return Malformed(where, "empty \"kid\"");
  ASSIGN_OR_RETURN(spiffe::PublicKey key, GetPublicKey(obj, where, "public_key"));
  ASSIGN_OR_RETURN(TimePoint issued_at, GetTime(obj, where, "issued_at"));
  ASSIGN_OR_RETURN(TimePoint not_after, GetTime(obj, where, "not_after"));
  return JwtKeyRecord{std::move(key_id), std::move(kid), std::move(key), issued_at, not_after};
}

// "current" / "next" of one kind: absent members are empty slots.
template <typename Record, typename Encode>
absl::StatusOr<json> EncodeSlots(const std::optional<Record>& current,
                                 const std::optional<Record>& next, Encode encode) {
  json slots = json::object();
  if (current.has_value()) {
    ASSIGN_OR_RETURN(slots["current"], encode(*current));
  }
  if (next.has_value()) {
    ASSIGN_OR_RETURN(slots["next"], encode(*next));
  }
  return slots;
}

template <typename Record, typename Decode>
absl::Status DecodeSlots(const json& doc, const char* name, Decode decode,
                         std::optional<Record>* current, std::optional<Record>* next) {
  ASSIGN_OR_RETURN(const json* slots, Member(doc, "document", name));
  if (!slots->is_object()) return Malformed(name, "not an object");
  for (auto [slot, out] : {std::pair{"current", current}, std::pair{"next", next}}) {
    auto it = slots->find(slot);
    if (it == slots->end()) continue;
    ASSIGN_OR_RETURN(*out, decode(*it, absl::StrCat(name, ".", slot)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EncodeJournal(const Journal& journal) {
  json doc = json::object();
  doc["version"] = kJournalVersion;
  doc["trust_domain"] = journal.trust_domain;
  doc["bundle_sequence"] = journal.bundle_sequence;
  ASSIGN_OR_RETURN(doc["x509_cas"],
                   EncodeSlots(journal.current_x509, journal.next_x509, EncodeX509));
  ASSIGN_OR_RETURN(doc["jwt_keys"], EncodeSlots(journal.current_jwt, journal.next_jwt, EncodeJwt));
  json x509 = json::array();
  for (const PublishedX509Authority& a : journal.x509_authorities) {
    x509.push_back(
        {{"cert", spiffe::Base64Encode(a.cert.ToDer())}, {"expires_at", ToUnix(a.expires_at)}});
  }
  doc["published_x509_authorities"] = std::move(x509);
  json jwt = json::array();
  for (const PublishedJwtKey& k : journal.jwt_keys) {
    ASSIGN_OR_RETURN(std::string spki, k.public_key.ToDer());
    jwt.push_back({{"kid", k.kid},
                   {"public_key", spiffe::Base64Encode(spki)},
                   {"expires_at", ToUnix(k.expires_at)}});
  }
  doc["published_jwt_keys"] = std::move(jwt);
  return spiffe::DumpJson(doc);
}

absl::StatusOr<Journal> DecodeJournal(std::string_view bytes) {
  ASSIGN_OR_RETURN(json doc, spiffe::ParseStrictJson(bytes, kMaxJournalBytes, kMaxJournalDepth),
                   Annotate(_, "ca journal"));
  if (!doc.is_object()) return Malformed("document", "not a JSON object");
  ASSIGN_OR_RETURN(int64_t version, GetInt(doc, "document", "version", INT64_MAX));
  if (version != kJournalVersion) {
    return Malformed("document", absl::StrCat("unknown version ", version));
  }
  Journal journal;
  ASSIGN_OR_RETURN(journal.trust_domain, GetString(doc, "document", "trust_domain"));
  ASSIGN_OR_RETURN(int64_t sequence, GetInt(doc, "document", "bundle_sequence", INT64_MAX));
  journal.bundle_sequence = static_cast<uint64_t>(sequence);
  RETURN_IF_ERROR(
      DecodeSlots(doc, "x509_cas", DecodeX509, &journal.current_x509, &journal.next_x509));
  RETURN_IF_ERROR(DecodeSlots(doc, "jwt_keys", DecodeJwt, &journal.current_jwt, &journal.next_jwt));

  ASSIGN_OR_RETURN(const json* x509, GetArray(doc, "document", "published_x509_authorities"));
  for (const json& item : *x509) {
    constexpr std::string_view kWhere = "published_x509_authorities";
    if (!item.is_object()) return Malformed(kWhere, "holds a non-object");
    ASSIGN_OR_RETURN(spiffe::Certificate cert, GetCert(item, kWhere, "cert"));
    ASSIGN_OR_RETURN(TimePoint expires_at, GetTime(item, kWhere, "expires_at"));
    journal.x509_authorities.push_back({std::move(cert), expires_at});
  }
  ASSIGN_OR_RETURN(const json* jwt, GetArray(doc, "document", "published_jwt_keys"));
  for (const json& item : *jwt) {
    constexpr std::string_view kWhere = "published_jwt_keys";
    if (!item.is_object()) return Malformed(kWhere, "holds a non-object");
    ASSIGN_OR_RETURN(std::string kid, GetString(item, kWhere, "kid"));
    if (kid.empty()) return Malformed(kWhere, "empty \"kid\"");
    ASSIGN_OR_RETURN(spiffe::PublicKey key, GetPublicKey(item, kWhere, "public_key"));
    ASSIGN_OR_RETURN(TimePoint expires_at, GetTime(item, kWhere, "expires_at"));
    journal.jwt_keys.push_back({std::move(kid), std::move(key), expires_at});
  }
  return journal;
}

}  // namespace tessera::server::ca
