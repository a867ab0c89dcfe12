#include "spiffe/x509_svid.h"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <array>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "spiffe/openssl.h"
#include "spiffe/x509_internal.h"

namespace tessera::spiffe {
namespace {

using TimePoint = std::chrono::system_clock::time_point;

using BasicConstraintsPtr = OpenSslPtr<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free>;
using BitStringPtr = OpenSslPtr<ASN1_BIT_STRING, ASN1_BIT_STRING_free>;
using AuthorityKeyIdPtr = OpenSslPtr<AUTHORITY_KEYID, AUTHORITY_KEYID_free>;

void FreeEku(EXTENDED_KEY_USAGE* eku) { sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free); }
using EkuPtr = OpenSslPtr<EXTENDED_KEY_USAGE, FreeEku>;

// keyUsage bit positions (RFC 5280 §4.2.1.3).
constexpr int kDigitalSignature = 0;
constexpr int kKeyEncipherment = 2;
constexpr int kKeyAgreement = 4;
constexpr int kKeyCertSign = 5;
constexpr int kCrlSign = 6;

// Everything that differs between a CA and a leaf certificate; the rest is common.
struct Profile {
  bool ca = false;
  std::optional<int> max_path_len;
  std::string uri;
  std::vector<std::string> dns_names;
  DistinguishedName subject;
  EVP_PKEY* public_key = nullptr;
  TimePoint not_before;
  TimePoint not_after;
};

absl::Status Internal(std::string_view what) {
  return OpenSslError(absl::StrCat("build certificate: ", AsAbsl(what)),
                      absl::StatusCode::kInternal);
}

// 128 bits from the CSPRNG, as a positive non-zero INTEGER (at most 17 DER content bytes, well
// under RFC 5280's 20-octet limit).
absl::Status SetRandomSerial(X509* x509) {
  std::array<unsigned char, 16> bytes;
  BignumPtr bn;
  do {
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) return Internal("serial");
    bn.reset(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
    if (bn == nullptr) return Internal("serial");
  } while (BN_is_zero(bn.get()));
  if (BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x509)) == nullptr) {
    return Internal("serial");
  }
  return absl::OkStatus();
}

