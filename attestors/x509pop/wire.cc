#include "attestors/x509pop/wire.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"
#include "spiffe/base64.h"
#include "spiffe/strict_json.h"

namespace tessera::attestors::x509pop {
namespace {

using Json = nlohmann::json;

// Legitimate documents nest two levels deep; unknown members may nest a little more.
constexpr int kMaxDepth = 16;

// Base64 needs no JSON escaping, so the documents are assembled directly: the bytes are then
// exactly Go's json.Marshal output (struct field order, no spaces).
std::string Bytes(std::string_view data) {
  return absl::StrCat("\"", spiffe::Base64Encode(data), "\"");
}

// Go's encoding/json folds a member name by upper-casing ASCII letters and mapping every other
// rune to the smallest rune of its Unicode fold set. Our field names are ASCII, so the only
// non-ASCII runes that can match are those folding onto an ASCII letter: U+017F (long s, onto
// 'S') and U+212A (Kelvin sign, onto 'K'). Any other non-ASCII byte is kept, and never matches.
std::string Fold(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c >= 'a' && c <= 'z') {
      out.push_back(static_cast<char>(c - 'a' + 'A'));
    } else if (name.substr(i, 2) == "\xC5\xBF") {
      out.push_back('S');
      ++i;
    } else if (name.substr(i, 3) == "\xE2\x84\xAA") {
      out.push_back('K');
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// The member of `object` that names `field`, or nullptr when there is none.
absl::StatusOr<const Json*> Member(const Json& object, std::string_view field) {
  const std::string folded = Fold(field);
  const Json* found = nullptr;
  for (const auto& [key, value] : object.items()) {
    if (Fold(key) != folded) continue;
    if (found != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("more than one member names field \"", AsAbsl(field), "\""));
    }
    found = &value;
  }
  return found;
}

absl::Status WrongType(std::string_view field, std::string_view want, const Json& got) {
  return absl::InvalidArgumentError(absl::StrCat("field \"", AsAbsl(field), "\": want ",
                                                 AsAbsl(want), ", got ", got.type_name()));
}

// A Go []byte: null or absent is empty, otherwise a base64 string.
absl::StatusOr<std::string> DecodeBytes(const Json* value, std::string_view field) {
  if (value == nullptr || value->is_null()) return std::string();
  if (!value->is_string()) return WrongType(field, "a base64 string", *value);
  ASSIGN_OR_RETURN(std::string bytes, spiffe::Base64Decode(value->get_ref<const std::string&>()),
                   Annotate(_, absl::StrCat("field \"", AsAbsl(field), "\"")));
  return bytes;
}

absl::StatusOr<std::string> BytesMember(const Json& object, std::string_view field) {
  ASSIGN_OR_RETURN(const Json* value, Member(object, field));
  return DecodeBytes(value, field);
}

// The top level of a document: an object, or null (which Go decodes as the zero struct, so it
// is treated as the empty object).
absl::StatusOr<Json> ParseDocument(std::string_view json) {
  ASSIGN_OR_RETURN(Json doc, spiffe::ParseStrictJson(json, kMaxDocumentBytes, kMaxDepth));
  if (doc.is_null()) return Json::object();
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("want a JSON object or null, got ", doc.type_name()));
  }
  return doc;
}

// A Go pointer-to-struct member: null or absent is nullopt, otherwise an object.
absl::StatusOr<const Json*> ObjectMember(const Json& object, std::string_view field) {
  ASSIGN_OR_RETURN(const Json* value, Member(object, field));
  if (value == nullptr || value->is_null()) return nullptr;
  if (!value->is_object()) return WrongType(field, "an object or null", *value);
  return value;
}

absl::StatusOr<std::optional<SignatureChallenge>> DecodeSignatureChallenge(const Json& object,
                                                                           std::string_view field) {
  ASSIGN_OR_RETURN(const Json* member, ObjectMember(object, field));
  if (member == nullptr) return std::nullopt;
  SignatureChallenge challenge;
  ASSIGN_OR_RETURN(challenge.nonce, BytesMember(*member, "nonce"),
                   Annotate(_, absl::StrCat("field \"", AsAbsl(field), "\"")));
  return challenge;
}

}  // namespace

