// What the agent serves to Envoy over SDS (SPIFFE-FACTS §5), independent of the protocol that
// carries it: the settings of one proxy ([sds] config overridden by the proxy's node metadata)
// and the Secrets that a set of requested resource names resolves to for one caller.
//
// Name mapping (as SPIRE's agent, except that every requested name is served: SPIRE serves only
// one of the own trust domain ID, the bundle name and the all-bundles name per response):
//   the caller's SPIFFE ID          -> tls_certificate of that identity, named by the ID
//   default_svid_name ("default")   -> tls_certificate of the caller's first identity
//   own trust domain ID, default_bundle_name ("ROOTCA")
//                                   -> validation_context with the own bundle
//   default_all_bundles_name ("ALL") -> validation_context: Envoy's SPIFFE certificate validator
//                                      with the own and every federated bundle the caller's
//                                      entries federate with, sorted by trust domain
//   a federated trust domain ID     -> validation_context with that bundle
// Validation contexts use the SPIFFE validator (one trust domain each) unless it is disabled for
// the proxy; then they carry `trusted_ca`, and ALL cannot be served.
//
// Thread-safety: free functions over immutable inputs; safe from any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/cache/cache.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "spiffe/selector.h"

namespace tessera::agent {

inline constexpr std::string_view kSecretTypeUrl =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
inline constexpr std::string_view kSpiffeValidatorName = "envoy.tls.cert_validator.spiffe";

// How one proxy names its resources and validates peers. The [sds] table of the agent's config
// gives the defaults; the same keys in a proxy's node metadata override them for that proxy.
struct SdsSettings {
  std::string default_svid_name = "default";
  std::string default_bundle_name = "ROOTCA";
  std::string default_all_bundles_name = "ALL";
  bool disable_spiffe_cert_validation = false;

  friend bool operator==(const SdsSettings&, const SdsSettings&) = default;
};

// Checks that the three names are non-empty and distinct. InvalidArgument naming the setting.
absl::Status ValidateSdsSettings(const SdsSettings& settings);

// `defaults` overridden by `node`: metadata keys default_svid_name, default_bundle_name and
// default_all_bundles_name (strings) and disable_spiffe_cert_validation (a bool, or a string
// "true"/"false"); other metadata keys are ignored. The SPIFFE validator is also disabled for an
// Envoy older than 1.18 (node.user_agent_build_version; no build version: assumed recent).
// InvalidArgument naming the key for a value of the wrong type or names that collide.
absl::StatusOr<SdsSettings> SettingsForNode(const SdsSettings& defaults,
                                            const envoy::config::core::v3::Node& node);

// One resource, ready to send.
struct NamedSecret {
  std::string name;
  // A digest of the content (for a certificate: of the chain, never of the key), so equal
  // content has equal versions across streams and agent restarts.
  std::string version;
  envoy::extensions::transport_sockets::tls::v3::Secret secret;
};

struct SecretSet {
  // In the order requested; for "everything": bundles by trust domain, then certificates in the
  // caller's identity order.
  std::vector<NamedSecret> secrets;
  // Requested names this caller has nothing for, sorted and unique.
  std::vector<std::string> unknown;
  // A requested certificate's X509-SVID is still being minted: wait for the next snapshot.
  bool waiting = false;
};

// The Secrets `names` resolve to for a caller with `selectors` in `snapshot` (see the top of this
// file). Empty names are ignored, duplicates served once; no names at all means everything the
// caller may have: the own bundle and the federated ones (each named by its trust domain ID)
// and every identity with an X509-SVID (named by its SPIFFE ID). A caller without identities
// still gets bundles. Errors: Unavailable when a requested certificate has no X509-SVID and the
// agent cannot reach the server; FailedPrecondition for ALL when the SPIFFE validator is disabled.
absl::StatusOr<SecretSet> BuildSecrets(const CacheSnapshot& snapshot,
                                       const spiffe::SelectorSet& selectors,
                                       std::span<const std::string> names,
                                       const SdsSettings& settings);

// InvalidArgument "workload is not authorized for the requested identities [...]" (SPIRE's
// wording) naming `unknown`.
absl::Status UnknownNamesError(std::span<const std::string> unknown);

}  // namespace tessera::agent