// Appends `dn` to `name` (the certificate's own, empty subject: filled in place rather than
// built apart and copied in, which costs OpenSSL an encode and a decode).
absl::Status AddNameEntries(X509_NAME* name, const DistinguishedName& dn) {
  if (name == nullptr) return Internal("subject");
  for (const auto& [attr, value] : dn) {
    if (X509_NAME_add_entry_by_txt(name, attr.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
      return OpenSslError(absl::StrCat("build certificate: subject attribute \"", attr, "\""));
    }
  }
  return absl::OkStatus();
}

absl::Status SetTime(ASN1_TIME* field, TimePoint t) {
  time_t secs = std::chrono::system_clock::to_time_t(std::chrono::floor<std::chrono::seconds>(t));
  // ASN1_TIME_set picks UTCTime up to 2049 and GeneralizedTime after, as RFC 5280 requires.
  if (ASN1_TIME_set(field, secs) == nullptr) return Internal("validity");
  return absl::OkStatus();
}

absl::Status AddExtension(X509* x509, int nid, void* value, bool critical) {
  if (X509_add1_ext_i2d(x509, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1) {
    return Internal(OBJ_nid2sn(nid));
  }
  return absl::OkStatus();
}

absl::Status AddBasicConstraints(X509* x509, bool ca, std::optional<int> max_path_len) {
  BasicConstraintsPtr bc(BASIC_CONSTRAINTS_new());
  if (bc == nullptr) return Internal("basicConstraints");
  bc->ca = ca ? 1 : 0;
  if (max_path_len.has_value()) {
    bc->pathlen = ASN1_INTEGER_new();
    if (bc->pathlen == nullptr || ASN1_INTEGER_set(bc->pathlen, *max_path_len) != 1) {
      return Internal("basicConstraints");
    }
  }
  return AddExtension(x509, NID_basic_constraints, bc.get(), /*critical=*/true);
}

absl::Status AddKeyUsage(X509* x509, std::initializer_list<int> bits) {
  BitStringPtr ku(ASN1_BIT_STRING_new());
  if (ku == nullptr) return Internal("keyUsage");
  for (int bit : bits) {
    if (ASN1_BIT_STRING_set_bit(ku.get(), bit, 1) != 1) return Internal("keyUsage");
  }
  return AddExtension(x509, NID_key_usage, ku.get(), /*critical=*/true);
}

absl::Status AddServerAndClientAuth(X509* x509) {
  EkuPtr eku(sk_ASN1_OBJECT_new_null());
  if (eku == nullptr) return Internal("extKeyUsage");
  for (int nid : {NID_server_auth, NID_client_auth}) {
    ASN1_OBJECT* obj = OBJ_nid2obj(nid);  // static object: freeing it later is a no-op
    if (obj == nullptr || sk_ASN1_OBJECT_push(eku.get(), obj) <= 0) return Internal("extKeyUsage");
  }
  return AddExtension(x509, NID_ext_key_usage, eku.get(), /*critical=*/false);
}

// SKI per RFC 5280 §4.2.1.2 method 1 (SHA-1 of the subjectPublicKey bits); AKI = the issuer's
// SKI when it has one (an externally made upstream CA may not).
absl::Status AddKeyIdentifiers(X509* x509, X509* issuer) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_pubkey_digest(x509, EVP_sha1(), md, &md_len) != 1) return Internal("SKI");
  Asn1OctetStringPtr ski(ASN1_OCTET_STRING_new());
  if (ski == nullptr || ASN1_OCTET_STRING_set(ski.get(), md, static_cast<int>(md_len)) != 1) {
    return Internal("SKI");
  }
  RETURN_IF_ERROR(AddExtension(x509, NID_subject_key_identifier, ski.get(), false));

  const ASN1_OCTET_STRING* issuer_ski =
      issuer == nullptr ? ski.get() : X509_get0_subject_key_id(issuer);
  if (issuer_ski == nullptr) return absl::OkStatus();
  AuthorityKeyIdPtr aki(AUTHORITY_KEYID_new());
  if (aki == nullptr) return Internal("AKI");
  aki->keyid = ASN1_OCTET_STRING_dup(issuer_ski);
  if (aki->keyid == nullptr) return Internal("AKI");
  return AddExtension(x509, NID_authority_key_identifier, aki.get(), false);
}

// Checks that `issuer` may sign and `issuer_key` is its key; caps `not_after` at its expiry.
absl::Status CheckIssuer(const Certificate& issuer, const PrivateKey& issuer_key, bool for_ca,
                         TimePoint* not_after) {
  if (issuer.get() == nullptr || issuer_key.get() == nullptr) {
    return absl::InvalidArgumentError("no issuer certificate or key");
  }
  if (!issuer.IsCa()) {
    return absl::InvalidArgumentError(
        absl::StrCat("issuer \"", issuer.SubjectString(), "\" is not a CA"));
  }
  if ((X509_get_key_usage(issuer.get()) & KU_KEY_CERT_SIGN) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("issuer \"", issuer.SubjectString(), "\" lacks keyCertSign"));
  }
  if (for_ca && X509_get_pathlen(issuer.get()) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "issuer \"", issuer.SubjectString(), "\" has pathLenConstraint 0: it cannot sign CAs"));
  }
  if (!issuer_key.public_key().Equals(issuer.public_key())) {
    return absl::InvalidArgumentError("issuer key does not match the issuer certificate");
  }
  // A certificate that outlives its issuer would only be valid for part of its life.
  if (*not_after > issuer.NotAfter()) *not_after = issuer.NotAfter();
  return absl::OkStatus();
}

