#include "spiffe/csr.h"

#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_svid.h"
#include "spiffe/x509_test_util.h"
#include "spiffe/x509_verify.h"

namespace tessera::spiffe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Id;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using testing::TestNow;

struct ExtensionStackDeleter {
  void operator()(STACK_OF(X509_EXTENSION) * exts) const {
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
};
using ExtensionStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), ExtensionStackDeleter>;

class CsrKeyTypeTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(CsrKeyTypeTest, RoundTripCarriesUriSanAndKey) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam()));
  ASSERT_OK_AND_ASSIGN(std::string der, CreateCsr(key, Id("spiffe://example.org/ns/web"),
                                                  {"web.example.org", "web"}));
  ASSERT_OK_AND_ASSIGN(ParsedCsr csr, ParseCsr(der));
  EXPECT_THAT(csr.uri_sans, ElementsAre("spiffe://example.org/ns/web"));
  EXPECT_THAT(csr.dns_sans, ElementsAre("web.example.org", "web"));
  EXPECT_TRUE(csr.public_key.Equals(key.public_key()));
  EXPECT_EQ(csr.public_key.type(), GetParam());
  EXPECT_EQ(*csr.public_key.ToDer(), *key.public_key().ToDer());
  EXPECT_EQ(csr.subject, "");
}

INSTANTIATE_TEST_SUITE_P(AllTypes, CsrKeyTypeTest,
                         ::testing::Values(KeyType::kEcP256, KeyType::kEcP384, KeyType::kRsa2048));

TEST(CsrTest, PemRoundTrip) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string pem, CreateCsrPem(key, Id("spiffe://example.org/a")));
  EXPECT_THAT(pem, StartsWith("-----BEGIN CERTIFICATE REQUEST-----\n"));
  ASSERT_OK_AND_ASSIGN(ParsedCsr csr, ParseCsr(pem));
  EXPECT_THAT(csr.uri_sans, ElementsAre("spiffe://example.org/a"));
  EXPECT_THAT(csr.dns_sans, IsEmpty());
  EXPECT_TRUE(csr.public_key.Equals(key.public_key()));
}

TEST(CsrTest, TamperedCsrIsRejected) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string der, CreateCsr(key, Id("spiffe://example.org/alice")));
  // Rewrite the requested identity inside the signed part: same length, still valid DER.
  size_t pos = der.find("alice");
  ASSERT_NE(pos, std::string::npos);
  std::string forged = der;
  forged.replace(pos, 5, "admin");
  auto r = ParseCsr(forged);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("signature does not verify"));

  // Swapping in someone else's public key is the same failure (no proof of possession).
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string spki, key.public_key().ToDer());
  ASSERT_OK_AND_ASSIGN(std::string other_spki, other.public_key().ToDer());
  pos = der.find(spki);
  ASSERT_NE(pos, std::string::npos);
  std::string swapped = der;
  swapped.replace(pos, spki.size(), other_spki);
  r = ParseCsr(swapped);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("signature does not verify"));
}

TEST(CsrTest, BadInput) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string der, CreateCsr(key, Id("spiffe://example.org/a")));
  auto empty = ParseCsr("");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("empty input"));
  auto trailing = ParseCsr(der + "x");
  ASSERT_FALSE(trailing.ok());
  EXPECT_THAT(std::string(trailing.status().message()), HasSubstr("trailing data"));
  auto truncated = ParseCsr(der.substr(0, der.size() - 2));
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(std::string(truncated.status().message()), StartsWith("parse CSR: "));
  EXPECT_FALSE(ParseCsr("garbage").ok());
  EXPECT_FALSE(ParseCsr("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE "
                        "REQUEST-----\n")
                   .ok());
  // A certificate is not a CSR.
  ASSERT_OK_AND_ASSIGN(testing::Ca root,
                       testing::MakeRootCa(testing::Td("example.org"), TestNow()));
  EXPECT_FALSE(ParseCsr(root.cert.ToDer()).ok());
  EXPECT_FALSE(ParseCsr(root.cert.ToPem()).ok());
  // Bad DNS names are refused when creating.
  auto bad_dns = CreateCsr(key, Id("spiffe://example.org/a"), {"a b"});
  ASSERT_FALSE(bad_dns.ok());
  EXPECT_THAT(std::string(bad_dns.status().message()), HasSubstr("create CSR: DNS name"));
}

