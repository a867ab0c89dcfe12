#include "spiffe/certificate.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <climits>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "spiffe/x509_internal.h"

namespace tessera::spiffe {
namespace {

using TimePoint = Certificate::TimePoint;

struct OpenSslFreeDeleter {
  void operator()(void* p) const { OPENSSL_free(p); }
};
using OpenSslCharPtr = std::unique_ptr<char, OpenSslFreeDeleter>;

// The common case of ParseOne without OpenSSL 3.0's key decoder: a certificate whose structure
// decodes in the keyless context (the same ASN.1 templates as d2i_X509: the same acceptance and
// fields) and whose subject key internal::DecodeEcSpki reads (then it is the key OpenSSL's decoder
// would have made). The X509 gets that key as a legacy copy, which re-encodes the subject key and
// the TBSCertificate around it; the result is kept only if the whole certificate then re-encodes
// to exactly the input, which is ParseOne's canonical-DER check (stricter, even: it covers the
// TBSCertificate too, which d2i_X509 would hand back verbatim) and proves that the certificate
// holds the very bytes that were signed. Anything else returns nullopt with the error queue as it
// was, and ParseOne decides as it always did.
std::optional<Certificate> ParseCommon(const unsigned char** p, long len) {
  OSSL_LIB_CTX* keyless = KeylessDecodeContext();
  if (keyless == nullptr) return std::nullopt;
  const unsigned char* const begin = *p;
  const unsigned char* end = begin;
  ERR_set_mark();
  X509Ptr x509(reinterpret_cast<X509*>(
      ASN1_item_d2i_ex(nullptr, &end, len, ASN1_ITEM_rptr(X509), keyless, nullptr)));
  internal::EcSpkiKeys keys;
  if (x509 != nullptr) {
    keys = internal::DecodeEcSpkiWithLegacyCopy(X509_get_X509_PUBKEY(x509.get()));
  }
  bool ok = keys.legacy != nullptr && X509_set_pubkey(x509.get(), keys.legacy.get()) == 1;
  if (ok) {
    unsigned char* reencoded = nullptr;
    const int reencoded_len = i2d_X509(x509.get(), &reencoded);
    ok = reencoded_len == end - begin &&
         std::memcmp(reencoded, begin, static_cast<size_t>(reencoded_len)) == 0;
    OPENSSL_free(reencoded);
  }
  ok = ok && (X509_get_extension_flags(x509.get()) & EXFLAG_INVALID) == 0;
  ERR_pop_to_mark();
  if (!ok) return std::nullopt;
  *p = end;
  return internal::CertificateAccess::WithLegacyKeyOf(x509.get(),
                                                      PublicKey::FromEvp(keys.key.get()));
}

// One DER certificate starting at `*p`; advances `*p` past it.
absl::StatusOr<Certificate> ParseOne(const unsigned char** p, long len) {
  if (std::optional<Certificate> common = ParseCommon(p, len)) return *std::move(common);
  const unsigned char* const begin = *p;
  X509* raw = d2i_X509(nullptr, p, len);
  if (raw == nullptr) return OpenSslError("parse certificate");
  X509Ptr x509(raw);
  // d2i also takes some BER that is not DER; such a certificate would be re-encoded differently
  // when we pass it on (and two parties could disagree on what was signed). X.509 is DER only.
  unsigned char* reencoded = nullptr;
  const int reencoded_len = i2d_X509(x509.get(), &reencoded);
  const bool canonical = reencoded_len == *p - begin &&
                         std::memcmp(reencoded, begin, static_cast<size_t>(reencoded_len)) == 0;
  OPENSSL_free(reencoded);
  if (!canonical) {
    ERR_clear_error();
    return absl::InvalidArgumentError("parse certificate: not DER (a non-canonical encoding)");
  }
  // Computing the extension cache is where OpenSSL notices malformed or duplicated extensions;
  // such a certificate's SANs and constraints cannot be trusted, so it is refused outright.
  if (X509_get_extension_flags(x509.get()) & EXFLAG_INVALID) {
    ERR_clear_error();
    return absl::InvalidArgumentError("parse certificate: invalid or duplicated extensions");
  }
  if (X509_get0_pubkey(x509.get()) == nullptr) {
    return OpenSslError("parse certificate: unsupported public key");
  }
  return Certificate::FromX509(x509.get());
}

TimePoint FromAsn1Time(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return TimePoint::min();
  time_t secs = timegm(&tm);
  // system_clock counts nanoseconds in 64 bits (about ±292 years around 1970), while X.509 dates
  // reach 9999-12-31 (RFC 5280's "no expiration"): clamp rather than overflow.
  using std::chrono::duration_cast;
  using std::chrono::seconds;
  const auto max_secs = duration_cast<seconds>(TimePoint::max().time_since_epoch()).count();
  const auto min_secs = duration_cast<seconds>(TimePoint::min().time_since_epoch()).count();
  if (secs >= max_secs) return TimePoint::max();
  if (secs <= min_secs) return TimePoint::min();
  return TimePoint(duration_cast<TimePoint::duration>(seconds(secs)));
}

std::vector<std::string> Sans(X509* x509, int type) {
  std::vector<std::string> out;
  int crit = 0;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x509, NID_subject_alt_name, &crit, nullptr)));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != type) continue;
    const ASN1_IA5STRING* s = type == GEN_URI ? name->d.uniformResourceIdentifier : name->d.dNSName;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
  }
  return out;
}

