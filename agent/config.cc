#include "agent/config.h"

#include <sys/un.h>

#include <algorithm>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/text.h"

namespace tessera::agent {
namespace {

// ---- checks of single values ----

absl::Status CheckTrustDomain(const std::string& name) {
  return spiffe::TrustDomain::FromIdOrName(name).status();
}

absl::Status CheckServerAddress(const std::string& text) {
  return ParseServerAddress(text).status();
}

absl::Status CheckNonEmpty(const std::string& value) {
  if (value.empty()) return absl::InvalidArgumentError("must not be empty");
  return absl::OkStatus();
}

absl::Status CheckSocketPath(const std::string& path) {
  RETURN_IF_ERROR(CheckNonEmpty(path));
  // sun_path holds the path and its terminating NUL; a longer path cannot be bound at all.
  constexpr size_t kMax = sizeof(sockaddr_un::sun_path) - 1;
  if (path.size() > kMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("is ", path.size(), " bytes long; a Unix socket path can be at most ", kMax));
  }
  if (path.back() == '/') return absl::InvalidArgumentError("must name a file, not a directory");
  return absl::OkStatus();
}

absl::Status CheckLogLevel(const std::string& level) {
  for (const char* known : {"trace", "debug", "info", "warn", "error"}) {
    if (level == known) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown log level ", Quoted(level),
                                                 " (use trace, debug, info, warn or error)"));
}

