// The server half of x509pop: SPIRE's checks, in SPIRE's order, with SPIRE's codes and messages.
#include <openssl/err.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "attestors/x509pop/pop.h"
#include "attestors/x509pop/wire.h"
#include "attestors/x509pop/x509pop.h"
#include "common/files.h"
#include "common/status.h"
#include "common/strings.h"
#include "spiffe/certificate.h"
#include "spiffe/openssl.h"
#include "spiffe/x509_verify.h"

namespace tessera::attestors::x509pop {
namespace {

using spiffe::Certificate;

// Go's TLS stack refuses larger RSA keys; verifying with one costs far more than it should.
constexpr int kMaxRsaBits = 8192;
// SPIRE's default template, compared with its blanks removed.
constexpr std::string_view kDefaultTemplate = "{{.PluginName}}/{{.Fingerprint}}";

// Everything a conversation needs from the attestor. Immutable after construction.
struct Shared {
  // Every certificate of every configured bundle file: all trust anchors.
  std::vector<Certificate> roots;
  size_t max_intermediates = 4;
  const Clock* clock = nullptr;
};

// What the leaf says about the node, extracted while parsing (Go fails to parse a certificate
// whose subject or serial it cannot represent, so these are parse errors too).
struct LeafFacts {
  std::string common_name;
  std::string serial_hex;
};

absl::StatusOr<std::string> SerialHex(const Certificate& cert) {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
  if (serial == nullptr) return absl::InvalidArgumentError("missing serial number");
  if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER) {
    return absl::InvalidArgumentError("negative serial number");
  }
  spiffe::BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn == nullptr) return spiffe::OpenSslError("read serial number");
  std::string bytes(static_cast<size_t>(BN_num_bytes(bn.get())), '\0');
  BN_bn2bin(bn.get(), reinterpret_cast<unsigned char*>(bytes.data()));
  return absl::BytesToHexString(bytes);
}

// The last CN attribute of the subject (the one Go's pkix.Name keeps), as UTF-8.
absl::StatusOr<std::string> CommonName(const Certificate& cert) {
  const X509_NAME* subject = X509_get_subject_name(cert.get());
  int last = -1;
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) last = i;
  if (last < 0) return std::string();
  const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, last));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, value);
  if (len < 0) {
    ERR_clear_error();
    return absl::InvalidArgumentError("subject common name is not a string");
  }
  std::string cn(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return cn;
}

absl::Status CheckCertificate(const Certificate& cert) {
  RETURN_IF_ERROR(SerialHex(cert).status());
  EVP_PKEY* key = cert.public_key().get();
  if (key == nullptr) return absl::InvalidArgumentError("unreadable public key");
  if (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) > kMaxRsaBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("RSA key of ", EVP_PKEY_get_bits(key), " bits is larger than ", kMaxRsaBits));
  }
  return absl::OkStatus();
}

absl::StatusOr<Certificate> ParseCertificate(std::string_view der) {
  ASSIGN_OR_RETURN(Certificate cert, Certificate::FromDer(der));
  RETURN_IF_ERROR(CheckCertificate(cert));
  return cert;
}

// Path validation with "any" extended key usage, every bundle certificate an anchor (as in Go's
// root pool), at the clock's time. Returns the verified chain, leaf first.
absl::StatusOr<std::vector<Certificate>> VerifyChain(const std::vector<Certificate>& roots,
                                                     const std::vector<Certificate>& chain,
                                                     Clock::TimePoint now) {
  ASSIGN_OR_RETURN(spiffe::ChainVerification verdict,
                   spiffe::VerifyChainToRoots(chain, roots, now));
  if (!verdict.verified()) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate verification failed: ", verdict.rejection->reason,
                     " (certificate at depth ", verdict.rejection->depth, ")"));
  }
  return std::move(verdict.path);
}

// "san:<key>:<value>" for a URI SAN x509pop://<trust domain>/<key>/<value>, nullopt for any
// other URI. The scheme is case-insensitive (RFC 3986); the rest is compared as written.
std::optional<std::string> SanSelectorValue(std::string_view uri, const spiffe::TrustDomain& td) {
  constexpr std::string_view kScheme = "x509pop://";
  if (uri.size() < kScheme.size() ||
      absl::AsciiStrToLower(AsAbsl(uri.substr(0, kScheme.size()))) != kScheme) {
    return std::nullopt;
  }
  std::string_view rest = uri.substr(kScheme.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos || rest.substr(0, slash) != td.name()) return std::nullopt;
  std::string_view path = rest.substr(slash + 1);
  size_t sep = path.find('/');
  if (sep == std::string_view::npos || sep == 0 || sep + 1 == path.size()) return std::nullopt;
  return absl::StrCat("san:", AsAbsl(path.substr(0, sep)), ":", AsAbsl(path.substr(sep + 1)));
}