std::string OctetString(const ASN1_OCTET_STRING* s) {
  if (s == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

BignumPtr SerialBn(X509* x509) {
  return BignumPtr(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x509), nullptr));
}

struct PemBlock {
  std::string type;
  std::string der;
};

// Every PEM block in `pem`, in order; text between blocks is skipped. A malformed block is an
// error, reaching the end of the input is not.
absl::StatusOr<std::vector<PemBlock>> ReadPemBlocks(std::string_view pem) {
  BioPtr bio = MemBio(pem);
  if (bio == nullptr) return absl::InvalidArgumentError("parse PEM: input too large");
  std::vector<PemBlock> blocks;
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      unsigned long err = ERR_peek_last_error();
      if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        break;
      }
      return OpenSslError("parse PEM");
    }
    OpenSslCharPtr name_owner(name), header_owner(header);
    OpenSslCharPtr data_owner(reinterpret_cast<char*>(data));
    if (header != nullptr && header[0] != '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("parse PEM: block \"", name, "\" has headers (encrypted?)"));
    }
    blocks.push_back({name, std::string(reinterpret_cast<char*>(data), static_cast<size_t>(len))});
  }
  return blocks;
}

absl::StatusOr<Certificate> FromCertificateBlock(const PemBlock& block) {
  if (block.type != "CERTIFICATE") {
    return absl::InvalidArgumentError(absl::StrCat("parse certificate PEM: unexpected block \"",
                                                   block.type, "\" (want CERTIFICATE)"));
  }
  return Certificate::FromDer(block.der);
}

}  // namespace

absl::StatusOr<Certificate> Certificate::FromDer(std::string_view der) {
  if (der.empty()) return absl::InvalidArgumentError("parse certificate: empty input");
  if (der.size() > static_cast<size_t>(LONG_MAX)) {
    return absl::InvalidArgumentError("parse certificate: input too large");
  }
  const auto* start = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* p = start;
  ASSIGN_OR_RETURN(Certificate cert, ParseOne(&p, static_cast<long>(der.size())));
  if (static_cast<size_t>(p - start) != der.size()) {
    return absl::InvalidArgumentError("parse certificate: trailing data after DER");
  }
  return cert;
}

absl::StatusOr<Certificate> Certificate::FromPem(std::string_view pem) {
  ASSIGN_OR_RETURN(std::vector<PemBlock> blocks, ReadPemBlocks(pem));
  if (blocks.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parse certificate PEM: want exactly one CERTIFICATE block, got ", blocks.size()));
  }
  return FromCertificateBlock(blocks[0]);
}

Certificate Certificate::FromX509(X509* x509) {
  if (x509 != nullptr) X509_up_ref(x509);
  return Certificate(std::shared_ptr<X509>(x509, X509_free));
}

std::string Certificate::ToDer() const {
  unsigned char* out = nullptr;
  int len = i2d_X509(x509_.get(), &out);
  if (len <= 0) {
    ERR_clear_error();
    return {};
  }
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(len));
  OPENSSL_free(out);
  return der;
}

std::string Certificate::ToPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), x509_.get()) != 1) {
    ERR_clear_error();
    return {};
  }
  return BioContents(bio.get());
}

