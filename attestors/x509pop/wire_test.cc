#include "attestors/x509pop/wire.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::attestors::x509pop {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(WireTest, EncodesGoShapes) {
  EXPECT_EQ(EncodeAttestationData({.certificates = {"ab", std::string("\0\xff", 2)}}),
            "{\"certificates\":[\"YWI=\",\"AP8=\"]}");
  EXPECT_EQ(EncodeAttestationData({}), "{\"certificates\":[]}");
  EXPECT_EQ(EncodeChallenge({.rsa_signature = std::nullopt,
                             .ecdsa_signature = SignatureChallenge{.nonce = "abc"}}),
            "{\"rsa_signature\":null,\"ecdsa_signature\":{\"nonce\":\"YWJj\"}}");
  EXPECT_EQ(EncodeChallenge({.rsa_signature = SignatureChallenge{.nonce = "abcd"},
                             .ecdsa_signature = std::nullopt}),
            "{\"rsa_signature\":{\"nonce\":\"YWJjZA==\"},\"ecdsa_signature\":null}");
  EXPECT_EQ(
      EncodeResponse({.rsa_signature = std::nullopt,
                      .ecdsa_signature = EcdsaSignatureResponse{.nonce = "n", .r = "r", .s = "s"}}),
      "{\"rsa_signature\":null,\"ecdsa_signature\":{\"nonce\":\"bg==\",\"r\":\"cg==\","
      "\"s\":\"cw==\"}}");
  EXPECT_EQ(EncodeResponse({.rsa_signature = RsaSignatureResponse{.nonce = "n", .signature = "x"},
                            .ecdsa_signature = std::nullopt}),
            "{\"rsa_signature\":{\"nonce\":\"bg==\",\"signature\":\"eA==\"},"
            "\"ecdsa_signature\":null}");
}

TEST(WireTest, RoundTrips) {
  Response r{.rsa_signature = std::nullopt,
             .ecdsa_signature = EcdsaSignatureResponse{
                 .nonce = std::string(32, '\x01'), .r = "\x7f\x80", .s = std::string(48, 'z')}};
  ASSERT_TRUE(DecodeResponse(EncodeResponse(r)).ok());
  Response back = *DecodeResponse(EncodeResponse(r));
  EXPECT_FALSE(back.rsa_signature.has_value());
  ASSERT_TRUE(back.ecdsa_signature.has_value());
  EXPECT_EQ(back.ecdsa_signature->nonce, r.ecdsa_signature->nonce);
  EXPECT_EQ(back.ecdsa_signature->r, r.ecdsa_signature->r);
  EXPECT_EQ(back.ecdsa_signature->s, r.ecdsa_signature->s);
}

// Go's encoding/json matches member names case-insensitively, folding "ſ" (U+017F) onto "s" and
// "K" (U+212A) onto "k", and accepts missing members and null.
TEST(WireTest, DecodesLikeGo) {
  auto data = DecodeAttestationData("{\"CERTIFICATES\":[\"YWI=\",null]}");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->certificates, ElementsAre("ab", ""));
  data = DecodeAttestationData("{\"certificate\xC5\xBF\":[\"YWI=\"]}");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->certificates, ElementsAre("ab"));
  data = DecodeAttestationData("{\"certificatez\":[\"YWI=\"]}");
  ASSERT_TRUE(data.ok());
  EXPECT_TRUE(data->certificates.empty());
  data = DecodeAttestationData(" null ");
  ASSERT_TRUE(data.ok());
  EXPECT_TRUE(data->certificates.empty());

  auto challenge = DecodeChallenge("{\"Ecdsa_Signature\":{\"NONCE\":\"YWJj\"},\"extra\":[{}]}");
  ASSERT_TRUE(challenge.ok()) << challenge.status();
  EXPECT_FALSE(challenge->rsa_signature.has_value());
  ASSERT_TRUE(challenge->ecdsa_signature.has_value());
  EXPECT_EQ(challenge->ecdsa_signature->nonce, "abc");
  challenge = DecodeChallenge("{\"rsa_signature\":{}}");
  ASSERT_TRUE(challenge.ok());
  ASSERT_TRUE(challenge->rsa_signature.has_value());
  EXPECT_EQ(challenge->rsa_signature->nonce, "");

  auto response = DecodeResponse(
      "{\"RSA_SIGNATURE\":{\"Nonce\":\"YQ==\",\"SIGNATURE\":\"Yg==\"},\"ECDSA_signature\":null}");
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_TRUE(response->rsa_signature.has_value());
  EXPECT_EQ(response->rsa_signature->nonce, "a");
  EXPECT_EQ(response->rsa_signature->signature, "b");
  EXPECT_FALSE(response->ecdsa_signature.has_value());
  response = DecodeResponse("{\"ecdsa_signature\":{\"R\":\"YQ==\",\"\xC5\xBF\":\"Yg==\"}}");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->ecdsa_signature->r, "a");
  EXPECT_EQ(response->ecdsa_signature->s, "b");
  EXPECT_EQ(response->ecdsa_signature->nonce, "");
}

TEST(WireTest, RejectsMalformedDocuments) {
  struct Case {
    std::string json;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"", "invalid JSON"},
           {"{", "invalid JSON"},
           {"{} {}", "invalid JSON"},
           {"[]", "want a JSON object or null, got array"},
           {"\"certificates\"", "want a JSON object or null, got string"},
           {"{\"certificates\":\"YWI=\"}",
            "field \"certificates\": want an array or null, got "
            "string"},
           {"{\"certificates\":[true]}", "want a base64 string, got boolean"},
           {"{\"certificates\":[\"YWI\"]}", "field \"certificates\""},  // no padding
           {"{\"certificates\":[\"YW I=\"]}", "field \"certificates\""},
           {"{\"certificates\":[\"YW-_\"]}", "field \"certificates\""},  // URL alphabet
           {"{\"certificates\":[],\"Certificates\":[]}", "more than one member"},
           {"{\"certificates\":[],\"certificates\":[]}", "duplicate member"},
           {std::string(40, '[') + std::string(40, ']'), "nesting"},
           {std::string(kMaxDocumentBytes + 1, ' '), "larger than"},
       }) {
    absl::StatusOr<AttestationData> data = DecodeAttestationData(c.json);
    ASSERT_FALSE(data.ok()) << c.json.substr(0, 80);
    EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(data.status()), HasSubstr(c.error)) << c.json.substr(0, 80);
  }
  // Response-only fields are ignored when the same text is read as a challenge.
  struct ResponseCase {
    std::string json;
    bool valid_challenge;
  };
  for (const ResponseCase& c : std::vector<ResponseCase>{
           {"{\"ecdsa_signature\":[]}", false},
           {"{\"rsa_signature\":1}", false},
           {"{\"ecdsa_signature\":{\"r\":{}}}", true},
           {"{\"rsa_signature\":{\"signature\":\"@\"}}", true},
       }) {
    EXPECT_EQ(DecodeResponse(c.json).status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_EQ(DecodeChallenge(c.json).ok(), c.valid_challenge) << c.json;
  }
  absl::StatusOr<Response> r = DecodeResponse("{\"ecdsa_signature\":{\"s\":5}}");
  EXPECT_THAT(Message(r.status()), HasSubstr("field \"ecdsa_signature\": field \"s\": want a "
                                             "base64 string, got number"));
}

}  // namespace
}  // namespace tessera::attestors::x509pop
