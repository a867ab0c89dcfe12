#include "agent/config.h"

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// Lines 1-3: the required root keys; plugins go at the end.
const char kRoot[] =
    "trust_domain = \"e.org\"\n"
    "server_address = \"s:8081\"\n"
    "insecure_bootstrap = true\n";
const char kPlugins[] = "[node_attestor.join_token]\n[workload_attestor.unix]\n";

TEST(AgentConfigTest, MinimalFileGetsDefaults) {
  absl::StatusOr<AgentConfig> c = ParseAgentConfig(std::string(kRoot) + kPlugins, "agent.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->source, "agent.toml");
  EXPECT_EQ(c->trust_domain.name(), "e.org");
  EXPECT_THAT(c->server_addresses, ElementsAre(ServerAddress{"s", 8081}));
  EXPECT_EQ(c->socket_path, "/run/tessera/agent/api.sock");
  EXPECT_EQ(c->admin_socket_path, "");
  EXPECT_TRUE(c->allowed_foreign_jwt_claims.empty());
  EXPECT_EQ(c->data_dir, "/var/lib/tessera/agent");
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->log_format, "auto");
  EXPECT_EQ(c->trust_bundle_path, "");
  EXPECT_EQ(c->trust_bundle_url, "");
  EXPECT_TRUE(c->insecure_bootstrap);
  EXPECT_EQ(c->trust_bundle_format, TrustBundleFormat::kPem);
  EXPECT_EQ(c->join_token, "");
  EXPECT_EQ(c->node_attestor, NodeAttestorType::kJoinToken);
  EXPECT_FALSE(c->x509pop.has_value());
  ASSERT_TRUE(c->unix_attestor.has_value());
  EXPECT_FALSE(c->unix_attestor->discover_workload_path);
  EXPECT_EQ(c->unix_attestor->workload_size_limit, 128u << 20);
  EXPECT_EQ(c->sync_interval, std::chrono::seconds(5));
  EXPECT_EQ(c->workload_x509_svid_key_type, spiffe::KeyType::kEcP256);
  EXPECT_EQ(c->sds.default_svid_name, "default");
  EXPECT_EQ(c->sds.default_bundle_name, "ROOTCA");
  EXPECT_EQ(c->sds.default_all_bundles_name, "ALL");
  EXPECT_FALSE(c->sds.disable_spiffe_cert_validation);
  EXPECT_FALSE(c->health.has_value());
}

TEST(AgentConfigTest, EveryKey) {
  absl::StatusOr<AgentConfig> c = ParseAgentConfig(R"(
trust_domain = "spiffe://prod.example.com"
server_address = ["s1.prod.example.com:8081", "192.0.2.7:9000", "[2001:db8::7]:443"]
socket_path = "/run/t/workload.sock"
admin_socket_path = "/run/t-admin/admin.sock"
data_dir = "/srv/agent"
log_level = "debug"
log_format = "json"
trust_bundle_url = "https://bundle.example.com/b.json"
trust_bundle_format = "spiffe"
sync_interval = "1m30s"
workload_x509_svid_key_type = "rsa-2048"
allowed_foreign_jwt_claims = ["iss", "email"]
[node_attestor.x509pop]
certificate_path = "/etc/t/node.pem"
private_key_path = "/etc/t/node.key"
intermediates_path = "/etc/t/inter.pem"
[workload_attestor.unix]
discover_workload_path = true
workload_size_limit = "10MiB"
[sds]
default_svid_name = "svid"
default_bundle_name = "bundle"
default_all_bundles_name = "everything"
disable_spiffe_cert_validation = true
[health]
bind_address = "0.0.0.0"
bind_port = 18080
live_path = "/healthz"
ready_path = "/readyz"
)",
                                                   "a.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->trust_domain.name(), "prod.example.com");
  EXPECT_THAT(c->server_addresses,
              ElementsAre(ServerAddress{"s1.prod.example.com", 8081},
                          ServerAddress{"192.0.2.7", 9000}, ServerAddress{"2001:db8::7", 443}));
  EXPECT_EQ(c->server_addresses[2].HostPort(), "[2001:db8::7]:443");
  EXPECT_EQ(c->socket_path, "/run/t/workload.sock");
  EXPECT_EQ(c->admin_socket_path, "/run/t-admin/admin.sock");
  EXPECT_EQ(c->allowed_foreign_jwt_claims, (std::vector<std::string>{"iss", "email"}));
  EXPECT_EQ(c->data_dir, "/srv/agent");
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->log_format, "json");
  EXPECT_EQ(c->trust_bundle_path, "");
  EXPECT_EQ(c->trust_bundle_url, "https://bundle.example.com/b.json");
  EXPECT_FALSE(c->insecure_bootstrap);
  EXPECT_EQ(c->trust_bundle_format, TrustBundleFormat::kSpiffe);
  EXPECT_EQ(c->sync_interval, std::chrono::seconds(90));
  EXPECT_EQ(c->workload_x509_svid_key_type, spiffe::KeyType::kRsa2048);
  EXPECT_EQ(c->node_attestor, NodeAttestorType::kX509Pop);
  ASSERT_TRUE(c->x509pop.has_value());
  EXPECT_EQ(c->x509pop->certificate_path, "/etc/t/node.pem");
  EXPECT_EQ(c->x509pop->private_key_path, "/etc/t/node.key");
  EXPECT_EQ(c->x509pop->intermediates_path, "/etc/t/inter.pem");
  ASSERT_TRUE(c->unix_attestor.has_value());
  EXPECT_TRUE(c->unix_attestor->discover_workload_path);
  EXPECT_EQ(c->unix_attestor->workload_size_limit, 10u << 20);
  EXPECT_EQ(c->sds.default_svid_name, "svid");
  EXPECT_EQ(c->sds.default_bundle_name, "bundle");
  EXPECT_EQ(c->sds.default_all_bundles_name, "everything");
  EXPECT_TRUE(c->sds.disable_spiffe_cert_validation);
  ASSERT_TRUE(c->health.has_value());
  EXPECT_EQ(c->health->bind_address, "0.0.0.0");
  EXPECT_EQ(c->health->bind_port, 18080);
  EXPECT_EQ(c->health->live_path, "/healthz");
  EXPECT_EQ(c->health->ready_path, "/readyz");
}

