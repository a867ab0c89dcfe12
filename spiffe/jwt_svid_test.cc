#include "spiffe/jwt_svid.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/base64.h"
#include "spiffe/openssl.h"
#include "spiffe/x509_test_util.h"

namespace tessera::spiffe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;
using std::chrono::seconds;
using TimePoint = std::chrono::system_clock::time_point;

const TimePoint kNow = std::chrono::system_clock::from_time_t(1'800'000'000);

std::string Message(const absl::Status& s) { return std::string(s.message()); }

SpiffeId Id(std::string_view s) { return *SpiffeId::Parse(s); }
TrustDomain Td(std::string_view s) { return *TrustDomain::Parse(s); }

PrivateKey GenerateCurve(const char* curve) {
  EvpPkeyPtr raw(EVP_EC_gen(curve));
  return PrivateKey::FromEvp(raw.get());
}

// Keys are slow to make under sanitizers: one of each for the whole suite.
struct Keys {
  PrivateKey p256 = *PrivateKey::Generate(KeyType::kEcP256);
  PrivateKey p384 = *PrivateKey::Generate(KeyType::kEcP384);
  PrivateKey p521 = GenerateCurve("P-521");
  PrivateKey rsa = *PrivateKey::Generate(KeyType::kRsa2048);
  PrivateKey other_p256 = *PrivateKey::Generate(KeyType::kEcP256);
};

const Keys& K() {
  static const Keys* keys = new Keys();
  return *keys;
}

std::vector<std::string> Parts(const std::string& token) { return absl::StrSplit(token, '.'); }

std::string EcdsaDerToRaw(const std::string& der, size_t size) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  const BIGNUM* r;
  const BIGNUM* s;
  ECDSA_SIG_get0(sig, &r, &s);
  std::string raw(2 * size, '\0');
  BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(size));
  BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + size, static_cast<int>(size));
  ECDSA_SIG_free(sig);
  return raw;
}

// Builds a token from raw header and payload text, signed correctly for `alg` with `key`, so a
// test can show that a rule, not the signature, rejects it.
std::string Craft(const std::string& header, const std::string& payload, const PrivateKey& key,
                  std::string_view alg = "ES256") {
  std::string input = Base64UrlEncode(header) + "." + Base64UrlEncode(payload);
  Digest digest = Digest::kSha256;
  if (alg.ends_with("384")) digest = Digest::kSha384;
  if (alg.ends_with("512")) digest = Digest::kSha512;
  RsaPadding padding = alg.starts_with("PS") ? RsaPadding::kPss : RsaPadding::kPkcs1v15;
  std::string sig = *key.Sign(input, digest, padding);
  if (alg.starts_with("ES")) {
    sig = EcdsaDerToRaw(sig, alg == "ES256" ? 32 : alg == "ES384" ? 48 : 66);
  }
  return input + "." + Base64UrlEncode(sig);
}

std::string Craft(const Json& header, const Json& payload, const PrivateKey& key,
                  std::string_view alg = "ES256") {
  return Craft(header.dump(), payload.dump(), key, alg);
}

Json Header(std::string_view alg = "ES256", std::string_view kid = "k1") {
  return {{"alg", alg}, {"kid", kid}, {"typ", "JWT"}};
}

