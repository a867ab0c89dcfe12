#include "spiffe/certificate.h"

#include <openssl/asn1.h>
#include <openssl/err.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

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