// The subjectPublicKeyInfo. For a leaf (minted by the hundred in BatchNewX509SVID) the common EC
// keys go in through a legacy copy that X509_set_pubkey writes without OpenSSL 3.0's encoder and
// decoder round trip, the bulk of a leaf's cost otherwise; the bytes are the same (see
// internal::LegacyEcPublicKey). CA certificates, rare, take OpenSSL's general path with the key
// they were given. Returns whether the legacy copy went in.
absl::StatusOr<bool> SetPublicKey(X509* x509, EVP_PKEY* key, bool fast) {
  if (fast) {
    ERR_set_mark();
    EvpPkeyPtr legacy = internal::LegacyEcPublicKey(key);
    const bool done = legacy != nullptr && X509_set_pubkey(x509, legacy.get()) == 1;
    ERR_pop_to_mark();
    if (done) return true;
  }
  if (X509_set_pubkey(x509, key) != 1) return Internal("public key");
  return false;
}

absl::StatusOr<Certificate> Build(const Profile& p, const Certificate* issuer,
                                  const PrivateKey& signer) {
  if (p.public_key == nullptr) return absl::InvalidArgumentError("template has no public key");
  if (p.not_after <= p.not_before) {
    return absl::InvalidArgumentError("not_after is not after not_before");
  }
  X509Ptr x509(X509_new());
  if (x509 == nullptr || X509_set_version(x509.get(), X509_VERSION_3) != 1) {
    return Internal("allocate");
  }
  RETURN_IF_ERROR(SetRandomSerial(x509.get()));
  X509_NAME* subject = X509_get_subject_name(x509.get());
  RETURN_IF_ERROR(AddNameEntries(subject, p.subject));
  X509_NAME* issuer_name = issuer == nullptr ? subject : X509_get_subject_name(issuer->get());
  if (X509_set_issuer_name(x509.get(), issuer_name) != 1) return Internal("issuer");
  RETURN_IF_ERROR(SetTime(X509_getm_notBefore(x509.get()), p.not_before));
  RETURN_IF_ERROR(SetTime(X509_getm_notAfter(x509.get()), p.not_after));
  ASSIGN_OR_RETURN(const bool legacy_key, SetPublicKey(x509.get(), p.public_key, /*fast=*/!p.ca));

  if (p.ca) {
    RETURN_IF_ERROR(AddBasicConstraints(x509.get(), true, p.max_path_len));
    RETURN_IF_ERROR(AddKeyUsage(x509.get(), {kKeyCertSign, kCrlSign}));
  } else {
    RETURN_IF_ERROR(AddBasicConstraints(x509.get(), false, std::nullopt));
    RETURN_IF_ERROR(AddKeyUsage(x509.get(), {kDigitalSignature, kKeyEncipherment, kKeyAgreement}));
    RETURN_IF_ERROR(AddServerAndClientAuth(x509.get()));
  }
  ASSIGN_OR_RETURN(GeneralNamesPtr sans, internal::BuildSans({p.uri}, p.dns_names));
  bool empty_subject = X509_NAME_entry_count(subject) == 0;
  RETURN_IF_ERROR(AddExtension(x509.get(), NID_subject_alt_name, sans.get(), empty_subject));
  RETURN_IF_ERROR(AddKeyIdentifiers(x509.get(), issuer == nullptr ? nullptr : issuer->get()));

  if (X509_sign(x509.get(), signer.get(), internal::SignatureMd(signer.get())) <= 0) {
    return Internal("sign");
  }
  if (!p.ca) {
    // A leaf is handed out as built, without the DER round trip below: re-parsing costs OpenSSL
    // 3.0 a public key decode, about as much as the rest of the leaf. What Certificate::FromDer
    // would enforce holds by construction: the encoding is i2d's, canonical DER of what was
    // signed (and parses back to the same bytes, as the tests check for every profile); each
    // extension was encoded here from a typed value, once; and the public key was set above.
    if (X509_get0_pubkey(x509.get()) == nullptr) return Internal("public key");
    if (legacy_key) {
      return internal::CertificateAccess::WithLegacyKeyOf(x509.get(),
                                                          PublicKey::FromEvp(p.public_key));
    }
    return Certificate::FromX509(x509.get());
  }
  // A CA certificate round-trips through DER so that it is exactly what a peer will parse.
  unsigned char* der = nullptr;
  int len = i2d_X509(x509.get(), &der);
  if (len <= 0) return Internal("encode");
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  ASSIGN_OR_RETURN(Certificate cert, Certificate::FromDer(bytes),
                   Annotate(_, "build certificate: re-parse"));
  return cert;
}