absl::StatusOr<spiffe::SelectorSet> BuildSelectors(const LeafFacts& facts,
                                                   const std::vector<Certificate>& path,
                                                   const Certificate& leaf,
                                                   const spiffe::TrustDomain& td) {
  std::vector<std::string> values;
  if (!facts.common_name.empty()) values.push_back("subject:cn:" + facts.common_name);
  for (size_t i = 1; i < path.size(); ++i) {
    ASSIGN_OR_RETURN(std::string fp, Fingerprint(path[i]));
    values.push_back("ca:fingerprint:" + fp);  // SelectorSet removes duplicates
  }
  values.push_back("serialnumber:" + facts.serial_hex);
  for (const std::string& uri : leaf.UriSans()) {
    if (std::optional<std::string> san = SanSelectorValue(uri, td)) values.push_back(*san);
  }
  std::vector<spiffe::Selector> selectors;
  for (const std::string& value : values) {
    ASSIGN_OR_RETURN(
        spiffe::Selector selector, spiffe::Selector::Create(kPluginName, value),
        absl::InvalidArgumentError(absl::StrCat("unable to build selector \"",
                                                absl::CHexEscape(value), "\": ", _.message())));
    selectors.push_back(std::move(selector));
  }
  return spiffe::SelectorSet(std::move(selectors));
}

class Attestation final : public ServerNodeAttestation {
 public:
  Attestation(std::shared_ptr<const Shared> shared, spiffe::TrustDomain td)
      : shared_(std::move(shared)), td_(std::move(td)) {}

  absl::StatusOr<NodeAttestationStep> Next(std::string_view bytes) override {
    absl::StatusOr<NodeAttestationStep> step;
    switch (state_) {
      case State::kPayload:
        step = OnPayload(bytes);
        break;
      case State::kResponse:
        step = OnResponse(bytes);
        break;
      case State::kDone:
        return absl::FailedPreconditionError("attestation already finished");
    }
    // One answer per challenge: a failed conversation cannot be retried against the same nonce.
    if (!step.ok() || step->result.has_value()) state_ = State::kDone;
    if (step.ok() && step->challenge.has_value()) state_ = State::kResponse;
    return step;
  }

 private:
  enum class State { kPayload, kResponse, kDone };

  absl::StatusOr<NodeAttestationStep> OnPayload(std::string_view bytes) {
    ASSIGN_OR_RETURN(
        AttestationData data, DecodeAttestationData(bytes),
        absl::InvalidArgumentError(absl::StrCat("failed to unmarshal data: ", _.message())));
    if (data.certificates.empty()) return absl::InvalidArgumentError("no certificate to attest");
    if (data.certificates.size() - 1 > shared_->max_intermediates) {
      return absl::InvalidArgumentError("too many intermediate certificates");
    }
    std::vector<Certificate> chain;
    for (size_t i = 0; i < data.certificates.size(); ++i) {
      ASSIGN_OR_RETURN(
          Certificate cert, ParseCertificate(data.certificates[i]),
          absl::InvalidArgumentError(absl::StrCat(
              i == 0 ? "unable to parse leaf certificate"
                     : absl::StrCat("unable to parse intermediate certificate ", i - 1),
              ": ", _.message())));
      chain.push_back(std::move(cert));
    }
    LeafFacts facts;
    ASSIGN_OR_RETURN(facts.serial_hex, SerialHex(chain[0]));
    ASSIGN_OR_RETURN(facts.common_name, CommonName(chain[0]),
                     absl::InvalidArgumentError(
                         absl::StrCat("unable to parse leaf certificate: ", _.message())));

    ASSIGN_OR_RETURN(std::vector<Certificate> path,
                     VerifyChain(shared_->roots, chain, shared_->clock->Now()));

    ASSIGN_OR_RETURN(
        challenge_, GenerateChallenge(chain[0]),
        absl::Status(
            _.code() == absl::StatusCode::kInvalidArgument ? absl::StatusCode::kInternal : _.code(),
            absl::StrCat("unable to generate challenge: ", _.message())));
    ASSIGN_OR_RETURN(selectors_, BuildSelectors(facts, path, chain[0], td_));
    ASSIGN_OR_RETURN(fingerprint_, Fingerprint(chain[0]));
    leaf_key_ = chain[0].public_key();
    return NodeAttestationStep{.challenge = EncodeChallenge(challenge_), .result = std::nullopt};
  }

