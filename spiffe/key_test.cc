#include "spiffe/key.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_internal.h"
#include "spiffe/x509_test_util.h"

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

// ---- The EC shortcuts of x509_internal.h (DecodeEcSpki, LegacyEcPublicKey) ----

// `key`'s public half, re-read from the SubjectPublicKeyInfo OpenSSL writes for it with the given
// point format ("uncompressed", "compressed") and curve encoding ("named_curve", "explicit").
absl::StatusOr<PublicKey> ReadBackAs(const PrivateKey& key, const char* point_format,
                                     const char* encoding) {
  EvpPkeyPtr copy(EVP_PKEY_dup(key.get()));
  if (copy == nullptr ||
      EVP_PKEY_set_utf8_string_param(copy.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                     point_format) != 1 ||
      EVP_PKEY_set_utf8_string_param(copy.get(), OSSL_PKEY_PARAM_EC_ENCODING, encoding) != 1) {
    return absl::InternalError("set EC output parameters");
  }
  absl::StatusOr<std::string> der = PublicKey::FromEvp(copy.get()).ToDer();
  if (!der.ok()) return der.status();
  return PublicKey::FromDer(*der);
}

// The SubjectPublicKeyInfo X509_set_pubkey writes into a certificate for `key`.
std::string SpkiInCertificate(EVP_PKEY* key) {
  X509Ptr x509(X509_new());
  if (x509 == nullptr || X509_set_pubkey(x509.get(), key) != 1) return "";
  return testing::EncodedSpki(x509.get());
}

// `spki` decoded in the keyless context, as csr.cc decodes requests: the key is left undecoded.
OpenSslPtr<X509_PUBKEY, X509_PUBKEY_free> KeylessSpki(const std::string& spki) {
  const auto* p = reinterpret_cast<const unsigned char*>(spki.data());
  return OpenSslPtr<X509_PUBKEY, X509_PUBKEY_free>(reinterpret_cast<X509_PUBKEY*>(
      ASN1_item_d2i_ex(nullptr, &p, static_cast<long>(spki.size()), ASN1_ITEM_rptr(X509_PUBKEY),
                       KeylessDecodeContext(), nullptr)));
}

class EcShortcutTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(EcShortcutTest, DecodeEcSpkiIsOpenSslsDecoder) {
  auto key = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string spki = *key->public_key().ToDer();
  auto keyless = KeylessSpki(spki);
  ASSERT_NE(keyless, nullptr);
  EXPECT_EQ(X509_PUBKEY_get0(keyless.get()), nullptr) << "the keyless context decoded the key";
  ERR_clear_error();
  EvpPkeyPtr fast = internal::DecodeEcSpki(keyless.get());
  ASSERT_NE(fast, nullptr);
  PublicKey decoded = PublicKey::FromEvp(fast.get());
  EXPECT_TRUE(decoded.Equals(key->public_key()));
  EXPECT_EQ(decoded.type(), GetParam());
  EXPECT_EQ(*decoded.ToDer(), spki);
  EXPECT_EQ(SpkiInCertificate(fast.get()), SpkiInCertificate(key->get()));
  std::string signature = *key->Sign("data", Digest::kSha256);
  EXPECT_TRUE(decoded.Verify("data", signature, Digest::kSha256).ok());
  internal::EcSpkiKeys both = internal::DecodeEcSpkiWithLegacyCopy(keyless.get());
  ASSERT_NE(both.key, nullptr);
  ASSERT_NE(both.legacy, nullptr);
  EXPECT_TRUE(PublicKey::FromEvp(both.key.get()).Equals(key->public_key()));
  EXPECT_EQ(EVP_PKEY_get0_provider(both.legacy.get()), nullptr) << "not a legacy key";
  EXPECT_EQ(SpkiInCertificate(both.legacy.get()), spki);

  // A point off the curve: both OpenSSL's decoder and the shortcut refuse it.
  std::string off_curve = spki;
  off_curve.back() = static_cast<char>(off_curve.back() ^ 1);
  EXPECT_FALSE(PublicKey::FromDer(off_curve).ok());
  auto keyless_off = KeylessSpki(off_curve);
  ASSERT_NE(keyless_off, nullptr);
  EXPECT_EQ(internal::DecodeEcSpki(keyless_off.get()), nullptr);
  both = internal::DecodeEcSpkiWithLegacyCopy(keyless_off.get());
  EXPECT_EQ(both.key, nullptr);
  EXPECT_EQ(both.legacy, nullptr);
  ERR_clear_error();