std::string EncodeAttestationData(const AttestationData& data) {
  std::string out = "{\"certificates\":[";
  for (size_t i = 0; i < data.certificates.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += Bytes(data.certificates[i]);
  }
  out += "]}";
  return out;
}

std::string EncodeChallenge(const Challenge& challenge) {
  auto one = [](const std::optional<SignatureChallenge>& c) {
    return c.has_value() ? absl::StrCat("{\"nonce\":", Bytes(c->nonce), "}") : "null";
  };
  return absl::StrCat("{\"rsa_signature\":", one(challenge.rsa_signature),
                      ",\"ecdsa_signature\":", one(challenge.ecdsa_signature), "}");
}

std::string EncodeResponse(const Response& response) {
  std::string rsa = "null";
  if (response.rsa_signature.has_value()) {
    rsa = absl::StrCat("{\"nonce\":", Bytes(response.rsa_signature->nonce),
                       ",\"signature\":", Bytes(response.rsa_signature->signature), "}");
  }
  std::string ecdsa = "null";
  if (response.ecdsa_signature.has_value()) {
    const EcdsaSignatureResponse& e = *response.ecdsa_signature;
    ecdsa = absl::StrCat("{\"nonce\":", Bytes(e.nonce), ",\"r\":", Bytes(e.r),
                         ",\"s\":", Bytes(e.s), "}");
  }
  return absl::StrCat("{\"rsa_signature\":", rsa, ",\"ecdsa_signature\":", ecdsa, "}");
}

absl::StatusOr<AttestationData> DecodeAttestationData(std::string_view json) {
  ASSIGN_OR_RETURN(Json doc, ParseDocument(json));
  ASSIGN_OR_RETURN(const Json* certs, Member(doc, "certificates"));
  AttestationData data;
  if (certs == nullptr || certs->is_null()) return data;
  if (!certs->is_array()) return WrongType("certificates", "an array or null", *certs);
  data.certificates.reserve(certs->size());
  for (const Json& cert : *certs) {
    ASSIGN_OR_RETURN(std::string der, DecodeBytes(&cert, "certificates"));
    data.certificates.push_back(std::move(der));
  }
  return data;
}

absl::StatusOr<Challenge> DecodeChallenge(std::string_view json) {
  ASSIGN_OR_RETURN(Json doc, ParseDocument(json));
  Challenge challenge;
  ASSIGN_OR_RETURN(challenge.rsa_signature, DecodeSignatureChallenge(doc, "rsa_signature"));
  ASSIGN_OR_RETURN(challenge.ecdsa_signature, DecodeSignatureChallenge(doc, "ecdsa_signature"));
  return challenge;
}

absl::StatusOr<Response> DecodeResponse(std::string_view json) {
  ASSIGN_OR_RETURN(Json doc, ParseDocument(json));
  Response response;
  ASSIGN_OR_RETURN(const Json* rsa, ObjectMember(doc, "rsa_signature"));
  if (rsa != nullptr) {
    RsaSignatureResponse r;
    ASSIGN_OR_RETURN(r.nonce, BytesMember(*rsa, "nonce"), Annotate(_, "field \"rsa_signature\""));
    ASSIGN_OR_RETURN(r.signature, BytesMember(*rsa, "signature"),
                     Annotate(_, "field \"rsa_signature\""));
    response.rsa_signature = std::move(r);
  }
  ASSIGN_OR_RETURN(const Json* ecdsa, ObjectMember(doc, "ecdsa_signature"));
  if (ecdsa != nullptr) {
    EcdsaSignatureResponse e;
    ASSIGN_OR_RETURN(e.nonce, BytesMember(*ecdsa, "nonce"),
                     Annotate(_, "field \"ecdsa_signature\""));
    ASSIGN_OR_RETURN(e.r, BytesMember(*ecdsa, "r"), Annotate(_, "field \"ecdsa_signature\""));
    ASSIGN_OR_RETURN(e.s, BytesMember(*ecdsa, "s"), Annotate(_, "field \"ecdsa_signature\""));
    response.ecdsa_signature = std::move(e);
  }
  return response;
}

}  // namespace tessera::attestors::x509pop
