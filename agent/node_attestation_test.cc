// The agent's side of node attestation against a real tessera-server in the same process:
// join token and x509pop attest, the SVID and bundle come back consistent, renewal issues a new
// key and serial, and a wrong bundle, a reused token or an unknown attestor fail clearly.
#include "agent/node_attestation.h"

#include <fstream>

#include "attestors/x509pop/x509pop.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "spiffe/x509_test_util.h"

namespace tessera::agent {
namespace {

using spiffe::testing::Id;
using spiffe::testing::Td;
using spiffe::testing::TempDir;
using ::testing::HasSubstr;

class NodeAttestationTest : public ::testing::Test {
 protected:
  void StartServer(std::optional<std::filesystem::path> x509pop_ca = std::nullopt) {
    server::ServerConfig config(Td("example.org"));
    config.bind_address = "127.0.0.1";
    config.bind_port = 0;
    config.data_dir = dir_ / "server";
    config.socket_path = dir_ / "run" / "api.sock";
    config.datastore.sqlite_path = config.data_dir / "datastore.sqlite3";
    config.key_manager.directory = config.data_dir / "keys";
    config.join_token_enabled = true;
    if (x509pop_ca) config.x509pop = server::X509PopConfig{.ca_bundle_paths = {*x509pop_ca}};
    auto server = server::Server::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::vector<spiffe::Certificate> ServerRoots() {
    return server_->ca().bundle()->bundle.x509_authorities();
  }
  ServerConnection Connection() {
    return ServerConnection{.target = "127.0.0.1:" + std::to_string(server_->port()),
                            .trust_domain = Td("example.org"),
                            .bundle = ServerRoots(),
                            .timeout = std::chrono::seconds(10)};
  }
  std::string NewToken() {
    std::string token = "token-" + std::to_string(++tokens_);
    server::JoinToken record{
        .token = token,
        .expires_at = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()) + 600};
    EXPECT_TRUE(server_->datastore().CreateJoinToken(record).ok());
    return token;
  }

  TempDir tmp_;
  std::filesystem::path dir_ = tmp_.path();
  std::unique_ptr<server::Server> server_;
  int tokens_ = 0;
};

TEST_F(NodeAttestationTest, JoinTokenAttestsOnceAndRenewalIssuesANewKeyAndSerial) {
  StartServer();
  std::string token = NewToken();
  auto state = AttestWithJoinToken(Connection(), token);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->svid.id.str(), "spiffe://example.org/spire/agent/join_token/" + token);
  EXPECT_FALSE(state->reattestable);
  ASSERT_EQ(state->bundle.size(), 1u);
  EXPECT_EQ(state->bundle[0].ToDer(), ServerRoots()[0].ToDer());

  auto again = AttestWithJoinToken(Connection(), token);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("attest agent: "));

  auto renewed = RenewAgentSvid(Connection(), *state);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->svid.id, state->svid.id);
  EXPECT_NE(renewed->svid.chain[0].SerialDecimal(), state->svid.chain[0].SerialDecimal());
  EXPECT_NE(renewed->svid.key.ToPkcs8Der().value(), state->svid.key.ToPkcs8Der().value());
  // The renewed SVID authenticates (its first use makes it current).
  EXPECT_TRUE(RenewAgentSvid(Connection(), *renewed).ok());
}

TEST_F(NodeAttestationTest, AServerOutsideTheBootstrapBundleIsRefused) {
  StartServer();
  ServerConnection connection = Connection();
  auto other = spiffe::testing::MakeRootCa(Td("example.org"), std::chrono::system_clock::now());
  connection.bundle = {other->cert};
  auto state = AttestWithJoinToken(connection, NewToken());
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kUnavailable) << state.status();
}

