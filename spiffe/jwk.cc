#include "spiffe/jwk.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "spiffe/base64.h"
#include "spiffe/openssl.h"

namespace tessera::spiffe {
namespace {

using ParamBldPtr = OpenSslPtr<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using ParamPtr = OpenSslPtr<OSSL_PARAM, OSSL_PARAM_free>;

constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;
constexpr int kMaxRsaExponentBytes = 8;

struct Curve {
  std::string_view jwk_name;
  std::string_view openssl_name;
  size_t coordinate_size;
};

constexpr Curve kCurves[] = {
    {"P-256", "prime256v1", 32},
    {"P-384", "secp384r1", 48},
    {"P-521", "secp521r1", 66},
};

const Curve* CurveByJwkName(std::string_view name) {
  for (const Curve& c : kCurves) {
    if (c.jwk_name == name) return &c;
  }
  return nullptr;
}

const Curve* CurveOf(EVP_PKEY* pkey) {
  if (pkey == nullptr || !EVP_PKEY_is_a(pkey, "EC")) return nullptr;
  char name[64];
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &len) !=
      1) {
    return nullptr;
  }
  std::string_view group(name, len);
  for (const Curve& c : kCurves) {
    if (c.openssl_name == group) return &c;
  }
  return nullptr;
}

absl::Status JwkError(std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("jwk: ", AsAbsl(why)));
}

absl::StatusOr<BignumPtr> GetBn(EVP_PKEY* pkey, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) {
    return OpenSslError(absl::StrCat("jwk: read key parameter ", name),
                        absl::StatusCode::kInternal);
  }
  return BignumPtr(bn);
}

std::string BnToBytes(const BIGNUM* bn, size_t size) {
  std::string out(size, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(size));
  return out;
}

// A required base64url member of `jwk`.
absl::StatusOr<std::string> Member(const nlohmann::json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end()) return JwkError(absl::StrCat("missing \"", name, "\""));
  if (!it->is_string()) return JwkError(absl::StrCat("\"", name, "\" must be a string"));
  ASSIGN_OR_RETURN(std::string bytes, Base64UrlDecode(it->get_ref<const std::string&>()),
                   Annotate(_, absl::StrCat("jwk: \"", name, "\"")));
  return bytes;
}

absl::StatusOr<PublicKey> FromParams(const char* type, const OSSL_PARAM* params) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return OpenSslError("jwk: create key context", absl::StatusCode::kInternal);
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params)) !=
      1) {
    return OpenSslError("jwk: invalid key parameters");
  }
  EvpPkeyPtr pkey(raw);
  return PublicKey::FromEvp(pkey.get());
}

absl::StatusOr<PublicKey> EcFromJwk(const nlohmann::json& jwk) {
  auto crv = jwk.find("crv");
  if (crv == jwk.end()) return JwkError("missing \"crv\"");
  if (!crv->is_string()) return JwkError("\"crv\" must be a string");
  const std::string& crv_name = crv->get_ref<const std::string&>();
  const Curve* curve = CurveByJwkName(crv_name);
  if (curve == nullptr) return JwkError(absl::StrCat("unsupported curve \"", crv_name, "\""));
  ASSIGN_OR_RETURN(std::string x, Member(jwk, "x"));
  ASSIGN_OR_RETURN(std::string y, Member(jwk, "y"));
  if (x.size() != curve->coordinate_size || y.size() != curve->coordinate_size) {
    return JwkError(absl::StrCat("coordinates must be ", curve->coordinate_size, " bytes for ",
                                 AsAbsl(curve->jwk_name)));
  }
  std::string point = absl::StrCat("\x04", x, y);
  std::string group(curve->openssl_name);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end(),
  };
  ASSIGN_OR_RETURN(PublicKey key, FromParams("EC", params));
  // Importing does not promise a full check; a point off the curve enables invalid-curve
  // attacks, so ask explicitly.
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
    ERR_clear_error();
    return JwkError("point is not on curve");
  }
  return key;
}

