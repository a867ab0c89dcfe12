// The agent half on its own: configuration errors, file handling, and challenges it must refuse.
#include <string>

#include "attestors/x509pop/wire.h"
#include "attestors/x509pop/x509pop.h"
#include "attestors/x509pop/x509pop_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "spiffe/base64.h"

namespace tessera::attestors::x509pop {
namespace {

using spiffe::KeyType;
using spiffe::testing::Td;
using spiffe::testing::TempDir;
using ::testing::HasSubstr;
using testing::Must;
using ::testing::StartsWith;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = {.certificate_path = dir_.Write("node.pem", node_.cert.ToPem()),
               .private_key_path = dir_.Write("node.key", key_pem_)};
  }

  FakeClock clock_;
  TempDir dir_;
  spiffe::testing::Ca root_ = Must(spiffe::testing::MakeRootCa(Td("example.org"), clock_.Now()));
  spiffe::testing::Ca intermediate_ =
      Must(spiffe::testing::MakeIntermediateCa(root_, Td("example.org"), clock_.Now()));
  testing::Node node_ = Must(testing::MakeNode(intermediate_, KeyType::kEcP256));
  std::string key_pem_ = Must(node_.key.ToPkcs8Pem());
  AgentConfig config_;
};

TEST_F(AgentTest, ChainFromBothFilesLeafFirst) {
  // certificate_path may already hold intermediates; intermediates_path adds more after them.
  config_.certificate_path =
      dir_.Write("chain.pem", node_.cert.ToPem() + intermediate_.cert.ToPem());
  config_.intermediates_path = dir_.Write("more.pem", root_.cert.ToPem());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AgentNodeAttestor> agent, NewAgentAttestor(config_));
  ASSERT_OK_AND_ASSIGN(std::string payload, agent->Payload());
  ASSERT_OK_AND_ASSIGN(AttestationData data, DecodeAttestationData(payload));
  ASSERT_EQ(data.certificates.size(), 3u);
  EXPECT_EQ(data.certificates[0], node_.cert.ToDer());
  EXPECT_EQ(data.certificates[1], intermediate_.cert.ToDer());
  EXPECT_EQ(data.certificates[2], root_.cert.ToDer());
}

TEST_F(AgentTest, ConfigurationErrors) {
  EXPECT_EQ(Message(NewAgentAttestor({.private_key_path = config_.private_key_path}).status()),
            "x509pop: certificate_path is required");
  EXPECT_EQ(Message(NewAgentAttestor({.certificate_path = config_.certificate_path}).status()),
            "x509pop: private_key_path is required");

  AgentConfig missing = config_;
  missing.certificate_path = dir_.path() + "/nope.pem";
  EXPECT_THAT(Message(NewAgentAttestor(missing).status()),
              StartsWith("x509pop: load certificate " + missing.certificate_path + ": "));
  missing = config_;
  missing.private_key_path = dir_.path() + "/nope.key";
  EXPECT_THAT(Message(NewAgentAttestor(missing).status()),
              StartsWith("x509pop: load private key " + missing.private_key_path + ": "));
  missing = config_;
  missing.intermediates_path = dir_.path() + "/nope-int.pem";
  EXPECT_THAT(Message(NewAgentAttestor(missing).status()),
              StartsWith("x509pop: load intermediates " + missing.intermediates_path + ": "));

  AgentConfig garbage = config_;
  garbage.private_key_path = dir_.Write("garbage.key", "not a key");
  absl::Status s = NewAgentAttestor(garbage).status();
  EXPECT_THAT(Message(s), StartsWith("x509pop: load private key "));

  ASSERT_OK_AND_ASSIGN(spiffe::PrivateKey other, spiffe::PrivateKey::Generate(KeyType::kEcP256));
  AgentConfig mismatch = config_;
  mismatch.private_key_path = dir_.Write("other.key", *other.ToPkcs8Pem());
  EXPECT_THAT(Message(NewAgentAttestor(mismatch).status()), HasSubstr("does not match"));
}