Profile CaProfile(const CaTemplate& tmpl) {
  return Profile{.ca = true,
                 .max_path_len = tmpl.max_path_len,
                 .uri = tmpl.trust_domain.IdString(),
                 .dns_names = {},
                 .subject = tmpl.subject,
                 .public_key = tmpl.public_key.get(),
                 .not_before = tmpl.not_before,
                 .not_after = tmpl.not_after};
}

absl::Status CheckPathLen(std::optional<int> max_path_len) {
  if (max_path_len.has_value() && *max_path_len < 0) {
    return absl::InvalidArgumentError("max_path_len is negative");
  }
  return absl::OkStatus();
}

}  // namespace

DistinguishedName DefaultLeafSubject() { return {{"C", "US"}, {"O", "SPIRE"}}; }
DistinguishedName DefaultCaSubject() { return {{"C", "US"}, {"O", "SPIFFE"}}; }

absl::StatusOr<Certificate> SignSelfSignedCa(const CaTemplate& tmpl, const PrivateKey& key) {
  const std::string context = absl::StrCat("sign root CA for ", tmpl.trust_domain.IdString());
  RETURN_IF_ERROR(Annotate(CheckPathLen(tmpl.max_path_len), context));
  if (key.get() == nullptr || !key.public_key().Equals(tmpl.public_key)) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": signing key does not match the template's public key"));
  }
  ASSIGN_OR_RETURN(Certificate cert, Build(CaProfile(tmpl), nullptr, key), Annotate(_, context));
  return cert;
}

absl::StatusOr<Certificate> SignIntermediateCa(const CaTemplate& tmpl, const Certificate& issuer,
                                               const PrivateKey& issuer_key) {
  const std::string context =
      absl::StrCat("sign intermediate CA for ", tmpl.trust_domain.IdString());
  RETURN_IF_ERROR(Annotate(CheckPathLen(tmpl.max_path_len), context));
  Profile profile = CaProfile(tmpl);
  RETURN_IF_ERROR(
      Annotate(CheckIssuer(issuer, issuer_key, /*for_ca=*/true, &profile.not_after), context));
  ASSIGN_OR_RETURN(Certificate cert, Build(profile, &issuer, issuer_key), Annotate(_, context));
  return cert;
}

absl::StatusOr<Certificate> SignLeaf(const LeafTemplate& tmpl, const Certificate& issuer,
                                     const PrivateKey& issuer_key) {
  const std::string context = absl::StrCat("sign X509-SVID for ", tmpl.spiffe_id.str());
  if (tmpl.spiffe_id.IsTrustDomainId()) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": an X509-SVID's SPIFFE ID must have a path"));
  }
  for (const std::string& dns : tmpl.dns_names) {
    RETURN_IF_ERROR(Annotate(internal::ValidateDnsName(dns), context));
  }
  Profile profile{.ca = false,
                  .max_path_len = std::nullopt,
                  .uri = tmpl.spiffe_id.str(),
                  .dns_names = tmpl.dns_names,
                  .subject = tmpl.subject,
                  .public_key = tmpl.public_key.get(),
                  .not_before = tmpl.not_before,
                  .not_after = tmpl.not_after};
  if (!tmpl.dns_names.empty()) {
    bool has_cn = false;
    for (const auto& [attr, value] : profile.subject) has_cn |= attr == "CN";
    // X.520 caps a CN at 64 characters; a longer name stays in the SAN only.
    if (!has_cn && tmpl.dns_names.front().size() <= 64) {
      profile.subject.emplace_back("CN", tmpl.dns_names.front());
    }
  }
  RETURN_IF_ERROR(
      Annotate(CheckIssuer(issuer, issuer_key, /*for_ca=*/false, &profile.not_after), context));
  ASSIGN_OR_RETURN(Certificate cert, Build(profile, &issuer, issuer_key), Annotate(_, context));
  return cert;
}

}  // namespace tessera::spiffe
