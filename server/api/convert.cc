#include "server/api/convert.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/text.h"

namespace tessera::server {
namespace {

absl::Status Invalid(std::string_view context, const absl::Status& status) {
  return absl::InvalidArgumentError(absl::StrCat(AsAbsl(context), ": ", status.message()));
}

constexpr size_t kMaxHintLength = 1024;
constexpr size_t kMaxDnsName = 253;
constexpr size_t kMaxDnsLabel = 63;

absl::Status BadDnsName(std::string_view name, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(Quoted(name), " ", AsAbsl(why)));
}

// SPIRE's "<id> is not <what> in trust domain <td>; <why>".
absl::Status NotIn(const spiffe::SpiffeId& id, std::string_view what, const spiffe::TrustDomain& td,
                   std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("\"", id.str(), "\" is not ", AsAbsl(what),
                                                 " in trust domain \"", td.name(), "\"; ",
                                                 AsAbsl(why)));
}

absl::Status NotMember(const spiffe::SpiffeId& id, const spiffe::TrustDomain& td) {
  return absl::InvalidArgumentError(
      absl::StrCat("\"", id.str(), "\" is not a member of trust domain \"", td.name(), "\""));
}

}  // namespace

absl::Status ValidateDnsName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("empty DNS name");
  if (name.size() > kMaxDnsName) {
    return BadDnsName(name, absl::StrCat("is longer than ", kMaxDnsName, " bytes"));
  }
  std::string_view rest = name;
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  while (true) {
    const size_t dot = rest.find('.');
    const std::string_view label = rest.substr(0, dot);
    if (label.empty()) return BadDnsName(name, "has an empty label");
    if (label.size() > kMaxDnsLabel) {
      return BadDnsName(name, absl::StrCat("has a label longer than ", kMaxDnsLabel, " bytes"));
    }
    if (label.front() == '-' || label.back() == '-') {
      return BadDnsName(name, "has a label that starts or ends with '-'");
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return BadDnsName(name, "has a label with a character other than a letter, digit or '-'");
      }
    }
    if (dot == std::string_view::npos) return absl::OkStatus();
    rest.remove_prefix(dot + 1);
  }
}

absl::StatusOr<spiffe::SpiffeId> IdFromProto(const types::SPIFFEID& id) {
  ASSIGN_OR_RETURN(spiffe::TrustDomain td, spiffe::TrustDomain::Parse(id.trust_domain()));
  return spiffe::SpiffeId::FromPath(td, id.path());
}

types::SPIFFEID IdToProto(const spiffe::SpiffeId& id) {
  types::SPIFFEID out;
  out.set_trust_domain(id.trust_domain().name());
  out.set_path(std::string(id.path()));
  return out;
}

absl::Status ValidateWorkloadId(const spiffe::SpiffeId& id, const spiffe::TrustDomain& td) {
  if (!id.MemberOf(td)) return NotMember(id, td);
  if (id.IsTrustDomainId()) return NotIn(id, "a workload", td, "path is empty");
  std::string_view path = id.path();
  if (path == "/spire" || path.starts_with("/spire/")) {
    return NotIn(id, "a workload", td, "path is in the reserved namespace");
  }
  return absl::OkStatus();
}

absl::Status ValidateAgentId(const spiffe::SpiffeId& id, const spiffe::TrustDomain& td) {
  if (!id.MemberOf(td)) return NotMember(id, td);
  if (id.IsTrustDomainId()) return NotIn(id, "an agent", td, "path is empty");
  if (!id.path().starts_with("/spire/agent/")) {
    return NotIn(id, "an agent", td, "path is not in the agent namespace");
  }
  return absl::OkStatus();
}

absl::StatusOr<spiffe::SelectorSet> SelectorsFromProto(
    const google::protobuf::RepeatedPtrField<types::Selector>& selectors) {
  if (selectors.empty()) return absl::InvalidArgumentError("selector list is empty");
  std::vector<spiffe::Selector> out;
  out.reserve(selectors.size());
  for (const types::Selector& s : selectors) {
    // SPIRE's own checks, in its order and words.
    if (s.type().empty()) return absl::InvalidArgumentError("missing selector type");
    if (s.type().find(':') != std::string::npos) {
      return absl::InvalidArgumentError("selector type contains ':'");
    }
    if (s.value().empty()) return absl::InvalidArgumentError("missing selector value");
    absl::StatusOr<spiffe::Selector> selector = spiffe::Selector::Create(s.type(), s.value());
    if (!selector.ok()) {
      // Our library's further limits; its message starts by quoting the selector, which SPIRE's
      // messages never do.
      std::string_view message = AsStd(selector.status().message());
      const std::string prefix = absl::StrCat(
          "invalid selector ", Quoted(absl::StrCat(s.type(), ":", s.value()), 128), ": ");
      if (message.starts_with(prefix)) message.remove_prefix(prefix.size());
      return absl::InvalidArgumentError(AsAbsl(message));
    }
    out.push_back(*std::move(selector));
  }
  return spiffe::SelectorSet(std::move(out));
}

