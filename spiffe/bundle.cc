#include "spiffe/bundle.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace tessera::spiffe {

bool Bundle::AddX509Authority(const Certificate& cert) {
  if (HasX509Authority(cert)) return false;
  x509_authorities_.push_back(cert);
  return true;
}

bool Bundle::RemoveX509Authority(const Certificate& cert) {
  auto it = std::find(x509_authorities_.begin(), x509_authorities_.end(), cert);
  if (it == x509_authorities_.end()) return false;
  x509_authorities_.erase(it);
  return true;
}

bool Bundle::HasX509Authority(const Certificate& cert) const {
  return std::find(x509_authorities_.begin(), x509_authorities_.end(), cert) !=
         x509_authorities_.end();
}

void Bundle::SetX509Authorities(const std::vector<Certificate>& certs) {
  x509_authorities_.clear();
  for (const Certificate& cert : certs) AddX509Authority(cert);
}

absl::Status Bundle::AddJwtAuthority(std::string key_id, PublicKey key) {
  if (key_id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("bundle for \"", trust_domain_.name(),
                                                   "\": JWT authority key ID cannot be empty"));
  }
  auto it = jwt_authorities_.find(key_id);
  if (it != jwt_authorities_.end()) {
    if (it->second.Equals(key)) return absl::OkStatus();
    return absl::AlreadyExistsError(absl::StrCat("bundle for \"", trust_domain_.name(),
                                                 "\": duplicate JWT authority key ID \"", key_id,
                                                 "\""));
  }
  jwt_authorities_.emplace(std::move(key_id), std::move(key));
  return absl::OkStatus();
}

bool Bundle::RemoveJwtAuthority(std::string_view key_id) {
  auto it = jwt_authorities_.find(key_id);
  if (it == jwt_authorities_.end()) return false;
  jwt_authorities_.erase(it);
  return true;
}

const PublicKey* Bundle::FindJwtAuthority(std::string_view key_id) const {
  auto it = jwt_authorities_.find(key_id);
  return it == jwt_authorities_.end() ? nullptr : &it->second;
}

bool operator==(const Bundle& a, const Bundle& b) {
  if (a.trust_domain_ != b.trust_domain_ || a.x509_authorities_ != b.x509_authorities_ ||
      a.sequence_number_ != b.sequence_number_ || a.refresh_hint_ != b.refresh_hint_ ||
      a.jwt_authorities_.size() != b.jwt_authorities_.size()) {
    return false;
  }
  return std::equal(
      a.jwt_authorities_.begin(), a.jwt_authorities_.end(), b.jwt_authorities_.begin(),
      [](const auto& x, const auto& y) { return x.first == y.first && x.second.Equals(y.second); });
}

void BundleSet::Put(Bundle bundle) {
  TrustDomain td = bundle.trust_domain();
  bundles_.insert_or_assign(std::move(td), std::move(bundle));
}

bool BundleSet::Remove(const TrustDomain& trust_domain) { return bundles_.erase(trust_domain) > 0; }

const Bundle* BundleSet::Find(const TrustDomain& trust_domain) const {
  auto it = bundles_.find(trust_domain);
  return it == bundles_.end() ? nullptr : &it->second;
}

const std::vector<Certificate>* BundleSet::X509AuthoritiesFor(
    const TrustDomain& trust_domain) const {
  const Bundle* bundle = Find(trust_domain);
  return bundle == nullptr ? nullptr : &bundle->x509_authorities();
}

const JwtAuthorities* BundleSet::JwtAuthoritiesFor(const TrustDomain& trust_domain) const {
  const Bundle* bundle = Find(trust_domain);
  return bundle == nullptr ? nullptr : &bundle->jwt_authorities();
}

const PublicKey* BundleSet::FindJwtAuthority(const TrustDomain& trust_domain,
                                             std::string_view key_id) const {
  const Bundle* bundle = Find(trust_domain);
  return bundle == nullptr ? nullptr : bundle->FindJwtAuthority(key_id);
}

absl::StatusOr<Bundle> BundleFromX509Pem(const TrustDomain& trust_domain, std::string_view pem) {
  ASSIGN_OR_RETURN(std::vector<Certificate> certs, ParsePemChain(pem),
                   Annotate(_, absl::StrCat("PEM bundle for \"", trust_domain.name(), "\"")));
  Bundle bundle(trust_domain);
  bundle.SetX509Authorities(certs);
  return bundle;
}

std::string X509AuthoritiesToPem(const Bundle& bundle) {
  return ChainToPem(bundle.x509_authorities());
}

absl::StatusOr<Bundle> BundleFromX509Der(const TrustDomain& trust_domain, std::string_view der) {
  ASSIGN_OR_RETURN(std::vector<Certificate> certs, ParseDerChain(der),
                   Annotate(_, absl::StrCat("DER bundle for \"", trust_domain.name(), "\"")));
  Bundle bundle(trust_domain);
  bundle.SetX509Authorities(certs);
  return bundle;
}

std::string X509AuthoritiesToDer(const Bundle& bundle) {
  return ChainToDer(bundle.x509_authorities());
}

}  // namespace tessera::spiffe
