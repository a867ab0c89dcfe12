// CaManager's signing half: runs on gRPC threads against the snapshot of the active signer.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/ca/ca_manager.h"
#include "spiffe/jwt_svid.h"

namespace tessera::server::ca {
namespace {

std::string FormatTime(TimePoint t) {
  return absl::FormatTime(absl::RFC3339_sec, absl::FromChrono(t), absl::UTCTimeZone());
}

absl::Status CheckTrustDomain(const spiffe::SpiffeId& id, const spiffe::TrustDomain& td) {
  if (id.MemberOf(td)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("ca: \"", id.str(), "\" is not in trust domain \"", td.name(), "\""));
}

// now + ttl, cut at `limit`; compared in seconds so that a huge ttl cannot overflow.
TimePoint Expiry(TimePoint now, std::chrono::seconds ttl, TimePoint limit) {
  auto remaining = std::chrono::floor<std::chrono::seconds>(limit - now);
  return ttl >= remaining ? limit : now + ttl;
}

absl::Status CheckTtl(std::chrono::seconds ttl) {
  if (ttl.count() >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("ca: negative ttl ", ttl.count(), "s"));
}

}  // namespace

std::shared_ptr<const CaManager::X509Slot> CaManager::ActiveX509() const {
  absl::MutexLock lock(&mu_);
  return active_x509_;
}

std::shared_ptr<const CaManager::JwtSlot> CaManager::ActiveJwt() const {
  absl::MutexLock lock(&mu_);
  return active_jwt_;
}

absl::StatusOr<SignedX509Svid> CaManager::SignLeafSvid(const spiffe::PublicKey& public_key,
                                                       const spiffe::SpiffeId& id,
                                                       const std::vector<std::string>& dns_names,
                                                       std::chrono::seconds ttl,
                                                       spiffe::DistinguishedName subject) const {
  RETURN_IF_ERROR(CheckTrustDomain(id, config_.trust_domain));
  RETURN_IF_ERROR(CheckTtl(ttl));
  std::shared_ptr<const X509Slot> signer = ActiveX509();
  if (signer == nullptr) return absl::FailedPreconditionError("ca: not initialized");
  TimePoint now = std::chrono::floor<std::chrono::seconds>(clock_.Now());
  TimePoint ca_not_after = signer->record.not_after();
  if (ca_not_after <= now) {
    return absl::UnavailableError(
        absl::StrCat("ca: the X.509 CA expired at ", FormatTime(ca_not_after)));
  }
  spiffe::LeafTemplate tmpl{.public_key = public_key,
                            .spiffe_id = id,
                            .dns_names = dns_names,
                            .subject = std::move(subject),
                            .not_before = now - spiffe::kBackdate,
                            .not_after = Expiry(now, ttl, ca_not_after)};
  ASSIGN_OR_RETURN(spiffe::Certificate leaf,
                   spiffe::SignLeaf(tmpl, signer->record.ca_cert, signer->key),
                   Annotate(_, absl::StrCat("ca: sign X509-SVID for \"", id.str(), "\"")));
  SignedX509Svid out;
  out.expires_at = leaf.NotAfter();
  out.issued_at = now;
  out.chain.reserve(1 + signer->record.chain_tail.size());
  out.chain.push_back(std::move(leaf));
  out.chain.insert(out.chain.end(), signer->record.chain_tail.begin(),
                   signer->record.chain_tail.end());
  return out;
}

absl::StatusOr<SignedX509Svid> CaManager::SignX509Svid(
    const spiffe::PublicKey& public_key, const spiffe::SpiffeId& id,
    const std::vector<std::string>& dns_names, std::chrono::seconds ttl,
    const std::optional<spiffe::DistinguishedName>& subject) const {
  return SignLeafSvid(public_key, id, dns_names,
                      ttl.count() == 0 ? config_.default_x509_svid_ttl : ttl,
                      subject.value_or(spiffe::DefaultLeafSubject()));
}

absl::StatusOr<SignedX509Svid> CaManager::SignAgentSvid(const spiffe::PublicKey& public_key,
                                                        const spiffe::SpiffeId& agent_id,
                                                        std::chrono::seconds ttl) const {
  return SignLeafSvid(public_key, agent_id, {},
                      ttl.count() == 0 ? config_.EffectiveAgentTtl() : ttl,
                      spiffe::DefaultLeafSubject());
}

absl::StatusOr<SignedX509Svid> CaManager::SignServerSvid(
    const spiffe::PublicKey& public_key) const {
  ASSIGN_OR_RETURN(spiffe::SpiffeId id,
                   spiffe::SpiffeId::FromSegments(config_.trust_domain, {"spire", "server"}));
  return SignLeafSvid(public_key, id, {}, config_.default_x509_svid_ttl,
                      spiffe::DefaultLeafSubject());
}

absl::StatusOr<ServerSvid> CaManager::IssueServerSvid(spiffe::KeyType type) const {
  ASSIGN_OR_RETURN(spiffe::PrivateKey key, spiffe::PrivateKey::Generate(type),
                   Annotate(_, "ca: server SVID key"));
  ASSIGN_OR_RETURN(SignedX509Svid svid, SignServerSvid(key.public_key()));
  return ServerSvid{std::move(key), std::move(svid)};
}

absl::StatusOr<SignedJwtSvid> CaManager::SignJwtSvid(const spiffe::SpiffeId& id,
                                                     const std::vector<std::string>& audience,
                                                     std::chrono::seconds ttl,
                                                     const nlohmann::json& extra_claims) const {
  RETURN_IF_ERROR(CheckTrustDomain(id, config_.trust_domain));
  RETURN_IF_ERROR(CheckTtl(ttl));
  if (audience.empty()) return absl::InvalidArgumentError("ca: at least one audience is required");
  if (ttl.count() == 0) ttl = config_.default_jwt_svid_ttl;
  std::shared_ptr<const JwtSlot> signer = ActiveJwt();
  if (signer == nullptr) return absl::FailedPreconditionError("ca: not initialized");
  TimePoint now = std::chrono::floor<std::chrono::seconds>(clock_.Now());
  if (signer->record.not_after <= now) {
    return absl::UnavailableError(
        absl::StrCat("ca: the JWT key expired at ", FormatTime(signer->record.not_after)));
  }
  spiffe::JwtSvidClaims claims{.subject = id,
                               .audience = audience,
                               .expiry = Expiry(now, ttl, signer->record.not_after),
                               .issued_at = now,
                               .extra = extra_claims};
  if (!config_.jwt_issuer.empty() && (claims.extra.is_null() || claims.extra.is_object()) &&
      !claims.extra.contains("iss")) {
    claims.extra["iss"] = config_.jwt_issuer;
  }
  ASSIGN_OR_RETURN(std::string token, spiffe::SignJwtSvid(claims, signer->key, signer->record.kid),
                   Annotate(_, absl::StrCat("ca: sign JWT-SVID for \"", id.str(), "\"")));
  return SignedJwtSvid{std::move(token), now, claims.expiry};
}

}  // namespace tessera::server::ca