TEST_F(AgentTest, PayloadFailsWhenFilesBreakAfterStart) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AgentNodeAttestor> agent, NewAgentAttestor(config_));
  ASSERT_TRUE(agent->Payload().ok());
  ASSERT_OK_AND_ASSIGN(spiffe::PrivateKey other, spiffe::PrivateKey::Generate(KeyType::kEcP256));
  dir_.Write("node.key", *other.ToPkcs8Pem());
  EXPECT_THAT(Message(agent->Payload().status()), HasSubstr("does not match"));
  // The failed Payload() leaves no attestation to answer for.
  EXPECT_EQ(agent
                ->RespondToChallenge(EncodeChallenge(
                    {.rsa_signature = std::nullopt,
                     .ecdsa_signature = SignatureChallenge{.nonce = std::string(32, 'c')}}))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(AgentTest, ChallengesItMustRefuse) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AgentNodeAttestor> agent, NewAgentAttestor(config_));
  std::string good =
      EncodeChallenge({.rsa_signature = std::nullopt,
                       .ecdsa_signature = SignatureChallenge{.nonce = std::string(32, 'c')}});
  EXPECT_EQ(agent->RespondToChallenge(good).status().code(),
            absl::StatusCode::kFailedPrecondition);  // no Payload() yet
  ASSERT_TRUE(agent->Payload().ok());
  EXPECT_TRUE(agent->RespondToChallenge(good).ok());

  absl::Status s = agent->RespondToChallenge("{not json").status();
  EXPECT_THAT(Message(s), StartsWith("x509pop: unable to unmarshal challenge: "));
  s = agent
          ->RespondToChallenge(
              EncodeChallenge({.rsa_signature = SignatureChallenge{.nonce = std::string(32, 'c')},
                               .ecdsa_signature = std::nullopt}))
          .status();
  EXPECT_EQ(Message(s),
            "x509pop: failed to calculate challenge response: expecting ECDSA "
            "challenge");
  s = agent
          ->RespondToChallenge(EncodeChallenge(
              {.rsa_signature = std::nullopt,
               .ecdsa_signature = SignatureChallenge{.nonce = std::string(31, 'c')}}))
          .status();
  EXPECT_EQ(Message(s),
            "x509pop: failed to calculate challenge response: invalid challenge "
            "nonce");
}

TEST_F(AgentTest, RsaAgentRefusesEcdsaChallenge) {
  ASSERT_OK_AND_ASSIGN(testing::Node rsa, testing::MakeNode(intermediate_, KeyType::kRsa2048));
  AgentConfig config = {.certificate_path = dir_.Write("rsa.pem", rsa.cert.ToPem()),
                        .private_key_path = dir_.Write("rsa.key", *rsa.key.ToPkcs8Pem())};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AgentNodeAttestor> agent, NewAgentAttestor(config));
  ASSERT_TRUE(agent->Payload().ok());
  absl::Status s = agent
                       ->RespondToChallenge(EncodeChallenge(
                           {.rsa_signature = std::nullopt,
                            .ecdsa_signature = SignatureChallenge{.nonce = std::string(32, 'c')}}))
                       .status();
  EXPECT_EQ(Message(s), "x509pop: failed to calculate challenge response: expecting RSA challenge");
}

// Keys in the older PEM forms SPIRE's agent also reads (PKCS#1 "RSA PRIVATE KEY", SEC1 "EC
// PRIVATE KEY"), written by the openssl CLI.
TEST_F(AgentTest, ReadsTraditionalKeyFormats) {
  std::string pkcs8 = config_.private_key_path;
  std::string sec1 = dir_.path() + "/sec1.key";
  ASSERT_TRUE(testing::OpenSsl("ec -in " + pkcs8 + " -out " + sec1).ok());
  config_.private_key_path = sec1;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AgentNodeAttestor> agent, NewAgentAttestor(config_));
  EXPECT_TRUE(agent->Payload().ok());

  ASSERT_OK_AND_ASSIGN(testing::Node rsa, testing::MakeNode(intermediate_, KeyType::kRsa2048));
  std::string rsa_pkcs8 = dir_.Write("rsa8.key", *rsa.key.ToPkcs8Pem());
  std::string pkcs1 = dir_.path() + "/rsa1.key";
  ASSERT_TRUE(testing::OpenSsl("rsa -traditional -in " + rsa_pkcs8 + " -out " + pkcs1).ok());
  AgentConfig config = {.certificate_path = dir_.Write("rsa.pem", rsa.cert.ToPem()),
                        .private_key_path = pkcs1};
  ASSERT_OK_AND_ASSIGN(agent, NewAgentAttestor(config));
  EXPECT_TRUE(agent->Payload().ok());
}

}  // namespace
}  // namespace tessera::attestors::x509pop