void SelectorsToProto(const spiffe::SelectorSet& selectors,
                      google::protobuf::RepeatedPtrField<types::Selector>* out) {
  for (const spiffe::Selector& s : selectors) {
    types::Selector* p = out->Add();
    p->set_type(std::string(s.type()));
    p->set_value(std::string(s.value()));
  }
}

absl::StatusOr<Entry> EntryFromProto(const types::Entry& in, const spiffe::TrustDomain& td) {
  constexpr std::string_view kContext = "failed to convert entry";
  if (!in.has_parent_id())
    return Invalid(kContext, absl::InvalidArgumentError("missing parent ID"));
  if (!in.has_spiffe_id())
    return Invalid(kContext, absl::InvalidArgumentError("missing SPIFFE ID"));
  ASSIGN_OR_RETURN(spiffe::SpiffeId parent, IdFromProto(in.parent_id()),
                   Invalid(kContext, Annotate(_, "invalid parent ID")));
  if (!parent.MemberOf(td) || parent.IsTrustDomainId()) {
    return Invalid(kContext,
                   absl::InvalidArgumentError(absl::StrCat("invalid parent ID: \"", parent.str(),
                                                           "\" must be a member of trust domain \"",
                                                           td.name(), "\" with a path")));
  }
  ASSIGN_OR_RETURN(spiffe::SpiffeId id, IdFromProto(in.spiffe_id()),
                   Invalid(kContext, Annotate(_, "invalid spiffe ID")));
  RETURN_IF_ERROR(
      Annotate(ValidateWorkloadId(id, td), "failed to convert entry: invalid spiffe ID"));
  ASSIGN_OR_RETURN(spiffe::SelectorSet selectors, SelectorsFromProto(in.selectors()),
                   Invalid(kContext, _));
  if (in.x509_svid_ttl() < 0) {
    return Invalid(kContext, absl::InvalidArgumentError("x509_svid_ttl must not be negative"));
  }
  if (in.jwt_svid_ttl() < 0) {
    return Invalid(kContext, absl::InvalidArgumentError("jwt_svid_ttl must not be negative"));
  }
  if (in.expires_at() < 0) {
    return Invalid(kContext, absl::InvalidArgumentError("expires_at must not be negative"));
  }
  if (in.hint().size() > kMaxHintLength) {
    return Invalid(kContext, absl::InvalidArgumentError(
                                 absl::StrCat("hint is longer than ", kMaxHintLength, " bytes")));
  }
  Entry entry{.id = in.id(), .spiffe_id = std::move(id), .parent_id = std::move(parent)};
  entry.selectors = std::move(selectors);
  entry.x509_svid_ttl = in.x509_svid_ttl();
  entry.jwt_svid_ttl = in.jwt_svid_ttl();
  for (const std::string& name : in.dns_names()) {
    if (absl::Status s = ValidateDnsName(name); !s.ok()) {
      return Invalid(kContext, Annotate(s, "invalid DNS name"));
    }
    entry.dns_names.push_back(name);
  }
  for (const std::string& td_text : in.federates_with()) {
    ASSIGN_OR_RETURN(spiffe::TrustDomain federated, spiffe::TrustDomain::FromIdOrName(td_text),
                     Invalid(kContext, Annotate(_, "invalid federated trust domain")));
    entry.federates_with.push_back(std::move(federated));
  }
  entry.admin = in.admin();
  entry.downstream = in.downstream();
  entry.store_svid = in.store_svid();
  entry.hint = in.hint();
  entry.expires_at = in.expires_at();
  entry.revision_number = in.revision_number();
  entry.created_at = in.created_at();
  if (in.has_additional_attributes()) {
    entry.jwt_svid_include_jti = in.additional_attributes().jwt_svid_include_jti();
    entry.disable_x509_svid_prefetch = in.additional_attributes().disable_x509_svid_prefetch();
  }
  return entry;
}

types::Entry EntryToProto(const Entry& entry, const types::EntryMask* mask) {
  types::Entry out;
  out.set_id(entry.id);
  if (!mask || mask->spiffe_id()) *out.mutable_spiffe_id() = IdToProto(entry.spiffe_id);
  if (!mask || mask->parent_id()) *out.mutable_parent_id() = IdToProto(entry.parent_id);
  if (!mask || mask->selectors()) SelectorsToProto(entry.selectors, out.mutable_selectors());
  if (!mask || mask->x509_svid_ttl()) out.set_x509_svid_ttl(entry.x509_svid_ttl);
  if (!mask || mask->federates_with()) {
    for (const spiffe::TrustDomain& td : entry.federates_with) out.add_federates_with(td.name());
  }
  if (!mask || mask->admin()) out.set_admin(entry.admin);
  if (!mask || mask->downstream()) out.set_downstream(entry.downstream);
  if (!mask || mask->expires_at()) out.set_expires_at(entry.expires_at);
  if (!mask || mask->dns_names()) {
    for (const std::string& name : entry.dns_names) out.add_dns_names(name);
  }
  if (!mask || mask->revision_number()) out.set_revision_number(entry.revision_number);
  if (!mask || mask->store_svid()) out.set_store_svid(entry.store_svid);
  if (!mask || mask->jwt_svid_ttl()) out.set_jwt_svid_ttl(entry.jwt_svid_ttl);
  if (!mask || mask->hint()) out.set_hint(entry.hint);
  if (!mask || mask->created_at()) out.set_created_at(entry.created_at);
  if (!mask || mask->additional_attributes()) {
    types::Entry::AdditionalAttributes* attributes = out.mutable_additional_attributes();
    attributes->set_jwt_svid_include_jti(entry.jwt_svid_include_jti);
    attributes->set_disable_x509_svid_prefetch(entry.disable_x509_svid_prefetch);
  }
  return out;
}