TEST_F(NodeAttestationTest, InsecureBootstrapSkipsTheChainButStillChecksTheServerId) {
  StartServer();
  ServerConnection connection = Connection();
  connection.bundle.clear();
  connection.insecure_bootstrap = true;
  auto state = AttestWithJoinToken(connection, NewToken());
  ASSERT_TRUE(state.ok()) << state.status();
  // The bundle the agent trusts from now on came from GetBundle.
  ASSERT_EQ(state->bundle.size(), 1u);
  EXPECT_EQ(state->bundle[0].ToDer(), ServerRoots()[0].ToDer());

  // A server that is not spiffe://<td>/spire/server is refused even without chain checks.
  connection.trust_domain = Td("other.org");
  const std::string token = NewToken();
  auto impostor = AttestWithJoinToken(connection, token);
  ASSERT_FALSE(impostor.ok());
  EXPECT_EQ(impostor.status().code(), absl::StatusCode::kUnavailable) << impostor.status();
  // ...before the token was sent: it is still usable.
  EXPECT_TRUE(AttestWithJoinToken(Connection(), token).ok());

  // Renewal never runs without verifying the server.
  auto renewed = RenewAgentSvid(connection, *state);
  ASSERT_FALSE(renewed.ok());
  EXPECT_EQ(renewed.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(NodeAttestationTest, RefusalsCarrySpireDeniedReasons) {
  StartServer();
  auto state = AttestWithJoinToken(Connection(), NewToken());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_TRUE(server_->datastore().DeleteAttestedNode(state->svid.id).ok());
  auto renewed = RenewAgentSvid(Connection(), *state);
  ASSERT_FALSE(renewed.ok());
  EXPECT_EQ(renewed.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(renewed.status().message()), HasSubstr("is not attested"));
  EXPECT_EQ(AgentDeniedReason(renewed.status()),
            spire::api::types::PermissionDeniedDetails::AGENT_NOT_ATTESTED);

  EXPECT_EQ(AgentDeniedReason(absl::PermissionDeniedError("no details")),
            spire::api::types::PermissionDeniedDetails::UNKNOWN);
  EXPECT_TRUE(StatusFromGrpc(grpc::Status::OK, "x").ok());
  absl::Status plain = StatusFromGrpc(grpc::Status(grpc::StatusCode::NOT_FOUND, "gone"), "get");
  EXPECT_EQ(plain.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(plain.message(), "get: gone");
}

TEST_F(NodeAttestationTest, X509PopAttestsWithTheNodeCertificateAndIsReattestable) {
  auto now = std::chrono::system_clock::now();
  auto node_ca = spiffe::testing::MakeRootCa(Td("nodes.example"), now).value();
  auto node = spiffe::testing::MakeLeaf(node_ca, Id("spiffe://nodes.example/host-1"), now).value();
  std::ofstream(dir_ / "ca.pem") << node_ca.cert.ToPem();
  std::ofstream(dir_ / "node.pem") << node.cert.ToPem();
  std::ofstream(dir_ / "node.key") << node.key.ToPkcs8Pem().value();
  StartServer(dir_ / "ca.pem");
  auto attestor = attestors::x509pop::NewAgentAttestor({.certificate_path = dir_ / "node.pem",
                                                        .private_key_path = dir_ / "node.key",
                                                        .intermediates_path = ""});
  ASSERT_TRUE(attestor.ok()) << attestor.status();
  auto state = AttestWithAttestor(Connection(), **attestor);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_THAT(state->svid.id.str(), HasSubstr("spiffe://example.org/spire/agent/x509pop/"));
  EXPECT_TRUE(state->reattestable);
  // Attesting again with the same node certificate is allowed (that is what reattestable means).
  EXPECT_TRUE(AttestWithAttestor(Connection(), **attestor).ok());
}

TEST_F(NodeAttestationTest, AnUnconfiguredAttestorIsAClearError) {
  StartServer();  // x509pop not configured
  TempDir pki;
  auto now = std::chrono::system_clock::now();
  auto ca = spiffe::testing::MakeRootCa(Td("nodes.example"), now).value();
  auto node = spiffe::testing::MakeLeaf(ca, Id("spiffe://nodes.example/h"), now).value();
  std::string cert = pki.Write("node.pem", node.cert.ToPem());
  std::string key = pki.Write("node.key", node.key.ToPkcs8Pem().value());
  auto attestor = attestors::x509pop::NewAgentAttestor(
      {.certificate_path = cert, .private_key_path = key, .intermediates_path = ""});
  ASSERT_TRUE(attestor.ok());
  auto state = AttestWithAttestor(Connection(), **attestor);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(state.status().message()), HasSubstr("could not find node attestor"));
}

}  // namespace
}  // namespace tessera::agent
