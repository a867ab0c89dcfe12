// Both halves against each other, and each half against an independent implementation of the
// other (the openssl CLI signing or verifying, hand-written Go-style JSON), for every key type.
#include "attestors/x509pop/x509pop.h"

#include <openssl/ec.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

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
using testing::CliFingerprint;
using testing::CliSerial;
using ::testing::ElementsAre;
using testing::Must;
using testing::OpenSsl;
using ::testing::UnorderedElementsAreArray;
using Json = nlohmann::json;

std::string ReadBinary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> Keys(const Json& object) {
  std::set<std::string> keys;
  for (const auto& [k, v] : object.items()) keys.insert(k);
  return keys;
}

std::string B64(const Json& value) {
  EXPECT_TRUE(value.is_string()) << value.dump();
  if (!value.is_string()) return "";
  absl::StatusOr<std::string> bytes = spiffe::Base64Decode(value.get<std::string>());
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : "";
}

class X509PopTest : public ::testing::TestWithParam<KeyType> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(std::string key_pem, node_.key.ToPkcs8Pem());
    agent_config_ = {.certificate_path = dir_.Write("node.pem", node_.cert.ToPem()),
                     .private_key_path = dir_.Write("node.key", key_pem),
                     .intermediates_path = dir_.Write("int.pem", intermediate_.cert.ToPem())};
    server_config_.ca_bundle_paths = {dir_.Write("bundle.pem", root_.cert.ToPem())};
    ASSERT_OK_AND_ASSIGN(server_, NewServerAttestor(server_config_, clock_));
    ASSERT_OK_AND_ASSIGN(agent_, NewAgentAttestor(agent_config_));
  }

  bool IsRsa() const { return GetParam() == KeyType::kRsa2048; }
  std::string_view Alternative() const { return IsRsa() ? "rsa_signature" : "ecdsa_signature"; }
  std::string_view Other() const { return IsRsa() ? "ecdsa_signature" : "rsa_signature"; }

  // combined = SHA-256(challenge ‖ response), by the openssl CLI.
  std::string CliCombined(const std::string& challenge_nonce, const std::string& response_nonce) {
    std::string in = dir_.Write("nonces.bin", challenge_nonce + response_nonce);
    std::string out = dir_.path() + "/combined.bin";
    absl::StatusOr<std::string> r = OpenSsl("dgst -sha256 -binary -out " + out + " " + in);
    EXPECT_TRUE(r.ok()) << r.status();
    return out;
  }

  FakeClock clock_;
  TempDir dir_;
  spiffe::testing::Ca root_ = Must(
      spiffe::testing::MakeRootCa(Td("example.org"), clock_.Now(), KeyType::kEcP256, "node-root"));
  spiffe::testing::Ca intermediate_ =
      Must(spiffe::testing::MakeIntermediateCa(root_, Td("example.org"), clock_.Now(), "node-int"));
  testing::Node node_ = Must(testing::MakeNode(intermediate_, GetParam()));
  AgentConfig agent_config_;
  ServerConfig server_config_;
  std::unique_ptr<ServerNodeAttestor> server_;
  std::unique_ptr<AgentNodeAttestor> agent_;
};

INSTANTIATE_TEST_SUITE_P(KeyTypes, X509PopTest,
                         ::testing::Values(KeyType::kEcP256, KeyType::kEcP384, KeyType::kRsa2048));

