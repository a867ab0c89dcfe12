#include "spiffe/certificate.h"

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_test_util.h"

namespace tessera::spiffe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(TESSERA_TESTDATA_DIR) + "/x509/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Hex(const std::string& bytes) {
  static const char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

class CertificateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = Certificate::FromPem(ReadTestdata("ca.pem"));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *ca;
    auto leaf = Certificate::FromPem(ReadTestdata("leaf.pem"));
    ASSERT_TRUE(leaf.ok()) << leaf.status();
    leaf_ = *leaf;
  }
  Certificate ca_ = Certificate::FromX509(nullptr);
  Certificate leaf_ = Certificate::FromX509(nullptr);
};

TEST_F(CertificateTest, Accessors) {
  EXPECT_TRUE(ca_.IsCa());
  EXPECT_FALSE(leaf_.IsCa());
  EXPECT_THAT(ca_.UriSans(), ElementsAre("spiffe://example.org"));
  EXPECT_THAT(ca_.DnsSans(), IsEmpty());
  EXPECT_THAT(leaf_.UriSans(), ElementsAre("spiffe://example.org/workload"));
  EXPECT_THAT(leaf_.DnsSans(), ElementsAre("foo.example.org", "bar.example.org"));
  EXPECT_EQ(ca_.SerialHex(), "a1b2c");
  EXPECT_EQ(ca_.SerialDecimal(), "662316");
  EXPECT_EQ(leaf_.SerialHex(), "3039");
  EXPECT_EQ(leaf_.SerialDecimal(), "12345");
  EXPECT_EQ(Hex(ca_.SubjectKeyId()), "4BE90183C08CD4CECE59680C4A8BF129662B9710");
  EXPECT_EQ(Hex(leaf_.SubjectKeyId()), "CF7BBA9FC96D2E6AAB1DEB1F60333A0819FA2973");
  EXPECT_EQ(leaf_.AuthorityKeyId(), ca_.SubjectKeyId());
  EXPECT_EQ(ca_.SubjectString(), "CN=test root,O=Tessera Test,C=US");
  EXPECT_EQ(leaf_.SubjectString(), "O=SPIRE,C=US");
  EXPECT_EQ(ca_.public_key().type(), KeyType::kEcP256);
  EXPECT_LT(leaf_.NotBefore(), leaf_.NotAfter());
  // The fixture was made with -days 36000: check the arithmetic, not the wall clock.
  auto days =
      std::chrono::duration_cast<std::chrono::hours>(leaf_.NotAfter() - leaf_.NotBefore()).count() /
      24;
  EXPECT_EQ(days, 36000);
}

TEST_F(CertificateTest, NotBeforeMatchesAsn1) {
  // Cross-check the conversion against OpenSSL's own arithmetic.
  ASN1_TIME* epoch = ASN1_TIME_set(nullptr, 0);
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, epoch, X509_get0_notBefore(leaf_.get())), 1);
  ASN1_TIME_free(epoch);
  auto expected = std::chrono::system_clock::from_time_t(static_cast<time_t>(days) * 86400 + secs);
  EXPECT_EQ(leaf_.NotBefore(), expected);
}

TEST_F(CertificateTest, FarFutureNotAfterIsClamped) {
  X509* copy = X509_dup(leaf_.get());
  ASSERT_NE(copy, nullptr);
  ASSERT_EQ(ASN1_TIME_set_string_X509(X509_getm_notAfter(copy), "99991231235959Z"), 1);
  Certificate cert = Certificate::FromX509(copy);
  X509_free(copy);
  EXPECT_EQ(cert.NotAfter(), Certificate::TimePoint::max());
}

TEST_F(CertificateTest, DerAndPemRoundTrip) {
  std::string der = leaf_.ToDer();
  auto again = Certificate::FromDer(der);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, leaf_);
  EXPECT_FALSE(*again == ca_);
  EXPECT_EQ(again->ToPem(), ReadTestdata("leaf.pem"));
  EXPECT_THAT(leaf_.ToPem(), StartsWith("-----BEGIN CERTIFICATE-----\n"));
}

// Found by the spiffe_x509 fuzzer: OpenSSL's d2i accepts this mutated certificate, but it is not
// DER (re-encoding it gives other bytes). Refused, alone and inside a chain.
TEST(CertificateParseTest, NonDerEncodingIsRefused) {
  const std::string ber = ReadTestdata("non_der_certificate.der");
  ASSERT_FALSE(ber.empty());
  auto one = Certificate::FromDer(ber);
  EXPECT_EQ(one.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(one.status().message()), HasSubstr("not DER"));
  auto chain = ParseDerChain(ber);
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(chain.status().message()), HasSubstr("not DER"));
}