Json Payload() {
  return {{"sub", "spiffe://example.org/workload"},
          {"aud", "svc"},
          {"exp", 1'800'000'300},
          {"iat", 1'800'000'000}};
}

class JwtSvidTest : public ::testing::Test {
 protected:
  JwtSvidTest() {
    Bundle example(Td("example.org"));
    EXPECT_TRUE(example.AddJwtAuthority("k1", K().p256.public_key()).ok());
    EXPECT_TRUE(example.AddJwtAuthority("k384", K().p384.public_key()).ok());
    EXPECT_TRUE(example.AddJwtAuthority("k521", K().p521.public_key()).ok());
    EXPECT_TRUE(example.AddJwtAuthority("rsa", K().rsa.public_key()).ok());
    bundles_.Put(example);
    // Another trust domain that reuses the key ID "k1" for a different key.
    Bundle other(Td("other.org"));
    EXPECT_TRUE(other.AddJwtAuthority("k1", K().other_p256.public_key()).ok());
    bundles_.Put(other);
  }

  JwtSvidClaims Claims() const {
    return JwtSvidClaims{.subject = Id("spiffe://example.org/workload"),
                         .audience = {"svc"},
                         .expiry = kNow + seconds(300),
                         .issued_at = kNow};
  }

  absl::StatusOr<JwtSvid> Validate(const std::string& token,
                                   std::vector<std::string> audience = {"svc"},
                                   TimePoint now = kNow) const {
    return ParseAndValidateJwtSvid(token, bundles_, audience, now);
  }

  void ExpectRejected(const std::string& token, const std::string& error,
                      std::vector<std::string> audience = {"svc"}, TimePoint now = kNow) const {
    auto result = Validate(token, audience, now);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << error;
    EXPECT_THAT(Message(result.status()), HasSubstr(error));
  }

  BundleSet bundles_;
};

struct AlgCase {
  JwtAlgorithm alg;
  const PrivateKey* key;
  std::string kid;
  size_t signature_size;
};

TEST_F(JwtSvidTest, SignsAndValidatesEveryAlgorithm) {
  const AlgCase cases[] = {
      {JwtAlgorithm::kEs256, &K().p256, "k1", 64},    {JwtAlgorithm::kEs384, &K().p384, "k384", 96},
      {JwtAlgorithm::kEs512, &K().p521, "k521", 132}, {JwtAlgorithm::kRs256, &K().rsa, "rsa", 256},
      {JwtAlgorithm::kRs384, &K().rsa, "rsa", 256},   {JwtAlgorithm::kRs512, &K().rsa, "rsa", 256},
      {JwtAlgorithm::kPs256, &K().rsa, "rsa", 256},   {JwtAlgorithm::kPs384, &K().rsa, "rsa", 256},
      {JwtAlgorithm::kPs512, &K().rsa, "rsa", 256},
  };
  for (const AlgCase& c : cases) {
    std::string name(JwtAlgorithmName(c.alg));
    auto token = SignJwtSvid(Claims(), *c.key, c.kid, c.alg);
    ASSERT_TRUE(token.ok()) << name << ": " << token.status();
    auto parts = Parts(*token);
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(*Base64UrlDecode(parts[0]),
              absl::StrCat(R"({"alg":")", name, R"(","kid":")", c.kid, R"(","typ":"JWT"})"));
    EXPECT_EQ(Base64UrlDecode(parts[2])->size(), c.signature_size) << name;

    auto svid = Validate(*token);
    ASSERT_TRUE(svid.ok()) << name << ": " << svid.status();
    EXPECT_EQ(svid->subject, Id("spiffe://example.org/workload"));
    EXPECT_THAT(svid->audience, ElementsAre("svc"));
    EXPECT_EQ(svid->expiry, kNow + seconds(300));
    EXPECT_EQ(svid->algorithm, c.alg);
    EXPECT_EQ(svid->key_id, c.kid);
    EXPECT_EQ(svid->token, *token);
    EXPECT_EQ(svid->claims["iat"], 1'800'000'000);
  }
}

TEST_F(JwtSvidTest, DefaultAlgorithmFollowsKey) {
  EXPECT_EQ(*DefaultJwtAlgorithm(K().p256.public_key()), JwtAlgorithm::kEs256);
  EXPECT_EQ(*DefaultJwtAlgorithm(K().p384.public_key()), JwtAlgorithm::kEs384);
  EXPECT_EQ(*DefaultJwtAlgorithm(K().p521.public_key()), JwtAlgorithm::kEs512);
  EXPECT_EQ(*DefaultJwtAlgorithm(K().rsa.public_key()), JwtAlgorithm::kRs256);
  auto token = SignJwtSvid(Claims(), K().rsa, "rsa");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(Json::parse(*Base64UrlDecode(Parts(*token)[0]))["alg"], "RS256");
  EXPECT_EQ(Validate(*token)->algorithm, JwtAlgorithm::kRs256);
}

TEST_F(JwtSvidTest, PayloadShape) {
  JwtSvidClaims claims = Claims();
  claims.extra = {{"iss", "https://issuer.example.org"}, {"jti", "abc"}};
  auto token = SignJwtSvid(claims, K().p256, "k1");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*Base64UrlDecode(Parts(*token)[1]), R"({"aud":"svc","exp":1800000300,"iat":1800000000,)"
                                                R"("iss":"https://issuer.example.org","jti":"abc",)"
                                                R"("sub":"spiffe://example.org/workload"})");
  auto svid = Validate(*token);
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->claims["jti"], "abc");

  claims.audience = {"a", "b"};
  claims.issued_at.reset();
  claims.extra = nullptr;
  claims.expiry = kNow + std::chrono::milliseconds(1999);  // rounded down to whole seconds
  token = SignJwtSvid(claims, K().p256, "k1");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*Base64UrlDecode(Parts(*token)[1]),
            R"({"aud":["a","b"],"exp":1800000001,"sub":"spiffe://example.org/workload"})");
  svid = Validate(*token, {"b"});
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_THAT(svid->audience, ElementsAre("a", "b"));
}

TEST_F(JwtSvidTest, SignRejectsBadInput) {
  JwtSvidClaims claims = Claims();
  EXPECT_THAT(Message(SignJwtSvid(claims, K().p256, "").status()), HasSubstr("key id is required"));
  claims.audience.clear();
  EXPECT_THAT(Message(SignJwtSvid(claims, K().p256, "k1").status()),
              HasSubstr("audience is required"));
  claims.audience = {"ok", ""};
  EXPECT_THAT(Message(SignJwtSvid(claims, K().p256, "k1").status()),
              HasSubstr("audience values cannot be empty"));
  claims = Claims();
  claims.extra = {{"sub", "spiffe://evil.org/x"}};
  EXPECT_THAT(Message(SignJwtSvid(claims, K().p256, "k1").status()),
              HasSubstr("extra claim \"sub\" conflicts"));
  claims.extra = Json::array({1});
  EXPECT_THAT(Message(SignJwtSvid(claims, K().p256, "k1").status()),
              HasSubstr("extra claims must be a JSON object"));
  claims = Claims();
  EXPECT_THAT(Message(SignJwtSvid(claims, K().p256, "k1", JwtAlgorithm::kEs384).status()),
              HasSubstr("key cannot sign ES384"));
  EXPECT_THAT(Message(SignJwtSvid(claims, K().p256, "k1", JwtAlgorithm::kRs256).status()),
              HasSubstr("key cannot sign RS256"));
  EXPECT_THAT(Message(SignJwtSvid(claims, K().rsa, "k1", JwtAlgorithm::kEs256).status()),
              HasSubstr("key cannot sign ES256"));
  claims.audience = {"\xff"};
  EXPECT_EQ(SignJwtSvid(claims, K().p256, "k1").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(JwtSvidTest, AlgorithmNames) {
  for (const char* name :
       {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}) {
    auto alg = ParseJwtAlgorithm(name);
    ASSERT_TRUE(alg.ok()) << name;
    EXPECT_EQ(JwtAlgorithmName(*alg), name);
  }
  for (const char* name : {"none", "HS256", "EdDSA", "es256", "ES256K", ""}) {
    EXPECT_THAT(Message(ParseJwtAlgorithm(name).status()),
                HasSubstr(absl::StrCat("unsupported algorithm \"", name, "\"")));
  }
}

TEST_F(JwtSvidTest, RejectsAlgNone) {
  Json header = {{"alg", "none"}, {"kid", "k1"}, {"typ", "JWT"}};
  std::string unsigned_token =
      Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(Payload().dump()) + ".";
  ExpectRejected(unsigned_token, "unsupported algorithm \"none\"");
  ExpectRejected(Craft(header, Payload(), K().p256), "unsupported algorithm \"none\"");
  EXPECT_THAT(Message(ParseJwtSvidInsecure(unsigned_token).status()),
              HasSubstr("unsupported algorithm \"none\""));
}

TEST_F(JwtSvidTest, RejectsHs256KeyedWithThePublicKey) {
  // The classic confusion attack: HMAC keyed with bytes of the verifier's RSA public key.
  Json header = Header("HS256", "rsa");
  std::string input = Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(Payload().dump());
  for (const std::string& secret : {*K().rsa.public_key().ToDer(), *K().rsa.public_key().ToPem()}) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    ASSERT_NE(
        HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len),
        nullptr);
    std::string token =
        input + "." + Base64UrlEncode(std::string(reinterpret_cast<char*>(mac), mac_len));
    ExpectRejected(token, "unsupported algorithm \"HS256\"");
  }
}

TEST_F(JwtSvidTest, RejectsOtherUnsupportedAlgorithms) {
  for (const char* alg : {"HS384", "EdDSA", "ES256K", "es256", "RSA-OAEP"}) {
    ExpectRejected(Craft(Header(alg), Payload(), K().p256), "unsupported algorithm");
  }
  Json header = Header();
  header.erase("alg");
  ExpectRejected(Craft(header, Payload(), K().p256), "token header missing algorithm");
  header["alg"] = 256;
  ExpectRejected(Craft(header, Payload(), K().p256), "algorithm must be a string");
}

TEST_F(JwtSvidTest, AlgorithmIsCheckedBeforeOtherHeaderRules) {
  Json header = {{"alg", "HS256"}, {"typ", "bogus"}, {"jku", "https://evil"}};
  ExpectRejected(Craft(header, Payload(), K().p256), "unsupported algorithm \"HS256\"");
}

TEST_F(JwtSvidTest, TypRules) {
  Json header = Header();
  header["typ"] = "JOSE";
  EXPECT_TRUE(Validate(Craft(header, Payload(), K().p256)).ok());
  header.erase("typ");
  EXPECT_TRUE(Validate(Craft(header, Payload(), K().p256)).ok());
  header["typ"] = "at+jwt";
  ExpectRejected(Craft(header, Payload(), K().p256), "unsupported token type \"at+jwt\"");
  header["typ"] = "jwt";
  ExpectRejected(Craft(header, Payload(), K().p256), "unsupported token type \"jwt\"");
  header["typ"] = 1;
  ExpectRejected(Craft(header, Payload(), K().p256), "type must be a string");
}

TEST_F(JwtSvidTest, RejectsMissingKeyId) {
  Json header = Header();
  header.erase("kid");
  ExpectRejected(Craft(header, Payload(), K().p256), "token header missing key id");
  EXPECT_THAT(Message(ParseJwtSvidInsecure(Craft(header, Payload(), K().p256)).status()),
              HasSubstr("token header missing key id"));
  header["kid"] = "";
  ExpectRejected(Craft(header, Payload(), K().p256), "token header missing key id");
  header["kid"] = 7;
  ExpectRejected(Craft(header, Payload(), K().p256), "key id must be a string");
}

TEST_F(JwtSvidTest, RejectsExtraHeaderParameters) {
  for (const char* param : {"jku", "jwk", "x5u", "x5c", "crit", "cty", "b64"}) {
    Json header = Header();
    header[param] = "x";
    ExpectRejected(Craft(header, Payload(), K().p256),
                   absl::StrCat("unsupported parameter \"", param, "\""));
  }
}

TEST_F(JwtSvidTest, RejectsMalformedHeader) {
  ExpectRejected(Craft(std::string("[]"), Payload().dump(), K().p256),
                 "token header must be a JSON object");
  ExpectRejected(Craft(std::string("{\"alg\":"), Payload().dump(), K().p256),
                 "token header: invalid JSON");
  ExpectRejected(
      Craft(std::string(R"({"alg":"ES256","kid":"k1","alg":"none"})"), Payload().dump(), K().p256),
      "duplicate member \"alg\"");
  std::string token = SignJwtSvid(Claims(), K().p256, "k1").value();
  ExpectRejected("e30=" + token.substr(token.find('.')), "padding is not allowed");
}

TEST_F(JwtSvidTest, RejectsWrongNumberOfParts) {
  std::string token = SignJwtSvid(Claims(), K().p256, "k1").value();
  auto parts = Parts(token);
  const std::string three_parts = "token must be JWS compact serialization with three parts";
  ExpectRejected(parts[0] + "." + parts[1], three_parts);
  ExpectRejected(token + ".", three_parts);
  ExpectRejected(token + "." + parts[2], three_parts);
  ExpectRejected(parts[0] + "." + parts[1] + ".." + parts[2] + "." + parts[2], three_parts);
  ExpectRejected("", three_parts);
  ExpectRejected(parts[0] + "." + parts[1] + ".", "token signature is empty");
  EXPECT_THAT(Message(ParseJwtSvidInsecure(parts[0] + "." + parts[1] + ".").status()),
              HasSubstr("token signature is empty"));
  ExpectRejected(std::string(kMaxJwtSvidBytes + 1, 'a'), "token is larger than");
}

TEST_F(JwtSvidTest, RejectsBadSubject) {
  Json payload = Payload();
  payload.erase("sub");
  ExpectRejected(Craft(Header(), payload, K().p256), "token missing subject");
  payload["sub"] = 5;
  ExpectRejected(Craft(Header(), payload, K().p256), "token subject must be a string");
  for (const char* bad : {"spiffe://Example.org/w", "https://example.org/w", "example.org",
                          "spiffe://example.org/w/", ""}) {
    payload["sub"] = bad;
    ExpectRejected(Craft(Header(), payload, K().p256), "token subject: invalid SPIFFE ID");
  }
  ExpectRejected(Craft(std::string("[1]"), Payload().dump(), K().p256), "must be a JSON object");
  ExpectRejected(Craft(Header().dump(), "\"x\"", K().p256), "token payload must be a JSON object");
}

TEST_F(JwtSvidTest, AudienceAsString) {
  Json payload = Payload();
  payload["aud"] = "svc";
  auto svid = Validate(Craft(Header(), payload, K().p256));
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_THAT(svid->audience, ElementsAre("svc"));
  // A string is one audience, not a list of characters.
  ExpectRejected(Craft(Header(), payload, K().p256), "audience mismatch", {"s"});
}

TEST_F(JwtSvidTest, AudienceAsArray) {
  Json payload = Payload();
  payload["aud"] = {"one", "svc", "two"};
  auto svid = Validate(Craft(Header(), payload, K().p256));
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_THAT(svid->audience, ElementsAre("one", "svc", "two"));
  // Any one expected value is enough.
  EXPECT_TRUE(Validate(Craft(Header(), payload, K().p256), {"nope", "two"}).ok());
}

TEST_F(JwtSvidTest, RejectsBadAudience) {
  Json payload = Payload();
  ExpectRejected(Craft(Header(), payload, K().p256), "audience mismatch", {"other"});
  ExpectRejected(Craft(Header(), payload, K().p256), "audience mismatch", {"SVC"});
  payload.erase("aud");
  ExpectRejected(Craft(Header(), payload, K().p256), "token missing audience");
  payload["aud"] = Json::array();
  ExpectRejected(Craft(Header(), payload, K().p256), "token audience is empty");
  payload["aud"] = {"svc", 1};
  ExpectRejected(Craft(Header(), payload, K().p256), "string or array of strings");
  payload["aud"] = 3;
  ExpectRejected(Craft(Header(), payload, K().p256), "string or array of strings");
  payload["aud"] = {{"svc", true}};
  ExpectRejected(Craft(Header(), payload, K().p256), "string or array of strings");
}

TEST_F(JwtSvidTest, RejectsEmptyExpectedAudience) {
  std::string token = SignJwtSvid(Claims(), K().p256, "k1").value();
  ExpectRejected(token, "expected audience must not be empty", {});
  ExpectRejected(token, "expected audience values cannot be empty", {""});
  // Even a token whose own audience is the empty string cannot match.
  Json payload = Payload();
  payload["aud"] = "";
  ExpectRejected(Craft(Header(), payload, K().p256), "expected audience values cannot be empty",
                 {""});
}

TEST_F(JwtSvidTest, ExpiryWithLeeway) {
  std::string token = SignJwtSvid(Claims(), K().p256, "k1").value();
  TimePoint exp = kNow + seconds(300);
  EXPECT_TRUE(Validate(token, {"svc"}, exp).ok());
  EXPECT_TRUE(Validate(token, {"svc"}, exp + kJwtLeeway).ok());
  ExpectRejected(token, "token has expired", {"svc"}, exp + kJwtLeeway + seconds(1));
  ExpectRejected(token, "token has expired", {"svc"}, exp + std::chrono::hours(24));
  // The insecure parse reads an expired token: the agent decides when to refresh.
  auto svid = ParseJwtSvidInsecure(token);
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->expiry, exp);
}

TEST_F(JwtSvidTest, RejectsBadExpiry) {
  Json payload = Payload();
  payload.erase("exp");
  ExpectRejected(Craft(Header(), payload, K().p256), "token missing expiry");
  payload["exp"] = "1800000300";
  ExpectRejected(Craft(Header(), payload, K().p256), "token \"exp\" must be a number");
  payload["exp"] = true;
  ExpectRejected(Craft(Header(), payload, K().p256), "token \"exp\" must be a number");
  payload["exp"] = 1e300;
  ExpectRejected(Craft(Header(), payload, K().p256), "token \"exp\" is out of range");
  payload["exp"] = UINT64_MAX;
  ExpectRejected(Craft(Header(), payload, K().p256), "token \"exp\" is out of range");
  payload["exp"] = 1800000300.75;  // NumericDate may be fractional
  auto svid = Validate(Craft(Header(), payload, K().p256));
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->expiry, kNow + seconds(300));
  payload["exp"] = 1700000000;
  ExpectRejected(Craft(Header(), payload, K().p256), "token has expired");
}

TEST_F(JwtSvidTest, RejectsFutureNotBeforeAndIssuedAt) {
  Json payload = Payload();
  payload["nbf"] = 1'800'000'000 + 25;
  EXPECT_TRUE(Validate(Craft(Header(), payload, K().p256)).ok());
  payload["nbf"] = 1'800'000'000 + 31;
  ExpectRejected(Craft(Header(), payload, K().p256), "token is not valid yet");
  payload["nbf"] = "soon";
  ExpectRejected(Craft(Header(), payload, K().p256), "token \"nbf\" must be a number");
  payload = Payload();
  payload["iat"] = 1'800'000'000 + 3600;
  ExpectRejected(Craft(Header(), payload, K().p256), "token was issued in the future");
  payload["exp"] = 1'800'010'000;
  EXPECT_TRUE(Validate(Craft(Header(), payload, K().p256), {"svc"}, kNow + seconds(3600)).ok());
}

TEST_F(JwtSvidTest, OnlySubjectsTrustDomainIsConsulted) {
  // example.org's key "k1" signs a token claiming an identity in other.org, whose bundle also
  // has a key "k1" (a different one): it must not verify.
  JwtSvidClaims claims = Claims();
  claims.subject = Id("spiffe://other.org/workload");
  std::string token = SignJwtSvid(claims, K().p256, "k1").value();
  ExpectRejected(token, "token signature is invalid");
  // Signed by other.org's own key it verifies.
  EXPECT_TRUE(Validate(SignJwtSvid(claims, K().other_p256, "k1").value()).ok());
  // A trust domain without a bundle.
  claims.subject = Id("spiffe://unknown.org/workload");
  ExpectRejected(SignJwtSvid(claims, K().p256, "k1").value(),
                 "no JWT authority for trust domain \"unknown.org\"");
}

TEST_F(JwtSvidTest, RejectsUnknownKeyId) {
  ExpectRejected(SignJwtSvid(Claims(), K().p256, "k2").value(),
                 "no JWT authority with key id \"k2\" for trust domain \"example.org\"");
}

TEST_F(JwtSvidTest, RejectsTamperedToken) {
  std::string token = SignJwtSvid(Claims(), K().p256, "k1").value();
  auto parts = Parts(token);
  Json payload = Json::parse(*Base64UrlDecode(parts[1]));
  payload["sub"] = "spiffe://example.org/admin";
  ExpectRejected(parts[0] + "." + Base64UrlEncode(payload.dump()) + "." + parts[2],
                 "token signature is invalid");
  std::string sig = *Base64UrlDecode(parts[2]);
  sig[10] ^= 0x01;
  ExpectRejected(parts[0] + "." + parts[1] + "." + Base64UrlEncode(sig),
                 "token signature is invalid");
  // The DER form OpenSSL produces is not a JWS signature.
  std::string input = parts[0] + "." + parts[1];
  std::string der = *K().p256.Sign(input, Digest::kSha256);
  ExpectRejected(input + "." + Base64UrlEncode(der), "token signature must be 64 bytes");

  std::string rsa_token = SignJwtSvid(Claims(), K().rsa, "rsa").value();
  std::string rsa_sig = *Base64UrlDecode(Parts(rsa_token)[2]);
  rsa_sig.back() ^= 0x80;
  ExpectRejected(rsa_token.substr(0, rsa_token.rfind('.') + 1) + Base64UrlEncode(rsa_sig),
                 "token signature is invalid");
}

TEST_F(JwtSvidTest, RejectsKeyTypeThatDoesNotFitAlgorithm) {
  // alg says RS256 but "k1" is an EC key.
  ExpectRejected(Craft(Header("RS256", "k1"), Payload(), K().rsa, "RS256"),
                 "key id \"k1\" cannot verify RS256 tokens");
  // ES256 with an RSA key ID.
  ExpectRejected(Craft(Header("ES256", "rsa"), Payload(), K().p256), "cannot verify ES256");
  // ES384 names P-384: a P-256 key cannot be used even with a matching hash length trick.
  ExpectRejected(Craft(Header("ES384", "k1"), Payload(), K().p256, "ES384"), "cannot verify ES384");
  // An RS256 signature presented as PS256 does not verify.
  std::string rs = SignJwtSvid(Claims(), K().rsa, "rsa", JwtAlgorithm::kRs256).value();
  std::string ps_header = Base64UrlEncode(Header("PS256", "rsa").dump());
  ExpectRejected(ps_header + rs.substr(rs.find('.')), "token signature is invalid");
}

TEST_F(JwtSvidTest, InsecureParseSkipsSignatureButNotStructure) {
  std::string token = SignJwtSvid(Claims(), K().p256, "k1").value();
  std::string forged = token.substr(0, token.rfind('.') + 1) + Base64UrlEncode("junk");
  auto svid = ParseJwtSvidInsecure(forged);
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->subject.str(), "spiffe://example.org/workload");
  EXPECT_EQ(svid->key_id, "k1");
  Json payload = Payload();
  payload.erase("aud");
  EXPECT_THAT(Message(ParseJwtSvidInsecure(Craft(Header(), payload, K().p256)).status()),
              HasSubstr("token missing audience"));
}