absl::Status CheckLogFormat(const std::string& format) {
  for (const char* known : {"auto", "text", "json", "journald"}) {
    if (format == known) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log format ", Quoted(format), " (use auto, text, json or journald)"));
}

absl::Status CheckHttpsUrl(const std::string& url) {
  constexpr std::string_view kScheme = "https://";
  // The bundle it returns becomes the root of all trust in the server, so it must come over
  // an authenticated channel.
  if (!std::string_view(url).starts_with(kScheme)) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be an https:// URL, got ", Quoted(url, 128)));
  }
  const std::string_view rest = std::string_view(url).substr(kScheme.size());
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty()) return absl::InvalidArgumentError("the URL has no host");
  for (unsigned char c : url) {
    if (c <= ' ' || c == 0x7f) {
      return absl::InvalidArgumentError("the URL contains spaces or control characters");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckBundleFormat(const std::string& format) {
  if (format == "pem" || format == "spiffe") return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown trust bundle format ", Quoted(format), " (use pem or spiffe)"));
}

// SPIRE's agent offers ec-p256 and rsa-2048; ec-p384 costs nothing more. rsa-4096 is refused:
// every workload SVID rotation would pay for its key generation.
absl::Status CheckWorkloadKeyType(const std::string& name) {
  if (name == "ec-p256" || name == "ec-p384" || name == "rsa-2048") return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported key type ", Quoted(name), " (use ec-p256, ec-p384 or rsa-2048)"));
}

absl::Status CheckSyncInterval(const std::chrono::nanoseconds& interval) {
  if (interval < std::chrono::seconds(1)) {
    return absl::InvalidArgumentError("must be at least 1s");
  }
  return absl::OkStatus();
}

absl::Status CheckPort(const uint16_t& port) {
  if (port == 0) return absl::InvalidArgumentError("must be between 1 and 65535");
  return absl::OkStatus();
}

absl::Status CheckUrlPath(const std::string& path) {
  if (path.empty() || path.front() != '/') {
    return absl::InvalidArgumentError("must be an absolute URL path such as \"/live\"");
  }
  return absl::OkStatus();
}

absl::Status CheckSizeLimit(const uint64_t& limit) {
  if (limit == 0) {
    return absl::InvalidArgumentError(
        "must be more than 0 (set discover_workload_path = false to skip hashing)");
  }
  return absl::OkStatus();
}

// ---- sections ----

void ReadServerAddresses(ConfigTable& root, bool is_string, AgentConfig& config) {
  if (root.Has("server_port")) {
    // SPIRE's agent has a separate server_port; say where the port goes here.
    root.Ignore("server_port");
    root.AddErrorAt("server_port",
                    "not a tessera key: write the port in server_address (\"host:port\")");
  }
  std::vector<std::string> texts;
  if (is_string || !root.Has("server_address")) {
    std::string text = root.Required<std::string>("server_address", CheckServerAddress);
    if (!text.empty()) texts.push_back(std::move(text));
  } else {
    size_t strings = 0;
    texts = root.StringList("server_address", [&strings](const std::string& text) {
      ++strings;
      return CheckServerAddress(text);
    });
    if (strings == 0) {
      root.AddErrorAt("server_address", "must be \"host:port\" or a non-empty array of them");
    }
  }
  for (const std::string& text : texts) {
    absl::StatusOr<ServerAddress> address = ParseServerAddress(text);
    if (!address.ok()) continue;  // already reported at its element
    if (std::find(config.server_addresses.begin(), config.server_addresses.end(), *address) !=
        config.server_addresses.end()) {
      root.AddErrorAt("server_address",
                      absl::StrCat("lists ", Quoted(address->HostPort()), " more than once"));
      continue;
    }
    config.server_addresses.push_back(*std::move(address));
  }
}

void ReadTrustBundle(ConfigTable& root, AgentConfig& config) {
  config.trust_bundle_path = root.Optional<std::string>("trust_bundle_path", "", CheckNonEmpty);
  config.trust_bundle_url = root.Optional<std::string>("trust_bundle_url", "", CheckHttpsUrl);
  config.insecure_bootstrap = root.Optional<bool>("insecure_bootstrap", false);
  const std::string format =
      root.Optional<std::string>("trust_bundle_format", "pem", CheckBundleFormat);
  config.trust_bundle_format =
      format == "spiffe" ? TrustBundleFormat::kSpiffe : TrustBundleFormat::kPem;

  std::vector<std::string_view> given;
  for (std::string_view key : {"trust_bundle_path", "trust_bundle_url"}) {
    if (root.Has(key)) given.push_back(key);
  }
  if (config.insecure_bootstrap) given.push_back("insecure_bootstrap");
  if (given.empty()) {
    root.AddError(
        "no way to trust the server at first contact: set trust_bundle_path or trust_bundle_url "
        "to its CA bundle, or insecure_bootstrap = true (trusts whichever server answers)");
  }
  for (size_t i = 1; i < given.size(); ++i) {
    root.AddErrorAt(given[i], absl::StrCat("conflicts with ", AsAbsl(given[0]),
                                           ": set only one of trust_bundle_path, "
                                           "trust_bundle_url and insecure_bootstrap"));
  }
  if (given.size() == 1 && given[0] == "insecure_bootstrap" && root.Has("trust_bundle_format")) {
    root.AddErrorAt("trust_bundle_format", "has no effect with insecure_bootstrap");
  }
}

X509PopAgentConfig ReadX509Pop(ConfigTable& table) {
  X509PopAgentConfig x509pop;
  x509pop.certificate_path = table.Required<std::string>("certificate_path", CheckNonEmpty);
  x509pop.private_key_path = table.Required<std::string>("private_key_path", CheckNonEmpty);
  x509pop.intermediates_path = table.Optional<std::string>("intermediates_path", "", CheckNonEmpty);
  return x509pop;
}

void ReadNodeAttestors(ConfigTable& root, AgentConfig& config) {
  std::string configured;  // the first known attestor, which is the one used
  const size_t tables =
      root.ForEachSubTable("node_attestor", [&](std::string_view name, ConfigTable& table) {
        if (name != "join_token" && name != "x509pop") {
          table.AddError(absl::StrCat("unknown node attestor ", Quoted(name),
                                      " (this agent has join_token and x509pop)"));
          return;
        }
        const bool first = configured.empty();
        if (!first) {
          table.AddError(absl::StrCat("only one node attestor may be configured (", configured,
                                      " already is)"));
        }
        // Read even a rejected second table, so its keys are not reported as unknown too.
        std::optional<X509PopAgentConfig> x509pop;
        if (name == "x509pop") x509pop = ReadX509Pop(table);
        if (!first) return;
        configured = std::string(name);
        config.node_attestor =
            x509pop.has_value() ? NodeAttestorType::kX509Pop : NodeAttestorType::kJoinToken;
        config.x509pop = std::move(x509pop);
      });
  if (tables == 0) {
    root.AddError(
        "no node attestor configured: add [node_attestor.join_token] or [node_attestor.x509pop]");
  }
  if (!config.join_token.empty() && config.node_attestor == NodeAttestorType::kX509Pop) {
    root.AddErrorAt("join_token",
                    "is set, but the node attestor is x509pop (a join token needs "
                    "[node_attestor.join_token])");
  }
}

void ReadWorkloadAttestors(ConfigTable& root, AgentConfig& config) {
  const size_t tables =
      root.ForEachSubTable("workload_attestor", [&](std::string_view name, ConfigTable& table) {
        if (name != "unix") {
          table.AddError(
              absl::StrCat("unknown workload attestor ", Quoted(name), " (this agent has unix)"));
          return;
        }
        UnixAttestorConfig unix_attestor;
        unix_attestor.discover_workload_path =
            table.Optional<bool>("discover_workload_path", unix_attestor.discover_workload_path);
        unix_attestor.workload_size_limit =
            table.Size("workload_size_limit", unix_attestor.workload_size_limit, CheckSizeLimit);
        config.unix_attestor = unix_attestor;
      });
  // Without one, no workload has selectors and so none ever gets an identity.
  if (tables == 0) {
    root.AddError("no workload attestor configured: add [workload_attestor.unix]");
  }
}

void ReadSds(ConfigTable& root, AgentConfig& config) {
  ConfigTable table = root.SubTable("sds");
  SdsConfig& sds = config.sds;
  sds.default_svid_name =
      table.Optional<std::string>("default_svid_name", sds.default_svid_name, CheckNonEmpty);
  sds.default_bundle_name =
      table.Optional<std::string>("default_bundle_name", sds.default_bundle_name, CheckNonEmpty);
  sds.default_all_bundles_name = table.Optional<std::string>(
      "default_all_bundles_name", sds.default_all_bundles_name, CheckNonEmpty);
  sds.disable_spiffe_cert_validation =
      table.Optional<bool>("disable_spiffe_cert_validation", sds.disable_spiffe_cert_validation);
  // Envoy asks for a resource by name; two defaults with one name would make that ambiguous.
  const std::pair<std::string_view, const std::string*> names[] = {
      {"default_svid_name", &sds.default_svid_name},
      {"default_bundle_name", &sds.default_bundle_name},
      {"default_all_bundles_name", &sds.default_all_bundles_name}};
  for (size_t i = 1; i < std::size(names); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (*names[i].second != *names[j].second || names[i].second->empty()) continue;
      // Point at a key the file sets rather than at a default it left alone.
      const bool at_i = table.Has(names[i].first);
      table.AddErrorAt(
          at_i ? names[i].first : names[j].first,
          absl::StrCat("must differ from ", AsAbsl(at_i ? names[j].first : names[i].first),
                       " (both are ", Quoted(*names[i].second), ")"));
      break;
    }
  }
}

void ReadHealth(ConfigTable& root, AgentConfig& config) {
  if (!root.Has("health")) return;
  ConfigTable table = root.SubTable("health");
  HealthConfig health;
  health.bind_address =
      table.Optional<std::string>("bind_address", health.bind_address, CheckNonEmpty);
  health.bind_port = table.Optional<uint16_t>("bind_port", health.bind_port, CheckPort);
  health.live_path = table.Optional<std::string>("live_path", health.live_path, CheckUrlPath);
  health.ready_path = table.Optional<std::string>("ready_path", health.ready_path, CheckUrlPath);
  if (health.live_path == health.ready_path) {
    table.AddErrorAt("ready_path", "must differ from live_path");
  }
  config.health = std::move(health);
}

std::filesystem::path Normalized(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  return (ec ? path : absolute).lexically_normal();
}

// Workloads must be able to reach the Workload API socket's directory; the admin socket must
// not be reachable through it.
void CheckAdminSocket(ConfigTable& root, const AgentConfig& config) {
  if (config.admin_socket_path.empty() || config.socket_path.empty()) return;
  const std::filesystem::path public_dir = Normalized(config.socket_path).parent_path();
  const std::filesystem::path admin_dir = Normalized(config.admin_socket_path).parent_path();
  // Every component of public_dir starts admin_dir: the same directory or one below it.
  if (std::mismatch(public_dir.begin(), public_dir.end(), admin_dir.begin(), admin_dir.end())
          .first == public_dir.end()) {
    root.AddErrorAt(
        "admin_socket_path",
        absl::StrCat("must not be in the directory of socket_path (", Quoted(public_dir.string()),
                     ") or below it: workloads can reach that directory"));
  }
}

void ReadRoot(ConfigTable& root, bool server_address_is_string, std::optional<AgentConfig>& out) {
  std::string td = root.Required<std::string>("trust_domain", CheckTrustDomain);
  absl::StatusOr<spiffe::TrustDomain> trust_domain = spiffe::TrustDomain::FromIdOrName(td);
  // When the trust domain is missing or invalid, that error is already recorded; reading goes
  // on with a stand-in so that every other mistake in the file is reported in the same run.
  out.emplace(trust_domain.ok() ? *trust_domain : *spiffe::TrustDomain::Parse("invalid"));
  AgentConfig& config = *out;

  ReadServerAddresses(root, server_address_is_string, config);
  config.socket_path =
      root.Optional<std::string>("socket_path", config.socket_path.string(), CheckSocketPath);
  config.admin_socket_path = root.Optional<std::string>("admin_socket_path", "", CheckSocketPath);
  config.data_dir = root.Optional<std::string>("data_dir", config.data_dir.string(), CheckNonEmpty);
  config.log_level = root.Optional<std::string>("log_level", config.log_level, CheckLogLevel);
  config.log_format = root.Optional<std::string>("log_format", config.log_format, CheckLogFormat);
  ReadTrustBundle(root, config);
  config.join_token = root.Optional<std::string>("join_token", "", CheckNonEmpty);
  config.allowed_foreign_jwt_claims = root.StringList("allowed_foreign_jwt_claims", CheckNonEmpty);

  config.sync_interval = std::chrono::duration_cast<std::chrono::milliseconds>(
      root.Duration("sync_interval", config.sync_interval, CheckSyncInterval));
  const std::string key_type =
      root.Optional<std::string>("workload_x509_svid_key_type", "ec-p256", CheckWorkloadKeyType);
  if (CheckWorkloadKeyType(key_type).ok()) {
    config.workload_x509_svid_key_type =
        spiffe::ParseKeyType(key_type).value_or(spiffe::KeyType::kEcP256);
  }

  ReadNodeAttestors(root, config);
  ReadWorkloadAttestors(root, config);
  ReadSds(root, config);
  ReadHealth(root, config);
  CheckAdminSocket(root, config);
}

// ConfigTable has no way to ask a value's type, and a getter of the wrong type records an
// error, so this looks in a throwaway read: the validator only runs on a string.
bool ServerAddressIsString(const ConfigDocument& doc) {
  bool is_string = false;
  const absl::Status unused = doc.Read([&](ConfigTable& root) {
    root.Optional<std::string>("server_address", "", [&](const std::string&) {
      is_string = true;
      return absl::OkStatus();
    });
  });
  unused.IgnoreError();
  return is_string;
}

absl::StatusOr<AgentConfig> Read(const ConfigDocument& doc) {
  const bool server_address_is_string = ServerAddressIsString(doc);
  std::optional<AgentConfig> config;
  RETURN_IF_ERROR(
      doc.Read([&](ConfigTable& root) { ReadRoot(root, server_address_is_string, config); }));
  config->source = doc.source_name();
  return *std::move(config);
}

}  // namespace

absl::StatusOr<AgentConfig> ParseAgentConfig(std::string_view text, std::string_view source_name) {
  ASSIGN_OR_RETURN(ConfigDocument doc, ConfigDocument::Parse(text, source_name));
  return Read(doc);
}

absl::StatusOr<AgentConfig> LoadAgentConfig(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(ConfigDocument doc, ConfigDocument::Load(path.string()));
  return Read(doc);
}

}  // namespace tessera::agent
