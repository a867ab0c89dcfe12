#include "spiffe/x509_verify.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "spiffe/openssl.h"

namespace tessera::spiffe {
namespace {

struct X509StackDeleter {
  // The stack only borrows its certificates (the caller's Certificates own them).
  void operator()(STACK_OF(X509) * stack) const { sk_X509_free(stack); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackDeleter>;

// Peer-supplied text quoted in an error message: escaped so that it cannot forge log lines.
std::string Quote(std::string_view s) {
  return absl::StrCat("\"", absl::CHexEscape(AsAbsl(s)), "\"");
}

absl::Status Unauthenticated(const absl::Status& status) {
  return absl::UnauthenticatedError(absl::StrCat("verify X509-SVID: ", status.message()));
}

absl::Status Unauthenticated(std::string_view message) {
  return absl::UnauthenticatedError(absl::StrCat("verify X509-SVID: ", AsAbsl(message)));
}

absl::Status CheckIntermediatesAreCas(std::span<const Certificate> chain, bool need_cert_sign) {
  for (size_t i = 1; i < chain.size(); ++i) {
    if (!chain[i].IsCa()) {
      return absl::InvalidArgumentError(absl::StrCat("intermediate certificate #", i, " (",
                                                     chain[i].SubjectString(), ") is not a CA"));
    }
    if (need_cert_sign && ((X509_get_extension_flags(chain[i].get()) & EXFLAG_KUSAGE) == 0 ||
                           (X509_get_key_usage(chain[i].get()) & KU_KEY_CERT_SIGN) == 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "intermediate certificate #", i, " (", chain[i].SubjectString(), ") lacks keyCertSign"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ChainVerification> VerifyChainToRoots(std::span<const Certificate> chain,
                                                     std::span<const Certificate> roots,
                                                     std::chrono::system_clock::time_point now) {
  if (chain.empty()) return absl::InvalidArgumentError("verify chain: empty certificate chain");
  for (const Certificate& cert : chain) {
    if (cert.get() == nullptr) {
      return absl::InvalidArgumentError("verify chain: null certificate in chain");
    }
  }
  X509StorePtr store(X509_STORE_new());
  X509StackPtr untrusted(sk_X509_new_null());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (store == nullptr || untrusted == nullptr || ctx == nullptr) {
    return OpenSslError("verify chain: allocate verifier", absl::StatusCode::kInternal);
  }
  for (const Certificate& root : roots) {
    if (root.get() == nullptr) return absl::InvalidArgumentError("verify chain: null root");
    // Takes its own reference; a duplicate is ignored.
    if (X509_STORE_add_cert(store.get(), root.get()) != 1) {
      return OpenSslError("verify chain: add root", absl::StatusCode::kInternal);
    }
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (sk_X509_push(untrusted.get(), chain[i].get()) <= 0) {
      return OpenSslError("verify chain: collect intermediates", absl::StatusCode::kInternal);
    }
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()) != 1) {
    return OpenSslError("verify chain: initialise verifier", absl::StatusCode::kInternal);
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  // Sets X509_V_FLAG_USE_CHECK_TIME: the caller's clock, never OpenSSL's own reading.
  X509_VERIFY_PARAM_set_time(
      param, std::chrono::system_clock::to_time_t(std::chrono::floor<std::chrono::seconds>(now)));
  // Without it OpenSSL only stops at a self-signed anchor.
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    ERR_clear_error();
    return ChainVerification{
        .path = {},
        .rejection = ChainRejection{
            .error = err, .reason = X509_verify_cert_error_string(err), .depth = depth}};
  }
  ChainVerification result;
  STACK_OF(X509)* verified = X509_STORE_CTX_get0_chain(ctx.get());
  for (int i = 0; i < sk_X509_num(verified); ++i) {
    result.path.push_back(Certificate::FromX509(sk_X509_value(verified, i)));
  }
  return result;
}

absl::StatusOr<SpiffeId> ValidateLeafProfile(const Certificate& leaf) {
  std::vector<std::string> uris = leaf.UriSans();
  if (uris.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf certificate must have exactly one URI SAN, it has ", uris.size()));
  }
  absl::StatusOr<SpiffeId> id = SpiffeId::Parse(uris[0]);
  if (!id.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf URI SAN ", Quote(uris[0]), ": ", id.status().message()));
  }
  if (id->IsTrustDomainId()) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf SPIFFE ID ", id->str(), " has no path (it names a trust domain)"));
  }
  if (leaf.IsCa()) return absl::InvalidArgumentError("leaf certificate is a CA");
  if ((X509_get_extension_flags(leaf.get()) & EXFLAG_KUSAGE) == 0) {
    return absl::InvalidArgumentError("leaf certificate has no keyUsage extension");
  }
  uint32_t ku = X509_get_key_usage(leaf.get());
  if ((ku & KU_DIGITAL_SIGNATURE) == 0) {
    return absl::InvalidArgumentError("leaf keyUsage lacks digitalSignature");
  }
  if (ku & KU_KEY_CERT_SIGN) return absl::InvalidArgumentError("leaf keyUsage has keyCertSign");
  if (ku & KU_CRL_SIGN) return absl::InvalidArgumentError("leaf keyUsage has cRLSign");
  return *std::move(id);
}

absl::StatusOr<VerifiedX509Svid> VerifyX509Svid(std::span<const Certificate> chain,
                                                const X509AuthoritiesSource& authorities,
                                                std::chrono::system_clock::time_point now) {
  if (chain.empty()) return Unauthenticated("empty certificate chain");
  for (const Certificate& cert : chain) {
    if (cert.get() == nullptr) return Unauthenticated("null certificate in chain");
  }
  absl::StatusOr<SpiffeId> id = ValidateLeafProfile(chain[0]);
  if (!id.ok()) return Unauthenticated(id.status());
  absl::Status cas = CheckIntermediatesAreCas(chain, /*need_cert_sign=*/false);
  if (!cas.ok()) return Unauthenticated(cas);

  TrustDomain td = id->trust_domain();
  std::optional<std::vector<Certificate>> anchors = authorities ? authorities(td) : std::nullopt;
  if (!anchors.has_value()) {
    return Unauthenticated(absl::StrCat("no bundle for trust domain \"", td.name(), "\""));
  }
  if (anchors->empty()) {
    return Unauthenticated(
        absl::StrCat("bundle for trust domain \"", td.name(), "\" has no X.509 authorities"));
  }
  absl::StatusOr<ChainVerification> verdict = VerifyChainToRoots(chain, *anchors, now);
  if (!verdict.ok()) return Unauthenticated(verdict.status());
  if (!verdict->verified()) {
    return Unauthenticated(
        absl::StrCat("certificate chain does not validate: ", verdict->rejection->reason,
                     " (at depth ", verdict->rejection->depth, ")"));
  }
  if (verdict->path.size() < 2) {
    return Unauthenticated("the leaf certificate is itself a bundle authority");
  }
  return VerifiedX509Svid{.id = *std::move(id), .chain = std::move(verdict->path)};
}

namespace {

absl::StatusOr<X509Svid> AssembleSvid(std::vector<Certificate> chain, PrivateKey key) {
  ASSIGN_OR_RETURN(SpiffeId id, ValidateLeafProfile(chain[0]), Annotate(_, "parse X509-SVID"));
  RETURN_IF_ERROR(
      Annotate(CheckIntermediatesAreCas(chain, /*need_cert_sign=*/true), "parse X509-SVID"));
  if (!key.public_key().Equals(chain[0].public_key())) {
    return absl::InvalidArgumentError(
        "parse X509-SVID: private key does not match the leaf certificate's public key");
  }
  return X509Svid{.id = std::move(id), .chain = std::move(chain), .key = std::move(key)};
}

}  // namespace

absl::StatusOr<X509Svid> ParseX509Svid(std::string_view chain_der, std::string_view key_der) {
  ASSIGN_OR_RETURN(std::vector<Certificate> chain, ParseDerChain(chain_der),
                   Annotate(_, "parse X509-SVID"));
  ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::FromPkcs8Der(key_der),
                   Annotate(_, "parse X509-SVID"));
  return AssembleSvid(std::move(chain), std::move(key));
}

absl::StatusOr<X509Svid> ParseX509SvidPem(std::string_view chain_pem, std::string_view key_pem) {
  ASSIGN_OR_RETURN(std::vector<Certificate> chain, ParsePemChain(chain_pem),
                   Annotate(_, "parse X509-SVID"));
  ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::FromPem(key_pem), Annotate(_, "parse X509-SVID"));
  return AssembleSvid(std::move(chain), std::move(key));
}

}  // namespace tessera::spiffe