// A request with two subjectAltName extensions (malformed: RFC 5280 allows one), signed by `key`.
absl::StatusOr<std::string> CsrWithTwoSans(const PrivateKey& key) {
  X509ReqPtr req(X509_REQ_new());
  ExtensionStackPtr exts(sk_X509_EXTENSION_new_null());
  if (req == nullptr || exts == nullptr || X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
    return absl::InternalError("allocate request");
  }
  for (const char* value : {"URI:spiffe://example.org/a", "URI:spiffe://example.org/b"}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, value);
    if (ext == nullptr || sk_X509_EXTENSION_push(exts.get(), ext) <= 0) {
      X509_EXTENSION_free(ext);
      return absl::InternalError("build SAN extension");
    }
  }
  if (X509_REQ_add_extensions(req.get(), exts.get()) != 1 ||
      X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return absl::InternalError("sign request");
  }
  unsigned char* out = nullptr;
  int len = i2d_X509_REQ(req.get(), &out);
  if (len <= 0) return absl::InternalError("encode request");
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(len));
  OPENSSL_free(out);
  return der;
}

TEST(CsrSplitTest, UnverifiedThenVerifiedEqualsParseCsr) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string der,
                       CreateCsr(key, Id("spiffe://example.org/ns/web"), {"web.example.org"}));
  ASSERT_OK_AND_ASSIGN(std::string pem, CreateCsrPem(key, Id("spiffe://example.org/ns/web")));
  for (const std::string& input : {der, pem}) {
    ASSERT_OK_AND_ASSIGN(UnverifiedCsr unverified, ParseCsrUnverified(input));
    ASSERT_OK_AND_ASSIGN(ParsedCsr csr, VerifyCsrSignature(std::move(unverified)));
    ASSERT_OK_AND_ASSIGN(ParsedCsr expected, ParseCsr(input));
    EXPECT_THAT(csr.uri_sans, ElementsAre("spiffe://example.org/ns/web"));
    EXPECT_EQ(csr.uri_sans, expected.uri_sans);
    EXPECT_EQ(csr.dns_sans, expected.dns_sans);
    EXPECT_EQ(csr.subject, expected.subject);
    EXPECT_TRUE(csr.public_key.Equals(key.public_key()));
  }
}

TEST(CsrSplitTest, ForgedRequestParsesButDoesNotVerify) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string der, CreateCsr(key, Id("spiffe://example.org/alice")));
  std::string forged = der;
  forged.replace(forged.find("alice"), 5, "admin");
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string spki, key.public_key().ToDer());
  ASSERT_OK_AND_ASSIGN(std::string other_spki, other.public_key().ToDer());
  std::string swapped = der;
  swapped.replace(swapped.find(spki), spki.size(), other_spki);

  for (const std::string& input : {forged, swapped}) {
    ASSERT_OK_AND_ASSIGN(UnverifiedCsr unverified, ParseCsrUnverified(input));
    auto r = VerifyCsrSignature(std::move(unverified));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), "CSR signature does not verify");
  }
}

TEST(CsrSplitTest, MalformedRequestsFailToParseWithParseCsrMessages) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string der, CreateCsr(key, Id("spiffe://example.org/a")));
  ASSERT_OK_AND_ASSIGN(testing::Ca root,
                       testing::MakeRootCa(testing::Td("example.org"), TestNow()));
  ASSERT_OK_AND_ASSIGN(std::string two_sans, CsrWithTwoSans(key));
  for (const std::string& input :
       {std::string(), der + "x", der.substr(0, der.size() - 2), std::string("garbage"),
        root.cert.ToDer(), root.cert.ToPem(), two_sans}) {
    auto unverified = ParseCsrUnverified(input);
    ASSERT_FALSE(unverified.ok());
    EXPECT_EQ(unverified.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(unverified.status().message()), StartsWith("parse CSR"));
    auto parsed = ParseCsr(input);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status(), unverified.status());
  }
  auto r = ParseCsrUnverified(two_sans);
  EXPECT_EQ(r.status().message(), "parse CSR: more than one subjectAltName extension");
}

