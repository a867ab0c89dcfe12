#include "spiffe/key.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <climits>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace tessera::spiffe {
namespace {

using Pkcs8Ptr = OpenSslPtr<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>;

std::shared_ptr<EVP_PKEY> Share(EVP_PKEY* owned) {
  return std::shared_ptr<EVP_PKEY>(owned, EVP_PKEY_free);
}

std::shared_ptr<EVP_PKEY> ShareRef(EVP_PKEY* borrowed) {
  if (borrowed != nullptr) EVP_PKEY_up_ref(borrowed);
  return Share(borrowed);
}

absl::StatusOr<BioPtr> ReadBio(std::string_view data, std::string_view what) {
  BioPtr bio = MemBio(data);
  if (bio == nullptr) return OpenSslError(absl::StrCat(AsAbsl(what), ": input too large"));
  return bio;
}

absl::StatusOr<BioPtr> WriteBio() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) return OpenSslError("allocate memory BIO", absl::StatusCode::kInternal);
  return bio;
}

// Never lets OpenSSL fall back to prompting on the terminal for a pass phrase: an encrypted PEM
// key simply fails to load.
int NoPassword(char*, int, int, void*) { return -1; }

const EVP_MD* DigestMd(Digest digest) {
  switch (digest) {
    case Digest::kSha256:
      return EVP_sha256();
    case Digest::kSha384:
      return EVP_sha384();
    case Digest::kSha512:
      return EVP_sha512();
  }
  return EVP_sha256();
}

// Ed25519/Ed448 hash internally and must be given no digest.
bool TakesNoDigest(EVP_PKEY* key) {
  return EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448");
}

absl::Status ConfigureRsaPadding(EVP_PKEY* key, EVP_PKEY_CTX* pctx, RsaPadding padding) {
  if (!EVP_PKEY_is_a(key, "RSA")) return absl::OkStatus();
  if (padding == RsaPadding::kPss) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0) {
      return OpenSslError("set RSA-PSS padding", absl::StatusCode::kInternal);
    }
  } else if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
    return OpenSslError("set RSA PKCS#1 v1.5 padding", absl::StatusCode::kInternal);
  }
  return absl::OkStatus();
}

std::optional<KeyType> TypeOf(EVP_PKEY* key) {
  if (key == nullptr) return std::nullopt;
  if (EVP_PKEY_is_a(key, "EC")) {
    char name[80] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, name, sizeof(name), &len) != 1) return std::nullopt;
    int nid = OBJ_sn2nid(name);
    if (nid == NID_undef) nid = OBJ_ln2nid(name);
    if (nid == NID_X9_62_prime256v1) return KeyType::kEcP256;
    if (nid == NID_secp384r1) return KeyType::kEcP384;
    return std::nullopt;
  }
  if (EVP_PKEY_is_a(key, "RSA")) {
    int bits = EVP_PKEY_get_bits(key);
    if (bits == 2048) return KeyType::kRsa2048;
    if (bits == 4096) return KeyType::kRsa4096;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<KeyType> ParseKeyType(std::string_view name) {
  if (name == "ec-p256") return KeyType::kEcP256;
  if (name == "ec-p384") return KeyType::kEcP384;
  if (name == "rsa-2048") return KeyType::kRsa2048;
  if (name == "rsa-4096") return KeyType::kRsa4096;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown key type \"", AsAbsl(name),
                   "\" (want one of ec-p256, ec-p384, rsa-2048, rsa-4096)"));
}

std::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kEcP256:
      return "ec-p256";
    case KeyType::kEcP384:
      return "ec-p384";
    case KeyType::kRsa2048:
      return "rsa-2048";
    case KeyType::kRsa4096:
      return "rsa-4096";
  }
  return "unknown";
}

void PrintTo(KeyType type, std::ostream* os) { *os << KeyTypeName(type); }

// ---- PublicKey ----

absl::StatusOr<PublicKey> PublicKey::FromDer(std::string_view spki_der) {
  if (spki_der.empty()) return absl::InvalidArgumentError("parse public key: empty input");
  if (spki_der.size() > static_cast<size_t>(LONG_MAX)) {
    return absl::InvalidArgumentError("parse public key: input too large");
  }
  const auto* start = reinterpret_cast<const unsigned char*>(spki_der.data());
  const unsigned char* p = start;
  EVP_PKEY* raw = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size()));
  if (raw == nullptr) return OpenSslError("parse public key");
  auto key = Share(raw);
  if (static_cast<size_t>(p - start) != spki_der.size()) {
    return absl::InvalidArgumentError("parse public key: trailing data after DER");
  }
  return PublicKey(std::move(key));
}

absl::StatusOr<PublicKey> PublicKey::FromPem(std::string_view pem) {
  ASSIGN_OR_RETURN(BioPtr bio, ReadBio(pem, "parse public key PEM"));
  EVP_PKEY* raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassword, nullptr);
  if (raw == nullptr) return OpenSslError("parse public key PEM");
  return PublicKey(Share(raw));
}

PublicKey PublicKey::FromEvp(EVP_PKEY* pkey) { return PublicKey(ShareRef(pkey)); }

absl::StatusOr<std::string> PublicKey::ToDer() const {
  unsigned char* out = nullptr;
  int len = i2d_PUBKEY(key_.get(), &out);
  if (len <= 0) return OpenSslError("encode public key", absl::StatusCode::kInternal);
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(len));
  OPENSSL_free(out);
  return der;
}

absl::StatusOr<std::string> PublicKey::ToPem() const {
  ASSIGN_OR_RETURN(BioPtr bio, WriteBio());
  if (PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) {
    return OpenSslError("encode public key PEM", absl::StatusCode::kInternal);
  }
  return BioContents(bio.get());
}

