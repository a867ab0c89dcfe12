// tessera-server's configuration, read from a TOML file (packaging/config/server.toml documents
// every key). Loading checks everything it can without touching the system: types, ranges,
// unknown keys, SPIFFE IDs, cross-field rules. Each error names file:line:column.
// A ServerConfig is a plain value: build it once at start, then share it read-only.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "spiffe/id.h"
#include "spiffe/key.h"

namespace tessera::server {

struct DatastoreConfig {
  enum class Type { kSqlite, kPostgres };
  Type type = Type::kSqlite;
  // SQLite: the database file (default <data_dir>/datastore.sqlite3).
  std::filesystem::path sqlite_path;
  // PostgreSQL: a libpq connection string.
  std::string connection_string;
};

struct KeyManagerConfig {
  enum class Type { kDisk, kMemory };
  Type type = Type::kDisk;
  // Disk: where the CA and JWT signing keys live (default <data_dir>/keys).
  std::filesystem::path directory;
};

// [upstream_authority.disk]: our CA becomes an intermediate signed by this CA.
struct DiskUpstreamConfig {
  std::filesystem::path cert_file_path;
  std::filesystem::path key_file_path;
  // Roots to publish in the bundle; when empty, the last certificate of cert_file_path.
  std::filesystem::path bundle_file_path;
};

struct X509PopConfig {
  std::vector<std::filesystem::path> ca_bundle_paths;
  int32_t max_intermediates = 4;
};

struct HealthConfig {
  std::string bind_address = "127.0.0.1";
  uint16_t bind_port = 8080;
  std::string live_path = "/live";
  std::string ready_path = "/ready";
};

struct ServerConfig {
  explicit ServerConfig(spiffe::TrustDomain td) : trust_domain(std::move(td)) {}

  std::filesystem::path source;  // the file this came from, for messages
  spiffe::TrustDomain trust_domain;
  std::string bind_address = "0.0.0.0";
  uint16_t bind_port = 8081;
  std::filesystem::path socket_path = "/tmp/tessera-server/private/api.sock";
  std::filesystem::path data_dir = "/var/lib/tessera/server";
  std::string log_level = "info";
  std::string log_format = "auto";

  spiffe::KeyType ca_key_type = spiffe::KeyType::kEcP256;
  spiffe::KeyType jwt_key_type = spiffe::KeyType::kEcP256;
  std::chrono::seconds ca_ttl = std::chrono::hours(24);
  std::chrono::seconds default_x509_svid_ttl = std::chrono::hours(1);
  std::chrono::seconds default_jwt_svid_ttl = std::chrono::minutes(5);
  // Agent SVID lifetime; default_x509_svid_ttl when not set.
  std::chrono::seconds agent_ttl = std::chrono::hours(1);
  // "iss" claim of JWT-SVIDs; none when empty.
  std::string jwt_issuer;
  // Subject of the CA certificate: C and O (SPIRE's defaults).
  std::string ca_subject_country = "US";
  std::string ca_subject_organization = "SPIFFE";

  DatastoreConfig datastore;
  KeyManagerConfig key_manager;
  std::optional<DiskUpstreamConfig> upstream_disk;
  bool join_token_enabled = false;
  std::optional<X509PopConfig> x509pop;
  std::vector<spiffe::SpiffeId> admin_ids;
  std::optional<HealthConfig> health;
  // Tessera's push stream to agents (/tessera.server.v1.Notifier/Watch). false: it is not served
  // (UNIMPLEMENTED, as from SPIRE) and agents find changes by polling every sync_interval.
  bool push_notifications = true;
};

// Reads and checks `path`. Relative paths in the file are taken relative to the process's
// working directory (as SPIRE does); defaults under data_dir follow data_dir.
absl::StatusOr<ServerConfig> LoadServerConfig(const std::filesystem::path& path);
// Same, from text; `source_name` is used in messages.
absl::StatusOr<ServerConfig> ParseServerConfig(std::string_view text, std::string_view source_name);

}  // namespace tessera::server