PublicKey Certificate::public_key() const {
  if (public_key_.has_value()) return *public_key_;
  return PublicKey::FromEvp(X509_get0_pubkey(x509_.get()));
}

std::vector<std::string> Certificate::UriSans() const { return Sans(x509_.get(), GEN_URI); }
std::vector<std::string> Certificate::DnsSans() const { return Sans(x509_.get(), GEN_DNS); }

bool Certificate::IsCa() const {
  uint32_t flags = X509_get_extension_flags(x509_.get());
  return (flags & EXFLAG_BCONS) != 0 && (flags & EXFLAG_CA) != 0;
}

Certificate::TimePoint Certificate::NotBefore() const {
  return FromAsn1Time(X509_get0_notBefore(x509_.get()));
}

Certificate::TimePoint Certificate::NotAfter() const {
  return FromAsn1Time(X509_get0_notAfter(x509_.get()));
}

std::string Certificate::SerialHex() const {
  BignumPtr bn = SerialBn(x509_.get());
  if (bn == nullptr) return {};
  OpenSslCharPtr hex(BN_bn2hex(bn.get()));
  if (hex == nullptr) return {};
  std::string out(hex.get());
  bool negative = !out.empty() && out[0] == '-';
  std::string digits = negative ? out.substr(1) : out;
  size_t nz = digits.find_first_not_of('0');
  digits = nz == std::string::npos ? "0" : digits.substr(nz);
  for (char& c : digits) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return negative ? "-" + digits : digits;
}

std::string Certificate::SerialDecimal() const {
  BignumPtr bn = SerialBn(x509_.get());
  if (bn == nullptr) return {};
  OpenSslCharPtr dec(BN_bn2dec(bn.get()));
  return dec == nullptr ? std::string() : std::string(dec.get());
}

std::string Certificate::SubjectKeyId() const {
  return OctetString(X509_get0_subject_key_id(x509_.get()));
}

std::string Certificate::AuthorityKeyId() const {
  return OctetString(X509_get0_authority_key_id(x509_.get()));
}

std::string Certificate::SubjectString() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) return {};
  if (X509_NAME_print_ex(bio.get(), X509_get_subject_name(x509_.get()), 0, XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return {};
  }
  return BioContents(bio.get());
}

bool operator==(const Certificate& a, const Certificate& b) {
  if (a.x509_ == b.x509_) return true;
  if (a.x509_ == nullptr || b.x509_ == nullptr) return false;
  return a.ToDer() == b.ToDer();
}

absl::StatusOr<std::vector<Certificate>> ParseDerChain(std::string_view der) {
  if (der.empty()) return absl::InvalidArgumentError("parse certificate chain: empty input");
  if (der.size() > static_cast<size_t>(LONG_MAX)) {
    return absl::InvalidArgumentError("parse certificate chain: input too large");
  }
  std::vector<Certificate> chain;
  const auto* start = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* p = start;
  const unsigned char* end = start + der.size();
  while (p < end) {
    // A failure after at least one certificate means trailing bytes that are not a certificate.
    ASSIGN_OR_RETURN(
        Certificate cert, ParseOne(&p, static_cast<long>(end - p)),
        Annotate(_, absl::StrCat("parse certificate chain: certificate #", chain.size() + 1)));
    chain.push_back(std::move(cert));
  }
  return chain;
}

absl::StatusOr<std::vector<Certificate>> ParsePemChain(std::string_view pem) {
  ASSIGN_OR_RETURN(std::vector<PemBlock> blocks, ReadPemBlocks(pem));
  if (blocks.empty()) {
    return absl::InvalidArgumentError("parse certificate PEM: no CERTIFICATE block");
  }
  std::vector<Certificate> chain;
  chain.reserve(blocks.size());
  for (const PemBlock& block : blocks) {
    ASSIGN_OR_RETURN(Certificate cert, FromCertificateBlock(block));
    chain.push_back(std::move(cert));
  }
  return chain;
}

std::string ChainToDer(std::span<const Certificate> chain) {
  std::string out;
  for (const Certificate& cert : chain) out += cert.ToDer();
  return out;
}

std::string ChainToPem(std::span<const Certificate> chain) {
  std::string out;
  for (const Certificate& cert : chain) out += cert.ToPem();
  return out;
}

}  // namespace tessera::spiffe