// What OpenSSL's own d2i_X509 makes of `der`.
X509Ptr OpenSslParse(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  return X509Ptr(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
}

std::string SpkiOf(EVP_PKEY* key) {
  unsigned char* out = nullptr;
  int len = i2d_PUBKEY(key, &out);
  if (len <= 0) return "";
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(len));
  OPENSSL_free(out);
  return der;
}

// A leaf for `key` signed by `issuer`, as DER.
absl::StatusOr<std::string> LeafDer(const testing::Ca& issuer, const PublicKey& key) {
  LeafTemplate tmpl{.public_key = key,
                    .spiffe_id = testing::Id("spiffe://example.org/w"),
                    .dns_names = {"w.example.org"},
                    .not_before = testing::TestNow() - kBackdate,
                    .not_after = testing::TestNow() + kDefaultLeafTtl};
  ASSIGN_OR_RETURN(Certificate leaf, SignLeaf(tmpl, issuer.cert, issuer.key));
  return leaf.ToDer();
}

// FromDer reads the common EC keys without OpenSSL's decoder and keeps them in the X509 as legacy
// copies (x509_internal.h); other keys take d2i_X509's own path. Either way a certificate must be
// what d2i_X509 makes of its bytes, and its public_key() must be a full provider key.
TEST(CertificateParseTest, EveryKeyFormParsesAsOpenSslParsesIt) {
  const TrustDomain td = testing::Td("example.org");
  ASSERT_OK_AND_ASSIGN(testing::Ca root, testing::MakeRootCa(td, testing::TestNow()));
  std::vector<std::string> ders = {root.cert.ToDer()};
  for (const char* pem : {"ca.pem", "leaf.pem"}) {
    const std::string text = ReadTestdata(pem);
    BioPtr bio = MemBio(text);
    X509Ptr x509(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    ASSERT_NE(x509, nullptr) << pem;
    unsigned char* out = nullptr;
    int len = i2d_X509(x509.get(), &out);
    ASSERT_GT(len, 0);
    ders.emplace_back(reinterpret_cast<char*>(out), static_cast<size_t>(len));
    OPENSSL_free(out);
  }
  for (KeyType type : {KeyType::kEcP384, KeyType::kRsa2048}) {
    ASSERT_OK_AND_ASSIGN(testing::Ca other, testing::MakeRootCa(td, testing::TestNow(), type));
    ders.push_back(other.cert.ToDer());
  }
  for (KeyType type : {KeyType::kEcP256, KeyType::kEcP384, KeyType::kRsa2048}) {
    ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(type));
    ASSERT_OK_AND_ASSIGN(std::string der, LeafDer(root, key.public_key()));
    ders.push_back(der);
  }
  for (const char* param :
       {OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, OSSL_PKEY_PARAM_EC_ENCODING}) {
    // A compressed point, then explicit curve parameters: left to d2i_X509.
    ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
    const char* value =
        std::string_view(param) == OSSL_PKEY_PARAM_EC_ENCODING ? "explicit" : "compressed";
    ASSERT_EQ(EVP_PKEY_set_utf8_string_param(key.get(), param, value), 1);
    ASSERT_OK_AND_ASSIGN(std::string der, LeafDer(root, key.public_key()));
    ders.push_back(der);
  }
  std::string chain_der;
  for (const std::string& der : ders) {
    SCOPED_TRACE(Hex(der.substr(0, 64)));
    ASSERT_FALSE(der.empty());
    chain_der += der;
    X509Ptr reference = OpenSslParse(der);
    ASSERT_NE(reference, nullptr);
    EVP_PKEY* reference_key = X509_get0_pubkey(reference.get());
    ASSERT_NE(reference_key, nullptr);
    ASSERT_OK_AND_ASSIGN(Certificate cert, Certificate::FromDer(der));
    EXPECT_EQ(cert.ToDer(), der);
    EXPECT_EQ(X509_cmp(cert.get(), reference.get()), 0);
    EXPECT_EQ(X509_get_extension_flags(cert.get()), X509_get_extension_flags(reference.get()));
    EXPECT_EQ(X509_get_key_usage(cert.get()), X509_get_key_usage(reference.get()));
    EXPECT_EQ(SpkiOf(cert.public_key().get()), SpkiOf(reference_key));
    EXPECT_EQ(SpkiOf(X509_get0_pubkey(cert.get())), SpkiOf(reference_key));
    EXPECT_TRUE(cert.public_key().Equals(PublicKey::FromEvp(reference_key)));
    EXPECT_EQ(cert.public_key().type(), PublicKey::FromEvp(reference_key).type());
    if (cert.public_key().IsEc()) {
      // What a JWK needs (a legacy EC key in OpenSSL 3.0 cannot give it).
      BIGNUM* x = nullptr;
      EXPECT_EQ(EVP_PKEY_get_bn_param(cert.public_key().get(), OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
      BN_free(x);
    }
    if (X509_check_issued(root.cert.get(), cert.get()) == X509_V_OK) {
      EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(root.cert.get())), 1);
    } else if (cert.IsCa()) {
      EXPECT_EQ(X509_check_issued(cert.get(), cert.get()), X509_V_OK);
      EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(cert.get())), 1);
    }
  }
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> chain, ParseDerChain(chain_der));
  ASSERT_EQ(chain.size(), ders.size());
  EXPECT_EQ(ChainToDer(chain), chain_der);
  EXPECT_EQ(ERR_peek_error(), 0u) << "error queue left dirty";
}

