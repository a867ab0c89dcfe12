#include "spiffe/csr.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <climits>
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
  X509ReqPtr req(X509_REQ_new());
  if (req == nullptr || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
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

absl::StatusOr<X509ReqPtr> DecodeCsr(std::string_view input) {
  if (input.empty()) return absl::InvalidArgumentError("parse CSR: empty input");
  if (input.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("parse CSR: input too large");
  }
  if (input.find("-----BEGIN") != std::string_view::npos) {
    BioPtr bio = MemBio(input);
    if (bio == nullptr) return OpenSslError("parse CSR PEM", absl::StatusCode::kInternal);
    X509_REQ* raw = PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr);
    if (raw == nullptr) return OpenSslError("parse CSR PEM");
    return X509ReqPtr(raw);
  }
  const auto* start = reinterpret_cast<const unsigned char*>(input.data());
  const unsigned char* p = start;
  X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(input.size())));
  if (req == nullptr) return OpenSslError("parse CSR");
  if (static_cast<size_t>(p - start) != input.size()) {
    return absl::InvalidArgumentError("parse CSR: trailing data after DER");
  }
  return req;
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
bool SignatureVerifies(X509_REQ* req) {
  EVP_PKEY* pkey = X509_REQ_get0_pubkey(req);
  bool ok = pkey != nullptr && X509_REQ_verify(req, pkey) == 1;
  ERR_clear_error();
  return ok;
}

// What a decoded request asks for, whether or not its signature has been checked.
absl::StatusOr<ParsedCsr> ReadClaims(X509_REQ* req) {
  EVP_PKEY* pkey = X509_REQ_get0_pubkey(req);
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
  ASSIGN_OR_RETURN(X509ReqPtr req, DecodeCsr(der_or_pem));
  if (X509_REQ_get0_pubkey(req.get()) == nullptr) return OpenSslError("parse CSR: public key");
  if (!SignatureVerifies(req.get())) {
    return absl::InvalidArgumentError("parse CSR: signature does not verify");
  }
  return ReadClaims(req.get());
}

absl::StatusOr<UnverifiedCsr> ParseCsrUnverified(std::string_view der_or_pem) {
  ASSIGN_OR_RETURN(X509ReqPtr req, DecodeCsr(der_or_pem));
  ASSIGN_OR_RETURN(ParsedCsr claims, ReadClaims(req.get()));
  return UnverifiedCsr(std::move(req), std::move(claims));
}

absl::StatusOr<ParsedCsr> VerifyCsrSignature(UnverifiedCsr csr) {
  // A moved-from request has nothing to vouch for it either.
  if (csr.request_ == nullptr || !SignatureVerifies(csr.request_.get())) {
    return absl::InvalidArgumentError("CSR signature does not verify");
  }
  return std::move(csr.claims_);
}

}  // namespace tessera::spiffe
