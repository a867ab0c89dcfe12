#include "agent/sds/sds_secrets.h"

#include <openssl/sha.h>

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/strings.h"
#include "envoy/extensions/transport_sockets/tls/v3/common.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config.pb.h"
#include "google/protobuf/struct.pb.h"
#include "spiffe/bundle.h"
#include "spiffe/certificate.h"

namespace tessera::agent {
namespace {

namespace tls = envoy::extensions::transport_sockets::tls::v3;

// Envoy's SPIFFE certificate validator exists from 1.18 on (SPIRE's test: minor > 17).
bool SupportsSpiffeValidator(const envoy::config::core::v3::Node& node) {
  if (!node.has_user_agent_build_version()) return true;
  const auto& version = node.user_agent_build_version().version();
  return version.major_number() > 1 || (version.major_number() == 1 && version.minor_number() > 17);
}

absl::Status MetadataError(std::string_view key, std::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat("sds: node metadata \"", AsAbsl(key), "\" must be ", AsAbsl(want)));
}

absl::Status OverrideName(const google::protobuf::Struct& metadata, std::string_view key,
                          std::string& name) {
  auto it = metadata.fields().find(std::string(key));
  if (it == metadata.fields().end()) return absl::OkStatus();
  if (it->second.kind_case() != google::protobuf::Value::kStringValue ||
      it->second.string_value().empty()) {
    return MetadataError(key, "a non-empty string");
  }
  name = it->second.string_value();
  return absl::OkStatus();
}

absl::Status OverrideFlag(const google::protobuf::Struct& metadata, std::string_view key,
                          bool& flag) {
  auto it = metadata.fields().find(std::string(key));
  if (it == metadata.fields().end()) return absl::OkStatus();
  const google::protobuf::Value& value = it->second;
  if (value.kind_case() == google::protobuf::Value::kBoolValue) {
    flag = value.bool_value();
    return absl::OkStatus();
  }
  if (value.kind_case() == google::protobuf::Value::kStringValue &&
      (value.string_value() == "true" || value.string_value() == "false")) {
    flag = value.string_value() == "true";
    return absl::OkStatus();
  }
  return MetadataError(key, "a bool or \"true\"/\"false\"");
}

std::string Digest(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  // 96 bits tell versions apart; the whole digest would only lengthen every message.
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), 12));
}

tls::Secret NewSecret(std::string_view name) {
  tls::Secret secret;
  secret.set_name(std::string(name));
  return secret;
}

// One validation context over `bundles` (one for a single trust domain, several for ALL).
absl::StatusOr<NamedSecret> ValidationContext(std::string_view name,
                                              std::span<const spiffe::Bundle* const> bundles,
                                              bool spiffe_validator) {
  NamedSecret out{.name = std::string(name), .secret = NewSecret(name)};
  tls::CertificateValidationContext* context = out.secret.mutable_validation_context();
  if (!spiffe_validator) {
    context->mutable_trusted_ca()->set_inline_bytes(spiffe::X509AuthoritiesToPem(*bundles[0]));
  } else {
    tls::SPIFFECertValidatorConfig config;
    for (const spiffe::Bundle* bundle : bundles) {
      tls::SPIFFECertValidatorConfig::TrustDomain* td = config.add_trust_domains();
      td->set_name(bundle->trust_domain().name());
      td->mutable_trust_bundle()->set_inline_bytes(spiffe::X509AuthoritiesToPem(*bundle));
    }
    envoy::config::core::v3::TypedExtensionConfig* validator =
        context->mutable_custom_validator_config();
    validator->set_name(std::string(kSpiffeValidatorName));
    if (!validator->mutable_typed_config()->PackFrom(config)) {
      return absl::InternalError("sds: could not pack the SPIFFE validator config");
    }
  }
  std::string serialized;
  if (!out.secret.SerializeToString(&serialized)) {
    return absl::InternalError("sds: could not serialize a validation context");
  }
  out.version = Digest(serialized);
  return out;
}

