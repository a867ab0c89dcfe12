// The server half's checks, each failing with SPIRE's code and message, and its configuration.
#include <string>
#include <vector>

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
using ::testing::UnorderedElementsAre;
using Json = nlohmann::json;

std::string Payload(const std::vector<spiffe::Certificate>& chain) {
  std::string out = "{\"certificates\":[";
  for (size_t i = 0; i < chain.size(); ++i) {
    if (i > 0) out += ",";
    out += "\"" + spiffe::Base64Encode(chain[i].ToDer()) + "\"";
  }
  return out + "]}";
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bundle_ = dir_.Write("bundle.pem", root_.cert.ToPem());
    ASSERT_OK_AND_ASSIGN(server_, NewServerAttestor({.ca_bundle_paths = {bundle_}}, clock_));
  }

  // The status of the payload step for `payload`.
  absl::Status PayloadStatus(std::string_view payload) {
    std::unique_ptr<ServerNodeAttestation> conv = server_->Begin(Td("example.org"));
    absl::StatusOr<NodeAttestationStep> step = conv->Next(payload);
    if (step.ok()) {
      EXPECT_TRUE(step->challenge.has_value());
      // Nothing more is accepted after a failure; after success the response is awaited.
      return absl::OkStatus();
    }
    EXPECT_EQ(conv->Next(payload).status().code(), absl::StatusCode::kFailedPrecondition);
    return step.status();
  }

  // The result for `node` signed by `issuer` (chain: node + intermediates).
  absl::StatusOr<NodeAttestationResult> Attest(const testing::Node& node,
                                               std::vector<spiffe::Certificate> intermediates) {
    std::string key_pem = *node.key.ToPkcs8Pem();
    std::string chain = node.cert.ToPem();
    for (const auto& c : intermediates) chain += c.ToPem();
    AgentConfig config{.certificate_path = dir_.Write("n.pem", chain),
                       .private_key_path = dir_.Write("n.key", key_pem)};
    ASSIGN_OR_RETURN(std::unique_ptr<AgentNodeAttestor> agent, NewAgentAttestor(config));
    std::unique_ptr<ServerNodeAttestation> conv = server_->Begin(Td("example.org"));
    ASSIGN_OR_RETURN(std::string payload, agent->Payload());
    ASSIGN_OR_RETURN(NodeAttestationStep step, conv->Next(payload));
    ASSIGN_OR_RETURN(std::string response, agent->RespondToChallenge(*step.challenge));
    ASSIGN_OR_RETURN(step, conv->Next(response));
    return *step.result;
  }

  FakeClock clock_;
  TempDir dir_;
  spiffe::testing::Ca root_ = Must(spiffe::testing::MakeRootCa(Td("example.org"), clock_.Now()));
  spiffe::testing::Ca intermediate_ =
      Must(spiffe::testing::MakeIntermediateCa(root_, Td("example.org"), clock_.Now()));
  testing::Node node_ = Must(testing::MakeNode(intermediate_, KeyType::kEcP256));
  std::string bundle_;
  std::unique_ptr<ServerNodeAttestor> server_;
};

TEST_F(ServerTest, ValidPayloadGetsChallenge) {
  EXPECT_TRUE(PayloadStatus(Payload({node_.cert, intermediate_.cert})).ok());
}

TEST_F(ServerTest, GarbageJson) {
  for (std::string_view bad :
       {"", "not json", "{", "[]", "\"x\"", "42", "{\"certificates\":1}", "{\"certificates\":{}}",
        "{\"certificates\":[1]}", "{\"certificates\":[\"@@@@\"]}", "{\"certificates\":[\"QQ\"]}",
        "{\"certificates\":[],\"CERTIFICATES\":[]}"}) {
    absl::Status s = PayloadStatus(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(Message(s), StartsWith("failed to unmarshal data: ")) << bad;
  }
}

TEST_F(ServerTest, NoCertificate) {
  for (std::string_view empty :
       {"{}", "null", "{\"certificates\":null}", "{\"certificates\":[]}", "{\"other\":[1]}"}) {
    absl::Status s = PayloadStatus(empty);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << empty;
    EXPECT_EQ(Message(s), "no certificate to attest") << empty;
  }
}

TEST_F(ServerTest, TooManyIntermediates) {
  std::vector<spiffe::Certificate> chain = {node_.cert};
  for (int i = 0; i < 4; ++i) chain.push_back(intermediate_.cert);
  EXPECT_TRUE(PayloadStatus(Payload(chain)).ok());  // four is the default limit
  chain.push_back(intermediate_.cert);
  absl::Status s = PayloadStatus(Payload(chain));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(s), "too many intermediate certificates");

  ASSERT_OK_AND_ASSIGN(
      server_, NewServerAttestor({.ca_bundle_paths = {bundle_}, .max_intermediates = 0}, clock_));
  s = PayloadStatus(Payload({node_.cert, intermediate_.cert}));
  EXPECT_EQ(Message(s), "too many intermediate certificates");
}