TEST_P(X509PopTest, AgentAttestsToServer) {
  EXPECT_EQ(server_->type(), "x509pop");
  EXPECT_EQ(agent_->type(), "x509pop");
  std::unique_ptr<ServerNodeAttestation> conv = server_->Begin(Td("example.org"));
  ASSERT_OK_AND_ASSIGN(std::string payload, agent_->Payload());
  ASSERT_OK_AND_ASSIGN(NodeAttestationStep step, conv->Next(payload));
  ASSERT_TRUE(step.challenge.has_value());
  EXPECT_FALSE(step.result.has_value());
  ASSERT_OK_AND_ASSIGN(std::string response, agent_->RespondToChallenge(*step.challenge));
  ASSERT_OK_AND_ASSIGN(step, conv->Next(response));
  EXPECT_FALSE(step.challenge.has_value());
  ASSERT_TRUE(step.result.has_value());

  // The ID and selectors, computed independently.
  ASSERT_OK_AND_ASSIGN(std::string leaf_fp, CliFingerprint(dir_, node_.cert));
  ASSERT_OK_AND_ASSIGN(std::string int_fp, CliFingerprint(dir_, intermediate_.cert));
  ASSERT_OK_AND_ASSIGN(std::string root_fp, CliFingerprint(dir_, root_.cert));
  ASSERT_OK_AND_ASSIGN(std::string serial, CliSerial(dir_, node_.cert));
  EXPECT_EQ(leaf_fp.size(), 40u);
  EXPECT_EQ(step.result->agent_id.str(), "spiffe://example.org/spire/agent/x509pop/" + leaf_fp);
  EXPECT_THAT(step.result->selectors.Strings(),
              UnorderedElementsAreArray({
                  std::string("x509pop:subject:cn:node-1.example.org"),
                  "x509pop:ca:fingerprint:" + int_fp,
                  "x509pop:ca:fingerprint:" + root_fp,
                  "x509pop:serialnumber:" + serial,
                  std::string("x509pop:san:datacenter:us-east-1"),
              }));
  EXPECT_TRUE(step.result->can_reattest);
  // The conversation is over.
  EXPECT_EQ(conv->Next(response).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(X509PopTest, PayloadShape) {
  ASSERT_OK_AND_ASSIGN(std::string payload, agent_->Payload());
  Json doc = Json::parse(payload);
  EXPECT_EQ(Keys(doc), std::set<std::string>({"certificates"}));
  ASSERT_TRUE(doc["certificates"].is_array());
  ASSERT_EQ(doc["certificates"].size(), 2u);
  EXPECT_EQ(B64(doc["certificates"][0]), node_.cert.ToDer());
  EXPECT_EQ(B64(doc["certificates"][1]), intermediate_.cert.ToDer());
  // Go's json.Marshal spelling: no blanks.
  EXPECT_EQ(payload, "{\"certificates\":[\"" + spiffe::Base64Encode(node_.cert.ToDer()) + "\",\"" +
                         spiffe::Base64Encode(intermediate_.cert.ToDer()) + "\"]}");
}

TEST_P(X509PopTest, ChallengeAndResponseShapes) {
  std::unique_ptr<ServerNodeAttestation> conv = server_->Begin(Td("example.org"));
  ASSERT_OK_AND_ASSIGN(std::string payload, agent_->Payload());
  ASSERT_OK_AND_ASSIGN(NodeAttestationStep step, conv->Next(payload));
  ASSERT_TRUE(step.challenge.has_value());

  Json challenge = Json::parse(*step.challenge);
  EXPECT_EQ(Keys(challenge), std::set<std::string>({"rsa_signature", "ecdsa_signature"}));
  EXPECT_TRUE(challenge[std::string(Other())].is_null());
  const Json& c = challenge[std::string(Alternative())];
  ASSERT_TRUE(c.is_object());
  EXPECT_EQ(Keys(c), std::set<std::string>({"nonce"}));
  std::string challenge_nonce = B64(c["nonce"]);
  EXPECT_EQ(challenge_nonce.size(), 32u);
  EXPECT_TRUE(step.challenge->starts_with("{\"rsa_signature\":")) << *step.challenge;

  ASSERT_OK_AND_ASSIGN(std::string response_json, agent_->RespondToChallenge(*step.challenge));
  Json response = Json::parse(response_json);
  EXPECT_EQ(Keys(response), std::set<std::string>({"rsa_signature", "ecdsa_signature"}));
  EXPECT_TRUE(response[std::string(Other())].is_null());
  const Json& r = response[std::string(Alternative())];
  ASSERT_TRUE(r.is_object());
  std::string response_nonce = B64(r["nonce"]);
  EXPECT_EQ(response_nonce.size(), 32u);
  EXPECT_NE(response_nonce, challenge_nonce);
  std::string combined = CliCombined(challenge_nonce, response_nonce);
  std::string pub = dir_.Write("pub.pem", *node_.key.public_key().ToPem());

  if (IsRsa()) {
    EXPECT_EQ(Keys(r), std::set<std::string>({"nonce", "signature"}));
    std::string sig = B64(r["signature"]);
    EXPECT_EQ(sig.size(), 256u);
    std::string sig_path = dir_.Write("sig.bin", sig);
    std::string verify = "pkeyutl -verify -pubin -inkey " + pub + " -in " + combined +
                         " -sigfile " + sig_path +
                         " -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256"
                         " -pkeyopt rsa_mgf1_md:sha256 -pkeyopt rsa_pss_saltlen:";
    // Signed with the longest salt, as Go's rsa.SignPSS with nil options does.
    EXPECT_TRUE(OpenSsl(verify + "max").ok());
    EXPECT_TRUE(OpenSsl(verify + "auto").ok());
    EXPECT_FALSE(OpenSsl(verify + "digest").ok());
  } else {
    EXPECT_EQ(Keys(r), std::set<std::string>({"nonce", "r", "s"}));
    std::string rb = B64(r["r"]);
    std::string sb = B64(r["s"]);
    size_t field = GetParam() == KeyType::kEcP256 ? 32 : 48;
    ASSERT_FALSE(rb.empty());
    ASSERT_FALSE(sb.empty());
    EXPECT_LE(rb.size(), field);
    EXPECT_LE(sb.size(), field);
    // Minimal big-endian, as Go's big.Int.Bytes().
    EXPECT_NE(rb[0], '\0');
    EXPECT_NE(sb[0], '\0');
    // The openssl CLI verifies it (after re-encoding r, s as DER), treating the input as the
    // digest.
    spiffe::BignumPtr rn(BN_bin2bn(reinterpret_cast<const unsigned char*>(rb.data()),
                                   static_cast<int>(rb.size()), nullptr));
    spiffe::BignumPtr sn(BN_bin2bn(reinterpret_cast<const unsigned char*>(sb.data()),
                                   static_cast<int>(sb.size()), nullptr));
    ECDSA_SIG* sig = ECDSA_SIG_new();
    ASSERT_EQ(ECDSA_SIG_set0(sig, rn.release(), sn.release()), 1);
    unsigned char* der = nullptr;
    int len = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    ASSERT_GT(len, 0);
    std::string sig_path =
        dir_.Write("sig.der", std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len)));
    OPENSSL_free(der);
    absl::StatusOr<std::string> verified = OpenSsl("pkeyutl -verify -pubin -inkey " + pub +
                                                   " -in " + combined + " -sigfile " + sig_path);
    EXPECT_TRUE(verified.ok()) << verified.status();
  }
  ASSERT_OK_AND_ASSIGN(step, conv->Next(response_json));
  EXPECT_TRUE(step.result.has_value());
}