std::optional<KeyType> PublicKey::type() const { return TypeOf(key_.get()); }
bool PublicKey::IsEc() const { return key_ != nullptr && EVP_PKEY_is_a(key_.get(), "EC"); }
bool PublicKey::IsRsa() const { return key_ != nullptr && EVP_PKEY_is_a(key_.get(), "RSA"); }

bool PublicKey::Equals(const PublicKey& other) const {
  if (key_ == nullptr || other.key_ == nullptr) return false;
  bool equal = EVP_PKEY_eq(key_.get(), other.key_.get()) == 1;
  ERR_clear_error();  // a mismatch of key types leaves an error entry behind
  return equal;
}

absl::Status PublicKey::Verify(std::string_view data, std::string_view signature, Digest digest,
                               RsaPadding padding) const {
  if (key_ == nullptr) return absl::FailedPreconditionError("verify signature: no key");
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return OpenSslError("verify signature", absl::StatusCode::kInternal);
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  const EVP_MD* md = TakesNoDigest(key_.get()) ? nullptr : DigestMd(digest);
  if (EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key_.get()) != 1) {
    return OpenSslError("verify signature: init");
  }
  RETURN_IF_ERROR(ConfigureRsaPadding(key_.get(), pctx, padding));
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                            data.size());
  if (rc != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("verify signature: signature does not match");
  }
  return absl::OkStatus();
}

// ---- PrivateKey ----

absl::StatusOr<PrivateKey> PrivateKey::Generate(KeyType type) {
  EVP_PKEY* raw = nullptr;
  switch (type) {
    case KeyType::kEcP256:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyType::kEcP384:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
      break;
    case KeyType::kRsa2048:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
      break;
    case KeyType::kRsa4096:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(4096));
      break;
  }
  if (raw == nullptr) {
    return OpenSslError(absl::StrCat("generate ", AsAbsl(KeyTypeName(type)), " key"),
                        absl::StatusCode::kInternal);
  }
  return PrivateKey(Share(raw));
}

absl::StatusOr<PrivateKey> PrivateKey::FromPkcs8Der(std::string_view der) {
  if (der.empty()) return absl::InvalidArgumentError("parse PKCS#8 private key: empty input");
  if (der.size() > static_cast<size_t>(LONG_MAX)) {
    return absl::InvalidArgumentError("parse PKCS#8 private key: input too large");
  }
  const auto* start = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* p = start;
  Pkcs8Ptr p8(d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size())));
  if (p8 == nullptr) return OpenSslError("parse PKCS#8 private key");
  if (static_cast<size_t>(p - start) != der.size()) {
    return absl::InvalidArgumentError("parse PKCS#8 private key: trailing data after DER");
  }
  EVP_PKEY* raw = EVP_PKCS82PKEY(p8.get());
  if (raw == nullptr) return OpenSslError("parse PKCS#8 private key");
  return PrivateKey(Share(raw));
}

absl::StatusOr<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  ASSIGN_OR_RETURN(BioPtr bio, ReadBio(pem, "parse private key PEM"));
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr);
  if (raw == nullptr) return OpenSslError("parse private key PEM");
  return PrivateKey(Share(raw));
}

PrivateKey PrivateKey::FromEvp(EVP_PKEY* pkey) { return PrivateKey(ShareRef(pkey)); }

absl::StatusOr<std::string> PrivateKey::ToPkcs8Der() const {
  Pkcs8Ptr p8(EVP_PKEY2PKCS8(key_.get()));
  if (p8 == nullptr) return OpenSslError("encode PKCS#8 private key", absl::StatusCode::kInternal);
  unsigned char* out = nullptr;
  int len = i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &out);
  if (len <= 0) return OpenSslError("encode PKCS#8 private key", absl::StatusCode::kInternal);
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(len));
  OPENSSL_clear_free(out, static_cast<size_t>(len));
  return der;
}

absl::StatusOr<std::string> PrivateKey::ToPkcs8Pem() const {
  ASSIGN_OR_RETURN(BioPtr bio, WriteBio());
  if (PEM_write_bio_PKCS8PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
      1) {
    return OpenSslError("encode PKCS#8 private key PEM", absl::StatusCode::kInternal);
  }
  std::string pem = BioContents(bio.get());
  // The memory BIO's buffer held the key: wipe it before it is freed.
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  if (data != nullptr && len > 0) OPENSSL_cleanse(data, static_cast<size_t>(len));
  return pem;
}

PublicKey PrivateKey::public_key() const { return PublicKey::FromEvp(key_.get()); }

std::optional<KeyType> PrivateKey::type() const { return TypeOf(key_.get()); }

absl::StatusOr<std::string> PrivateKey::Sign(std::string_view data, Digest digest,
                                             RsaPadding padding) const {
  if (key_ == nullptr) return absl::FailedPreconditionError("sign: no key");
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return OpenSslError("sign", absl::StatusCode::kInternal);
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  const EVP_MD* md = TakesNoDigest(key_.get()) ? nullptr : DigestMd(digest);
  if (EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key_.get()) != 1) {
    return OpenSslError("sign: init", absl::StatusCode::kInternal);
  }
  RETURN_IF_ERROR(ConfigureRsaPadding(key_.get(), pctx, padding));
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  size_t sig_len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &sig_len, in, data.size()) != 1) {
    return OpenSslError("sign", absl::StatusCode::kInternal);
  }
  std::string sig(sig_len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len, in,
                     data.size()) != 1) {
    return OpenSslError("sign", absl::StatusCode::kInternal);
  }
  sig.resize(sig_len);  // ECDSA signatures are often shorter than the maximum
  return sig;
}

}  // namespace tessera::spiffe
