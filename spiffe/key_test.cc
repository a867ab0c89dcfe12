#include "spiffe/key.h"

#include <openssl/err.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::spiffe {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(TESSERA_TESTDATA_DIR) + "/x509/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(KeyTypeTest, ParseAndNameRoundTrip) {
  for (KeyType t : {KeyType::kEcP256, KeyType::kEcP384, KeyType::kRsa2048, KeyType::kRsa4096}) {
    auto parsed = ParseKeyType(KeyTypeName(t));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(KeyTypeName(KeyType::kEcP256), "ec-p256");
  EXPECT_EQ(KeyTypeName(KeyType::kRsa4096), "rsa-4096");
  auto bad = ParseKeyType("ec-p521");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("unknown key type \"ec-p521\""));
  EXPECT_FALSE(ParseKeyType("EC-P256").ok());
  EXPECT_FALSE(ParseKeyType("").ok());
}

class KeyRoundTripTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(KeyRoundTripTest, GeneratePkcs8AndSpkiRoundTrip) {
  auto key = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(key.ok()) << key.status();
  ASSERT_EQ(key->type(), GetParam());
  ASSERT_EQ(key->public_key().type(), GetParam());
  bool is_ec = GetParam() == KeyType::kEcP256 || GetParam() == KeyType::kEcP384;
  EXPECT_EQ(key->public_key().IsEc(), is_ec);
  EXPECT_EQ(key->public_key().IsRsa(), !is_ec);

  auto der = key->ToPkcs8Der();
  ASSERT_TRUE(der.ok()) << der.status();
  auto from_der = PrivateKey::FromPkcs8Der(*der);
  ASSERT_TRUE(from_der.ok()) << from_der.status();
  EXPECT_EQ(from_der->type(), GetParam());
  EXPECT_TRUE(from_der->public_key().Equals(key->public_key()));
  auto der_again = from_der->ToPkcs8Der();
  ASSERT_TRUE(der_again.ok());
  EXPECT_EQ(*der_again, *der);

  auto pem = key->ToPkcs8Pem();
  ASSERT_TRUE(pem.ok()) << pem.status();
  EXPECT_THAT(*pem, StartsWith("-----BEGIN PRIVATE KEY-----\n"));
  auto from_pem = PrivateKey::FromPem(*pem);
  ASSERT_TRUE(from_pem.ok()) << from_pem.status();
  EXPECT_EQ(*from_pem->ToPkcs8Der(), *der);

  auto spki = key->public_key().ToDer();
  ASSERT_TRUE(spki.ok());
  auto pub = PublicKey::FromDer(*spki);
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_TRUE(pub->Equals(key->public_key()));
  EXPECT_EQ(pub->type(), GetParam());
  auto spki_pem = pub->ToPem();
  ASSERT_TRUE(spki_pem.ok());
  EXPECT_THAT(*spki_pem, StartsWith("-----BEGIN PUBLIC KEY-----\n"));
  auto pub2 = PublicKey::FromPem(*spki_pem);
  ASSERT_TRUE(pub2.ok()) << pub2.status();
  EXPECT_EQ(*pub2->ToDer(), *spki);

  auto other = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->public_key().Equals(key->public_key()));
  EXPECT_EQ(ERR_peek_error(), 0u) << "error queue left dirty";
}

TEST_P(KeyRoundTripTest, SignVerifyAndTamper) {
  auto key = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string data = "the quick brown fox";
  for (Digest digest : {Digest::kSha256, Digest::kSha384, Digest::kSha512}) {
    for (RsaPadding padding : {RsaPadding::kPkcs1v15, RsaPadding::kPss}) {
      auto sig = key->Sign(data, digest, padding);
      ASSERT_TRUE(sig.ok()) << sig.status();
      EXPECT_TRUE(key->public_key().Verify(data, *sig, digest, padding).ok());
      // Wrong data, flipped signature byte, wrong digest: all must fail with InvalidArgument.
      absl::Status s = key->public_key().Verify("the quick brown fox!", *sig, digest, padding);
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(s.message()), HasSubstr("signature does not match"));
      std::string tampered = *sig;
      tampered[tampered.size() / 2] ^= 0x01;
      EXPECT_FALSE(key->public_key().Verify(data, tampered, digest, padding).ok());
      Digest other = digest == Digest::kSha256 ? Digest::kSha384 : Digest::kSha256;
      EXPECT_FALSE(key->public_key().Verify(data, *sig, other, padding).ok());
      EXPECT_FALSE(key->public_key().Verify(data, "", digest, padding).ok());
    }
  }
  // For RSA the padding matters; for EC it is ignored.
  auto pss = key->Sign(data, Digest::kSha256, RsaPadding::kPss);
  ASSERT_TRUE(pss.ok());
  bool verifies_as_pkcs1 =
      key->public_key().Verify(data, *pss, Digest::kSha256, RsaPadding::kPkcs1v15).ok();
  EXPECT_EQ(verifies_as_pkcs1, key->public_key().IsEc());
  // A different key never verifies.
  auto other = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(other.ok());
  auto sig = key->Sign(data, Digest::kSha256);
  ASSERT_TRUE(sig.ok());
  EXPECT_FALSE(other->public_key().Verify(data, *sig, Digest::kSha256).ok());
  EXPECT_EQ(ERR_peek_error(), 0u) << "error queue left dirty";
}