// Tokens signed by an independent JOSE implementation (Python "cryptography"), with the public
// halves of its keys; the same tokens seed tests/fuzz/corpus/spiffe_jwt_fuzz.
constexpr std::string_view kIndependentEcPem = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsjYpKMMYT9hpvLV1gkvb+xz51dSV
HY2h4YdH9nWA2k/h/DKIbgV535dk+upY+R7bFQjprgBzPL8GwyXpw8iBmw==
-----END PUBLIC KEY-----
)";
constexpr std::string_view kIndependentEc384Pem = R"(-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEJAw2xhd4MCFu4bMnHtd3lSKaUCxpJpuH
yJUJnpc2EBD3F9U3gI4yB7POMB/HXOjbWNzTMkUCLWha8Dts27kUrUPlulPaEHWa
CM/DkVckJGtt79eDI+MSicP7s1CNpZ+p
-----END PUBLIC KEY-----
)";
constexpr std::string_view kIndependentRsaPem = R"(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkHmYooQ/Up/m+mUuM4J8
zjr+xeevUBE6hv5Aw7bkt1z6VQTcd1g/og0rKE8pOX+GLYICOKk/kCWJQFHFvyqy
remJSE6h9NqkXhssPUtVoQLa4P+QeC8cXFLbtNuVche1XDl3eVDaMclSA2EvgGE0
Sr1FY2Zj+uggwBCctndku8pDV0ok5N7/WCRVc9PCmdGgpqPxsH/qgy9nctxEePLs
UTT83n1C5U/G3uD4lgNg1Rm27M0VL4OuWxt5fC/ZaDB6XsIf6ulFw4343ULyV/m3
LzWLqw6KaiEyEs231gluuMF5W9fSUJIO5Py4diDv9Jvhm2A7H5629dKybI9moqWx
YwIDAQAB
-----END PUBLIC KEY-----
)";
constexpr std::string_view kIndependentEs256 =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjIiwidHlwIjoiSldUIn0.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9y"
    "Zy93b3JrbG9hZCIsImF1ZCI6InN2YyIsImV4cCI6MTgwMDAwMDMwMCwiaWF0IjoxODAwMDAwMDAwfQ.b5bC8GEw5"
    "IKenIZSHfURjG_NM6A_JvZKm1VT2dfKu4MIe2V9EUjYqFaGKOjo2jrcAMQAS-9d8Wvr55VYFlQuaQ";