// One parsed certificate read from several threads at once (it re-encodes on every ToDer).
TEST_F(CertificateTest, ConcurrentReadersSeeTheSameCertificate) {
  const std::string der = leaf_.ToDer();
  ASSERT_OK_AND_ASSIGN(Certificate cert, Certificate::FromDer(der));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&cert, &der, &mismatches, t] {
      for (int i = 0; i < 50; ++i) {
        if (cert.ToDer() != der || cert.ToPem().empty() || cert.UriSans().size() != 1 ||
            cert.IsCa() || !cert.public_key().IsEc()) {
          ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(mismatches, ::testing::Each(0));
}

TEST_F(CertificateTest, SingleCertificateErrors) {
  std::string der = leaf_.ToDer();
  auto empty = Certificate::FromDer("");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("empty input"));
  auto trailing = Certificate::FromDer(der + "\x01");
  ASSERT_FALSE(trailing.ok());
  EXPECT_THAT(std::string(trailing.status().message()), HasSubstr("trailing data after DER"));
  auto truncated = Certificate::FromDer(der.substr(0, der.size() - 3));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(truncated.status().message()), StartsWith("parse certificate: "));
  EXPECT_FALSE(Certificate::FromDer("garbage").ok());
  // Two certificates are not one.
  EXPECT_FALSE(Certificate::FromDer(der + ca_.ToDer()).ok());
  auto two_pem = Certificate::FromPem(leaf_.ToPem() + ca_.ToPem());
  ASSERT_FALSE(two_pem.ok());
  EXPECT_THAT(std::string(two_pem.status().message()), HasSubstr("exactly one CERTIFICATE"));
  auto key_pem = Certificate::FromPem(ReadTestdata("leaf.key.pem"));
  ASSERT_FALSE(key_pem.ok());
  EXPECT_THAT(std::string(key_pem.status().message()),
              HasSubstr("unexpected block \"PRIVATE KEY\""));
  EXPECT_FALSE(Certificate::FromPem("").ok());
  EXPECT_FALSE(Certificate::FromPem("hello").ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_F(CertificateTest, DerChain) {
  std::vector<Certificate> chain = {leaf_, ca_};
  std::string der = ChainToDer(chain);
  EXPECT_EQ(der, leaf_.ToDer() + ca_.ToDer());
  auto parsed = ParseDerChain(der);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0], leaf_);
  EXPECT_EQ((*parsed)[1], ca_);

  auto single = ParseDerChain(leaf_.ToDer());
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->size(), 1u);

  auto empty = ParseDerChain("");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("empty input"));
  auto trailing = ParseDerChain(der + "junk");
  ASSERT_FALSE(trailing.ok());
  EXPECT_THAT(std::string(trailing.status().message()),
              StartsWith("parse certificate chain: certificate #3: "));
  auto truncated = ParseDerChain(der.substr(0, der.size() - 1));
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(std::string(truncated.status().message()), HasSubstr("certificate #2"));
  EXPECT_FALSE(ParseDerChain(std::string(1, '\0')).ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_F(CertificateTest, PemChain) {
  std::vector<Certificate> chain = {leaf_, ca_};
  std::string pem = ChainToPem(chain);
  auto parsed = ParsePemChain("leading text\n" + pem + "trailing text\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0], leaf_);
  EXPECT_EQ((*parsed)[1], ca_);

  auto empty = ParsePemChain("");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("no CERTIFICATE block"));
  EXPECT_FALSE(ParsePemChain("just words\n").ok());
  auto with_key = ParsePemChain(pem + ReadTestdata("leaf.key.pem"));
  ASSERT_FALSE(with_key.ok());
  EXPECT_THAT(std::string(with_key.status().message()), HasSubstr("PRIVATE KEY"));
  // A block whose body is not a certificate.
  auto bad_body = ParsePemChain("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  EXPECT_FALSE(bad_body.ok());
  // A block that never ends.
  std::string unterminated = pem.substr(0, pem.size() - 10);
  EXPECT_FALSE(ParsePemChain(unterminated).ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_F(CertificateTest, CopiesShareTheObject) {
  Certificate copy = leaf_;
  EXPECT_EQ(copy.get(), leaf_.get());
  Certificate ref = Certificate::FromX509(leaf_.get());
  EXPECT_EQ(ref, leaf_);
  EXPECT_TRUE(ref.public_key().Equals(leaf_.public_key()));
}

}  // namespace
}  // namespace tessera::spiffe
