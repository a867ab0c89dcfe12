#include "agent/sds/sds_protocol.h"

#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "spdlog/spdlog.h"

namespace tessera::agent {
namespace {

namespace discovery = envoy::service::discovery::v3;

// The request's names as a set: order and duplicates do not change a subscription.
std::vector<std::string> NameSet(const google::protobuf::RepeatedPtrField<std::string>& names) {
  std::vector<std::string> out;
  for (const std::string& name : names) {
    if (!name.empty()) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

std::string NewSdsNonce() {
  uint32_t value;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&value), sizeof(value)) != 1) {
    // A nonce only has to differ from the previous one on the same stream.
    static std::atomic<uint32_t> fallback{0};
    value = fallback.fetch_add(1) * 2654435761u;
  }
  return absl::StrCat(absl::Hex(value, absl::kZeroPad8));
}

absl::Status SdsPeer::Update(std::string_view type_url, const envoy::config::core::v3::Node* node,
                             bool* changed) {
  *changed = false;
  if (!type_url.empty() && type_url != kSecretTypeUrl) {
    return absl::InvalidArgumentError(absl::StrCat("sds: type_url \"", AsAbsl(type_url),
                                                   "\" is not served here: only \"",
                                                   AsAbsl(kSecretTypeUrl), "\""));
  }
  if (node == nullptr) return absl::OkStatus();
  absl::StatusOr<SdsSettings> settings = SettingsForNode(defaults_, *node);
  if (!settings.ok()) return settings.status();
  node_id_ = node->id();
  *changed = *settings != settings_;
  settings_ = std::move(*settings);
  return absl::OkStatus();
}

void SdsPeer::LogNack(std::string_view nonce, const google::rpc::Status& error_detail) const {
  if (error_detail.code() == 0 && error_detail.message().empty()) return;
  spdlog::warn("sds: {} rejected the secrets of nonce \"{}\": {}", Describe(), nonce,
               error_detail.message());
}

std::string SdsPeer::Describe() const {
  if (node_id_.empty()) return caller_;
  return absl::StrCat(caller_, " (node ", node_id_, ")");
}

SotwProtocol::Step SotwProtocol::OnRequest(const discovery::DiscoveryRequest& request,
                                           const CacheSnapshot& snapshot,
                                           const spiffe::SelectorSet& selectors) {
  absl::StatusOr<bool> settings_changed = peer_.Accept(request);
  if (!settings_changed.ok()) return settings_changed.status();
  if (!last_nonce_.empty() && request.response_nonce() != last_nonce_) {
    spdlog::debug("sds: {}: ignoring a request with stale nonce \"{}\" (expected \"{}\")",
                  peer_.Describe(), request.response_nonce(), last_nonce_);
    return std::nullopt;
  }
  std::vector<std::string> names = NameSet(request.resource_names());
  if (requested_ && names == names_ && !*settings_changed) return std::nullopt;  // ACK or NACK
  requested_ = true;
  names_ = std::move(names);
  dirty_ = true;
  return Compose(snapshot, selectors);
}

SotwProtocol::Step SotwProtocol::OnSnapshot(const CacheSnapshot& snapshot,
                                            const spiffe::SelectorSet& selectors) {
  if (!requested_) return std::nullopt;
  return Compose(snapshot, selectors);
}

SotwProtocol::Step SotwProtocol::Compose(const CacheSnapshot& snapshot,
                                         const spiffe::SelectorSet& selectors) {
  absl::StatusOr<SecretSet> set = BuildSecrets(snapshot, selectors, names_, peer_.settings());
  if (!set.ok()) return set.status();
  if (!set->unknown.empty()) return UnknownNamesError(set->unknown);
  if (set->waiting) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> sent;
  sent.reserve(set->secrets.size());
  for (const NamedSecret& secret : set->secrets) sent.emplace_back(secret.name, secret.version);
  if (!dirty_ && sent == last_sent_) return std::nullopt;

  Response response;
  response.set_version_info(absl::StrCat(++responses_));
  response.set_type_url(std::string(kSecretTypeUrl));
  response.set_nonce(NewSdsNonce());
  for (const NamedSecret& secret : set->secrets) {
    if (!response.add_resources()->PackFrom(secret.secret)) {
      return absl::InternalError("sds: could not pack a secret");
    }
  }
  last_nonce_ = response.nonce();
  last_sent_ = std::move(sent);
  dirty_ = false;
  spdlog::debug("sds: sending {} secrets, version {}, to {}", response.resources_size(),
                response.version_info(), peer_.Describe());
  return response;
}

DeltaProtocol::Step DeltaProtocol::OnRequest(const discovery::DeltaDiscoveryRequest& request,
                                             const CacheSnapshot& snapshot,
                                             const spiffe::SelectorSet& selectors) {
  absl::StatusOr<bool> settings_changed = peer_.Accept(request);
  if (!settings_changed.ok()) return settings_changed.status();
  if (!requested_) {
    requested_ = true;
    wildcard_ = request.resource_names_subscribe().empty();
    for (const auto& [name, version] : request.initial_resource_versions()) held_[name] = version;
  }
  for (const std::string& name : request.resource_names_subscribe()) {
    if (name == "*") {
      wildcard_ = true;
    } else if (!name.empty()) {
      subscribed_.insert(name);
      removed_.erase(name);
    }
  }
  for (const std::string& name : request.resource_names_unsubscribe()) {
    if (name == "*") {
      wildcard_ = false;
    } else {
      subscribed_.erase(name);
      removed_.erase(name);
    }
  }
  // The proxy forgets what it unsubscribed from: a later subscription sends it again.
  for (auto it = held_.begin(); it != held_.end();) {
    it = wildcard_ || subscribed_.contains(it->first) ? std::next(it) : held_.erase(it);
  }
  return Compose(snapshot, selectors);
}

DeltaProtocol::Step DeltaProtocol::OnSnapshot(const CacheSnapshot& snapshot,
                                              const spiffe::SelectorSet& selectors) {
  if (!requested_) return std::nullopt;
  return Compose(snapshot, selectors);
}

DeltaProtocol::Step DeltaProtocol::Compose(const CacheSnapshot& snapshot,
                                           const spiffe::SelectorSet& selectors) {
  std::vector<NamedSecret> secrets;
  std::vector<std::string> unknown;
  if (wildcard_) {
    absl::StatusOr<SecretSet> all = BuildSecrets(snapshot, selectors, {}, peer_.settings());
    if (!all.ok()) return all.status();
    if (all->waiting) return std::nullopt;
    secrets = std::move(all->secrets);
  }
  if (!subscribed_.empty()) {
    std::vector<std::string> names(subscribed_.begin(), subscribed_.end());
    absl::StatusOr<SecretSet> named = BuildSecrets(snapshot, selectors, names, peer_.settings());
    if (!named.ok()) return named.status();
    if (named->waiting) return std::nullopt;
    for (NamedSecret& secret : named->secrets) {
      bool dup = std::any_of(secrets.begin(), secrets.end(),
                             [&](const NamedSecret& s) { return s.name == secret.name; });
      if (!dup) secrets.push_back(std::move(secret));
    }
    unknown = std::move(named->unknown);
  }

  Response response;
  std::vector<std::string> new_unknown;
  for (const std::string& name : unknown) {
    if (removed_.contains(name)) continue;
    if (held_.erase(name) > 0) {
      removed_.insert(name);
      response.add_removed_resources(name);
    } else {
      new_unknown.push_back(name);
    }
  }
  if (!new_unknown.empty()) return UnknownNamesError(new_unknown);
  // Wildcard: what the proxy holds that no longer exists (and is not subscribed by name).
  for (auto it = held_.begin(); it != held_.end();) {
    bool exists = std::any_of(secrets.begin(), secrets.end(),
                              [&](const NamedSecret& s) { return s.name == it->first; });
    if (exists || subscribed_.contains(it->first)) {
      ++it;
      continue;
    }
    response.add_removed_resources(it->first);
    it = held_.erase(it);
  }
  for (NamedSecret& secret : secrets) {
    // It exists again: if it goes away once more, the proxy must be told again.
    removed_.erase(secret.name);
    auto held = held_.find(secret.name);
    if (held != held_.end() && held->second == secret.version) continue;
    envoy::service::discovery::v3::Resource* resource = response.add_resources();
    resource->set_name(secret.name);
    resource->set_version(secret.version);
    if (!resource->mutable_resource()->PackFrom(secret.secret)) {
      return absl::InternalError("sds: could not pack a secret");
    }
    held_[secret.name] = secret.version;
  }
  if (response.resources().empty() && response.removed_resources().empty()) return std::nullopt;
  response.set_system_version_info(absl::StrCat(++responses_));
  response.set_type_url(std::string(kSecretTypeUrl));
  response.set_nonce(NewSdsNonce());
  spdlog::debug("sds: sending {} secrets ({} removed), version {}, to {}",
                response.resources_size(), response.removed_resources_size(),
                response.system_version_info(), peer_.Describe());
  return response;
}

}  // namespace tessera::agent