constexpr std::string_view kIndependentEs384 =
    "eyJhbGciOiJFUzM4NCIsImtpZCI6ImVjMzg0IiwidHlwIjoiSldUIn0.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxl"
    "Lm9yZy93b3JrbG9hZCIsImF1ZCI6InN2YyIsImV4cCI6MTgwMDAwMDMwMCwiaWF0IjoxODAwMDAwMDAwLCJpc3Mi"
    "OiJodHRwczovL2V4YW1wbGUub3JnIiwianRpIjoiMSIsIm5iZiI6MTc5OTk5OTk5MH0.gGxTkqy1g7s0Ks5dsnPo"
    "nE_QVslP56dFLBf_mMpKLT7hskOrj0gOh_OQvU-dimgTSKmFTJn1JUuRmiG-HlbJ_uLSP20Plr-b-IJavsguDv2W"
    "9h4jd4XN5tevcgNDNMoU";
constexpr std::string_view kIndependentRs256 =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9"
    "yZy93b3JrbG9hZCIsImF1ZCI6WyJvdGhlciIsInN2YyJdLCJleHAiOjE4MDAwMDAzMDAsImlhdCI6MTgwMDAwMDA"
    "wMH0.VXA1sz4wIBy0uUm_6MzY2F9IcW5-8scjSC_7Bvj6bP6f6HVZ2gAMLe6sFPDsVThXUfwNXtbFvi8lcqHdY2g"
    "7GkkdYbwaqlr_b7Cmp90ocyIDcWFbu6GRb7J2KExbeNcS1YbbVs9kq9VF2H669GCPfcJNrlzDYZa6l1HHr1qPRhU"
    "YwDY2QskN_iHbYrVgpojbeJatFHG5_KswD6fl9Y9z0iN5fpfmKNAdSwt_9ouphNyTDyC1H0_h__I1Nt7xl0y6eLS"
    "icZuej7Ls8NWmTU5uKFWJgWq_6ELCHs-A6O0NIPhn6Q5ST2f2SvcHm0bdVqTrS3hVy1wyCVou9axrv-vLLQ";