// The server against a response made without our code: the openssl CLI signs, the JSON is
// written by hand in Go's spelling but with member names in other cases, as Go's decoder
// accepts. The RSA signature uses a digest-length salt: the server must detect any salt length.
TEST_P(X509PopTest, ServerAcceptsIndependentGoStyleResponse) {
  std::unique_ptr<ServerNodeAttestation> conv = server_->Begin(Td("example.org"));
  std::string payload = "{\"Certificates\":[\"" + spiffe::Base64Encode(node_.cert.ToDer()) +
                        "\", \"" + spiffe::Base64Encode(intermediate_.cert.ToDer()) +
                        "\"], \"unknown\": {\"nested\": [1, null, \"x\"]}}";
  ASSERT_OK_AND_ASSIGN(NodeAttestationStep step, conv->Next(payload));
  ASSERT_TRUE(step.challenge.has_value());
  std::string challenge_nonce =
      B64(Json::parse(*step.challenge)[std::string(Alternative())]["nonce"]);
  std::string response_nonce(32, '\x5a');
  std::string combined = CliCombined(challenge_nonce, response_nonce);
  std::string key = agent_config_.private_key_path;
  std::string sig_path = dir_.path() + "/cli.sig";

  std::string response;
  if (IsRsa()) {
    ASSERT_TRUE(OpenSsl("pkeyutl -sign -inkey " + key + " -in " + combined + " -out " + sig_path +
                        " -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256"
                        " -pkeyopt rsa_mgf1_md:sha256 -pkeyopt rsa_pss_saltlen:digest")
                    .ok());
    response = "{\"RSA_Signature\":{\"NONCE\":\"" + spiffe::Base64Encode(response_nonce) +
               "\",\"Signature\":\"" + spiffe::Base64Encode(ReadBinary(sig_path)) +
               "\"},\"Ecdsa_Signature\":null}";
  } else {
    ASSERT_TRUE(
        OpenSsl("pkeyutl -sign -inkey " + key + " -in " + combined + " -out " + sig_path).ok());
    std::string der = ReadBinary(sig_path);
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    ASSERT_NE(sig, nullptr);
    auto bytes = [](const BIGNUM* n) {
      std::string out(static_cast<size_t>(BN_num_bytes(n)), '\0');
      BN_bn2bin(n, reinterpret_cast<unsigned char*>(out.data()));
      return out;
    };
    // A leading zero byte on r is harmless to Go's big.Int.SetBytes, so it must be here too.
    std::string r = std::string(1, '\0') + bytes(ECDSA_SIG_get0_r(sig));
    std::string s = bytes(ECDSA_SIG_get0_s(sig));
    ECDSA_SIG_free(sig);
    response = "{\"ECDSA_SIGNATURE\":{\"Nonce\":\"" + spiffe::Base64Encode(response_nonce) +
               "\",\"R\":\"" + spiffe::Base64Encode(r) + "\",\"s\":\"" + spiffe::Base64Encode(s) +
               "\"}}";
  }
  ASSERT_OK_AND_ASSIGN(step, conv->Next(response));
  ASSERT_TRUE(step.result.has_value());
  ASSERT_OK_AND_ASSIGN(std::string leaf_fp, CliFingerprint(dir_, node_.cert));
  EXPECT_EQ(step.result->agent_id.str(), "spiffe://example.org/spire/agent/x509pop/" + leaf_fp);
}