EntryMask EntryMaskFromProto(const types::EntryMask* mask) {
  if (mask == nullptr) return EntryMask::All();
  return EntryMask{.spiffe_id = mask->spiffe_id(),
                   .parent_id = mask->parent_id(),
                   .selectors = mask->selectors(),
                   .x509_svid_ttl = mask->x509_svid_ttl(),
                   .jwt_svid_ttl = mask->jwt_svid_ttl(),
                   .dns_names = mask->dns_names(),
                   .federates_with = mask->federates_with(),
                   .admin = mask->admin(),
                   .downstream = mask->downstream(),
                   .store_svid = mask->store_svid(),
                   .hint = mask->hint(),
                   .expires_at = mask->expires_at(),
                   .additional_attributes = mask->additional_attributes()};
}

types::Agent NodeToProto(const AttestedNode& node, const types::AgentMask* mask) {
  types::Agent out;
  *out.mutable_id() = IdToProto(node.id);
  if (!mask || mask->attestation_type()) out.set_attestation_type(node.attestation_type);
  if (!mask || mask->x509svid_serial_number()) out.set_x509svid_serial_number(node.cert_serial);
  if (!mask || mask->x509svid_expires_at()) out.set_x509svid_expires_at(node.cert_not_after);
  if (!mask || mask->selectors()) SelectorsToProto(node.selectors, out.mutable_selectors());
  if (!mask || mask->banned()) out.set_banned(node.banned());
  if (!mask || mask->can_reattest()) out.set_can_reattest(node.can_reattest);
  if (!mask || mask->agent_version()) out.set_agent_version(node.agent_version);
  return out;
}

absl::StatusOr<spiffe::Bundle> BundleFromProto(const types::Bundle& in, JwtKeyExpiry* expiry) {
  ASSIGN_OR_RETURN(spiffe::TrustDomain td, spiffe::TrustDomain::FromIdOrName(in.trust_domain()),
                   Annotate(_, "invalid trust domain"));
  spiffe::Bundle bundle(td);
  constexpr std::string_view kX509Context = "unable to parse X.509 authority";
  constexpr std::string_view kJwtContext = "unable to parse JWT authority";
  for (const types::X509Certificate& cert : in.x509_authorities()) {
    // Like Go's ParseCertificates, one element may hold several concatenated certificates.
    ASSIGN_OR_RETURN(std::vector<spiffe::Certificate> certs, spiffe::ParseDerChain(cert.asn1()),
                     Annotate(_, kX509Context));
    for (const spiffe::Certificate& c : certs) bundle.AddX509Authority(c);
  }
  for (const types::JWTKey& key : in.jwt_authorities()) {
    // SPIRE parses the key before it looks at the key ID.
    ASSIGN_OR_RETURN(spiffe::PublicKey public_key, spiffe::PublicKey::FromDer(key.public_key()),
                     Annotate(_, kJwtContext));
    if (key.key_id().empty()) {
      return Invalid(kJwtContext, absl::InvalidArgumentError("missing key ID"));
    }
    RETURN_IF_ERROR(bundle.AddJwtAuthority(key.key_id(), std::move(public_key)));
    if (expiry != nullptr) (*expiry)[key.key_id()] = key.expires_at();
  }
  if (in.refresh_hint() < 0) return absl::InvalidArgumentError("refresh hint must not be negative");
  if (in.refresh_hint() > 0) bundle.set_refresh_hint(std::chrono::seconds(in.refresh_hint()));
  bundle.set_sequence_number(in.sequence_number());
  return bundle;
}

types::Bundle BundleToProto(const spiffe::Bundle& bundle, const JwtKeyExpiry& expiry) {
  types::Bundle out;
  out.set_trust_domain(bundle.trust_domain().name());
  for (const spiffe::Certificate& cert : bundle.x509_authorities()) {
    out.add_x509_authorities()->set_asn1(cert.ToDer());
  }
  for (const auto& [kid, key] : bundle.jwt_authorities()) {
    types::JWTKey* out_key = out.add_jwt_authorities();
    out_key->set_key_id(kid);
    out_key->set_public_key(key.ToDer().value_or(""));
    if (auto it = expiry.find(kid); it != expiry.end()) out_key->set_expires_at(it->second);
  }
  if (bundle.refresh_hint().has_value()) out.set_refresh_hint(bundle.refresh_hint()->count());
  out.set_sequence_number(bundle.sequence_number().value_or(0));
  return out;
}

}  // namespace tessera::server
