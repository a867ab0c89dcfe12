#include "spiffe/csr.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <climits>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "spiffe/openssl.h"
#include "spiffe/x509_internal.h"

namespace tessera::spiffe {
namespace {

struct ExtensionStackDeleter {
  void operator()(STACK_OF(X509_EXTENSION) * exts) const {
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
};
using ExtensionStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), ExtensionStackDeleter>;

absl::StatusOr<X509ReqPtr> BuildCsr(const PrivateKey& key, const SpiffeId& id,
                                    const std::vector<std::string>& dns_names) {
  if (key.get() == nullptr) return absl::InvalidArgumentError("create CSR: no key");
  for (const std::string& dns : dns_names) {
    RETURN_IF_ERROR(Annotate(internal::ValidateDnsName(dns), "create CSR"));
  }
  // The common EC keys go in through a legacy copy: the same SubjectPublicKeyInfo without OpenSSL
  // 3.0's encoder and decoder round trip (see x509_internal.h).
  ERR_set_mark();
  EvpPkeyPtr legacy = internal::LegacyEcPublicKey(key.get());
  ERR_pop_to_mark();
  X509ReqPtr req(X509_REQ_new());
  if (req == nullptr || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_pubkey(req.get(), legacy != nullptr ? legacy.get() : key.get()) != 1) {
    return OpenSslError("create CSR", absl::StatusCode::kInternal);
  }
  ASSIGN_OR_RETURN(GeneralNamesPtr sans, internal::BuildSans({id.str()}, dns_names));
  // The subject stays empty, so (as RFC 5280 asks of certificates) the SAN is critical.
  X509ExtensionPtr san(X509V3_EXT_i2d(NID_subject_alt_name, 1, sans.get()));
  ExtensionStackPtr exts(sk_X509_EXTENSION_new_null());
  if (san == nullptr || exts == nullptr || sk_X509_EXTENSION_push(exts.get(), san.get()) <= 0) {
    return OpenSslError("create CSR: SAN extension", absl::StatusCode::kInternal);
  }
  san.release();  // now owned by `exts`
  if (X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
    return OpenSslError("create CSR: add extensions", absl::StatusCode::kInternal);
  }
  if (X509_REQ_sign(req.get(), key.get(), internal::SignatureMd(key.get())) <= 0) {
    return OpenSslError("create CSR: sign", absl::StatusCode::kInternal);
  }
  return req;
}

// A decoded request and its public key; `key` is nullptr when OpenSSL could not decode the key.
struct DecodedCsr {
  X509ReqPtr request;
  EVP_PKEY* key = nullptr;  // owned by `request` or by `fast_key`
  EvpPkeyPtr fast_key;
};

// The common case without OpenSSL 3.0's decoder setup: DER whose structure decodes in the keyless
// context (the same ASN.1 templates as d2i_X509_REQ, so the same acceptance and the same fields)
// and whose key internal::DecodeEcSpki reads (then it is the key d2i_X509_REQ would have made).
// Anything else returns nullopt with the error queue as it was, and takes the general path.
std::optional<DecodedCsr> DecodeCommonCsr(std::string_view der) {
  OSSL_LIB_CTX* keyless = KeylessDecodeContext();
  if (keyless == nullptr) return std::nullopt;
  ERR_set_mark();
  const auto* start = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* p = start;
  X509ReqPtr req(reinterpret_cast<X509_REQ*>(ASN1_item_d2i_ex(
      nullptr, &p, static_cast<long>(der.size()), ASN1_ITEM_rptr(X509_REQ), keyless, nullptr)));
  EvpPkeyPtr key;
  if (req != nullptr && static_cast<size_t>(p - start) == der.size()) {
    key = internal::DecodeEcSpki(X509_REQ_get_X509_PUBKEY(req.get()));
  }
  ERR_pop_to_mark();
  if (key == nullptr) return std::nullopt;
  DecodedCsr out;
  out.request = std::move(req);
  out.key = key.get();
  out.fast_key = std::move(key);
  return out;
}

absl::StatusOr<DecodedCsr> DecodeCsr(std::string_view input) {
  if (input.empty()) return absl::InvalidArgumentError("parse CSR: empty input");
  if (input.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("parse CSR: input too large");
  }
  DecodedCsr out;
  if (input.find("-----BEGIN") != std::string_view::npos) {
    BioPtr bio = MemBio(input);
    if (bio == nullptr) return OpenSslError("parse CSR PEM", absl::StatusCode::kInternal);
    X509_REQ* raw = PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr);
    if (raw == nullptr) return OpenSslError("parse CSR PEM");
    out.request.reset(raw);
  } else {
    if (std::optional<DecodedCsr> common = DecodeCommonCsr(input)) return *std::move(common);
    const auto* start = reinterpret_cast<const unsigned char*>(input.data());
    const unsigned char* p = start;
    out.request.reset(d2i_X509_REQ(nullptr, &p, static_cast<long>(input.size())));
    if (out.request == nullptr) return OpenSslError("parse CSR");
    if (static_cast<size_t>(p - start) != input.size()) {
      return absl::InvalidArgumentError("parse CSR: trailing data after DER");
    }
  }
  out.key = X509_REQ_get0_pubkey(out.request.get());
  return out;
}

}  // namespace

