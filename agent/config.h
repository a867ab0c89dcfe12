// tessera-agent's configuration, read from a TOML file (packaging/config/agent.toml documents
// every key). Loading checks everything it can without touching the system: types, ranges,
// unknown keys, SPIFFE IDs, server addresses, cross-field rules (one node attestor, one way to
// trust the server at first contact). Every error names file:line:column, and all of them are
// reported at once.
// An AgentConfig is a plain value: build it once at start, then share it read-only.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/server_address.h"
#include "spiffe/id.h"
#include "spiffe/key.h"

namespace tessera::agent {

// The encoding of trust_bundle_path / trust_bundle_url.
enum class TrustBundleFormat {
  kPem,     // concatenated PEM certificates
  kSpiffe,  // a SPIFFE bundle (JWKS)
};

enum class NodeAttestorType { kJoinToken, kX509Pop };

// [node_attestor.x509pop]: the node's provisioned certificate and key (SPIRE's key names).
struct X509PopAgentConfig {
  std::filesystem::path certificate_path;
  std::filesystem::path private_key_path;
  std::filesystem::path intermediates_path;  // empty: none
};

// [workload_attestor.unix]
struct UnixAttestorConfig {
  // Also produce unix:path and unix:sha256 selectors from the workload's executable.
  bool discover_workload_path = false;
  // Executables larger than this are not hashed (no unix:sha256 selector).
  uint64_t workload_size_limit = uint64_t{128} << 20;
};

struct HealthConfig {
  std::string bind_address = "127.0.0.1";
  uint16_t bind_port = 8080;
  std::string live_path = "/live";
  std::string ready_path = "/ready";
};

// [sds]: Envoy SDS resource names, as SPIRE's agent spells them.
struct SdsConfig {
  std::string default_svid_name = "default";
  std::string default_bundle_name = "ROOTCA";
  std::string default_all_bundles_name = "ALL";
  bool disable_spiffe_cert_validation = false;
};

struct AgentConfig {
  explicit AgentConfig(spiffe::TrustDomain td) : trust_domain(std::move(td)) {}

  std::filesystem::path source;  // the file this came from, for messages
  spiffe::TrustDomain trust_domain;
  // In the order written; at least one.
  std::vector<ServerAddress> server_addresses;
  // The Workload API (and SDS) socket. Not SPIRE's /tmp/spire-agent/public/api.sock: /run is
  // not world-writable, so no other user can plant a socket there before the agent starts.
  std::filesystem::path socket_path = "/run/tessera/agent/api.sock";
  // Admin API socket; none when empty.
  std::filesystem::path admin_socket_path;
  // ValidateJWTSVID returns these claims of tokens from other trust domains besides sub, aud and
  // exp (SPIRE's allowed_foreign_jwt_claims).
  std::vector<std::string> allowed_foreign_jwt_claims;
  std::filesystem::path data_dir = "/var/lib/tessera/agent";
  std::string log_level = "info";
  std::string log_format = "auto";

  // How the server is trusted at first contact: exactly one of these three is set.
  std::filesystem::path trust_bundle_path;
  std::string trust_bundle_url;
  bool insecure_bootstrap = false;
  TrustBundleFormat trust_bundle_format = TrustBundleFormat::kPem;

  // From the file; empty when not given (the --join-token flag overrides it).
  std::string join_token;
  NodeAttestorType node_attestor = NodeAttestorType::kJoinToken;
  // Set exactly when node_attestor is kX509Pop.
  std::optional<X509PopAgentConfig> x509pop;

  // Workload attestors: at least one is configured.
  std::optional<UnixAttestorConfig> unix_attestor;

  std::chrono::milliseconds sync_interval = std::chrono::seconds(5);
  spiffe::KeyType workload_x509_svid_key_type = spiffe::KeyType::kEcP256;
  SdsConfig sds;
  std::optional<HealthConfig> health;
};

// Reads and checks `path`. Relative paths in the file are taken relative to the process's
// working directory (as SPIRE does).
absl::StatusOr<AgentConfig> LoadAgentConfig(const std::filesystem::path& path);
// Same, from text; `source_name` is used in messages.
absl::StatusOr<AgentConfig> ParseAgentConfig(std::string_view text, std::string_view source_name);

}  // namespace tessera::agent