INSTANTIATE_TEST_SUITE_P(AllTypes, KeyRoundTripTest,
                         ::testing::Values(KeyType::kEcP256, KeyType::kEcP384, KeyType::kRsa2048,
                                           KeyType::kRsa4096),
                         [](const auto& info) {
                           std::string name(KeyTypeName(info.param));
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(KeyTest, EcSignatureIsDerEcdsaSigValue) {
  auto key = PrivateKey::Generate(KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  auto sig = key->Sign("x", Digest::kSha256);
  ASSERT_TRUE(sig.ok());
  ASSERT_GE(sig->size(), 8u);
  EXPECT_EQ(static_cast<unsigned char>((*sig)[0]), 0x30);  // SEQUENCE
  EXPECT_LE(sig->size(), 72u);
}

TEST(KeyTest, ReadsTraditionalPemForms) {
  auto ec = PrivateKey::FromPem(ReadTestdata("ec_traditional.key.pem"));
  ASSERT_TRUE(ec.ok()) << ec.status();
  EXPECT_EQ(ec->type(), KeyType::kEcP256);
  auto pkcs8 = PrivateKey::FromPem(ReadTestdata("ca.key.pem"));
  ASSERT_TRUE(pkcs8.ok()) << pkcs8.status();
  EXPECT_TRUE(pkcs8->public_key().Equals(ec->public_key()));

  auto rsa = PrivateKey::FromPem(ReadTestdata("rsa_traditional.key.pem"));
  ASSERT_TRUE(rsa.ok()) << rsa.status();
  EXPECT_EQ(rsa->type(), KeyType::kRsa2048);
  auto der = rsa->ToPkcs8Der();
  ASSERT_TRUE(der.ok());
  EXPECT_TRUE(PrivateKey::FromPkcs8Der(*der).ok());
}

TEST(KeyTest, RefusesEncryptedPemWithoutPrompting) {
  auto key = PrivateKey::FromPem(ReadTestdata("encrypted.key.pem"));
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(key.status().message()), StartsWith("parse private key PEM: "));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(KeyTest, BadDerInput) {
  auto key = PrivateKey::Generate(KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  std::string der = *key->ToPkcs8Der();

  auto empty = PrivateKey::FromPkcs8Der("");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("empty input"));

  auto trailing = PrivateKey::FromPkcs8Der(der + std::string("\0", 1));
  ASSERT_FALSE(trailing.ok());
  EXPECT_THAT(std::string(trailing.status().message()), HasSubstr("trailing data"));

  auto truncated = PrivateKey::FromPkcs8Der(der.substr(0, der.size() - 1));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(truncated.status().message()), StartsWith("parse PKCS#8 private key: "));

  EXPECT_FALSE(PrivateKey::FromPkcs8Der("garbage").ok());
  // SPKI is not a private key, and PKCS#8 is not SPKI.
  std::string spki = *key->public_key().ToDer();
  EXPECT_FALSE(PrivateKey::FromPkcs8Der(spki).ok());
  EXPECT_FALSE(PublicKey::FromDer(der).ok());
  auto spki_trailing = PublicKey::FromDer(spki + "x");
  ASSERT_FALSE(spki_trailing.ok());
  EXPECT_THAT(std::string(spki_trailing.status().message()), HasSubstr("trailing data"));
  EXPECT_FALSE(PublicKey::FromDer("").ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(KeyTest, BadPemInput) {
  EXPECT_FALSE(PrivateKey::FromPem("").ok());
  EXPECT_FALSE(PrivateKey::FromPem("not a pem").ok());
  EXPECT_FALSE(
      PrivateKey::FromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").ok());
  auto key = PrivateKey::Generate(KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  std::string pub_pem = *key->public_key().ToPem();
  EXPECT_FALSE(PrivateKey::FromPem(pub_pem).ok());
  EXPECT_FALSE(PublicKey::FromPem(*key->ToPkcs8Pem()).ok());
  EXPECT_FALSE(PublicKey::FromPem("").ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(KeyTest, FromEvpSharesReference) {
  auto key = PrivateKey::Generate(KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  PrivateKey copy = PrivateKey::FromEvp(key->get());
  EXPECT_EQ(copy.get(), key->get());
  PublicKey pub = PublicKey::FromEvp(key->get());
  EXPECT_TRUE(pub.Equals(key->public_key()));
}

}  // namespace
}  // namespace tessera::spiffe
