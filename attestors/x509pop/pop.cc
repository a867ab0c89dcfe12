#include "attestors/x509pop/pop.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <climits>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "spiffe/openssl.h"

namespace tessera::attestors::x509pop {
namespace {

using EcdsaSigPtr = spiffe::OpenSslPtr<ECDSA_SIG, ECDSA_SIG_free>;

enum class Algorithm { kRsa, kEcdsa };

absl::StatusOr<Algorithm> AlgorithmOf(EVP_PKEY* key, std::string_view what) {
  // RSA-PSS-only keys (id-RSASSA-PSS) are not "RSA" here, as Go's x509 does not accept them.
  if (EVP_PKEY_is_a(key, "RSA")) return Algorithm::kRsa;
  if (EVP_PKEY_is_a(key, "EC")) return Algorithm::kEcdsa;
  const char* name = EVP_PKEY_get0_type_name(key);
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported ", AsAbsl(what), " type ", name != nullptr ? name : "(unknown)"));
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// The context for a prehashed signature: for RSA, PSS over a SHA-256 digest with MGF1-SHA-256
// and the given salt length; for ECDSA no digest is set, so `combined` is signed as is.
absl::Status ConfigurePss(EVP_PKEY_CTX* ctx, int salt_length) {
  if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
      EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt_length) <= 0) {
    return spiffe::OpenSslError("configure RSA-PSS", absl::StatusCode::kInternal);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SignDigest(EVP_PKEY* key, Algorithm alg, std::string_view digest) {
  spiffe::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (ctx == nullptr || EVP_PKEY_sign_init(ctx.get()) != 1) {
    return spiffe::OpenSslError("sign: init", absl::StatusCode::kInternal);
  }
  if (alg == Algorithm::kRsa) RETURN_IF_ERROR(ConfigurePss(ctx.get(), RSA_PSS_SALTLEN_MAX));
  size_t len = 0;
  if (EVP_PKEY_sign(ctx.get(), nullptr, &len, Bytes(digest), digest.size()) != 1) {
    return spiffe::OpenSslError("sign", absl::StatusCode::kInternal);
  }
  std::string sig(len, '\0');
  if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, Bytes(digest),
                    digest.size()) != 1) {
    return spiffe::OpenSslError("sign", absl::StatusCode::kInternal);
  }
  sig.resize(len);
  return sig;
}

// True when `sig` verifies; false when it does not, whatever the reason (OpenSSL's error queue
// is cleared either way: a bad signature is the peer's fault, not an error of ours).
bool VerifyDigest(EVP_PKEY* key, Algorithm alg, std::string_view digest, std::string_view sig) {
  spiffe::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  bool ok = ctx != nullptr && EVP_PKEY_verify_init(ctx.get()) == 1 &&
            (alg != Algorithm::kRsa || ConfigurePss(ctx.get(), RSA_PSS_SALTLEN_AUTO).ok()) &&
            EVP_PKEY_verify(ctx.get(), Bytes(sig), sig.size(), Bytes(digest), digest.size()) == 1;
  ERR_clear_error();
  return ok;
}

std::string BignumBytes(const BIGNUM* n) {
  std::string out(static_cast<size_t>(BN_num_bytes(n)), '\0');
  BN_bn2bin(n, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

// r and s as DER ECDSA-Sig-Value, which is what OpenSSL verifies. Leading zero bytes are
// accepted, as Go's big.Int.SetBytes does.
absl::StatusOr<std::string> EcdsaDer(std::string_view r, std::string_view s) {
  if (r.size() > INT_MAX || s.size() > INT_MAX) {
    return absl::InvalidArgumentError("ECDSA signature verify failed");
  }
  spiffe::BignumPtr rn(BN_bin2bn(Bytes(r), static_cast<int>(r.size()), nullptr));
  spiffe::BignumPtr sn(BN_bin2bn(Bytes(s), static_cast<int>(s.size()), nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (rn == nullptr || sn == nullptr || sig == nullptr ||
      ECDSA_SIG_set0(sig.get(), rn.get(), sn.get()) != 1) {
    return spiffe::OpenSslError("encode ECDSA signature", absl::StatusCode::kInternal);
  }
  rn.release();  // now owned by sig
  sn.release();
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return spiffe::OpenSslError("encode ECDSA signature", absl::StatusCode::kInternal);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<EcdsaSignatureResponse> EcdsaRespond(EVP_PKEY* key, std::string_view nonce,
                                                    std::string_view combined) {
  ASSIGN_OR_RETURN(std::string der, SignDigest(key, Algorithm::kEcdsa, combined));
  const auto* p = Bytes(der);
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (sig == nullptr) {
    return spiffe::OpenSslError("decode ECDSA signature", absl::StatusCode::kInternal);
  }
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  return EcdsaSignatureResponse{
      .nonce = std::string(nonce), .r = BignumBytes(r), .s = BignumBytes(s)};
}

}  // namespace

absl::StatusOr<std::string> NewNonce() {
  std::string nonce(kNonceSize, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), kNonceSize) != 1) {
    return spiffe::OpenSslError("generate nonce", absl::StatusCode::kInternal);
  }
  return nonce;
}

absl::StatusOr<std::string> CombineNonces(std::string_view challenge, std::string_view response) {
  if (challenge.size() != kNonceSize) return absl::InvalidArgumentError("invalid challenge nonce");
  if (response.size() != kNonceSize) return absl::InvalidArgumentError("invalid response nonce");
  std::string both = absl::StrCat(AsAbsl(challenge), AsAbsl(response));
  std::string digest(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  if (EVP_Digest(both.data(), both.size(), reinterpret_cast<unsigned char*>(digest.data()), &len,
                 EVP_sha256(), nullptr) != 1) {
    return spiffe::OpenSslError("hash nonces", absl::StatusCode::kInternal);
  }
  digest.resize(len);
  return digest;
}

absl::StatusOr<Challenge> GenerateChallenge(const spiffe::Certificate& leaf) {
  // OpenSSL reports every usage as allowed when the extension is absent; Go (and so SPIRE)
  // reports none, which is what the check must follow.
  if ((X509_get_extension_flags(leaf.get()) & EXFLAG_KUSAGE) == 0 ||
      (X509_get_key_usage(leaf.get()) & KU_DIGITAL_SIGNATURE) == 0) {
    return absl::InvalidArgumentError("certificate not intended for digital signature use");
  }
  ASSIGN_OR_RETURN(Algorithm alg, AlgorithmOf(leaf.public_key().get(), "public key"));
  ASSIGN_OR_RETURN(std::string nonce, NewNonce());
  Challenge challenge;
  if (alg == Algorithm::kRsa) {
    challenge.rsa_signature = SignatureChallenge{.nonce = std::move(nonce)};
  } else {
    challenge.ecdsa_signature = SignatureChallenge{.nonce = std::move(nonce)};
  }
  return challenge;
}

absl::StatusOr<Response> CalculateResponse(const spiffe::PrivateKey& key,
                                           const Challenge& challenge) {
  ASSIGN_OR_RETURN(Algorithm alg, AlgorithmOf(key.get(), "private key"));
  const std::optional<SignatureChallenge>& wanted =
      alg == Algorithm::kRsa ? challenge.rsa_signature : challenge.ecdsa_signature;
  if (!wanted.has_value()) {
    return absl::InvalidArgumentError(alg == Algorithm::kRsa ? "expecting RSA challenge"
                                                             : "expecting ECDSA challenge");
  }
  ASSIGN_OR_RETURN(std::string nonce, NewNonce());
  ASSIGN_OR_RETURN(std::string combined, CombineNonces(wanted->nonce, nonce));
  Response response;
  if (alg == Algorithm::kRsa) {
    ASSIGN_OR_RETURN(std::string sig, SignDigest(key.get(), alg, combined));
    response.rsa_signature =
        RsaSignatureResponse{.nonce = std::move(nonce), .signature = std::move(sig)};
  } else {
    ASSIGN_OR_RETURN(response.ecdsa_signature, EcdsaRespond(key.get(), nonce, combined));
  }
  return response;
}

absl::Status VerifyResponse(const spiffe::PublicKey& key, const Challenge& challenge,
                            const Response& response) {
  ASSIGN_OR_RETURN(Algorithm alg, AlgorithmOf(key.get(), "public key"));
  if (alg == Algorithm::kRsa) {
    if (!challenge.rsa_signature.has_value()) {
      return absl::InvalidArgumentError("expecting RSA challenge");
    }
    if (!response.rsa_signature.has_value()) {
      return absl::InvalidArgumentError("expecting RSA response");
    }
    ASSIGN_OR_RETURN(std::string combined,
                     CombineNonces(challenge.rsa_signature->nonce, response.rsa_signature->nonce));
    if (!VerifyDigest(key.get(), alg, combined, response.rsa_signature->signature)) {
      return absl::InvalidArgumentError("RSA signature verify failed");
    }
    return absl::OkStatus();
  }
  if (!challenge.ecdsa_signature.has_value()) {
    return absl::InvalidArgumentError("expecting ECDSA challenge");
  }
  if (!response.ecdsa_signature.has_value()) {
    return absl::InvalidArgumentError("expecting ECDSA response");
  }
  const EcdsaSignatureResponse& e = *response.ecdsa_signature;
  ASSIGN_OR_RETURN(std::string combined, CombineNonces(challenge.ecdsa_signature->nonce, e.nonce));
  ASSIGN_OR_RETURN(std::string der, EcdsaDer(e.r, e.s));
  if (!VerifyDigest(key.get(), alg, combined, der)) {
    return absl::InvalidArgumentError("ECDSA signature verify failed");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Fingerprint(const spiffe::Certificate& cert) {
  std::string der = cert.ToDer();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (der.empty() || EVP_Digest(der.data(), der.size(), digest, &len, EVP_sha1(), nullptr) != 1) {
    return spiffe::OpenSslError("fingerprint certificate", absl::StatusCode::kInternal);
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), static_cast<size_t>(len)));
}

}  // namespace tessera::attestors::x509pop