  // Other forms are left to OpenSSL's decoder.
  for (auto [format, encoding] :
       {std::pair{"compressed", "named_curve"}, std::pair{"uncompressed", "explicit"}}) {
    auto other = ReadBackAs(*key, format, encoding);
    ASSERT_TRUE(other.ok()) << other.status();
    auto keyless_other = KeylessSpki(*other->ToDer());
    ASSERT_NE(keyless_other, nullptr);
    EXPECT_EQ(internal::DecodeEcSpki(keyless_other.get()), nullptr) << format << " " << encoding;
    EXPECT_EQ(internal::DecodeEcSpkiWithLegacyCopy(keyless_other.get()).legacy, nullptr);
  }
  ERR_clear_error();
}

TEST_P(EcShortcutTest, LegacyCopyWritesTheSameSpki) {
  auto key = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string spki = *key->public_key().ToDer();
  // Whatever made the provider key: generation, the SPKI decoder, the PEM reader.
  std::vector<PublicKey> sources = {key->public_key(), *PublicKey::FromDer(spki),
                                    *PublicKey::FromPem(*key->public_key().ToPem())};
  for (const PublicKey& source : sources) {
    EvpPkeyPtr legacy = internal::LegacyEcPublicKey(source.get());
    ASSERT_NE(legacy, nullptr);
    EXPECT_EQ(EVP_PKEY_get0_provider(legacy.get()), nullptr) << "not a legacy key";
    EXPECT_EQ(SpkiInCertificate(legacy.get()), SpkiInCertificate(source.get()));
    EXPECT_EQ(SpkiInCertificate(legacy.get()), spki);
    PublicKey copy = PublicKey::FromEvp(legacy.get());
    EXPECT_TRUE(copy.Equals(key->public_key()));
    EXPECT_EQ(copy.type(), GetParam());
    EXPECT_EQ(*copy.ToDer(), spki);
    std::string signature = *key->Sign("data", Digest::kSha256);
    EXPECT_TRUE(copy.Verify("data", signature, Digest::kSha256).ok());
  }
  // Keys whose SubjectPublicKeyInfo differs from the template's are left to X509_set_pubkey,
  // and so is a legacy key (X509_set_pubkey writes those directly).
  for (auto [format, encoding] :
       {std::pair{"compressed", "named_curve"}, std::pair{"uncompressed", "explicit"}}) {
    auto other = ReadBackAs(*key, format, encoding);
    ASSERT_TRUE(other.ok()) << other.status();
    EXPECT_EQ(internal::LegacyEcPublicKey(other->get()), nullptr) << format << " " << encoding;
  }
  EvpPkeyPtr legacy = internal::LegacyEcPublicKey(key->get());
  ASSERT_NE(legacy, nullptr);
  EXPECT_EQ(internal::LegacyEcPublicKey(legacy.get()), nullptr);
  ERR_clear_error();
}

INSTANTIATE_TEST_SUITE_P(EcTypes, EcShortcutTest,
                         ::testing::Values(KeyType::kEcP256, KeyType::kEcP384));

TEST(EcShortcutTest, OtherKeysAreLeftToOpenSsl) {
  for (KeyType type : {KeyType::kRsa2048}) {
    auto key = PrivateKey::Generate(type);
    ASSERT_TRUE(key.ok()) << key.status();
    EXPECT_EQ(internal::LegacyEcPublicKey(key->get()), nullptr);
    auto keyless = KeylessSpki(*key->public_key().ToDer());
    ASSERT_NE(keyless, nullptr);
    EXPECT_EQ(internal::DecodeEcSpki(keyless.get()), nullptr);
  }
  auto p521 = EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521"));
  ASSERT_NE(p521, nullptr);
  EXPECT_EQ(internal::LegacyEcPublicKey(p521.get()), nullptr);
  auto keyless = KeylessSpki(*PublicKey::FromEvp(p521.get()).ToDer());
  ASSERT_NE(keyless, nullptr);
  EXPECT_EQ(internal::DecodeEcSpki(keyless.get()), nullptr);
  EXPECT_EQ(internal::DecodeEcSpki(nullptr), nullptr);
  EXPECT_EQ(internal::LegacyEcPublicKey(nullptr), nullptr);
  ERR_clear_error();
}

}  // namespace
}  // namespace tessera::spiffe