absl::StatusOr<NamedSecret> TlsCertificate(std::string_view name, const spiffe::X509Svid& svid) {
  absl::StatusOr<std::string> key = svid.key.ToPkcs8Pem();
  if (!key.ok()) return key.status();
  NamedSecret out{.name = std::string(name), .secret = NewSecret(name)};
  tls::TlsCertificate* certificate = out.secret.mutable_tls_certificate();
  certificate->mutable_certificate_chain()->set_inline_bytes(spiffe::ChainToPem(svid.chain));
  certificate->mutable_private_key()->set_inline_bytes(std::move(*key));
  out.version = Digest(
      absl::StrCat(AsAbsl(name), absl::string_view("\0", 1), spiffe::ChainToDer(svid.chain)));
  return out;
}

// Resolves names against one caller's view of one snapshot.
class Resolver {
 public:
  Resolver(const CacheSnapshot& snapshot, const spiffe::SelectorSet& selectors,
           const SdsSettings& settings)
      : snapshot_(snapshot),
        settings_(settings),
        identities_(snapshot.Match(selectors)),
        federated_(snapshot.FederatedBundlesFor(identities_)) {}

  absl::Status Everything() {
    const spiffe::Bundle* own = snapshot_.own_bundle();
    if (own == nullptr) {
      out_.waiting = true;
      return absl::OkStatus();
    }
    if (absl::Status s = Bundle(own->trust_domain().IdString(), *own); !s.ok()) return s;
    for (const auto& [td, bundle] : federated_) {
      if (absl::Status s = Bundle(td.IdString(), bundle); !s.ok()) return s;
    }
    std::set<std::string_view> ids;
    bool any_minted = identities_.empty();
    for (const CachedIdentity& identity : identities_) {
      if (identity.svid == nullptr) continue;
      any_minted = true;
      if (!ids.insert(identity.entry->spiffe_id.str()).second) continue;
      if (absl::Status s = Certificate(identity.entry->spiffe_id.str(), &identity); !s.ok()) {
        return s;
      }
    }
    // Serving bundles alone to a proxy whose every identity is being minted would make it
    // start without a certificate: wait, as for a named certificate.
    if (!any_minted) return NotMinted();
    return absl::OkStatus();
  }

  absl::Status One(const std::string& name) {
    const spiffe::Bundle* own = snapshot_.own_bundle();
    if (own == nullptr) {
      out_.waiting = true;
      return absl::OkStatus();
    }
    if (name == own->trust_domain().IdString() || name == settings_.default_bundle_name) {
      return Bundle(name, *own);
    }
    if (name == settings_.default_all_bundles_name) return AllBundles(name, *own);
    for (const auto& [td, bundle] : federated_) {
      if (name == td.IdString()) return Bundle(name, bundle);
    }
    if (name == settings_.default_svid_name) {
      return identities_.empty() ? Unknown(name) : Certificate(name, MintedOrNull(0));
    }
    bool found = false;
    for (size_t i = 0; i < identities_.size(); ++i) {
      if (identities_[i].entry->spiffe_id.str() != name) continue;
      found = true;
      if (identities_[i].svid != nullptr) return Certificate(name, &identities_[i]);
    }
    return found ? Certificate(name, nullptr) : Unknown(name);
  }

  SecretSet Take() && {
    std::sort(out_.unknown.begin(), out_.unknown.end());
    out_.unknown.erase(std::unique(out_.unknown.begin(), out_.unknown.end()), out_.unknown.end());
    return std::move(out_);
  }

 private:
  const CachedIdentity* MintedOrNull(size_t index) const {
    return identities_[index].svid != nullptr ? &identities_[index] : nullptr;
  }

  absl::Status Add(absl::StatusOr<NamedSecret> secret) {
    if (!secret.ok()) return secret.status();
    out_.secrets.push_back(std::move(*secret));
    return absl::OkStatus();
  }

  absl::Status Bundle(std::string_view name, const spiffe::Bundle& bundle) {
    const spiffe::Bundle* one[] = {&bundle};
    return Add(ValidationContext(name, one, !settings_.disable_spiffe_cert_validation));
  }