absl::StatusOr<std::string> CreateCsr(const PrivateKey& key, const SpiffeId& id,
                                      const std::vector<std::string>& dns_names) {
  ASSIGN_OR_RETURN(X509ReqPtr req, BuildCsr(key, id, dns_names));
  unsigned char* out = nullptr;
  int len = i2d_X509_REQ(req.get(), &out);
  if (len <= 0) return OpenSslError("create CSR: encode", absl::StatusCode::kInternal);
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(len));
  OPENSSL_free(out);
  return der;
}

absl::StatusOr<std::string> CreateCsrPem(const PrivateKey& key, const SpiffeId& id,
                                         const std::vector<std::string>& dns_names) {
  ASSIGN_OR_RETURN(X509ReqPtr req, BuildCsr(key, id, dns_names));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return OpenSslError("create CSR: encode PEM", absl::StatusCode::kInternal);
  }
  return BioContents(bio.get());
}

namespace {

// Proof of possession: without it anyone could obtain a certificate for someone else's key.
// X509_REQ_verify_ex with the default library context is X509_REQ_verify; it is spelled out
// because a request from DecodeCommonCsr remembers the keyless context.
bool SignatureVerifies(X509_REQ* req, EVP_PKEY* pkey) {
  bool ok = pkey != nullptr && X509_REQ_verify_ex(req, pkey, nullptr, nullptr) == 1;
  ERR_clear_error();
  return ok;
}

// What a decoded request asks for, whether or not its signature has been checked.
absl::StatusOr<ParsedCsr> ReadClaims(X509_REQ* req, EVP_PKEY* pkey) {
  if (pkey == nullptr) return OpenSslError("parse CSR: public key");
  ParsedCsr csr{
      .public_key = PublicKey::FromEvp(pkey), .uri_sans = {}, .dns_sans = {}, .subject = {}};

  ExtensionStackPtr exts(X509_REQ_get_extensions(req));
  if (exts == nullptr) {
    // OpenSSL 3 returns an empty stack when there is no extension request at all.
    return OpenSslError("parse CSR: malformed extension request");
  }
  int crit = 0;
  GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(
      X509V3_get_d2i(exts.get(), NID_subject_alt_name, &crit, nullptr)));
  if (sans == nullptr && crit == -2) {
    return absl::InvalidArgumentError("parse CSR: more than one subjectAltName extension");
  }
  if (sans == nullptr && crit >= 0) return OpenSslError("parse CSR: malformed subjectAltName");
  ERR_clear_error();
  for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans.get(), i);
    if (name->type != GEN_URI && name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* s =
        name->type == GEN_URI ? name->d.uniformResourceIdentifier : name->d.dNSName;
    std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<size_t>(ASN1_STRING_length(s)));
    (name->type == GEN_URI ? csr.uri_sans : csr.dns_sans).push_back(std::move(value));
  }

  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio != nullptr &&
      X509_NAME_print_ex(bio.get(), X509_REQ_get_subject_name(req), 0, XN_FLAG_RFC2253) >= 0) {
    csr.subject = BioContents(bio.get());
  }
  ERR_clear_error();
  return csr;
}

}  // namespace

absl::StatusOr<ParsedCsr> ParseCsr(std::string_view der_or_pem) {
  ASSIGN_OR_RETURN(DecodedCsr csr, DecodeCsr(der_or_pem));
  if (csr.key == nullptr) return OpenSslError("parse CSR: public key");
  if (!SignatureVerifies(csr.request.get(), csr.key)) {
    return absl::InvalidArgumentError("parse CSR: signature does not verify");
  }
  return ReadClaims(csr.request.get(), csr.key);
}

absl::StatusOr<UnverifiedCsr> ParseCsrUnverified(std::string_view der_or_pem) {
  ASSIGN_OR_RETURN(DecodedCsr csr, DecodeCsr(der_or_pem));
  ASSIGN_OR_RETURN(ParsedCsr claims, ReadClaims(csr.request.get(), csr.key));
  return UnverifiedCsr(std::move(csr.request), std::move(claims));
}

absl::StatusOr<ParsedCsr> VerifyCsrSignature(UnverifiedCsr csr) {
  // A moved-from request has nothing to vouch for it either. The key is the one ReadClaims took
  // from the request (a reference to the same EVP_PKEY).
  if (csr.request_ == nullptr ||
      !SignatureVerifies(csr.request_.get(), csr.claims_.public_key.get())) {
    return absl::InvalidArgumentError("CSR signature does not verify");
  }
  return std::move(csr.claims_);
}

}  // namespace tessera::spiffe