TEST_F(ServerTest, UnparseableCertificates) {
  std::string junk = spiffe::Base64Encode("not a certificate");
  absl::Status s = PayloadStatus("{\"certificates\":[\"" + junk + "\"]}");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), StartsWith("unable to parse leaf certificate: "));
  s = PayloadStatus("{\"certificates\":[null]}");
  EXPECT_THAT(Message(s), StartsWith("unable to parse leaf certificate: "));
  s = PayloadStatus("{\"certificates\":[\"" + spiffe::Base64Encode(node_.cert.ToDer()) + "\",\"" +
                    junk + "\"]}");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), StartsWith("unable to parse intermediate certificate 0: "));
  // Trailing bytes after the DER are not a certificate either (Go: "x509: trailing data").
  s = PayloadStatus("{\"certificates\":[\"" + spiffe::Base64Encode(node_.cert.ToDer() + "x") +
                    "\"]}");
  EXPECT_THAT(Message(s), StartsWith("unable to parse leaf certificate: "));
}

TEST_F(ServerTest, OversizedRsaKey) {
  ASSERT_OK_AND_ASSIGN(spiffe::PublicKey huge, testing::HugeRsaPublicKey(8200));
  ASSERT_OK_AND_ASSIGN(spiffe::Certificate cert,
                       spiffe::testing::Craft(testing::NodeOptions(), huge, intermediate_));
  absl::Status s = PayloadStatus(Payload({cert, intermediate_.cert}));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(s),
            "unable to parse leaf certificate: RSA key of 8200 bits is larger than 8192");
}

TEST_F(ServerTest, UntrustedChain) {
  ASSERT_OK_AND_ASSIGN(spiffe::testing::Ca other_root,
                       spiffe::testing::MakeRootCa(Td("example.org"), clock_.Now()));
  ASSERT_OK_AND_ASSIGN(testing::Node stranger, testing::MakeNode(other_root, KeyType::kEcP256));
  absl::Status s = PayloadStatus(Payload({stranger.cert}));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(s), StartsWith("certificate verification failed: "));
  // The intermediate is needed to reach the root.
  s = PayloadStatus(Payload({node_.cert}));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(s), StartsWith("certificate verification failed: "));
}

TEST_F(ServerTest, ExpiredAndNotYetValid) {
  clock_.Advance(std::chrono::hours(25));
  absl::Status s = PayloadStatus(Payload({node_.cert, intermediate_.cert}));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(s), StartsWith("certificate verification failed: "));
  EXPECT_THAT(Message(s), HasSubstr("expired"));
  clock_.Advance(-std::chrono::hours(27));
  s = PayloadStatus(Payload({node_.cert, intermediate_.cert}));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(s), HasSubstr("not yet valid"));
}

TEST_F(ServerTest, KeyUsageMustAllowDigitalSignature) {
  for (std::string ku : {"critical,keyEncipherment", ""}) {
    spiffe::testing::CraftOptions opts = testing::NodeOptions();
    opts.key_usage = ku;
    ASSERT_OK_AND_ASSIGN(testing::Node node,
                         testing::MakeNode(intermediate_, KeyType::kEcP256, opts));
    absl::Status s = PayloadStatus(Payload({node.cert, intermediate_.cert}));
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << ku;
    EXPECT_EQ(Message(s),
              "unable to generate challenge: certificate not intended for digital signature use")
        << ku;
  }
}

TEST_F(ServerTest, UnsupportedKeyType) {
  ASSERT_OK_AND_ASSIGN(spiffe::PublicKey ed, testing::Ed25519PublicKey());
  ASSERT_OK_AND_ASSIGN(spiffe::Certificate cert,
                       spiffe::testing::Craft(testing::NodeOptions(), ed, intermediate_));
  absl::Status s = PayloadStatus(Payload({cert, intermediate_.cert}));
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Message(s), "unable to generate challenge: unsupported public key type ED25519");
}

class ResponseTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    Restart();
  }

  // A new conversation, waiting for the response to its challenge.
  void Restart() {
    conv_ = server_->Begin(Td("example.org"));
    ASSERT_OK_AND_ASSIGN(NodeAttestationStep step,
                         conv_->Next(Payload({node_.cert, intermediate_.cert})));
    challenge_ = Json::parse(*step.challenge);
  }

  absl::Status ResponseStatus(std::string_view response) {
    absl::StatusOr<NodeAttestationStep> step = conv_->Next(response);
    return step.status();
  }

  std::unique_ptr<ServerNodeAttestation> conv_;
  Json challenge_;
};

TEST_F(ResponseTest, GarbageJson) {
  absl::Status s = ResponseStatus("{\"ecdsa_signature\":");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), StartsWith("unable to unmarshal challenge response: "));
  // Failed for good.
  EXPECT_EQ(ResponseStatus("{}").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ResponseTest, WrongTypes) {
  for (std::string_view bad :
       {"[]", "{\"ecdsa_signature\":\"x\"}", "{\"ecdsa_signature\":{\"r\":7}}",
        "{\"ecdsa_signature\":{\"nonce\":\"not base64!\"}}"}) {
    Restart();
    absl::Status s = ResponseStatus(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(Message(s), StartsWith("unable to unmarshal challenge response: ")) << bad;
  }
}

TEST_F(ResponseTest, MissingOrWrongAlternative) {
  for (std::string_view bad :
       {"{}", "null", "{\"ecdsa_signature\":null,\"rsa_signature\":{\"nonce\":\"\"}}"}) {
    Restart();
    absl::Status s = ResponseStatus(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << bad;
    EXPECT_EQ(Message(s), "challenge response verification failed: expecting ECDSA response")
        << bad;
  }
}

TEST_F(ResponseTest, WrongNonceSize) {
  std::string sig = spiffe::Base64Encode(std::string(32, '\1'));
  for (size_t size : {0, 31, 33}) {
    Restart();
    std::string nonce = spiffe::Base64Encode(std::string(size, 'n'));
    absl::Status s = ResponseStatus("{\"ecdsa_signature\":{\"nonce\":\"" + nonce + "\",\"r\":\"" +
                                    sig + "\",\"s\":\"" + sig + "\"}}");
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(Message(s), "challenge response verification failed: invalid response nonce");
  }
}

TEST_F(ResponseTest, ForgedSignatureValues) {
  std::string nonce = spiffe::Base64Encode(std::string(32, 'n'));
  // Zero, out-of-range and oversized r/s never verify and never crash.
  for (std::string rs :
       {std::string(), std::string(1, '\0'), std::string(32, '\xff'), std::string(4096, '\x7f')}) {
    Restart();
    std::string b = spiffe::Base64Encode(rs);
    absl::Status s = ResponseStatus("{\"ecdsa_signature\":{\"nonce\":\"" + nonce + "\",\"r\":\"" +
                                    b + "\",\"s\":\"" + b + "\"}}");
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(Message(s), "challenge response verification failed: ECDSA signature verify failed");
  }
}

TEST_F(ServerTest, SelectorsWithoutCnAndWithForeignSans) {
  spiffe::testing::CraftOptions opts = testing::NodeOptions();
  opts.subject_cn = "";
  opts.san =
      "URI:x509pop://example.org/rack/r1/slot/2,URI:x509pop://other.org/rack/r9,"
      "URI:spiffe://example.org/x,URI:X509POP://example.org/zone/a,URI:x509pop://example.org/"
      "nokey,URI:x509pop://example.org//v,URI:x509pop://example.org/k/";
  ASSERT_OK_AND_ASSIGN(testing::Node node, testing::MakeNode(root_, KeyType::kEcP256, opts));
  ASSERT_OK_AND_ASSIGN(NodeAttestationResult result, Attest(node, {}));
  ASSERT_OK_AND_ASSIGN(std::string root_fp, testing::CliFingerprint(dir_, root_.cert));
  ASSERT_OK_AND_ASSIGN(std::string serial, testing::CliSerial(dir_, node.cert));
  EXPECT_THAT(
      result.selectors.Strings(),
      UnorderedElementsAre("x509pop:ca:fingerprint:" + root_fp, "x509pop:serialnumber:" + serial,
                           "x509pop:san:rack:r1/slot/2", "x509pop:san:zone:a"));
}

TEST_F(ServerTest, IntermediateInBundleIsAnAnchor) {
  // As with Go's root pool, a bundle certificate need not be self-signed.
  std::string int_bundle = dir_.Write("int-bundle.pem", intermediate_.cert.ToPem());
  ASSERT_OK_AND_ASSIGN(server_, NewServerAttestor({.ca_bundle_paths = {int_bundle}}, clock_));
  ASSERT_OK_AND_ASSIGN(NodeAttestationResult result, Attest(node_, {}));
  ASSERT_OK_AND_ASSIGN(std::string int_fp, testing::CliFingerprint(dir_, intermediate_.cert));
  EXPECT_TRUE(
      result.selectors.Contains(*spiffe::Selector::Parse("x509pop:ca:fingerprint:" + int_fp)));
  EXPECT_EQ(result.selectors.size(), 4u);  // cn, one fingerprint, serial, san
}

TEST_F(ServerTest, SeveralBundleFiles) {
  ASSERT_OK_AND_ASSIGN(spiffe::testing::Ca other_root,
                       spiffe::testing::MakeRootCa(Td("example.org"), clock_.Now()));
  ASSERT_OK_AND_ASSIGN(testing::Node other_node, testing::MakeNode(other_root, KeyType::kEcP384));
  std::string other_bundle = dir_.Write("other.pem", other_root.cert.ToPem());
  ASSERT_OK_AND_ASSIGN(server_,
                       NewServerAttestor({.ca_bundle_paths = {bundle_, other_bundle}}, clock_));
  EXPECT_TRUE(Attest(node_, {intermediate_.cert}).ok());
  EXPECT_TRUE(Attest(other_node, {}).ok());
}

TEST(ServerConfigTest, Errors) {
  TempDir dir;
  FakeClock clock;
  auto code_and_message = [&](const ServerConfig& config) {
    absl::StatusOr<std::unique_ptr<ServerNodeAttestor>> a = NewServerAttestor(config, clock);
    EXPECT_FALSE(a.ok());
    return std::make_pair(a.status().code(), Message(a.status()));
  };
  EXPECT_EQ(code_and_message({}).second, "x509pop: ca_bundle_paths is required");
  EXPECT_THAT(code_and_message({.ca_bundle_paths = {dir.path() + "/missing.pem"}}).second,
              StartsWith("x509pop: load CA bundle " + dir.path() + "/missing.pem: "));
  std::string empty = dir.Write("empty.pem", "");
  EXPECT_THAT(code_and_message({.ca_bundle_paths = {empty}}).second,
              StartsWith("x509pop: load CA bundle " + empty + ": "));
  std::string junk = dir.Write("junk.pem",
                               "-----BEGIN CERTIFICATE-----\nAAAA\n-----END "
                               "CERTIFICATE-----\n");
  EXPECT_THAT(code_and_message({.ca_bundle_paths = {junk}}).second,
              StartsWith("x509pop: load CA bundle " + junk + ": "));
  ASSERT_OK_AND_ASSIGN(spiffe::testing::Ca root,
                       spiffe::testing::MakeRootCa(Td("example.org"), clock.Now()));
  std::string good = dir.Write("good.pem", root.cert.ToPem());
  EXPECT_THAT(code_and_message({.ca_bundle_paths = {good, junk}}).second,
              StartsWith("x509pop: load CA bundle " + junk));
  EXPECT_EQ(code_and_message({.ca_bundle_paths = {good}, .max_intermediates = -1}).second,
            "x509pop: max_intermediates must not be negative");
  EXPECT_THAT(code_and_message({.ca_bundle_paths = {good}, .mode = "spiffe"}).second,
              HasSubstr("mode \"spiffe\" is not supported"));
  EXPECT_THAT(
      code_and_message({.ca_bundle_paths = {good}, .agent_path_template = "/cn/{{ .Subject }}"})
          .second,
      HasSubstr("agent_path_template"));
  // SPIRE's default template, however spaced, is what we implement.
  EXPECT_TRUE(NewServerAttestor({.ca_bundle_paths = {good},
                                 .agent_path_template = "{{ .PluginName}}/{{ .Fingerprint }}"},
                                clock)
                  .ok());
  EXPECT_TRUE(NewServerAttestor({.ca_bundle_paths = {good},
                                 .agent_path_template = "{{.PluginName}}/{{.Fingerprint}}"},
                                clock)
                  .ok());
}

}  // namespace
}  // namespace tessera::attestors::x509pop