absl::StatusOr<PublicKey> RsaFromJwk(const nlohmann::json& jwk) {
  ASSIGN_OR_RETURN(std::string n_bytes, Member(jwk, "n"));
  ASSIGN_OR_RETURN(std::string e_bytes, Member(jwk, "e"));
  BignumPtr n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n_bytes.data()),
                        static_cast<int>(n_bytes.size()), nullptr));
  BignumPtr e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e_bytes.data()),
                        static_cast<int>(e_bytes.size()), nullptr));
  if (n == nullptr || e == nullptr) return OpenSslError("jwk: decode RSA parameters");
  int bits = BN_num_bits(n.get());
  if (bits < kMinRsaBits || bits > kMaxRsaBits) {
    return JwkError(absl::StrCat("RSA modulus must be ", kMinRsaBits, " to ", kMaxRsaBits,
                                 " bits, got ", bits));
  }
  if (!BN_is_odd(n.get())) return JwkError("RSA modulus must be odd");
  if (BN_num_bytes(e.get()) > kMaxRsaExponentBytes || !BN_is_odd(e.get()) || BN_is_one(e.get())) {
    return JwkError("invalid RSA public exponent");
  }
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return OpenSslError("jwk: build RSA parameters", absl::StatusCode::kInternal);
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (params == nullptr) {
    return OpenSslError("jwk: build RSA parameters", absl::StatusCode::kInternal);
  }
  return FromParams("RSA", params.get());
}

}  // namespace

bool IsSupportedJwkKeyType(std::string_view kty) { return kty == "EC" || kty == "RSA"; }

std::optional<std::string_view> JwkCurveName(const PublicKey& key) {
  const Curve* curve = CurveOf(key.get());
  if (curve == nullptr) return std::nullopt;
  return curve->jwk_name;
}

absl::StatusOr<nlohmann::json> PublicKeyToJwk(const PublicKey& key) {
  EVP_PKEY* pkey = key.get();
  if (pkey == nullptr) return JwkError("no key");
  if (EVP_PKEY_is_a(pkey, "EC")) {
    const Curve* curve = CurveOf(pkey);
    if (curve == nullptr) return JwkError("unsupported EC curve");
    ASSIGN_OR_RETURN(BignumPtr x, GetBn(pkey, OSSL_PKEY_PARAM_EC_PUB_X));
    ASSIGN_OR_RETURN(BignumPtr y, GetBn(pkey, OSSL_PKEY_PARAM_EC_PUB_Y));
    return nlohmann::json{
        {"kty", "EC"},
        {"crv", curve->jwk_name},
        {"x", Base64UrlEncode(BnToBytes(x.get(), curve->coordinate_size))},
        {"y", Base64UrlEncode(BnToBytes(y.get(), curve->coordinate_size))},
    };
  }
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    ASSIGN_OR_RETURN(BignumPtr n, GetBn(pkey, OSSL_PKEY_PARAM_RSA_N));
    ASSIGN_OR_RETURN(BignumPtr e, GetBn(pkey, OSSL_PKEY_PARAM_RSA_E));
    // RFC 7518 §6.3.1: the minimum number of octets, so no sign byte.
    return nlohmann::json{
        {"kty", "RSA"},
        {"n", Base64UrlEncode(BnToBytes(n.get(), BN_num_bytes(n.get())))},
        {"e", Base64UrlEncode(BnToBytes(e.get(), BN_num_bytes(e.get())))},
    };
  }
  return JwkError("unsupported key type");
}

absl::StatusOr<PublicKey> PublicKeyFromJwk(const nlohmann::json& jwk) {
  if (!jwk.is_object()) return JwkError("must be a JSON object");
  auto kty = jwk.find("kty");
  if (kty == jwk.end()) return JwkError("missing \"kty\"");
  if (!kty->is_string()) return JwkError("\"kty\" must be a string");
  if (jwk.contains("d")) return JwkError("contains private key material");
  const std::string& type = kty->get_ref<const std::string&>();
  if (type == "EC") return EcFromJwk(jwk);
  if (type == "RSA") return RsaFromJwk(jwk);
  return JwkError(absl::StrCat("unsupported key type \"", type, "\""));
}

}  // namespace tessera::spiffe
