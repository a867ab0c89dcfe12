#include "spiffe/jwk.h"

#include <openssl/evp.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/base64.h"
#include "spiffe/x509_test_util.h"

namespace tessera::spiffe {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// RFC 7517 Appendix A.1, the EC P-256 public key.
const char* const kRfcX = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
const char* const kRfcY = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM";

nlohmann::json RfcEcJwk() {
  return {{"kty", "EC"}, {"crv", "P-256"}, {"x", kRfcX},
          {"y", kRfcY},  {"use", "enc"},   {"kid", "1"}};
}

// Runs a shell command and returns its standard output; fails the test on a non-zero exit.
std::string RunCommand(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen " << command;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  int rc = pclose(pipe);
  EXPECT_EQ(rc, 0) << command << "\n" << out;
  return out;
}

std::string WriteTemp(const std::string& name, const std::string& content) {
  return testing::ProcessScratch().Write(name, content);
}

TEST(JwkTest, EcRoundTrip) {
  for (KeyType type : {KeyType::kEcP256, KeyType::kEcP384}) {
    auto key = PrivateKey::Generate(type);
    ASSERT_TRUE(key.ok()) << key.status();
    auto jwk = PublicKeyToJwk(key->public_key());
    ASSERT_TRUE(jwk.ok()) << jwk.status();
    size_t size = type == KeyType::kEcP256 ? 32 : 48;
    EXPECT_EQ((*jwk)["kty"], "EC");
    EXPECT_EQ((*jwk)["crv"], type == KeyType::kEcP256 ? "P-256" : "P-384");
    EXPECT_EQ(Base64UrlDecode((*jwk)["x"].get<std::string>())->size(), size);
    EXPECT_EQ(Base64UrlDecode((*jwk)["y"].get<std::string>())->size(), size);
    EXPECT_EQ(jwk->size(), 4u);
    auto back = PublicKeyFromJwk(*jwk);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_TRUE(back->Equals(key->public_key()));
    EXPECT_EQ(JwkCurveName(*back), jwk->at("crv").get<std::string>());
  }
}

TEST(JwkTest, P521RoundTrip) {
  EvpPkeyPtr raw(EVP_EC_gen("P-521"));
  ASSERT_NE(raw, nullptr);
  PublicKey key = PrivateKey::FromEvp(raw.get()).public_key();
  auto jwk = PublicKeyToJwk(key);
  ASSERT_TRUE(jwk.ok()) << jwk.status();
  EXPECT_EQ((*jwk)["crv"], "P-521");
  EXPECT_EQ(Base64UrlDecode((*jwk)["x"].get<std::string>())->size(), 66u);
  auto back = PublicKeyFromJwk(*jwk);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->Equals(key));
}

TEST(JwkTest, RsaRoundTrip) {
  auto key = PrivateKey::Generate(KeyType::kRsa2048);
  ASSERT_TRUE(key.ok()) << key.status();
  auto jwk = PublicKeyToJwk(key->public_key());
  ASSERT_TRUE(jwk.ok()) << jwk.status();
  EXPECT_EQ((*jwk)["kty"], "RSA");
  EXPECT_EQ((*jwk)["e"], "AQAB");
  EXPECT_EQ(Base64UrlDecode((*jwk)["n"].get<std::string>())->size(), 256u);
  EXPECT_FALSE(jwk->contains("crv"));
  auto back = PublicKeyFromJwk(*jwk);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->Equals(key->public_key()));
  EXPECT_FALSE(JwkCurveName(*back).has_value());

  // A leading zero octet (as some encoders emit for the sign) names the same key.
  nlohmann::json padded = *jwk;
  padded["n"] =
      Base64UrlEncode(std::string(1, '\0') + *Base64UrlDecode((*jwk)["n"].get<std::string>()));
  auto same = PublicKeyFromJwk(padded);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_TRUE(same->Equals(key->public_key()));
}

TEST(JwkTest, RfcExampleMatchesOpenSslCli) {
  auto key = PublicKeyFromJwk(RfcEcJwk());
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(JwkCurveName(*key), "P-256");
  std::string path = WriteTemp("rfc7517.pem", *key->ToPem());
  std::string text = RunCommand("openssl pkey -pubin -in " + path + " -noout -text 2>&1");
  EXPECT_THAT(text, HasSubstr("prime256v1"));
  // x = 30:a0:42:4c... (the decoded RFC value) appears after the 04 point prefix.
  EXPECT_THAT(text, HasSubstr("04:30:a0:42:4c:d2:1c:29:44:83:8a:2d:75:c9:2b"));
  EXPECT_EQ((*PublicKeyToJwk(*key))["x"], kRfcX);
  EXPECT_EQ((*PublicKeyToJwk(*key))["y"], kRfcY);
}

TEST(JwkTest, RsaMatchesOpenSslCli) {
  auto key = PrivateKey::Generate(KeyType::kRsa2048);
  ASSERT_TRUE(key.ok());
  auto back = PublicKeyFromJwk(*PublicKeyToJwk(key->public_key()));
  ASSERT_TRUE(back.ok()) << back.status();
  std::string path = WriteTemp("rsa-jwk.pem", *back->ToPem());
  std::string text = RunCommand("openssl pkey -pubin -in " + path + " -noout -text 2>&1");
  EXPECT_THAT(text, HasSubstr("Public-Key: (2048 bit)"));
  EXPECT_THAT(text, HasSubstr("Exponent: 65537"));
}