TEST(CsrSplitTest, MalformedAndForgedIsMalformedFirst) {
  // Go's order (parse, then check the signature) for the split API; ParseCsr checks the
  // signature before reading extensions.
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string der, CsrWithTwoSans(key));
  der.back() ^= 0x01;  // inside the signature value
  auto unverified = ParseCsrUnverified(der);
  ASSERT_FALSE(unverified.ok());
  EXPECT_EQ(unverified.status().message(), "parse CSR: more than one subjectAltName extension");
  auto parsed = ParseCsr(der);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "parse CSR: signature does not verify");
}

// csr.cc reads the keys of most requests without OpenSSL's decoder (uncompressed P-256/P-384 on
// a named curve) and leaves the rest to it: either way a request reads as OpenSSL reads it, with
// the key its decoder makes of the bytes and the same verdicts.
TEST(CsrSplitTest, EveryEcKeyFormReadsAsOpenSslReadsIt) {
  for (KeyType type : {KeyType::kEcP256, KeyType::kEcP384}) {
    ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(type));
    for (auto [format, encoding] :
         {std::pair{"uncompressed", "named_curve"}, std::pair{"compressed", "named_curve"},
          std::pair{"uncompressed", "explicit"}}) {
      SCOPED_TRACE(std::string(KeyTypeName(type)) + " " + format + " " + encoding);
      EvpPkeyPtr copy(EVP_PKEY_dup(key.get()));
      ASSERT_NE(copy, nullptr);
      ASSERT_EQ(EVP_PKEY_set_utf8_string_param(copy.get(),
                                               OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, format),
                1);
      ASSERT_EQ(EVP_PKEY_set_utf8_string_param(copy.get(), OSSL_PKEY_PARAM_EC_ENCODING, encoding),
                1);
      PrivateKey signer = PrivateKey::FromEvp(copy.get());
      ASSERT_OK_AND_ASSIGN(std::string spki, signer.public_key().ToDer());
      ASSERT_OK_AND_ASSIGN(std::string der, CreateCsr(signer, Id("spiffe://example.org/a")));
      const size_t spki_at = der.find(spki);
      ASSERT_NE(spki_at, std::string::npos);

      ASSERT_OK_AND_ASSIGN(ParsedCsr csr, ParseCsr(der));
      EXPECT_EQ(*csr.public_key.ToDer(), spki);
      EXPECT_TRUE(csr.public_key.Equals(key.public_key()));
      ASSERT_OK_AND_ASSIGN(UnverifiedCsr unverified, ParseCsrUnverified(der));
      ASSERT_OK_AND_ASSIGN(ParsedCsr verified, VerifyCsrSignature(std::move(unverified)));
      EXPECT_EQ(*verified.public_key.ToDer(), spki);

      // Another signer's key in its place: decodes, does not verify.
      ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate(type));
      ASSERT_OK_AND_ASSIGN(std::string other_spki, other.public_key().ToDer());
      std::string swapped = der;
      swapped.replace(spki_at, spki.size(), other_spki);
      if (other_spki.size() == spki.size()) {
        ASSERT_OK_AND_ASSIGN(UnverifiedCsr forged, ParseCsrUnverified(swapped));
        EXPECT_FALSE(VerifyCsrSignature(std::move(forged)).ok());
        EXPECT_EQ(ParseCsr(swapped).status().message(), "parse CSR: signature does not verify");
      }

      // The point moved off the curve (the last byte of its y): a key OpenSSL cannot decode.
      if (std::string_view(format) != "uncompressed") continue;
      std::string off_curve = der;
      off_curve[spki_at + spki.size() - 1] ^= 0x01;
      auto r = ParseCsrUnverified(off_curve);
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(r.status().message()), StartsWith("parse CSR: public key: "));
      EXPECT_EQ(ParseCsr(off_curve).status(), r.status());
    }
  }
}

TEST(CsrSplitTest, MovedFromRequestNeverVerifies) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string der, CreateCsr(key, Id("spiffe://example.org/a")));
  ASSERT_OK_AND_ASSIGN(UnverifiedCsr first, ParseCsrUnverified(der));
  UnverifiedCsr second = std::move(first);
  EXPECT_EQ(
      VerifyCsrSignature(std::move(first)).status().message(),  // NOLINT(bugprone-use-after-move)
      "CSR signature does not verify");
  EXPECT_TRUE(VerifyCsrSignature(std::move(second)).ok());
}

