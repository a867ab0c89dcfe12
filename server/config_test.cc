#include "server/config.h"

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(ServerConfigTest, MinimalFileGetsDefaults) {
  absl::StatusOr<ServerConfig> c = ParseServerConfig(
      "trust_domain = \"example.org\"\n"
      "data_dir = \"/srv/tessera\"\n"
      "[node_attestor.join_token]\n",
      "server.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->trust_domain.name(), "example.org");
  EXPECT_EQ(c->bind_address, "0.0.0.0");
  EXPECT_EQ(c->bind_port, 8081);
  EXPECT_EQ(c->ca_key_type, spiffe::KeyType::kEcP256);
  EXPECT_EQ(c->ca_ttl, std::chrono::hours(24));
  EXPECT_EQ(c->default_x509_svid_ttl, std::chrono::hours(1));
  EXPECT_EQ(c->default_jwt_svid_ttl, std::chrono::minutes(5));
  EXPECT_EQ(c->agent_ttl, std::chrono::hours(1));
  EXPECT_EQ(c->datastore.type, DatastoreConfig::Type::kSqlite);
  EXPECT_EQ(c->datastore.sqlite_path, "/srv/tessera/datastore.sqlite3");
  EXPECT_EQ(c->key_manager.type, KeyManagerConfig::Type::kDisk);
  EXPECT_EQ(c->key_manager.directory, "/srv/tessera/keys");
  EXPECT_TRUE(c->join_token_enabled);
  EXPECT_FALSE(c->x509pop.has_value());
  EXPECT_FALSE(c->upstream_disk.has_value());
  EXPECT_FALSE(c->health.has_value());
  EXPECT_TRUE(c->push_notifications);
  EXPECT_EQ(c->source, "server.toml");
}

TEST(ServerConfigTest, FullFile) {
  absl::StatusOr<ServerConfig> c = ParseServerConfig(R"(
trust_domain = "spiffe://prod.example.com"
bind_address = "127.0.0.1"
bind_port = 9081
socket_path = "/run/t/api.sock"
log_level = "debug"
log_format = "json"
ca_key_type = "ec-p384"
ca_ttl = "48h"
default_x509_svid_ttl = "30m"
default_jwt_svid_ttl = "2m"
agent_ttl = "2h"
jwt_issuer = "https://oidc.example.com"
push_notifications = false
admin_ids = ["spiffe://prod.example.com/admin", "spiffe://other.org/ops"]
[datastore]
type = "sqlite"
path = "/tmp/x.db"
[key_manager]
type = "memory"
[upstream_authority.disk]
cert_file_path = "/u/ca.pem"
key_file_path = "/u/ca.key"
[node_attestor.x509pop]
ca_bundle_paths = ["/a.pem", "/b.pem"]
max_intermediates = 2
[health]
bind_port = 18080
)",
                                                     "s.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->trust_domain.name(), "prod.example.com");
  EXPECT_EQ(c->bind_port, 9081);
  EXPECT_EQ(c->ca_key_type, spiffe::KeyType::kEcP384);
  EXPECT_EQ(c->ca_ttl, std::chrono::hours(48));
  EXPECT_EQ(c->agent_ttl, std::chrono::hours(2));
  EXPECT_EQ(c->jwt_issuer, "https://oidc.example.com");
  EXPECT_FALSE(c->push_notifications);
  ASSERT_EQ(c->admin_ids.size(), 2u);
  EXPECT_EQ(c->admin_ids[1].str(), "spiffe://other.org/ops");
  EXPECT_EQ(c->datastore.sqlite_path, "/tmp/x.db");
  EXPECT_EQ(c->key_manager.type, KeyManagerConfig::Type::kMemory);
  ASSERT_TRUE(c->upstream_disk.has_value());
  EXPECT_EQ(c->upstream_disk->key_file_path, "/u/ca.key");
  ASSERT_TRUE(c->x509pop.has_value());
  EXPECT_EQ(c->x509pop->ca_bundle_paths.size(), 2u);
  EXPECT_EQ(c->x509pop->max_intermediates, 2);
  EXPECT_FALSE(c->join_token_enabled);
  ASSERT_TRUE(c->health.has_value());
  EXPECT_EQ(c->health->bind_port, 18080);
  EXPECT_EQ(c->health->live_path, "/live");
}

struct BadConfig {
  std::string text;
  std::string error;  // expected prefix-free substring, including file:line:column
};

void PrintTo(const BadConfig& c, std::ostream* os) { *os << c.error; }

class ServerConfigErrorTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ServerConfigErrorTest, ReportsFileLineColumn) {
  absl::StatusOr<ServerConfig> c = ParseServerConfig(GetParam().text, "server.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(c.status()), StartsWith("server.toml"));
  EXPECT_THAT(Message(c.status()), HasSubstr(GetParam().error));
}

const char kJoin[] = "[node_attestor.join_token]\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, ServerConfigErrorTest,
    ::testing::Values(
        BadConfig{std::string("bind_port = 8081\n") + kJoin,
                  "missing required key \"trust_domain\""},
        BadConfig{std::string("trust_domain = \"Example.org\"\n") + kJoin,
                  "server.toml:1:16: trust_domain: invalid SPIFFE ID: trust domain characters"},
        BadConfig{std::string("trust_domain = \"e.org\"\nbind_prot = 1\n") + kJoin,
                  "server.toml:2:1: unknown key \"bind_prot\""},
        BadConfig{std::string("trust_domain = \"e.org\"\nbind_port = 70000\n") + kJoin,
                  "server.toml:2:13: bind_port"},
        BadConfig{std::string("trust_domain = \"e.org\"\nca_ttl = \"24hours\"\n") + kJoin,
                  "server.toml:2:10: ca_ttl: invalid duration"},
        BadConfig{std::string("trust_domain = \"e.org\"\nca_key_type = \"dsa\"\n") + kJoin,
                  "server.toml:2:15: ca_key_type"},
        BadConfig{std::string("trust_domain = \"e.org\"\nlog_level = \"loud\"\n") + kJoin,
                  "server.toml:2:13: log_level: unknown log level \"loud\""},
        BadConfig{
            std::string("trust_domain = \"e.org\"\ndefault_x509_svid_ttl = \"48h\"\n") + kJoin,
            "server.toml:2:25: default_x509_svid_ttl: must be shorter than ca_ttl"},
        BadConfig{std::string("trust_domain = \"e.org\"\nca_ttl = \"0s\"\n") + kJoin,
                  "ca_ttl: must be at least 1s"},
        BadConfig{std::string("trust_domain = \"e.org\"\npush_notifications = \"no\"\n") + kJoin,
                  "server.toml:2:22: push_notifications"},
        BadConfig{"trust_domain = \"e.org\"\n", "no node attestor configured"},
        BadConfig{"trust_domain = \"e.org\"\n[node_attestor.tpm]\n",
                  "server.toml:2:1: node_attestor.tpm: unknown node attestor \"tpm\""},
        BadConfig{"trust_domain = \"e.org\"\n[node_attestor.x509pop]\n",
                  "set ca_bundle_path or ca_bundle_paths"},
        BadConfig{std::string("trust_domain = \"e.org\"\n[datastore]\ntype = \"mysql\"\n") + kJoin,
                  "server.toml:3:8: datastore.type: unknown datastore type \"mysql\""},
        BadConfig{std::string("trust_domain = \"e.org\"\n[datastore]\ntype = \"postgres\"\n"
                              "connection_string = \"host=x\"\n") +
                      kJoin,
                  "not supported by this build yet"},
        BadConfig{
            std::string("trust_domain = \"e.org\"\nadmin_ids = [\"spiffe://e.org/\"]\n") + kJoin,
            "server.toml:2:14: admin_ids[0]: invalid SPIFFE ID: path cannot have a trailing"},
        BadConfig{std::string("trust_domain = \"e.org\"\n[upstream_authority.disk]\n"
                              "cert_file_path = \"/a\"\n") +
                      kJoin,
                  "missing required key \"upstream_authority.disk.key_file_path\""},
        BadConfig{std::string("trust_domain = \"e.org\"\n[health]\nlive_path = \"live\"\n") + kJoin,
                  "server.toml:3:13: health.live_path: must be an absolute URL path"},
        BadConfig{"trust_domain = \"e.org\"\n[node_attestor.join_token\n", "server.toml:2:"}));

TEST(ServerConfigTest, ReportsEveryErrorAtOnce) {
  absl::StatusOr<ServerConfig> c = ParseServerConfig(
      "trust_domain = \"e.org\"\nbind_prot = 1\nca_ttl = \"x\"\n[node_attestor.join_token]\n",
      "server.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(Message(c.status()), HasSubstr("server.toml:2:1: unknown key \"bind_prot\""));
  EXPECT_THAT(Message(c.status()), HasSubstr("server.toml:3:10: ca_ttl"));
}

TEST(ServerConfigTest, ShippedExampleIsValid) {
  absl::StatusOr<ServerConfig> c =
      LoadServerConfig(TESSERA_TESTDATA_DIR "/../../packaging/config/server.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->trust_domain.name(), "example.org");
  EXPECT_TRUE(c->join_token_enabled);
}

TEST(ServerConfigTest, MissingFileIsNotFound) {
  absl::StatusOr<ServerConfig> c = LoadServerConfig("/nonexistent/server.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(c.status()), HasSubstr("/nonexistent/server.toml"));
}

}  // namespace
}  // namespace tessera::server