struct BadJwk {
  std::string name;
  nlohmann::json jwk;
  std::string error;
};

TEST(JwkTest, RejectsInvalidKeys) {
  std::string x = *Base64UrlDecode(kRfcX);
  std::string y = *Base64UrlDecode(kRfcY);
  std::string off_curve_y = y;
  off_curve_y.back() ^= 1;
  auto with = [](nlohmann::json j, const std::string& k, nlohmann::json v) {
    j[k] = std::move(v);
    return j;
  };
  auto without = [](nlohmann::json j, const std::string& k) {
    j.erase(k);
    return j;
  };
  auto rsa = [](const std::string& n, const std::string& e) {
    return nlohmann::json{{"kty", "RSA"}, {"n", Base64UrlEncode(n)}, {"e", Base64UrlEncode(e)}};
  };
  std::string n2048(256, '\xff');
  const BadJwk cases[] = {
      {"not object", nlohmann::json::array(), "must be a JSON object"},
      {"no kty", without(RfcEcJwk(), "kty"), "missing \"kty\""},
      {"kty number", with(RfcEcJwk(), "kty", 1), "\"kty\" must be a string"},
      {"okp", with(RfcEcJwk(), "kty", "OKP"), "unsupported key type \"OKP\""},
      {"oct", with(RfcEcJwk(), "kty", "oct"), "unsupported key type \"oct\""},
      {"lowercase kty", with(RfcEcJwk(), "kty", "ec"), "unsupported key type \"ec\""},
      {"p192", with(RfcEcJwk(), "crv", "P-192"), "unsupported curve \"P-192\""},
      {"secp256k1", with(RfcEcJwk(), "crv", "secp256k1"), "unsupported curve"},
      {"no crv", without(RfcEcJwk(), "crv"), "missing \"crv\""},
      {"no x", without(RfcEcJwk(), "x"), "missing \"x\""},
      {"no y", without(RfcEcJwk(), "y"), "missing \"y\""},
      {"x number", with(RfcEcJwk(), "x", 5), "\"x\" must be a string"},
      {"x short", with(RfcEcJwk(), "x", Base64UrlEncode(x.substr(1))), "must be 32 bytes"},
      {"x long", with(RfcEcJwk(), "x", Base64UrlEncode(std::string(1, '\0') + x)),
       "must be 32 bytes"},
      {"p384 with p256 coordinates", with(RfcEcJwk(), "crv", "P-384"), "must be 48 bytes"},
      {"x padded", with(RfcEcJwk(), "x", std::string(kRfcX) + "="), "padding is not allowed"},
      {"x std alphabet", with(RfcEcJwk(), "x", "+/" + std::string(kRfcX).substr(2)),
       "illegal character"},
      {"off curve", with(RfcEcJwk(), "y", Base64UrlEncode(off_curve_y)), "point is not on curve"},
      {"zero point",
       with(with(RfcEcJwk(), "x", Base64UrlEncode(std::string(32, '\0'))), "y",
            Base64UrlEncode(std::string(32, '\0'))),
       "jwk: "},
      {"private", with(RfcEcJwk(), "d", "AAAA"), "private key material"},
      {"rsa short", rsa(std::string(128, '\xff'), "\x01\x00\x01"), "RSA modulus must be 2048"},
      {"rsa huge", rsa(std::string(1025, '\xff'), "\x01\x00\x01"), "RSA modulus must be 2048"},
      {"rsa even n", rsa(std::string(255, '\xff') + "\xfe", "\x01\x00\x01"),
       "RSA modulus must be odd"},
      {"rsa even e", rsa(n2048, "\x01\x00\x00"), "invalid RSA public exponent"},
      {"rsa e one", rsa(n2048, "\x01"), "invalid RSA public exponent"},
      {"rsa e empty", rsa(n2048, ""), "invalid RSA public exponent"},
      {"rsa e huge", rsa(n2048, std::string(9, '\x01')), "invalid RSA public exponent"},
      {"rsa no n", without(rsa(n2048, "\x03"), "n"), "missing \"n\""},
      {"rsa no e", without(rsa(n2048, "\x03"), "e"), "missing \"e\""},
  };
  for (const auto& c : cases) {
    auto key = PublicKeyFromJwk(c.jwk);
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(Message(key.status()), HasSubstr(c.error)) << c.name;
    EXPECT_THAT(Message(key.status()), HasSubstr("jwk: ")) << c.name;
  }
}

TEST(JwkTest, SupportedKeyTypes) {
  EXPECT_TRUE(IsSupportedJwkKeyType("EC"));
  EXPECT_TRUE(IsSupportedJwkKeyType("RSA"));
  EXPECT_FALSE(IsSupportedJwkKeyType("OKP"));
  EXPECT_FALSE(IsSupportedJwkKeyType("rsa"));
  EXPECT_FALSE(IsSupportedJwkKeyType(""));
}

}  // namespace
}  // namespace tessera::spiffe