  absl::Status AllBundles(std::string_view name, const spiffe::Bundle& own) {
    if (settings_.disable_spiffe_cert_validation) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sds: \"", AsAbsl(name),
          "\" needs Envoy's SPIFFE certificate validator, which is disabled for this proxy "
          "(disable_spiffe_cert_validation, or Envoy older than 1.18): request the bundles by "
          "trust domain ID instead"));
    }
    // BundleSet is ordered by trust domain; the own one takes its place among them.
    std::vector<const spiffe::Bundle*> all;
    bool own_added = false;
    for (const auto& [td, bundle] : federated_) {
      if (!own_added && own.trust_domain() < td) {
        all.push_back(&own);
        own_added = true;
      }
      all.push_back(&bundle);
    }
    if (!own_added) all.push_back(&own);
    return Add(ValidationContext(name, all, /*spiffe_validator=*/true));
  }

  absl::Status Certificate(std::string_view name, const CachedIdentity* identity) {
    if (identity == nullptr) return NotMinted();
    return Add(TlsCertificate(name, *identity->svid));
  }

  absl::Status NotMinted() {
    if (!snapshot_.server_reachable()) {
      return absl::UnavailableError("no X509-SVID available: the agent cannot reach the server");
    }
    out_.waiting = true;
    return absl::OkStatus();
  }

  absl::Status Unknown(const std::string& name) {
    out_.unknown.push_back(name);
    return absl::OkStatus();
  }

  const CacheSnapshot& snapshot_;
  const SdsSettings& settings_;
  const std::vector<CachedIdentity> identities_;
  const spiffe::BundleSet federated_;
  SecretSet out_;
};

}  // namespace

absl::Status ValidateSdsSettings(const SdsSettings& settings) {
  const std::pair<std::string_view, const std::string*> names[] = {
      {"default_svid_name", &settings.default_svid_name},
      {"default_bundle_name", &settings.default_bundle_name},
      {"default_all_bundles_name", &settings.default_all_bundles_name},
  };
  for (size_t i = 0; i < std::size(names); ++i) {
    if (names[i].second->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sds: ", AsAbsl(names[i].first), " must not be empty"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (*names[i].second == *names[j].second) {
        return absl::InvalidArgumentError(absl::StrCat("sds: ", AsAbsl(names[i].first),
                                                       " must differ from ", AsAbsl(names[j].first),
                                                       " (both \"", *names[i].second, "\")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SdsSettings> SettingsForNode(const SdsSettings& defaults,
                                            const envoy::config::core::v3::Node& node) {
  SdsSettings settings = defaults;
  const google::protobuf::Struct& metadata = node.metadata();
  absl::Status status = OverrideName(metadata, "default_svid_name", settings.default_svid_name);
  if (status.ok()) {
    status = OverrideName(metadata, "default_bundle_name", settings.default_bundle_name);
  }
  if (status.ok()) {
    status = OverrideName(metadata, "default_all_bundles_name", settings.default_all_bundles_name);
  }
  if (status.ok()) {
    status = OverrideFlag(metadata, "disable_spiffe_cert_validation",
                          settings.disable_spiffe_cert_validation);
  }
  if (status.ok()) status = ValidateSdsSettings(settings);
  if (!status.ok()) return status;
  if (!SupportsSpiffeValidator(node)) settings.disable_spiffe_cert_validation = true;
  return settings;
}

absl::StatusOr<SecretSet> BuildSecrets(const CacheSnapshot& snapshot,
                                       const spiffe::SelectorSet& selectors,
                                       std::span<const std::string> names,
                                       const SdsSettings& settings) {
  Resolver resolver(snapshot, selectors, settings);
  std::set<std::string_view> seen;
  for (const std::string& name : names) {
    if (name.empty() || !seen.insert(name).second) continue;
    if (absl::Status s = resolver.One(name); !s.ok()) return s;
  }
  if (seen.empty()) {
    if (absl::Status s = resolver.Everything(); !s.ok()) return s;
  }
  return std::move(resolver).Take();
}

absl::Status UnknownNamesError(std::span<const std::string> unknown) {
  std::vector<std::string> quoted;
  quoted.reserve(unknown.size());
  for (const std::string& name : unknown) quoted.push_back(absl::StrCat("\"", name, "\""));
  return absl::InvalidArgumentError(
      absl::StrCat("workload is not authorized for the requested identities [",
                   absl::StrJoin(quoted, " "), "]"));
}

}  // namespace tessera::agent
