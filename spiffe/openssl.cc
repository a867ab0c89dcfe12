#include "spiffe/openssl.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include <climits>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "spiffe/x509_internal.h"

namespace tessera::spiffe {
namespace {

// ---- EC keys without encoders and decoders (see x509_internal.h) ----

// Keys made once per supported curve, copied (cheaply: EVP_PKEY_dup) and completed with a point.
struct CurveTemplates {
  // Uncompressed point length: 1 + 2 * field bytes.
  size_t point_len = 0;
  // A provider key with the curve's parameters (named curve) and no point.
  EVP_PKEY* params = nullptr;
  // A legacy (EC_KEY) key on the curve, its point that of a throwaway key.
  EVP_PKEY* legacy = nullptr;
};

CurveTemplates MakeCurveTemplates(const char* group, size_t point_len) {
  CurveTemplates out{.point_len = point_len};
  ERR_set_mark();
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* params_key = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &params_key, EVP_PKEY_KEY_PARAMETERS, params) != 1) {
    ERR_pop_to_mark();
    return out;
  }
  // d2i_PublicKey turns a provider EC key given to it into a legacy one holding the point it reads.
  EvpPkeyPtr throwaway(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", group));
  unsigned char point[133];
  size_t len = 0;
  EvpPkeyPtr legacy(EVP_PKEY_dup(params_key));
  EVP_PKEY* target = legacy.get();
  const unsigned char* in = point;
  if (throwaway == nullptr || legacy == nullptr ||
      EVP_PKEY_get_octet_string_param(throwaway.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                      sizeof(point), &len) != 1 ||
      len != point_len ||
      d2i_PublicKey(EVP_PKEY_EC, &target, &in, static_cast<long>(len)) == nullptr ||
      EVP_PKEY_get0_provider(legacy.get()) != nullptr) {
    EVP_PKEY_free(params_key);
    ERR_pop_to_mark();
    return out;
  }
  ERR_pop_to_mark();
  out.params = params_key;
  out.legacy = legacy.release();
  return out;
}

// The templates of the curve `nid` names, nullptr for other curves or if they could not be made.
// Made on first use and kept for the life of the process; only ever read (copied) after that.
const CurveTemplates* TemplatesFor(int nid) {
  const CurveTemplates* out = nullptr;
  if (nid == NID_X9_62_prime256v1) {
    static const CurveTemplates p256 = MakeCurveTemplates("P-256", 65);
    out = &p256;
  } else if (nid == NID_secp384r1) {
    static const CurveTemplates p384 = MakeCurveTemplates("P-384", 97);
    out = &p384;
  }
  return out != nullptr && out->params != nullptr ? out : nullptr;
}

// The templates of an EC `key`'s curve (by the name its provider gives it), or nullptr.
const CurveTemplates* TemplatesOf(EVP_PKEY* key) {
  char name[80] = {0};
  size_t len = 0;
  if (!EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_group_name(key, name, sizeof(name), &len) != 1) {
    return nullptr;
  }
  int nid = OBJ_sn2nid(name);
  if (nid == NID_undef) nid = OBJ_ln2nid(name);
  return TemplatesFor(nid);
}

}  // namespace

absl::Status OpenSslError(std::string_view context, absl::StatusCode code) {
  // The oldest entry is the root cause (later ones are added by callers further up OpenSSL's
  // stack), so it is the one worth reporting; the rest is drained so that it cannot leak into
  // the next, unrelated failure on this thread.
  unsigned long first = ERR_get_error();
  while (ERR_get_error() != 0) {
  }
  std::string detail = "unknown error";
  if (first != 0) {
    const char* lib = ERR_lib_error_string(first);
    const char* reason = ERR_reason_error_string(first);
    if (reason != nullptr) {
      detail = lib != nullptr ? absl::StrCat(lib, ": ", reason) : std::string(reason);
    } else {
      char buf[256];
      ERR_error_string_n(first, buf, sizeof(buf));
      detail = buf;
    }
  }
  return absl::Status(code, absl::StrCat(AsAbsl(context), ": ", detail));
}

OSSL_LIB_CTX* KeylessDecodeContext() {
  // Made once and kept for the life of the process (decoded objects remember their context).
  // Loading a provider explicitly also keeps OpenSSL from falling back to the default one.
  static OSSL_LIB_CTX* const context = [] {
    ERR_set_mark();
    OSSL_LIB_CTX* ctx = OSSL_LIB_CTX_new();
    if (ctx != nullptr && OSSL_PROVIDER_load(ctx, "null") == nullptr) {
      OSSL_LIB_CTX_free(ctx);
      ctx = nullptr;
    }
    ERR_pop_to_mark();
    return ctx;
  }();
  return context;
}

BioPtr MemBio(std::string_view data) {
  // BIO_new_mem_buf wants a non-null pointer even for an empty buffer, and an int length.
  if (data.size() > static_cast<size_t>(INT_MAX)) return nullptr;
  const char* ptr = data.empty() ? "" : data.data();
  return BioPtr(BIO_new_mem_buf(ptr, static_cast<int>(data.size())));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) return {};
  return std::string(data, static_cast<size_t>(len));
}

