// The x509pop node attestor ("X.509 proof of possession"), both halves, wire-compatible with
// SPIRE's x509pop plugins (SPIRE-API-FACTS §5): a node provisioned out of band with a
// certificate and key proves that it holds the key by signing a server nonce.
//
// Agent config keys:
//   certificate_path    PEM: the node certificate first, then any intermediates
//   private_key_path    PEM: PKCS#8, PKCS#1 or SEC1, unencrypted
//   intermediates_path  optional PEM: more intermediates, sent after those of certificate_path
// Server config keys:
//   ca_bundle_paths     PEM files whose certificates are the trust anchors (any of them,
//   self-signed
//                       or not, may end a chain, as with Go's x509 roots)
//   max_intermediates   most intermediates a payload may carry (default 4)
//   mode                "external_pki" (the default and the only mode implemented)
//   agent_path_template only SPIRE's default "{{ .PluginName}}/{{ .Fingerprint }}" is implemented
//
// Agent ID: spiffe://<td>/spire/agent/x509pop/<lowercase hex SHA-1 of the leaf DER>.
// Selectors (type "x509pop"):
//   subject:cn:<CN>              the leaf's subject common name, when not empty
//   ca:fingerprint:<sha1 hex>    each distinct non-leaf certificate of the verified chain, root too
//   serialnumber:<hex>           the leaf serial, lowercase hex of its minimal big-endian bytes
//   san:<key>:<value>            each leaf URI SAN x509pop://<server trust domain>/<key>/<value>
//
// Thread-safety: as attestors/node_attestor.h says. The server half is immutable and may be used
// from many threads; each conversation, and each agent half, belongs to one attestation at a time.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "attestors/node_attestor.h"
#include "common/clock.h"

namespace tessera::attestors::x509pop {

inline constexpr std::string_view kPluginName = "x509pop";

struct ServerConfig {
  std::vector<std::string> ca_bundle_paths;
  int max_intermediates = 4;
  std::string mode = "external_pki";
  // Empty means SPIRE's default.
  std::string agent_path_template;
};

// Loads the CA bundles now: unreadable, malformed or certificate-less files fail here. `clock`
// judges certificate validity and must outlive the attestor and its conversations.
absl::StatusOr<std::unique_ptr<ServerNodeAttestor>> NewServerAttestor(
    const ServerConfig& config, const Clock& clock = RealClock::Get());

struct AgentConfig {
  std::string certificate_path;
  std::string private_key_path;
  std::string intermediates_path;  // empty: none
};

// Loads the files once to report configuration errors early; Payload() loads them again every
// time, so that a renewed node certificate is used without a restart.
absl::StatusOr<std::unique_ptr<AgentNodeAttestor>> NewAgentAttestor(const AgentConfig& config);

}  // namespace tessera::attestors::x509pop