TEST(CsrTest, ServerMintsSvidFromCsr) {
  ASSERT_OK_AND_ASSIGN(testing::Ca root,
                       testing::MakeRootCa(testing::Td("example.org"), TestNow()));
  ASSERT_OK_AND_ASSIGN(PrivateKey workload_key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string der,
                       CreateCsr(workload_key, Id("spiffe://example.org/web"), {"web.local"}));
  ASSERT_OK_AND_ASSIGN(ParsedCsr csr, ParseCsr(der));
  ASSERT_EQ(csr.uri_sans.size(), 1u);
  ASSERT_OK_AND_ASSIGN(SpiffeId id, SpiffeId::Parse(csr.uri_sans[0]));
  LeafTemplate tmpl{.public_key = csr.public_key,
                    .spiffe_id = id,
                    .dns_names = csr.dns_sans,
                    .not_before = TestNow() - kBackdate,
                    .not_after = TestNow() + kDefaultLeafTtl};
  ASSERT_OK_AND_ASSIGN(Certificate leaf, SignLeaf(tmpl, root.cert, root.key));
  // The node's key (which never left it) completes the SVID.
  ASSERT_OK_AND_ASSIGN(std::string key_der, workload_key.ToPkcs8Der());
  ASSERT_OK_AND_ASSIGN(X509Svid svid, ParseX509Svid(leaf.ToDer(), key_der));
  EXPECT_EQ(svid.id.str(), "spiffe://example.org/web");
  EXPECT_THAT(leaf.DnsSans(), ElementsAre("web.local"));
}

TEST(CsrTest, OpenSslCliAcceptsCsr) {
  ASSERT_EQ(testing::RunCommand("openssl version").exit_code, 0) << "openssl CLI missing";
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  for (KeyType type : {KeyType::kEcP256, KeyType::kRsa2048}) {
    ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(type));
    ASSERT_OK_AND_ASSIGN(std::string pem,
                         CreateCsrPem(key, Id("spiffe://example.org/ns/web"), {"web.example.org"}));
    std::string path = dir.Write("csr.pem", pem);
    auto r = testing::RunCommand("openssl req -verify -noout -in " + path);
    EXPECT_EQ(r.exit_code, 0) << KeyTypeName(type) << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("verify OK"));
    r = testing::RunCommand("openssl req -noout -text -in " + path);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("URI:spiffe://example.org/ns/web, DNS:web.example.org"));

    // A tampered request fails openssl's check too (OpenSSL 3.0's `req -verify` still exits 0
    // on failure, so the message is what tells).
    ASSERT_OK_AND_ASSIGN(std::string der,
                         CreateCsr(key, Id("spiffe://example.org/alice"), {"web.example.org"}));
    der.replace(der.find("alice"), 5, "admin");
    std::string bad = dir.Write("bad.der", der);
    r = testing::RunCommand("openssl req -verify -noout -inform DER -in " + bad);
    EXPECT_THAT(r.output, HasSubstr("verify failure"));
    EXPECT_THAT(r.output, ::testing::Not(HasSubstr("verify OK")));
  }
}

TEST(CsrTest, AcceptsCsrWithoutSanFromOpenSsl) {
  // SPIRE agents send CSRs with no URI SAN; the server takes the ID from its own records.
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string key_pem, key.ToPkcs8Pem());
  std::string key_path = dir.Write("key.pem", key_pem);
  std::string csr_path = dir.path() + "/req.pem";
  auto r =
      testing::RunCommand("openssl req -new -key " + key_path + " -subj /O=SPIRE -out " + csr_path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(csr_path);
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_OK_AND_ASSIGN(ParsedCsr csr, ParseCsr(pem));
  EXPECT_THAT(csr.uri_sans, IsEmpty());
  EXPECT_EQ(csr.subject, "O=SPIRE");
  EXPECT_TRUE(csr.public_key.Equals(key.public_key()));
}

}  // namespace
}  // namespace tessera::spiffe
