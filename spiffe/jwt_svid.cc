#include "spiffe/jwt_svid.h"

#include <openssl/ec.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/strings.h"
#include "spiffe/base64.h"
#include "spiffe/jwk.h"
#include "spiffe/openssl.h"
#include "spiffe/strict_json.h"

namespace tessera::spiffe {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::system_clock;
using EcdsaSigPtr = OpenSslPtr<ECDSA_SIG, ECDSA_SIG_free>;

// A header holds three short strings; claims may carry structured extra claims.
constexpr int kMaxHeaderDepth = 4;
constexpr int kMaxPayloadDepth = 32;

enum class Family { kEcdsa, kRsaPkcs1, kRsaPss };

struct AlgInfo {
  JwtAlgorithm alg;
  std::string_view name;
  Family family;
  Digest digest;
  std::string_view curve;  // JWK curve name for ECDSA, empty otherwise
  size_t coordinate_size;  // bytes of r and s in the raw ECDSA signature
};

constexpr AlgInfo kAlgorithms[] = {
    {JwtAlgorithm::kRs256, "RS256", Family::kRsaPkcs1, Digest::kSha256, "", 0},
    {JwtAlgorithm::kRs384, "RS384", Family::kRsaPkcs1, Digest::kSha384, "", 0},
    {JwtAlgorithm::kRs512, "RS512", Family::kRsaPkcs1, Digest::kSha512, "", 0},
    {JwtAlgorithm::kEs256, "ES256", Family::kEcdsa, Digest::kSha256, "P-256", 32},
    {JwtAlgorithm::kEs384, "ES384", Family::kEcdsa, Digest::kSha384, "P-384", 48},
    {JwtAlgorithm::kEs512, "ES512", Family::kEcdsa, Digest::kSha512, "P-521", 66},
    {JwtAlgorithm::kPs256, "PS256", Family::kRsaPss, Digest::kSha256, "", 0},
    {JwtAlgorithm::kPs384, "PS384", Family::kRsaPss, Digest::kSha384, "", 0},
    {JwtAlgorithm::kPs512, "PS512", Family::kRsaPss, Digest::kSha512, "", 0},
};

const AlgInfo& Info(JwtAlgorithm alg) {
  for (const AlgInfo& info : kAlgorithms) {
    if (info.alg == alg) return info;
  }
  return kAlgorithms[0];  // unreachable: the table covers the enum
}

RsaPadding PaddingOf(const AlgInfo& info) {
  return info.family == Family::kRsaPss ? RsaPadding::kPss : RsaPadding::kPkcs1v15;
}

absl::Status Invalid(std::string_view message) {
  return absl::InvalidArgumentError(std::string(message));
}

std::string Quoted(std::string_view s) { return absl::StrCat("\"", AsAbsl(s), "\""); }

// ---- ECDSA signature forms: JWS uses r||s of fixed size, OpenSSL DER ECDSA-Sig-Value ----

absl::StatusOr<std::string> EcdsaDerToRaw(std::string_view der, size_t size) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (sig == nullptr)
    return OpenSslError("sign JWT: decode ECDSA signature", absl::StatusCode::kInternal);
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  if (static_cast<size_t>(BN_num_bytes(r)) > size || static_cast<size_t>(BN_num_bytes(s)) > size) {
    return absl::InternalError("sign JWT: ECDSA signature does not fit the curve");
  }
  std::string raw(2 * size, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  BN_bn2binpad(r, out, static_cast<int>(size));
  BN_bn2binpad(s, out + size, static_cast<int>(size));
  return raw;
}

absl::StatusOr<std::string> EcdsaRawToDer(std::string_view raw, size_t size) {
  if (raw.size() != 2 * size) {
    return Invalid(absl::StrCat("token signature must be ", 2 * size, " bytes, got ", raw.size()));
  }
  const auto* in = reinterpret_cast<const unsigned char*>(raw.data());
  BignumPtr r(BN_bin2bn(in, static_cast<int>(size), nullptr));
  BignumPtr s(BN_bin2bn(in + size, static_cast<int>(size), nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (r == nullptr || s == nullptr || sig == nullptr ||
      ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return OpenSslError("verify JWT: encode ECDSA signature", absl::StatusCode::kInternal);
  }
  r.release();  // owned by sig now
  s.release();
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0)
    return OpenSslError("verify JWT: encode ECDSA signature", absl::StatusCode::kInternal);
  std::string der(static_cast<size_t>(len), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_ECDSA_SIG(sig.get(), &out);
  return der;
}

// ---- NumericDate ----

int64_t ToSeconds(Clock::time_point t) {
  return std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
}

Clock::time_point FromSecondsClamped(int64_t s) {
  const int64_t max = ToSeconds(Clock::time_point::max());
  const int64_t min = ToSeconds(Clock::time_point::min()) + 1;
  return Clock::time_point(std::chrono::seconds(std::clamp(s, min, max)));
}

// A NumericDate claim as whole seconds (fractions rounded down).
absl::StatusOr<int64_t> NumericDate(const Json& value, std::string_view claim) {
  // Far beyond any real date but safe to add a leeway to and to convert to double.
  constexpr int64_t kLimit = int64_t{1} << 52;
  auto out_of_range = [&] {
    return Invalid(absl::StrCat("token ", Quoted(claim), " is out of range"));
  };
  if (value.is_number_unsigned()) {
    uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(kLimit)) return out_of_range();
    return static_cast<int64_t>(v);
  }
  if (value.is_number_integer()) {
    int64_t v = value.get<int64_t>();
    if (v > kLimit || v < -kLimit) return out_of_range();
    return v;
  }
  if (value.is_number_float()) {
    double v = value.get<double>();
    if (!std::isfinite(v) || v > static_cast<double>(kLimit) || v < -static_cast<double>(kLimit)) {
      return out_of_range();
    }
    return static_cast<int64_t>(std::floor(v));
  }
  return Invalid(absl::StrCat("token ", Quoted(claim), " must be a number"));
}

// ---- parsing ----

// Everything read from a token; `subject` is set once parsing succeeded.
struct ParsedToken {
  const AlgInfo* alg = nullptr;
  std::string key_id;
  std::optional<SpiffeId> subject;
  std::vector<std::string> audience;
  Json claims;
  std::string_view signing_input;
  std::string signature;
  int64_t exp = 0;
  std::optional<int64_t> nbf;
  std::optional<int64_t> iat;
};

// Header rules, in the order the SPIFFE spec asks: the algorithm first.
absl::Status ReadHeader(const Json& header, ParsedToken& out) {
  if (!header.is_object()) return Invalid("token header must be a JSON object");
  auto alg = header.find("alg");
  if (alg == header.end()) return Invalid("token header missing algorithm");
  if (!alg->is_string()) return Invalid("token header algorithm must be a string");
  ASSIGN_OR_RETURN(JwtAlgorithm algorithm, ParseJwtAlgorithm(alg->get_ref<const std::string&>()));
  out.alg = &Info(algorithm);
  if (auto typ = header.find("typ"); typ != header.end()) {
    if (!typ->is_string()) return Invalid("token header type must be a string");
    const std::string& value = typ->get_ref<const std::string&>();
    if (value != "JWT" && value != "JOSE") {
      return Invalid(absl::StrCat("unsupported token type ", Quoted(value)));
    }
  }
  auto kid = header.find("kid");
  if (kid == header.end()) return Invalid("token header missing key id");
  if (!kid->is_string()) return Invalid("token header key id must be a string");
  if (kid->get_ref<const std::string&>().empty()) return Invalid("token header missing key id");
  out.key_id = kid->get_ref<const std::string&>();
  for (const auto& [name, value] : header.items()) {
    if (name != "alg" && name != "kid" && name != "typ") {
      return Invalid(absl::StrCat("token header has unsupported parameter ", Quoted(name)));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadClaims(Json claims, ParsedToken& out) {
  if (!claims.is_object()) return Invalid("token payload must be a JSON object");
  auto sub = claims.find("sub");
  if (sub == claims.end()) return Invalid("token missing subject");
  if (!sub->is_string()) return Invalid("token subject must be a string");
  ASSIGN_OR_RETURN(out.subject, SpiffeId::Parse(sub->get_ref<const std::string&>()),
                   Annotate(_, "token subject"));

  auto aud = claims.find("aud");
  if (aud == claims.end()) return Invalid("token missing audience");
  // RFC 7519 §4.1.3: one string or an array of strings. A string is one audience, never a
  // sequence of characters.
  if (aud->is_string()) {
    out.audience.push_back(aud->get_ref<const std::string&>());
  } else if (aud->is_array()) {
    for (const Json& value : *aud) {
      if (!value.is_string()) return Invalid("token audience must be a string or array of strings");
      out.audience.push_back(value.get_ref<const std::string&>());
    }
  } else {
    return Invalid("token audience must be a string or array of strings");
  }
  if (out.audience.empty()) return Invalid("token audience is empty");

  auto exp = claims.find("exp");
  if (exp == claims.end()) return Invalid("token missing expiry");
  ASSIGN_OR_RETURN(out.exp, NumericDate(*exp, "exp"));
  if (auto nbf = claims.find("nbf"); nbf != claims.end()) {
    ASSIGN_OR_RETURN(out.nbf, NumericDate(*nbf, "nbf"));
  }
  if (auto iat = claims.find("iat"); iat != claims.end()) {
    ASSIGN_OR_RETURN(out.iat, NumericDate(*iat, "iat"));
  }
  out.claims = std::move(claims);
  return absl::OkStatus();
}

absl::StatusOr<ParsedToken> ParseToken(std::string_view token) {
  if (token.size() > kMaxJwtSvidBytes) {
    return Invalid(absl::StrCat("token is larger than ", kMaxJwtSvidBytes, " bytes"));
  }
  // JWS Compact only: exactly three parts (a JWE has five, JSON serialization none).
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Invalid("token must be JWS compact serialization with three parts");
  }
  std::string_view header_b64 = token.substr(0, dot1);
  std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view signature_b64 = token.substr(dot2 + 1);

  ParsedToken out;
  ASSIGN_OR_RETURN(std::string header_text, Base64UrlDecode(header_b64),
                   Annotate(_, "token header"));
  ASSIGN_OR_RETURN(Json header, ParseStrictJson(header_text, kMaxJwtSvidBytes, kMaxHeaderDepth),
                   Annotate(_, "token header"));
  RETURN_IF_ERROR(ReadHeader(header, out));

  if (signature_b64.empty()) return Invalid("token signature is empty");
  ASSIGN_OR_RETURN(out.signature, Base64UrlDecode(signature_b64), Annotate(_, "token signature"));

  ASSIGN_OR_RETURN(std::string payload_text, Base64UrlDecode(payload_b64),
                   Annotate(_, "token payload"));
  ASSIGN_OR_RETURN(Json claims, ParseStrictJson(payload_text, kMaxJwtSvidBytes, kMaxPayloadDepth),
                   Annotate(_, "token payload"));
  RETURN_IF_ERROR(ReadClaims(std::move(claims), out));
  out.signing_input = token.substr(0, dot2);
  return out;
}

JwtSvid ToSvid(ParsedToken parsed, std::string_view token) {
  return JwtSvid{.subject = std::move(*parsed.subject),
                 .audience = std::move(parsed.audience),
                 .expiry = FromSecondsClamped(parsed.exp),
                 .algorithm = parsed.alg->alg,
                 .key_id = std::move(parsed.key_id),
                 .claims = std::move(parsed.claims),
                 .token = std::string(token)};
}

absl::Status VerifySignature(const ParsedToken& token, const PublicKey& key) {
  const AlgInfo& info = *token.alg;
  std::string der;
  std::string_view signature = token.signature;
  if (info.family == Family::kEcdsa) {
    ASSIGN_OR_RETURN(der, EcdsaRawToDer(token.signature, info.coordinate_size));
    signature = der;
  }
  absl::Status status = key.Verify(token.signing_input, signature, info.digest, PaddingOf(info));
  if (status.code() == absl::StatusCode::kInvalidArgument) {
    return Invalid("token signature is invalid");
  }
  return status;
}

absl::Status CheckTimes(const ParsedToken& token, std::chrono::system_clock::time_point now) {
  const int64_t now_s = ToSeconds(now);
  const int64_t leeway = kJwtLeeway.count();
  if (token.exp < now_s - leeway) return Invalid("token has expired");
  if (token.nbf && *token.nbf > now_s + leeway) return Invalid("token is not valid yet");
  if (token.iat && *token.iat > now_s + leeway) return Invalid("token was issued in the future");
  return absl::OkStatus();
}

std::string JoinQuoted(const std::vector<std::string>& values) {
  std::vector<std::string> quoted;
  quoted.reserve(values.size());
  for (const std::string& v : values) quoted.push_back(Quoted(v));
  return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
}

}  // namespace

std::string_view JwtAlgorithmName(JwtAlgorithm alg) { return Info(alg).name; }

absl::StatusOr<JwtAlgorithm> ParseJwtAlgorithm(std::string_view name) {
  for (const AlgInfo& info : kAlgorithms) {
    if (info.name == name) return info.alg;
  }
  return Invalid(absl::StrCat("unsupported algorithm ", Quoted(name)));
}

bool KeyFitsJwtAlgorithm(const PublicKey& key, JwtAlgorithm alg) {
  const AlgInfo& info = Info(alg);
  if (info.family == Family::kEcdsa) return key.IsEc() && JwkCurveName(key) == info.curve;
  return key.IsRsa();
}

absl::StatusOr<JwtAlgorithm> DefaultJwtAlgorithm(const PublicKey& key) {
  if (key.IsRsa()) return JwtAlgorithm::kRs256;
  if (key.IsEc()) {
    std::optional<std::string_view> curve = JwkCurveName(key);
    for (const AlgInfo& info : kAlgorithms) {
      if (info.family == Family::kEcdsa && curve == info.curve) return info.alg;
    }
  }
  return Invalid("no JWT algorithm for this key type");
}

absl::StatusOr<std::string> SignJwtSvid(const JwtSvidClaims& claims, const PrivateKey& key,
                                        std::string_view key_id,
                                        std::optional<JwtAlgorithm> algorithm) {
  if (key_id.empty()) return Invalid("sign JWT: key id is required");
  if (claims.audience.empty()) return Invalid("sign JWT: audience is required");
  for (const std::string& aud : claims.audience) {
    if (aud.empty()) return Invalid("sign JWT: audience values cannot be empty");
  }
  if (!claims.extra.is_null() && !claims.extra.is_object()) {
    return Invalid("sign JWT: extra claims must be a JSON object");
  }
  PublicKey public_key = key.public_key();
  JwtAlgorithm alg;
  if (algorithm) {
    alg = *algorithm;
  } else {
    ASSIGN_OR_RETURN(alg, DefaultJwtAlgorithm(public_key), Annotate(_, "sign JWT"));
  }
  const AlgInfo& info = Info(alg);
  if (!KeyFitsJwtAlgorithm(public_key, alg)) {
    return Invalid(absl::StrCat("sign JWT: key cannot sign ", AsAbsl(info.name)));
  }

  Json payload = claims.extra.is_object() ? claims.extra : Json::object();
  for (const char* reserved : {"sub", "aud", "exp", "iat"}) {
    if (payload.contains(reserved)) {
      return Invalid(absl::StrCat("sign JWT: extra claim ", Quoted(reserved),
                                  " conflicts with a standard claim"));
    }
  }
  payload["sub"] = claims.subject.str();
  if (claims.audience.size() == 1) {
    payload["aud"] = claims.audience[0];
  } else {
    payload["aud"] = claims.audience;
  }
  payload["exp"] = ToSeconds(claims.expiry);
  if (claims.issued_at) payload["iat"] = ToSeconds(*claims.issued_at);
  Json header = {{"alg", info.name}, {"kid", key_id}, {"typ", "JWT"}};

  ASSIGN_OR_RETURN(std::string header_text, DumpJson(header), Annotate(_, "sign JWT: header"));
  ASSIGN_OR_RETURN(std::string payload_text, DumpJson(payload), Annotate(_, "sign JWT: claims"));
  std::string token =
      absl::StrCat(Base64UrlEncode(header_text), ".", Base64UrlEncode(payload_text));
  ASSIGN_OR_RETURN(std::string signature, key.Sign(token, info.digest, PaddingOf(info)),
                   Annotate(_, "sign JWT"));
  if (info.family == Family::kEcdsa) {
    ASSIGN_OR_RETURN(signature, EcdsaDerToRaw(signature, info.coordinate_size));
  }
  absl::StrAppend(&token, ".", Base64UrlEncode(signature));
  return token;
}

absl::StatusOr<JwtSvid> ParseJwtSvidInsecure(std::string_view token) {
  ASSIGN_OR_RETURN(ParsedToken parsed, ParseToken(token));
  return ToSvid(std::move(parsed), token);
}

absl::StatusOr<JwtSvid> ParseAndValidateJwtSvid(std::string_view token,
                                                const JwtAuthoritySource& authorities,
                                                const std::vector<std::string>& expected_audience,
                                                std::chrono::system_clock::time_point now) {
  // An empty expectation would make the audience check vacuous (SPIFFE-FACTS §7.5).
  if (expected_audience.empty()) return Invalid("expected audience must not be empty");
  for (const std::string& aud : expected_audience) {
    if (aud.empty()) return Invalid("expected audience values cannot be empty");
  }
  ASSIGN_OR_RETURN(ParsedToken parsed, ParseToken(token));

  // Only the subject's own trust domain may vouch for it (SPIFFE-FACTS §7.2).
  TrustDomain td = parsed.subject->trust_domain();
  const JwtAuthorities* keys = authorities.JwtAuthoritiesFor(td);
  if (keys == nullptr) {
    return Invalid(absl::StrCat("no JWT authority for trust domain ", Quoted(td.name())));
  }
  auto key = keys->find(parsed.key_id);
  if (key == keys->end()) {
    return Invalid(absl::StrCat("no JWT authority with key id ", Quoted(parsed.key_id),
                                " for trust domain ", Quoted(td.name())));
  }
  if (!KeyFitsJwtAlgorithm(key->second, parsed.alg->alg)) {
    return Invalid(absl::StrCat("key id ", Quoted(parsed.key_id), " cannot verify ",
                                AsAbsl(parsed.alg->name), " tokens"));
  }
  RETURN_IF_ERROR(VerifySignature(parsed, key->second));
  RETURN_IF_ERROR(CheckTimes(parsed, now));

  bool audience_ok =
      std::any_of(expected_audience.begin(), expected_audience.end(), [&](const std::string& want) {
        return std::find(parsed.audience.begin(), parsed.audience.end(), want) !=
               parsed.audience.end();
      });
  if (!audience_ok) {
    return Invalid(absl::StrCat("audience mismatch: token is for ", JoinQuoted(parsed.audience),
                                ", expected one of ", JoinQuoted(expected_audience)));
  }
  return ToSvid(std::move(parsed), token);
}

}  // namespace tessera::spiffe
