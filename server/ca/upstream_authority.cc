#include "server/ca/upstream_authority.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/text.h"

namespace tessera::server::ca {
namespace {

constexpr size_t kMaxPemFileBytes = 1 << 20;

absl::Status Precondition(std::string_view message) {
  return absl::FailedPreconditionError(absl::StrCat("upstream authority: ", AsAbsl(message)));
}

absl::StatusOr<std::vector<spiffe::Certificate>> ReadCertificates(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFileToString(path, kMaxPemFileBytes),
                   Annotate(_, "upstream authority: read certificates"));
  ASSIGN_OR_RETURN(std::vector<spiffe::Certificate> certs, spiffe::ParsePemChain(pem),
                   Precondition(absl::StrCat(Quoted(path), ": ", _.message())));
  return certs;
}

bool SignedBy(const spiffe::Certificate& cert, const spiffe::Certificate& issuer) {
  EVP_PKEY* key = issuer.public_key().get();
  bool ok = X509_verify(cert.get(), key) == 1;
  ERR_clear_error();
  return ok;
}

bool Contains(const std::vector<spiffe::Certificate>& certs, const spiffe::Certificate& cert) {
  return std::find(certs.begin(), certs.end(), cert) != certs.end();
}

}  // namespace

absl::StatusOr<DiskUpstreamAuthority::Loaded> DiskUpstreamAuthority::Load() const {
  const std::string& cert_path = config_.cert_file_path;
  ASSIGN_OR_RETURN(std::vector<spiffe::Certificate> chain, ReadCertificates(cert_path));
  ASSIGN_OR_RETURN(std::string key_pem, ReadFileToString(config_.key_file_path, kMaxPemFileBytes),
                   Annotate(_, "upstream authority: read key"));
  absl::StatusOr<spiffe::PrivateKey> key = spiffe::PrivateKey::FromPem(key_pem);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  if (!key.ok()) {
    return Precondition(absl::StrCat(Quoted(config_.key_file_path),
                                     " does not hold a private key: ", key.status().message()));
  }
  if (!key->public_key().Equals(chain[0].public_key())) {
    return Precondition(absl::StrCat("the key in ", Quoted(config_.key_file_path),
                                     " does not match the first certificate of ",
                                     Quoted(cert_path)));
  }
  if (!chain[0].IsCa()) {
    return Precondition(absl::StrCat("the first certificate of ", Quoted(cert_path), " (",
                                     chain[0].SubjectString(), ") is not a CA"));
  }
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    if (!SignedBy(chain[i], chain[i + 1])) {
      return Precondition(absl::StrCat("certificate ", i + 1, " of ", Quoted(cert_path), " (",
                                       chain[i].SubjectString(), ") is not signed by certificate ",
                                       i + 2, " (", chain[i + 1].SubjectString(), ")"));
    }
  }
  std::vector<spiffe::Certificate> roots;
  if (config_.bundle_file_path.empty()) {
    roots.push_back(chain.back());
  } else {
    ASSIGN_OR_RETURN(roots, ReadCertificates(config_.bundle_file_path));
    bool anchored = std::any_of(chain.begin(), chain.end(),
                                [&](const spiffe::Certificate& c) { return Contains(roots, c); }) ||
                    std::any_of(roots.begin(), roots.end(), [&](const spiffe::Certificate& r) {
                      return SignedBy(chain.back(), r);
                    });
    if (!anchored) {
      return Precondition(absl::StrCat(Quoted(cert_path), " does not chain to any certificate of ",
                                       Quoted(config_.bundle_file_path)));
    }
  }
  return Loaded{std::move(chain), *std::move(key), std::move(roots)};
}

absl::Status DiskUpstreamAuthority::Check() const { return Load().status(); }

absl::StatusOr<UpstreamSignedCa> DiskUpstreamAuthority::SignIntermediate(
    const spiffe::CaTemplate& tmpl) {
  ASSIGN_OR_RETURN(Loaded loaded, Load());
  ASSIGN_OR_RETURN(spiffe::Certificate ca,
                   spiffe::SignIntermediateCa(tmpl, loaded.chain[0], loaded.key),
                   Annotate(_, "upstream authority: sign intermediate CA"));
  UpstreamSignedCa out;
  out.chain.push_back(std::move(ca));
  for (const spiffe::Certificate& cert : loaded.chain) {
    if (Contains(loaded.roots, cert)) break;
    out.chain.push_back(cert);
  }
  out.roots = std::move(loaded.roots);
  return out;
}

}  // namespace tessera::server::ca
