// The xDS protocol state of one SDS stream, without gRPC or threads: given the proxy's requests
// and the cache's snapshots in the order they are handled, what to send. The stream reactors
// (sds_service.cc) feed them; tests drive them directly.
//
// SotwProtocol (StreamSecrets, state of the world; SPIFFE-FACTS §5):
// - A response carries every requested Secret, sorted by name; version_info is a counter of
// responses on this
//   stream ("1" first), the nonce 8 random hex digits.
// - The first request, a request whose set of names differs from the last one, or one whose node
//   changes the proxy's settings is answered with the current state. Others are ACKs or NACKs:
//   a NACK (error_detail set) is logged and the same content is not sent again.
// - Once a nonce was sent, a request carrying another one is stale and ignored; before that any
//   nonce is accepted (a proxy reconnecting after an agent restart carries its old one).
// - A snapshot is answered only if what this proxy receives changed.
// - Unknown names end the stream with InvalidArgument naming them (as SPIRE); a certificate still
//   being minted delays the response.
//
// DeltaProtocol (DeltaSecrets, incremental):
// - Subscriptions change by resource_names_subscribe / _unsubscribe; "*" (or nothing on the
//   first request) subscribes to everything the caller may have. initial_resource_versions tells
//   what the proxy already holds: versions are content digests (sds_secrets.h), so after an agent
//   restart a reconnecting proxy receives nothing it already has.
// - A response carries only resources whose version the proxy does not have, and in
//   removed_resources the names of resources it was sent that no longer exist (an identity
//   deleted, a federation ended). system_version_info counts responses, the nonce is random.
// - A name that is unknown when subscribed ends the stream with InvalidArgument, as in SotW; a
//   NACK is logged and nothing is resent until the content changes.
//
// Both: the type URL must be the Secret's (or empty); node metadata overrides the [sds] settings
// (an invalid override ends the stream with InvalidArgument); a later request may omit the node.
//
// Thread-safety: not thread-safe; owned by one stream, used by whoever holds its token.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/cache/cache.h"
#include "agent/sds/sds_secrets.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "spiffe/selector.h"

namespace tessera::agent {

// 8 random hex digits.
std::string NewSdsNonce();

// The proxy as its requests describe it, and the settings that follow.
class SdsPeer {
 public:
  SdsPeer(SdsSettings defaults, std::string caller)
      : defaults_(std::move(defaults)), settings_(defaults_), caller_(std::move(caller)) {}

  // Checks the type URL and takes the node if the request has one. True in `*changed` when the
  // settings changed.
  absl::Status Update(std::string_view type_url, const envoy::config::core::v3::Node* node,
                      bool* changed);
  // Update for a (Delta)DiscoveryRequest, and logs a NACK. True when the settings changed.
  template <typename Request>
  absl::StatusOr<bool> Accept(const Request& request) {
    bool changed;
    absl::Status status =
        Update(request.type_url(), request.has_node() ? &request.node() : nullptr, &changed);
    if (!status.ok()) return status;
    if (request.has_error_detail()) LogNack(request.response_nonce(), request.error_detail());
    return changed;
  }
  const SdsSettings& settings() const { return settings_; }
  // "pid 42 (node web-1)", for logs.
  std::string Describe() const;

 private:
  void LogNack(std::string_view nonce, const google::rpc::Status& error_detail) const;

  const SdsSettings defaults_;
  SdsSettings settings_;
  const std::string caller_;
  std::string node_id_;
};

class SotwProtocol {
 public:
  using Response = envoy::service::discovery::v3::DiscoveryResponse;
  using Step = absl::StatusOr<std::optional<Response>>;

  SotwProtocol(SdsSettings defaults, std::string caller)
      : peer_(std::move(defaults), std::move(caller)) {}

  Step OnRequest(const envoy::service::discovery::v3::DiscoveryRequest& request,
                 const CacheSnapshot& snapshot, const spiffe::SelectorSet& selectors);
  Step OnSnapshot(const CacheSnapshot& snapshot, const spiffe::SelectorSet& selectors);

 private:
  Step Compose(const CacheSnapshot& snapshot, const spiffe::SelectorSet& selectors);

  SdsPeer peer_;
  bool requested_ = false;
  std::vector<std::string> names_;
  // The request changed what to send and it has not been sent yet.
  bool dirty_ = false;
  uint64_t responses_ = 0;
  std::string last_nonce_;
  // (name, version) of the last response.
  std::vector<std::pair<std::string, std::string>> last_sent_;
};

class DeltaProtocol {
 public:
  using Response = envoy::service::discovery::v3::DeltaDiscoveryResponse;
  using Step = absl::StatusOr<std::optional<Response>>;

  DeltaProtocol(SdsSettings defaults, std::string caller)
      : peer_(std::move(defaults), std::move(caller)) {}

  Step OnRequest(const envoy::service::discovery::v3::DeltaDiscoveryRequest& request,
                 const CacheSnapshot& snapshot, const spiffe::SelectorSet& selectors);
  Step OnSnapshot(const CacheSnapshot& snapshot, const spiffe::SelectorSet& selectors);

 private:
  Step Compose(const CacheSnapshot& snapshot, const spiffe::SelectorSet& selectors);

  SdsPeer peer_;
  bool requested_ = false;
  bool wildcard_ = false;
  std::set<std::string> subscribed_;
  // Name -> version the proxy holds (sent by us, or announced in initial_resource_versions).
  std::map<std::string, std::string> held_;
  // Subscribed names the proxy was told are removed: not an error while they stay subscribed.
  std::set<std::string> removed_;
  uint64_t responses_ = 0;
};

}  // namespace tessera::agent