constexpr std::string_view kIndependentPs256 =
    "eyJhbGciOiJQUzI1NiIsImtpZCI6InJzYSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9"
    "yZy93b3JrbG9hZCIsImF1ZCI6InN2YyIsImV4cCI6MTgwMDAwMDMwMCwiaWF0IjoxODAwMDAwMDAwfQ.Fd3jhBLp"
    "vuVVnur3t2GDVNMvj01rkWD8ZSByVn38zAbGX8tO9j4tk3Ba5NTEgRSMzyhaKzupYig-n9uhfI6b0kOEUE3AN2hJ"
    "eH_ougXjecXTtIpwYEwbL3sc8ZsUsoiDX8eA4I6MN6z285Hguq0qo8aDjP3eiJTxS11xpTaexthttHMbA9bijPP3"
    "fMwiLHWRwt7J_g35GZfJs9Q6eUi_MWhqkGdKBXSWSadbRCXN27Gch0DB9UUM7oZbd02nLuhfRa6s4roXRNmY9l7m"
    "A0W9i3ENO6vkenIZplFvGrGR0-4MTUV0zngI_nJPdlEDht1ZB4MJmzSan-8QP4uC7mfIaA";

TEST(JwtSvidInteropTest, ValidatesTokensFromIndependentSigner) {
  Bundle bundle(Td("example.org"));
  ASSERT_TRUE(bundle.AddJwtAuthority("ec", *PublicKey::FromPem(kIndependentEcPem)).ok());
  ASSERT_TRUE(bundle.AddJwtAuthority("ec384", *PublicKey::FromPem(kIndependentEc384Pem)).ok());
  ASSERT_TRUE(bundle.AddJwtAuthority("rsa", *PublicKey::FromPem(kIndependentRsaPem)).ok());
  BundleSet set;
  set.Put(bundle);
  const std::pair<std::string_view, JwtAlgorithm> tokens[] = {
      {kIndependentEs256, JwtAlgorithm::kEs256},
      {kIndependentEs384, JwtAlgorithm::kEs384},
      {kIndependentRs256, JwtAlgorithm::kRs256},
      {kIndependentPs256, JwtAlgorithm::kPs256},
  };
  for (const auto& [token, alg] : tokens) {
    auto svid = ParseAndValidateJwtSvid(token, set, {"svc"}, kNow);
    ASSERT_TRUE(svid.ok()) << JwtAlgorithmName(alg) << ": " << svid.status();
    EXPECT_EQ(svid->algorithm, alg);
    EXPECT_EQ(svid->subject.str(), "spiffe://example.org/workload");
    EXPECT_EQ(svid->expiry, kNow + seconds(300));
    EXPECT_THAT(svid->audience, ::testing::Contains("svc"));
  }
  auto es384 = ParseAndValidateJwtSvid(kIndependentEs384, set, {"svc"}, kNow);
  EXPECT_EQ(es384->claims["iss"], "https://example.org");
  EXPECT_THAT(ParseAndValidateJwtSvid(kIndependentRs256, set, {"other"}, kNow)->audience,
              ElementsAre("other", "svc"));
}