  absl::StatusOr<NodeAttestationStep> OnResponse(std::string_view bytes) {
    ASSIGN_OR_RETURN(Response response, DecodeResponse(bytes),
                     absl::InvalidArgumentError(
                         absl::StrCat("unable to unmarshal challenge response: ", _.message())));
    absl::Status verified = VerifyResponse(*leaf_key_, challenge_, response);
    if (!verified.ok()) {
      return absl::Status(
          verified.code() == absl::StatusCode::kInvalidArgument
              ? absl::StatusCode::kPermissionDenied
              : verified.code(),
          absl::StrCat("challenge response verification failed: ", verified.message()));
    }
    ASSIGN_OR_RETURN(
        spiffe::SpiffeId id,
        spiffe::SpiffeId::FromSegments(td_, {"spire", "agent", kPluginName, fingerprint_}),
        absl::InternalError(absl::StrCat("build agent ID: ", _.message())));
    return NodeAttestationStep{
        .challenge = std::nullopt,
        .result = NodeAttestationResult{
            .agent_id = std::move(id), .selectors = selectors_, .can_reattest = true}};
  }

  const std::shared_ptr<const Shared> shared_;
  const spiffe::TrustDomain td_;

  State state_ = State::kPayload;
  // Set by the payload, read by the response.
  Challenge challenge_;
  std::optional<spiffe::PublicKey> leaf_key_;
  std::string fingerprint_;
  spiffe::SelectorSet selectors_;
};

class Attestor final : public ServerNodeAttestor {
 public:
  explicit Attestor(std::shared_ptr<const Shared> shared) : shared_(std::move(shared)) {}

  std::string_view type() const override { return kPluginName; }

  std::unique_ptr<ServerNodeAttestation> Begin(
      const spiffe::TrustDomain& trust_domain) const override {
    return std::make_unique<Attestation>(shared_, trust_domain);
  }

 private:
  const std::shared_ptr<const Shared> shared_;
};

absl::StatusOr<std::vector<Certificate>> LoadBundle(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFileToString(path),
                   Annotate(_, absl::StrCat("x509pop: load CA bundle ", path)));
  ASSIGN_OR_RETURN(std::vector<Certificate> certs, spiffe::ParsePemChain(pem),
                   Annotate(_, absl::StrCat("x509pop: load CA bundle ", path)));
  return certs;
}

absl::Status CheckTemplate(const ServerConfig& config) {
  if (config.mode != "external_pki") {
    return absl::InvalidArgumentError(
        absl::StrCat("x509pop: mode \"", config.mode, "\" is not supported (only external_pki)"));
  }
  std::string compact = config.agent_path_template;
  compact.erase(std::remove(compact.begin(), compact.end(), ' '), compact.end());
  if (!compact.empty() && compact != kDefaultTemplate) {
    return absl::InvalidArgumentError(
        absl::StrCat("x509pop: agent_path_template \"", config.agent_path_template,
                     "\" is not supported (only the default \"{{ .PluginName}}/{{ "
                     ".Fingerprint }}\")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerNodeAttestor>> NewServerAttestor(const ServerConfig& config,
                                                                      const Clock& clock) {
  RETURN_IF_ERROR(CheckTemplate(config));
  if (config.max_intermediates < 0) {
    return absl::InvalidArgumentError("x509pop: max_intermediates must not be negative");
  }
  if (config.ca_bundle_paths.empty()) {
    return absl::InvalidArgumentError("x509pop: ca_bundle_paths is required");
  }
  auto shared = std::make_shared<Shared>();
  for (const std::string& path : config.ca_bundle_paths) {
    ASSIGN_OR_RETURN(std::vector<Certificate> certs, LoadBundle(path));
    // The same anchor in two files is harmless: verification ignores the duplicate.
    shared->roots.insert(shared->roots.end(), certs.begin(), certs.end());
  }
  shared->max_intermediates = static_cast<size_t>(config.max_intermediates);
  shared->clock = &clock;
  return std::make_unique<Attestor>(std::move(shared));
}

}  // namespace tessera::attestors::x509pop