// Conversations are independent: each has its own nonce, and a response answers only its own.
TEST_P(X509PopTest, ResponseToAnotherConversationsNonceIsRejected) {
  std::unique_ptr<ServerNodeAttestation> a = server_->Begin(Td("example.org"));
  std::unique_ptr<ServerNodeAttestation> b = server_->Begin(Td("example.org"));
  ASSERT_OK_AND_ASSIGN(std::string payload, agent_->Payload());
  ASSERT_OK_AND_ASSIGN(NodeAttestationStep step_a, a->Next(payload));
  ASSERT_OK_AND_ASSIGN(NodeAttestationStep step_b, b->Next(payload));
  ASSERT_NE(*step_a.challenge, *step_b.challenge);
  ASSERT_OK_AND_ASSIGN(std::string response_a, agent_->RespondToChallenge(*step_a.challenge));
  absl::StatusOr<NodeAttestationStep> wrong = b->Next(response_a);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(std::string(wrong.status().message()),
            IsRsa() ? "challenge response verification failed: RSA signature verify failed"
                    : "challenge response verification failed: ECDSA signature verify failed");
  // b is finished: it never accepts another answer to its nonce.
  ASSERT_OK_AND_ASSIGN(std::string response_b, agent_->RespondToChallenge(*step_b.challenge));
  EXPECT_EQ(b->Next(response_b).status().code(), absl::StatusCode::kFailedPrecondition);
  // a still accepts its own.
  ASSERT_OK_AND_ASSIGN(NodeAttestationStep done, a->Next(response_a));
  EXPECT_TRUE(done.result.has_value());
}