namespace internal {

namespace {

// The curve's templates and the point of `spki` when it is id-ecPublicKey on the named curve P-256
// or P-384 with an uncompressed point of the right length (not yet checked to be on the curve).
const CurveTemplates* CommonEcSpki(const X509_PUBKEY* spki, std::string_view* point) {
  ASN1_OBJECT* algorithm = nullptr;
  const unsigned char* data = nullptr;
  int len = 0;
  X509_ALGOR* algor = nullptr;
  if (spki == nullptr || X509_PUBKEY_get0_param(&algorithm, &data, &len, &algor, spki) != 1 ||
      OBJ_obj2nid(algorithm) != NID_X9_62_id_ecPublicKey) {
    return nullptr;
  }
  int param_type = V_ASN1_UNDEF;
  const void* param = nullptr;
  X509_ALGOR_get0(nullptr, &param_type, &param, algor);
  if (param_type != V_ASN1_OBJECT) return nullptr;  // explicit or absent curve parameters
  const int curve = OBJ_obj2nid(static_cast<const ASN1_OBJECT*>(param));
  const CurveTemplates* templates = TemplatesFor(curve);
  if (templates == nullptr || data == nullptr || static_cast<size_t>(len) != templates->point_len ||
      data[0] != POINT_CONVERSION_UNCOMPRESSED) {
    return nullptr;
  }
  *point = std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
  return templates;
}

// A legacy copy of the curve's template key with `point` in place of its own.
EvpPkeyPtr LegacyKeyWithPoint(const CurveTemplates& templates, std::string_view point) {
  EvpPkeyPtr legacy(EVP_PKEY_dup(templates.legacy));
  EVP_PKEY* target = legacy.get();
  const auto* in = reinterpret_cast<const unsigned char*>(point.data());
  // On a legacy EC key, d2i_PublicKey keeps the curve and replaces the point (o2i_ECPublicKey).
  if (legacy == nullptr ||
      d2i_PublicKey(EVP_PKEY_EC, &target, &in, static_cast<long>(point.size())) != legacy.get() ||
      in != reinterpret_cast<const unsigned char*>(point.data()) + point.size()) {
    return nullptr;
  }
  return legacy;
}

}  // namespace

EvpPkeyPtr DecodeEcSpki(const X509_PUBKEY* spki) {
  std::string_view point;
  const CurveTemplates* templates = CommonEcSpki(spki, &point);
  if (templates == nullptr) return nullptr;
  // Both this and the SubjectPublicKeyInfo decoder read the point with EC_POINT_oct2point, which
  // refuses one that is not on the curve.
  EvpPkeyPtr key(EVP_PKEY_dup(templates->params));
  if (key == nullptr ||
      EVP_PKEY_set1_encoded_public_key(
          key.get(), reinterpret_cast<const unsigned char*>(point.data()), point.size()) != 1) {
    return nullptr;
  }
  return key;
}

EcSpkiKeys DecodeEcSpkiWithLegacyCopy(const X509_PUBKEY* spki) {
  EcSpkiKeys out;
  std::string_view point;
  const CurveTemplates* templates = CommonEcSpki(spki, &point);
  if (templates == nullptr) return out;
  out.key = DecodeEcSpki(spki);
  if (out.key != nullptr) out.legacy = LegacyKeyWithPoint(*templates, point);
  if (out.legacy == nullptr) out.key = nullptr;
  return out;
}

EvpPkeyPtr LegacyEcPublicKey(EVP_PKEY* key) {
  if (key == nullptr || EVP_PKEY_get0_provider(key) == nullptr) return nullptr;
  const CurveTemplates* templates = TemplatesOf(key);
  if (templates == nullptr) return nullptr;
  // A key read from explicit curve parameters is written back with them: not one for the template.
  char encoding[32] = {0};
  size_t encoding_len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding, sizeof(encoding),
                                     &encoding_len) != 1 ||
      std::string_view(encoding, encoding_len) != OSSL_PKEY_EC_ENCODING_GROUP) {
    return nullptr;
  }
  // The key's own point format (ENCODED_PUBLIC_KEY below is uncompressed whatever it is).
  char format[32] = {0};
  size_t format_len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, format,
                                     sizeof(format), &format_len) != 1 ||
      std::string_view(format, format_len) != OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) {
    return nullptr;
  }
  unsigned char point[133];
  size_t point_len = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point),
                                      &point_len) != 1 ||
      point_len != templates->point_len || point[0] != POINT_CONVERSION_UNCOMPRESSED) {
    return nullptr;
  }
  return LegacyKeyWithPoint(*templates,
                            std::string_view(reinterpret_cast<const char*>(point), point_len));
}

}  // namespace internal

}  // namespace tessera::spiffe