TEST(AgentConfigTest, TrustBundlePathJoinTokenAndHealthDefaults) {
  absl::StatusOr<AgentConfig> c = ParseAgentConfig(
      "trust_domain = \"e.org\"\n"
      "server_address = [\"s:8081\"]\n"
      "trust_bundle_path = \"/etc/t/bundle.pem\"\n"
      "join_token = \"6b1f0a2e\"\n"
      "workload_x509_svid_key_type = \"ec-p384\"\n"
      "[health]\n" +
          std::string(kPlugins),
      "agent.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->server_addresses, ElementsAre(ServerAddress{"s", 8081}));
  EXPECT_EQ(c->trust_bundle_path, "/etc/t/bundle.pem");
  EXPECT_FALSE(c->insecure_bootstrap);
  EXPECT_EQ(c->join_token, "6b1f0a2e");
  EXPECT_EQ(c->workload_x509_svid_key_type, spiffe::KeyType::kEcP384);
  ASSERT_TRUE(c->health.has_value());
  EXPECT_EQ(c->health->bind_address, "127.0.0.1");
  EXPECT_EQ(c->health->bind_port, 8080);
  EXPECT_EQ(c->health->live_path, "/live");
  EXPECT_EQ(c->health->ready_path, "/ready");
}

TEST(AgentConfigTest, InsecureBootstrapFalseIsNotASource) {
  absl::StatusOr<AgentConfig> c = ParseAgentConfig(
      "trust_domain = \"e.org\"\nserver_address = \"s:1\"\ninsecure_bootstrap = false\n"
      "trust_bundle_path = \"/b.pem\"\n" +
          std::string(kPlugins),
      "agent.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->insecure_bootstrap);
}

struct BadConfig {
  std::string text;
  std::string error;  // a substring of the message, including file:line:column
};

void PrintTo(const BadConfig& c, std::ostream* os) { *os << c.error; }

class AgentConfigErrorTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(AgentConfigErrorTest, ReportsFileLineColumn) {
  absl::StatusOr<AgentConfig> c = ParseAgentConfig(GetParam().text, "agent.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(c.status()), StartsWith("agent.toml"));
  EXPECT_THAT(Message(c.status()), HasSubstr(GetParam().error));
}

// kRoot, then `line` as line 4, then the plugins (from line 5).
BadConfig Line4(std::string line, std::string error) {
  return BadConfig{std::string(kRoot) + line + "\n" + kPlugins, std::move(error)};
}

// The same without insecure_bootstrap (so the trust bundle keys can be tested): `line` is 3.
BadConfig Line3(std::string line, std::string error) {
  return BadConfig{
      "trust_domain = \"e.org\"\nserver_address = \"s:8081\"\n" + line + "\n" + kPlugins,
      std::move(error)};
}

// kRoot, then `tables` from line 4.
BadConfig Tables(std::string tables, std::string error) {
  return BadConfig{std::string(kRoot) + tables, std::move(error)};
}

INSTANTIATE_TEST_SUITE_P(
    Root, AgentConfigErrorTest,
    ::testing::Values(
        BadConfig{"server_address = \"s:1\"\ninsecure_bootstrap = true\n" + std::string(kPlugins),
                  "agent.toml: missing required key \"trust_domain\""},
        BadConfig{"trust_domain = \"Example.org\"\nserver_address = \"s:1\"\n"
                  "insecure_bootstrap = true\n" +
                      std::string(kPlugins),
                  "agent.toml:1:16: trust_domain: invalid SPIFFE ID: trust domain characters"},
        Line4("socket_pth = \"/x.sock\"",
              "agent.toml:4:1: unknown key \"socket_pth\" (did you mean \"socket_path\"?)"),
        Line4("socket_path = \"\"", "agent.toml:4:15: socket_path: must not be empty"),
        Line4("allowed_foreign_jwt_claims = [\"iss\", \"\"]",
              "agent.toml:4:38: allowed_foreign_jwt_claims[1]: must not be empty"),
        Line4("socket_path = \"/" + std::string(119, 'x') + "\"",
              "agent.toml:4:15: socket_path: is 120 bytes long; a Unix socket path can be at "
              "most 107"),
        Line4("socket_path = \"/run/x/\"",
              "agent.toml:4:15: socket_path: must name a file, not a directory"),
        Line4("admin_socket_path = \"/run/tessera/agent/admin.sock\"",
              "agent.toml:4:21: admin_socket_path: must not be in the directory of socket_path "
              "(\"/run/tessera/agent\") or below it"),
        Line4("admin_socket_path = \"/run/tessera/agent/sub/../x/admin.sock\"",
              "agent.toml:4:21: admin_socket_path: must not be in the directory of socket_path"),
        Line4("data_dir = \"\"", "agent.toml:4:12: data_dir: must not be empty"),
        Line4("log_level = \"loud\"",
              "agent.toml:4:13: log_level: unknown log level \"loud\" (use trace, debug, info, "
              "warn or error)"),
        Line4("log_format = \"xml\"", "agent.toml:4:14: log_format: unknown log format \"xml\""),
        Line4("join_token = \"\"", "agent.toml:4:14: join_token: must not be empty"),
        Line4("sync_interval = \"500ms\"", "agent.toml:4:17: sync_interval: must be at least 1s"),
        Line4("sync_interval = \"5 s\"", "agent.toml:4:17: sync_interval: invalid duration"),
        Line4("workload_x509_svid_key_type = \"rsa-4096\"",
              "agent.toml:4:31: workload_x509_svid_key_type: unsupported key type \"rsa-4096\" "
              "(use ec-p256, ec-p384 or rsa-2048)"),
        Line4("workload_x509_svid_key_typ = \"ec-p256\"",
              "agent.toml:4:1: unknown key \"workload_x509_svid_key_typ\" (did you mean "
              "\"workload_x509_svid_key_type\"?)"),
        BadConfig{"[node_attestor.join_token\n", "agent.toml:1:"}));

INSTANTIATE_TEST_SUITE_P(
    ServerAddress, AgentConfigErrorTest,
    ::testing::Values(
        BadConfig{"trust_domain = \"e.org\"\ninsecure_bootstrap = true\n" + std::string(kPlugins),
                  "agent.toml: missing required key \"server_address\""},
        BadConfig{"trust_domain = \"e.org\"\nserver_address = \"s\"\ninsecure_bootstrap = true\n" +
                      std::string(kPlugins),
                  "agent.toml:2:18: server_address: \"s\" has no port (write \"host:port\", e.g. "
                  "\"s:8081\")"},
        BadConfig{"trust_domain = \"e.org\"\nserver_address = []\ninsecure_bootstrap = true\n" +
                      std::string(kPlugins),
                  "agent.toml:2:18: server_address: must be \"host:port\" or a non-empty array"},
        BadConfig{"trust_domain = \"e.org\"\nserver_address = 8081\ninsecure_bootstrap = true\n" +
                      std::string(kPlugins),
                  "agent.toml:2:18: server_address: expected an array of strings, got an integer"},
        BadConfig{"trust_domain = \"e.org\"\nserver_address = [\"a:1\", \"a:01\"]\n"
                  "insecure_bootstrap = true\n" +
                      std::string(kPlugins),
                  "agent.toml:2:18: server_address: lists \"a:1\" more than once"},
        BadConfig{"trust_domain = \"e.org\"\nserver_address = [\"a:1\", 2]\n"
                  "insecure_bootstrap = true\n" +
                      std::string(kPlugins),
                  "agent.toml:2:26: server_address[1]: expected a string, got an integer"},
        BadConfig{"trust_domain = \"e.org\"\nserver_address = [\"a:1\", \"::1:80\"]\n"
                  "insecure_bootstrap = true\n" +
                      std::string(kPlugins),
                  "agent.toml:2:26: server_address[1]: put an IPv6 address in brackets"},
        Line4("server_port = 8081",
              "agent.toml:4:15: server_port: not a tessera key: write the port in server_address "
              "(\"host:port\")")));

INSTANTIATE_TEST_SUITE_P(
    TrustBundle, AgentConfigErrorTest,
    ::testing::Values(
        Line3("log_level = \"info\"",
              "agent.toml: no way to trust the server at first contact: set trust_bundle_path or "
              "trust_bundle_url"),
        Line4("trust_bundle_path = \"/b.pem\"",
              "agent.toml:3:22: insecure_bootstrap: conflicts with trust_bundle_path: set only one "
              "of trust_bundle_path, trust_bundle_url and insecure_bootstrap"),
        Line3("trust_bundle_path = \"/b.pem\"\ntrust_bundle_url = \"https://b/\"",
              "agent.toml:4:20: trust_bundle_url: conflicts with trust_bundle_path"),
        Line3("trust_bundle_path = \"\"", "agent.toml:3:21: trust_bundle_path: must not be empty"),
        Line3("trust_bundle_url = \"http://b.example/b.pem\"",
              "agent.toml:3:20: trust_bundle_url: must be an https:// URL, got "
              "\"http://b.example/b.pem\""),
        Line3("trust_bundle_url = \"https:///b.pem\"",
              "agent.toml:3:20: trust_bundle_url: the URL has no host"),
        Line3("trust_bundle_url = \"https://b.example/a b.pem\"",
              "agent.toml:3:20: trust_bundle_url: the URL contains spaces"),
        Line3("trust_bundle_path = \"/b\"\ntrust_bundle_format = \"der\"",
              "agent.toml:4:23: trust_bundle_format: unknown trust bundle format \"der\" (use pem "
              "or spiffe)"),
        Line4("trust_bundle_format = \"pem\"",
              "agent.toml:4:23: trust_bundle_format: has no effect with insecure_bootstrap"),
        Line3("insecure_bootstrap = \"yes\"",
              "agent.toml:3:22: insecure_bootstrap: expected a boolean, got a string")));

INSTANTIATE_TEST_SUITE_P(
    Attestors, AgentConfigErrorTest,
    ::testing::Values(
        Tables("[workload_attestor.unix]\n",
               "agent.toml: no node attestor configured: add [node_attestor.join_token] or "
               "[node_attestor.x509pop]"),
        Tables("[node_attestor.tpm]\n[workload_attestor.unix]\n",
               "agent.toml:4:1: node_attestor.tpm: unknown node attestor \"tpm\" (this agent has "
               "join_token and x509pop)"),
        Tables("[node_attestor.join_token]\n[node_attestor.x509pop]\ncertificate_path = \"/c\"\n"
               "private_key_path = \"/k\"\n[workload_attestor.unix]\n",
               "agent.toml:5:1: node_attestor.x509pop: only one node attestor may be configured "
               "(join_token already is)"),
        Tables("[node_attestor.x509pop]\nprivate_key_path = \"/k\"\n[workload_attestor.unix]\n",
               "agent.toml:4:1: missing required key \"node_attestor.x509pop.certificate_path\""),
        Tables("[node_attestor.x509pop]\ncertificate_path = \"/c\"\nprivate_key_path = \"\"\n"
               "[workload_attestor.unix]\n",
               "agent.toml:6:20: node_attestor.x509pop.private_key_path: must not be empty"),
        Tables("[node_attestor.x509pop]\ncertificate_path = \"/c\"\nprivate_key_path = \"/k\"\n"
               "intermediates_paths = \"/i\"\n[workload_attestor.unix]\n",
               "agent.toml:7:1: unknown key \"node_attestor.x509pop.intermediates_paths\" (did "
               "you mean \"intermediates_path\"?)"),
        Tables("join_token = \"t\"\n[node_attestor.x509pop]\ncertificate_path = \"/c\"\n"
               "private_key_path = \"/k\"\n[workload_attestor.unix]\n",
               "agent.toml:4:14: join_token: is set, but the node attestor is x509pop"),
        Tables("[node_attestor.join_token]\ntoken = \"t\"\n[workload_attestor.unix]\n",
               "agent.toml:5:1: unknown key \"node_attestor.join_token.token\""),
        Tables("node_attestor = \"join_token\"\n[workload_attestor.unix]\n",
               "agent.toml:4:17: node_attestor: expected a table, got a string"),
        Tables("[node_attestor.join_token]\n",
               "agent.toml: no workload attestor configured: add [workload_attestor.unix]"),
        Tables("[node_attestor.join_token]\n[workload_attestor.docker]\n",
               "agent.toml:5:1: workload_attestor.docker: unknown workload attestor \"docker\" "
               "(this agent has unix)"),
        Tables("[node_attestor.join_token]\n[workload_attestor.unix]\n"
               "discover_workload_path = 1\n",
               "agent.toml:6:26: workload_attestor.unix.discover_workload_path: expected a "
               "boolean, got an integer"),
        Tables("[node_attestor.join_token]\n[workload_attestor.unix]\nworkload_size_limit = 0\n",
               "agent.toml:6:23: workload_attestor.unix.workload_size_limit: must be more than 0"),
        Tables("[node_attestor.join_token]\n[workload_attestor.unix]\n"
               "workload_size_limit = \"lots\"\n",
               "agent.toml:6:23: workload_attestor.unix.workload_size_limit: invalid size "
               "\"lots\"")));

INSTANTIATE_TEST_SUITE_P(
    SdsAndHealth, AgentConfigErrorTest,
    ::testing::Values(
        Tables(std::string(kPlugins) + "[sds]\ndefault_bundle_name = \"ALL\"\n",
               "agent.toml:7:23: sds.default_bundle_name: must differ from "
               "default_all_bundles_name (both are \"ALL\")"),
        Tables(std::string(kPlugins) + "[sds]\ndefault_all_bundles_name = \"default\"\n",
               "agent.toml:7:28: sds.default_all_bundles_name: must differ from "
               "default_svid_name (both are \"default\")"),
        Tables(std::string(kPlugins) + "[sds]\ndefault_svid_name = \"\"\n",
               "agent.toml:7:21: sds.default_svid_name: must not be empty"),
        Tables(std::string(kPlugins) + "[sds]\ndisable_spiffe_cert_validaton = true\n",
               "agent.toml:7:1: unknown key \"sds.disable_spiffe_cert_validaton\" (did you mean "
               "\"disable_spiffe_cert_validation\"?)"),
        Tables(std::string(kPlugins) + "[health]\nbind_port = 0\n",
               "agent.toml:7:13: health.bind_port: must be between 1 and 65535"),
        Tables(std::string(kPlugins) + "[health]\nbind_port = 70000\n",
               "agent.toml:7:13: health.bind_port: value 70000 is out of range"),
        Tables(std::string(kPlugins) + "[health]\nlive_path = \"live\"\n",
               "agent.toml:7:13: health.live_path: must be an absolute URL path"),
        Tables(std::string(kPlugins) + "[health]\nready_path = \"/live\"\n",
               "agent.toml:7:14: health.ready_path: must differ from live_path")));

TEST(AgentConfigTest, ReportsEveryErrorAtOnce) {
  const std::string path = TESSERA_TESTDATA_DIR "/config/agent_conflicts.toml";
  absl::StatusOr<AgentConfig> c = LoadAgentConfig(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string p = path + ":";
  EXPECT_EQ(
      Message(c.status()),
      p +
          "5:22: insecure_bootstrap: conflicts with trust_bundle_path: set only one of "
          "trust_bundle_path, trust_bundle_url and insecure_bootstrap\n" +
          p +
          "6:14: join_token: is set, but the node attestor is x509pop (a join token needs "
          "[node_attestor.join_token])\n" +
          p + "7:17: sync_interval: must be at least 1s\n" + p +
          "9:1: missing required key \"node_attestor.x509pop.private_key_path\"\n" + p +
          "12:1: node_attestor.join_token: only one node attestor may be configured (x509pop "
          "already is)\n" +
          p +
          "15:23: workload_attestor.unix.workload_size_limit: invalid size \"128 megabytes\": "
          "unknown unit \"megabytes\" (use B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB)\n" +
          p +
          "16:1: unknown key \"workload_attestor.unix.discover_workload_pth\" (did you mean "
          "\"discover_workload_path\"?)");
}

TEST(AgentConfigTest, BadFixturesName) {
  absl::StatusOr<AgentConfig> c =
      LoadAgentConfig(TESSERA_TESTDATA_DIR "/config/agent_unknown_key.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(Message(c.status()),
              HasSubstr("agent_unknown_key.toml:3:1: unknown key \"socket_pth\" (did you mean "
                        "\"socket_path\"?)"));
  c = LoadAgentConfig(TESSERA_TESTDATA_DIR "/config/agent_bad_address.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(Message(c.status()),
              HasSubstr("agent_bad_address.toml:3:44: server_address[1]: \"tessera-server-2\" has "
                        "no port"));
}

const char kShipped[] = TESSERA_TESTDATA_DIR "/../../packaging/config/agent.toml";

TEST(AgentConfigTest, ShippedExampleIsValid) {
  absl::StatusOr<AgentConfig> c = LoadAgentConfig(kShipped);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->trust_domain.name(), "example.org");
  EXPECT_THAT(c->server_addresses, ElementsAre(ServerAddress{"tessera-server.example.org", 8081}));
  EXPECT_EQ(c->trust_bundle_path, "/etc/tessera/bootstrap-bundle.pem");
  EXPECT_EQ(c->node_attestor, NodeAttestorType::kJoinToken);
  EXPECT_TRUE(c->unix_attestor.has_value());
}

// Every commented-out "# key = value" of the shipped example, set on its own in its section,
// is a key the agent knows and its example value has the right type: the documentation cannot
// drift from the parser.
TEST(AgentConfigTest, ShippedExampleDocumentsOnlyRealKeys) {
  std::ifstream in(kShipped);
  ASSERT_TRUE(in.good());
  const std::regex section(R"(^#? ?\[([a-z_.]+)\]\s*$)");
  const std::regex setting(R"(^# ([a-z_0-9]+) = (.*)$)");
  std::string current;
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, section)) {
      current = m[1];
      continue;
    }
    if (!std::regex_match(line, m, setting)) continue;
    const std::string key = m[1];
    const std::string assignment = key + " = " + std::string(m[2]);
    std::string text;
    if (current.empty()) {
      if (key != "trust_domain") text += "trust_domain = \"e.org\"\n";
      if (key != "server_address") text += "server_address = \"s:1\"\n";
      text += assignment + "\n";
    } else {
      text += "trust_domain = \"e.org\"\nserver_address = \"s:1\"\n";
    }
    if (current == "node_attestor.x509pop" || current == "workload_attestor.unix") {
      text += "[" + current + "]\n" + assignment + "\n";
    } else {
      text += std::string(kPlugins);
      if (!current.empty()) text += "[" + current + "]\n" + assignment + "\n";
    }
    absl::StatusOr<AgentConfig> c = ParseAgentConfig(text, "agent.toml");
    const std::string message = c.ok() ? "" : Message(c.status());
    EXPECT_THAT(message, Not(HasSubstr("unknown key"))) << line;
    EXPECT_THAT(message, Not(HasSubstr(": expected "))) << line;
    EXPECT_THAT(message, Not(HasSubstr(": invalid "))) << line;
    EXPECT_THAT(message, Not(HasSubstr(": unknown "))) << line;
    EXPECT_THAT(message, Not(HasSubstr("must "))) << line;
    ++checked;
  }
  EXPECT_GE(checked, 25);
}

TEST(AgentConfigTest, MissingFileIsNotFound) {
  absl::StatusOr<AgentConfig> c = LoadAgentConfig("/nonexistent/agent.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(c.status()), HasSubstr("/nonexistent/agent.toml"));
}

}  // namespace
}  // namespace tessera::agent