TEST_P(X509PopTest, TamperedResponseIsRejected) {
  std::unique_ptr<ServerNodeAttestation> conv = server_->Begin(Td("example.org"));
  ASSERT_OK_AND_ASSIGN(std::string payload, agent_->Payload());
  ASSERT_OK_AND_ASSIGN(NodeAttestationStep step, conv->Next(payload));
  ASSERT_OK_AND_ASSIGN(std::string response_json, agent_->RespondToChallenge(*step.challenge));
  Json response = Json::parse(response_json);
  Json& r = response[std::string(Alternative())];
  std::string field = IsRsa() ? "signature" : "s";
  std::string bytes = B64(r[field]);
  bytes[bytes.size() / 2] ^= 0x01;
  r[field] = spiffe::Base64Encode(bytes);
  absl::StatusOr<NodeAttestationStep> result = conv->Next(response.dump());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(std::string(result.status().message()),
            IsRsa() ? "challenge response verification failed: RSA signature verify failed"
                    : "challenge response verification failed: ECDSA signature verify failed");
}

TEST_P(X509PopTest, ResponseFromAnotherKeyIsRejected) {
  ASSERT_OK_AND_ASSIGN(testing::Node impostor, testing::MakeNode(intermediate_, GetParam()));
  ASSERT_OK_AND_ASSIGN(std::string impostor_key, impostor.key.ToPkcs8Pem());
  std::unique_ptr<ServerNodeAttestation> conv = server_->Begin(Td("example.org"));
  // The genuine node's certificate is public; the impostor has only its own key.
  ASSERT_OK_AND_ASSIGN(std::string payload, agent_->Payload());
  ASSERT_OK_AND_ASSIGN(NodeAttestationStep step, conv->Next(payload));
  AgentConfig impostor_config = {
      .certificate_path = dir_.Write("impostor.pem", impostor.cert.ToPem()),
      .private_key_path = dir_.Write("impostor.key", impostor_key)};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AgentNodeAttestor> impostor_agent,
                       NewAgentAttestor(impostor_config));
  ASSERT_TRUE(impostor_agent->Payload().ok());
  ASSERT_OK_AND_ASSIGN(std::string response, impostor_agent->RespondToChallenge(*step.challenge));
  absl::StatusOr<NodeAttestationStep> result = conv->Next(response);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(result.status().message()),
              ::testing::StartsWith("challenge response verification failed: "));
}

TEST_P(X509PopTest, PayloadRereadsRotatedFiles) {
  ASSERT_OK_AND_ASSIGN(std::string first, agent_->Payload());
  ASSERT_OK_AND_ASSIGN(testing::Node renewed, testing::MakeNode(intermediate_, GetParam()));
  ASSERT_OK_AND_ASSIGN(std::string renewed_key, renewed.key.ToPkcs8Pem());
  dir_.Write("node.pem", renewed.cert.ToPem());
  dir_.Write("node.key", renewed_key);
  ASSERT_OK_AND_ASSIGN(std::string second, agent_->Payload());
  EXPECT_NE(first, second);
  EXPECT_EQ(B64(Json::parse(second)["certificates"][0]), renewed.cert.ToDer());

  // And the renewed node attests, with the renewed certificate's ID.
  std::unique_ptr<ServerNodeAttestation> conv = server_->Begin(Td("example.org"));
  ASSERT_OK_AND_ASSIGN(NodeAttestationStep step, conv->Next(second));
  ASSERT_OK_AND_ASSIGN(std::string response, agent_->RespondToChallenge(*step.challenge));
  ASSERT_OK_AND_ASSIGN(step, conv->Next(response));
  ASSERT_TRUE(step.result.has_value());
  ASSERT_OK_AND_ASSIGN(std::string fp, CliFingerprint(dir_, renewed.cert));
  EXPECT_EQ(step.result->agent_id.str(), "spiffe://example.org/spire/agent/x509pop/" + fp);
}

}  // namespace
}  // namespace tessera::attestors::x509pop