// Runs a shell command, returning its exit status.
int Shell(const std::string& command) { return std::system(command.c_str()); }

std::string WriteTemp(const std::string& name, const std::string& content) {
  return testing::ProcessScratch().Write(name, content);
}

TEST_F(JwtSvidTest, SignaturesVerifyWithOpenSslCli) {
  struct CliCase {
    JwtAlgorithm alg;
    const PrivateKey* key;
    std::string digest;
    std::string options;
  };
  const CliCase cases[] = {
      {JwtAlgorithm::kEs256, &K().p256, "sha256", ""},
      {JwtAlgorithm::kEs384, &K().p384, "sha384", ""},
      {JwtAlgorithm::kRs256, &K().rsa, "sha256", ""},
      {JwtAlgorithm::kPs256, &K().rsa, "sha256",
       "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest"},
  };
  for (const CliCase& c : cases) {
    std::string name(JwtAlgorithmName(c.alg));
    std::string token = SignJwtSvid(Claims(), *c.key, "kid", c.alg).value();
    std::string input = token.substr(0, token.rfind('.'));
    std::string sig = *Base64UrlDecode(token.substr(token.rfind('.') + 1));
    if (c.key->public_key().IsEc()) {
      // The CLI wants DER ECDSA-Sig-Value; build it from r||s independently of our code.
      size_t half = sig.size() / 2;
      BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), half, nullptr);
      BIGNUM* s =
          BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + half, half, nullptr);
      ECDSA_SIG* ecdsa = ECDSA_SIG_new();
      ECDSA_SIG_set0(ecdsa, r, s);
      unsigned char* der = nullptr;
      int len = i2d_ECDSA_SIG(ecdsa, &der);
      sig.assign(reinterpret_cast<char*>(der), len);
      OPENSSL_free(der);
      ECDSA_SIG_free(ecdsa);
    }
    std::string pub = WriteTemp("jwt-" + name + ".pem", *c.key->public_key().ToPem());
    std::string in = WriteTemp("jwt-" + name + ".in", input);
    std::string sig_path = WriteTemp("jwt-" + name + ".sig", sig);
    std::string cmd = "openssl dgst -" + c.digest + " -verify " + pub + " " + c.options +
                      " -signature " + sig_path + " " + in + " >/dev/null 2>&1";
    EXPECT_EQ(Shell(cmd), 0) << name << ": " << cmd;
    // And the CLI notices a different input.
    WriteTemp("jwt-" + name + ".in", input + "x");
    EXPECT_NE(Shell(cmd), 0) << name;
  }
}

}  // namespace
}  // namespace tessera::spiffe
