#include "server/config.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/status.h"
#include "common/strings.h"

namespace tessera::server {
namespace {

using std::chrono::seconds;

absl::Status CheckTrustDomain(const std::string& name) {
  return spiffe::TrustDomain::FromIdOrName(name).status();
}

absl::Status CheckKeyType(const std::string& name) { return spiffe::ParseKeyType(name).status(); }

absl::Status CheckLogLevel(const std::string& level) {
  for (const char* known : {"trace", "debug", "info", "warn", "error"}) {
    if (level == known) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level \"", level, "\" (use trace, debug, info, warn or error)"));
}

absl::Status CheckLogFormat(const std::string& format) {
  for (const char* known : {"auto", "text", "json", "journald"}) {
    if (format == known) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log format \"", format, "\" (use auto, text, json or journald)"));
}

absl::Status CheckNonEmpty(const std::string& value) {
  if (value.empty()) return absl::InvalidArgumentError("must not be empty");
  return absl::OkStatus();
}

absl::Status CheckUrlPath(const std::string& path) {
  if (path.empty() || path.front() != '/') {
    return absl::InvalidArgumentError("must be an absolute URL path such as \"/live\"");
  }
  return absl::OkStatus();
}

// TTLs are whole seconds on SPIRE's wire (int32): at least a second, at most ~68 years.
absl::Status CheckTtl(const std::chrono::nanoseconds& ttl) {
  if (ttl < seconds(1)) return absl::InvalidArgumentError("must be at least 1s");
  if (ttl > seconds(INT32_MAX)) return absl::InvalidArgumentError("is too long");
  return absl::OkStatus();
}

seconds ToSeconds(std::chrono::nanoseconds d) { return std::chrono::duration_cast<seconds>(d); }

void ReadDatastore(ConfigTable& table, ServerConfig& config) {
  std::string type = table.Optional<std::string>("type", "sqlite");
  if (type == "sqlite") {
    config.datastore.type = DatastoreConfig::Type::kSqlite;
    config.datastore.sqlite_path = table.Optional<std::string>(
        "path", (config.data_dir / "datastore.sqlite3").string(), CheckNonEmpty);
  } else if (type == "postgres") {
    config.datastore.type = DatastoreConfig::Type::kPostgres;
    config.datastore.connection_string =
        table.Required<std::string>("connection_string", CheckNonEmpty);
    // Accepted in the file so that a configuration can be written ahead of time, but this
    // build cannot serve it yet: say so at start rather than failing later.
    table.AddErrorAt("type", "datastore type \"postgres\" is not supported by this build yet");
  } else {
    table.AddErrorAt(
        "type", absl::StrCat("unknown datastore type \"", type, "\" (use sqlite or postgres)"));
  }
}

void ReadKeyManager(ConfigTable& table, ServerConfig& config) {
  std::string type = table.Optional<std::string>("type", "disk");
  if (type == "disk") {
    config.key_manager.type = KeyManagerConfig::Type::kDisk;
    config.key_manager.directory = table.Optional<std::string>(
        "directory", (config.data_dir / "keys").string(), CheckNonEmpty);
  } else if (type == "memory") {
    config.key_manager.type = KeyManagerConfig::Type::kMemory;
  } else {
    table.AddErrorAt("type",
                     absl::StrCat("unknown key manager type \"", type, "\" (use disk or memory)"));
  }
}

void ReadNodeAttestors(ConfigTable& root, ServerConfig& config) {
  root.ForEachSubTable("node_attestor", [&](std::string_view name, ConfigTable& table) {
    if (name == "join_token") {
      config.join_token_enabled = true;
    } else if (name == "x509pop") {
      X509PopConfig x509pop;
      for (std::string& path : table.StringList("ca_bundle_paths", CheckNonEmpty)) {
        x509pop.ca_bundle_paths.emplace_back(std::move(path));
      }
      if (table.Has("ca_bundle_path")) {
        x509pop.ca_bundle_paths.emplace_back(
            table.Required<std::string>("ca_bundle_path", CheckNonEmpty));
      }
      if (x509pop.ca_bundle_paths.empty()) {
        table.AddError("set ca_bundle_path or ca_bundle_paths");
      }
      x509pop.max_intermediates =
          table.Optional<int32_t>("max_intermediates", 4, [](const int32_t& n) {
            return n >= 0 && n <= 16 ? absl::OkStatus()
                                     : absl::InvalidArgumentError("must be between 0 and 16");
          });
      config.x509pop = std::move(x509pop);
    } else {
      table.AddError(absl::StrCat("unknown node attestor \"", AsAbsl(name),
                                  "\" (this server has join_token and x509pop)"));
    }
  });
}

void ReadUpstream(ConfigTable& root, ServerConfig& config) {
  root.ForEachSubTable("upstream_authority", [&](std::string_view name, ConfigTable& table) {
    if (name != "disk") {
      table.AddError(
          absl::StrCat("unknown upstream authority \"", AsAbsl(name), "\" (this server has disk)"));
      return;
    }
    if (config.upstream_disk.has_value()) {
      table.AddError("only one upstream authority may be configured");
      return;
    }
    DiskUpstreamConfig disk;
    disk.cert_file_path = table.Required<std::string>("cert_file_path", CheckNonEmpty);
    disk.key_file_path = table.Required<std::string>("key_file_path", CheckNonEmpty);
    disk.bundle_file_path = table.Optional<std::string>("bundle_file_path", "");
    config.upstream_disk = std::move(disk);
  });
}

void ReadHealth(ConfigTable& root, ServerConfig& config) {
  if (!root.Has("health")) return;
  ConfigTable table = root.SubTable("health");
  HealthConfig health;
  health.bind_address =
      table.Optional<std::string>("bind_address", health.bind_address, CheckNonEmpty);
  health.bind_port = table.Optional<uint16_t>("bind_port", health.bind_port);
  health.live_path = table.Optional<std::string>("live_path", health.live_path, CheckUrlPath);
  health.ready_path = table.Optional<std::string>("ready_path", health.ready_path, CheckUrlPath);
  config.health = std::move(health);
}

void ReadRoot(ConfigTable& root, std::optional<ServerConfig>& out) {
  std::string td = root.Required<std::string>("trust_domain", CheckTrustDomain);
  absl::StatusOr<spiffe::TrustDomain> trust_domain = spiffe::TrustDomain::FromIdOrName(td);
  // When the trust domain is missing or invalid, that error is already recorded; reading goes
  // on with a stand-in so that every other mistake in the file is reported in the same run.
  out.emplace(trust_domain.ok() ? *trust_domain : *spiffe::TrustDomain::Parse("invalid"));
  ServerConfig& config = *out;

  config.bind_address =
      root.Optional<std::string>("bind_address", config.bind_address, CheckNonEmpty);
  config.bind_port = root.Optional<uint16_t>("bind_port", config.bind_port);
  config.socket_path =
      root.Optional<std::string>("socket_path", config.socket_path.string(), CheckNonEmpty);
  config.data_dir = root.Optional<std::string>("data_dir", config.data_dir.string(), CheckNonEmpty);
  config.log_level = root.Optional<std::string>("log_level", config.log_level, CheckLogLevel);
  config.log_format = root.Optional<std::string>("log_format", config.log_format, CheckLogFormat);

  std::string ca_key_type = root.Optional<std::string>("ca_key_type", "ec-p256", CheckKeyType);
  config.ca_key_type = spiffe::ParseKeyType(ca_key_type).value_or(spiffe::KeyType::kEcP256);
  std::string jwt_key_type = root.Optional<std::string>("jwt_key_type", "ec-p256", CheckKeyType);
  config.jwt_key_type = spiffe::ParseKeyType(jwt_key_type).value_or(spiffe::KeyType::kEcP256);
  config.ca_ttl = ToSeconds(root.Duration("ca_ttl", config.ca_ttl, CheckTtl));
  config.default_x509_svid_ttl =
      ToSeconds(root.Duration("default_x509_svid_ttl", config.default_x509_svid_ttl, CheckTtl));
  config.default_jwt_svid_ttl =
      ToSeconds(root.Duration("default_jwt_svid_ttl", config.default_jwt_svid_ttl, CheckTtl));
  config.agent_ttl = ToSeconds(root.Duration("agent_ttl", config.default_x509_svid_ttl, CheckTtl));
  config.jwt_issuer = root.Optional<std::string>("jwt_issuer", "");
  config.push_notifications = root.Optional<bool>("push_notifications", true);
  if (root.Has("ca_subject")) {
    ConfigTable subject = root.SubTable("ca_subject");
    config.ca_subject_country = subject.Optional<std::string>("country", "US");
    config.ca_subject_organization = subject.Optional<std::string>("organization", "SPIFFE");
  }

  for (const std::string& id : root.StringList(
           "admin_ids", [](const std::string& s) { return spiffe::SpiffeId::Parse(s).status(); })) {
    if (auto parsed = spiffe::SpiffeId::Parse(id); parsed.ok()) {
      config.admin_ids.push_back(*std::move(parsed));
    }
  }

  // Sub-tables whose defaults depend on data_dir come after it.
  ConfigTable datastore = root.SubTable("datastore");
  ReadDatastore(datastore, config);
  ConfigTable key_manager = root.SubTable("key_manager");
  ReadKeyManager(key_manager, config);
  ReadUpstream(root, config);
  ReadNodeAttestors(root, config);
  ReadHealth(root, config);

  // Cross-field rules: an SVID longer than its CA would be cut short at every issue.
  if (config.default_x509_svid_ttl >= config.ca_ttl) {
    root.AddErrorAt("default_x509_svid_ttl", "must be shorter than ca_ttl");
  }
  if (config.agent_ttl >= config.ca_ttl)
    root.AddErrorAt("agent_ttl", "must be shorter than ca_ttl");
  if (config.default_jwt_svid_ttl >= config.ca_ttl) {
    root.AddErrorAt("default_jwt_svid_ttl", "must be shorter than ca_ttl");
  }
  if (!config.join_token_enabled && !config.x509pop.has_value()) {
    root.AddError(
        "no node attestor configured: add [node_attestor.join_token] or [node_attestor.x509pop]");
  }
}

absl::StatusOr<ServerConfig> Finish(absl::Status status, std::optional<ServerConfig> config,
                                    std::string_view source) {
  RETURN_IF_ERROR(status);
  config->source = std::string(source);
  return *std::move(config);
}

}  // namespace

absl::StatusOr<ServerConfig> ParseServerConfig(std::string_view text,
                                               std::string_view source_name) {
  ASSIGN_OR_RETURN(ConfigDocument doc, ConfigDocument::Parse(text, source_name));
  std::optional<ServerConfig> config;
  absl::Status status = doc.Read([&](ConfigTable& root) { ReadRoot(root, config); });
  return Finish(std::move(status), std::move(config), source_name);
}

absl::StatusOr<ServerConfig> LoadServerConfig(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(ConfigDocument doc, ConfigDocument::Load(path.string()));
  std::optional<ServerConfig> config;
  absl::Status status = doc.Read([&](ConfigTable& root) { ReadRoot(root, config); });
  return Finish(std::move(status), std::move(config), path.string());
}

}  // namespace tessera::server
