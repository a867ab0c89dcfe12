#include "spiffe/x509_svid.h"

#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_test_util.h"

namespace tessera::spiffe {
namespace {

using std::chrono::hours;
using std::chrono::seconds;
using testing::Ca;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Id;
using ::testing::IsEmpty;
using testing::Leaf;
using ::testing::Not;
using testing::Td;
using testing::TestNow;

// -1: extension absent; otherwise its critical flag.
int Critical(const Certificate& cert, int nid) {
  int idx = X509_get_ext_by_NID(cert.get(), nid, -1);
  if (idx < 0) return -1;
  return X509_EXTENSION_get_critical(X509_get_ext(cert.get(), idx));
}

int ExtensionCount(const Certificate& cert, int nid) {
  int count = 0;
  for (int idx = -1; (idx = X509_get_ext_by_NID(cert.get(), nid, idx)) >= 0;) ++count;
  return count;
}

std::string SignatureAlgorithm(const Certificate& cert) {
  return OBJ_nid2sn(X509_get_signature_nid(cert.get()));
}

TEST(X509SvidTest, RootCaProfile) {
  ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
  const Certificate& c = root.cert;
  EXPECT_EQ(X509_get_version(c.get()), X509_VERSION_3);
  EXPECT_TRUE(c.IsCa());
  EXPECT_EQ(Critical(c, NID_basic_constraints), 1);
  EXPECT_EQ(X509_get_pathlen(c.get()), -1);
  EXPECT_EQ(Critical(c, NID_key_usage), 1);
  EXPECT_EQ(X509_get_key_usage(c.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(Critical(c, NID_ext_key_usage), -1);
  EXPECT_THAT(c.UriSans(), ElementsAre("spiffe://example.org"));
  EXPECT_THAT(c.DnsSans(), IsEmpty());
  EXPECT_EQ(Critical(c, NID_subject_alt_name), 0);
  EXPECT_EQ(c.SubjectKeyId().size(), 20u);
  EXPECT_EQ(c.AuthorityKeyId(), c.SubjectKeyId());
  EXPECT_EQ(c.SubjectString(), "CN=root,O=SPIFFE,C=US");
  EXPECT_EQ(X509_check_issued(c.get(), c.get()), X509_V_OK);
  EXPECT_EQ(c.NotBefore(), TestNow() - seconds(10));
  EXPECT_EQ(c.NotAfter(), TestNow() + hours(24));
  EXPECT_EQ(SignatureAlgorithm(c), "ecdsa-with-SHA256");
}

TEST(X509SvidTest, DefaultSubjectsAndPathLen) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  CaTemplate tmpl{.public_key = key.public_key(),
                  .trust_domain = Td("example.org"),
                  .not_before = TestNow(),
                  .not_after = TestNow() + hours(1),
                  .max_path_len = 1};
  ASSERT_OK_AND_ASSIGN(Certificate ca, SignSelfSignedCa(tmpl, key));
  EXPECT_EQ(ca.SubjectString(), "O=SPIFFE,C=US");
  EXPECT_EQ(X509_get_pathlen(ca.get()), 1);
  EXPECT_EQ(DefaultLeafSubject(), (DistinguishedName{{"C", "US"}, {"O", "SPIRE"}}));
}

TEST(X509SvidTest, SerialsAreRandomPositiveAndWide) {
  std::set<std::string> serials;
  for (int i = 0; i < 8; ++i) {
    ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
    std::string hex = root.cert.SerialHex();
    EXPECT_THAT(hex, Not(HasSubstr("-")));
    EXPECT_LE(hex.size(), 32u);
    serials.insert(hex);
  }
  EXPECT_EQ(serials.size(), 8u);
  // 8 random 128-bit values all having 24+ leading zero bits would be a broken generator.
  size_t longest = 0;
  for (const auto& s : serials) longest = std::max(longest, s.size());
  EXPECT_GE(longest, 26u);
}

TEST(X509SvidTest, LeafProfile) {
  ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
  ASSERT_OK_AND_ASSIGN(Leaf leaf, testing::MakeLeaf(root, Id("spiffe://example.org/ns/web"),
                                                    TestNow(), {"web.example.org", "web"}));
  const Certificate& c = leaf.cert;
  EXPECT_FALSE(c.IsCa());
  EXPECT_EQ(Critical(c, NID_basic_constraints), 1);
  EXPECT_EQ(X509_get_extension_flags(c.get()) & EXFLAG_BCONS, static_cast<uint32_t>(EXFLAG_BCONS));
  EXPECT_EQ(Critical(c, NID_key_usage), 1);
  EXPECT_EQ(X509_get_key_usage(c.get()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT));
  EXPECT_EQ(Critical(c, NID_ext_key_usage), 0);
  EXPECT_EQ(X509_get_extended_key_usage(c.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  EXPECT_EQ(ExtensionCount(c, NID_subject_alt_name), 1);
  EXPECT_EQ(Critical(c, NID_subject_alt_name), 0);
  EXPECT_THAT(c.UriSans(), ElementsAre("spiffe://example.org/ns/web"));
  EXPECT_THAT(c.DnsSans(), ElementsAre("web.example.org", "web"));
  EXPECT_EQ(c.SubjectString(), "CN=web.example.org,O=SPIRE,C=US");
  EXPECT_EQ(c.AuthorityKeyId(), root.cert.SubjectKeyId());
  EXPECT_NE(c.SubjectKeyId(), root.cert.SubjectKeyId());
  EXPECT_EQ(c.SubjectKeyId().size(), 20u);
  EXPECT_EQ(X509_check_issued(root.cert.get(), c.get()), X509_V_OK);
  EXPECT_TRUE(c.public_key().Equals(leaf.key.public_key()));
  EXPECT_EQ(c.NotBefore(), TestNow() - seconds(10));
  EXPECT_EQ(c.NotAfter(), TestNow() + hours(1));
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(c.get()), X509_get_subject_name(root.cert.get())),
            0);
}

TEST(X509SvidTest, LeafWithoutDnsHasDefaultSubject) {
  ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
  ASSERT_OK_AND_ASSIGN(Leaf leaf, testing::MakeLeaf(root, Id("spiffe://example.org/a"), TestNow()));
  EXPECT_EQ(leaf.cert.SubjectString(), "O=SPIRE,C=US");
  EXPECT_THAT(leaf.cert.DnsSans(), IsEmpty());
}

TEST(X509SvidTest, EmptySubjectMakesSanCritical) {
  ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  LeafTemplate tmpl{.public_key = key.public_key(),
                    .spiffe_id = Id("spiffe://example.org/a"),
                    .dns_names = {},
                    .subject = {},
                    .not_before = TestNow(),
                    .not_after = TestNow() + hours(1)};
  ASSERT_OK_AND_ASSIGN(Certificate leaf, SignLeaf(tmpl, root.cert, root.key));
  EXPECT_EQ(leaf.SubjectString(), "");
  EXPECT_EQ(Critical(leaf, NID_subject_alt_name), 1);
}

TEST(X509SvidTest, LeafNeverOutlivesItsIssuer) {
  ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  LeafTemplate tmpl{.public_key = key.public_key(),
                    .spiffe_id = Id("spiffe://example.org/a"),
                    .not_before = TestNow() - kBackdate,
                    .not_after = TestNow() + hours(24 * 30)};
  ASSERT_OK_AND_ASSIGN(Certificate leaf, SignLeaf(tmpl, root.cert, root.key));
  EXPECT_EQ(leaf.NotAfter(), root.cert.NotAfter());

  // Intermediates are capped the same way.
  CaTemplate ca_tmpl{.public_key = key.public_key(),
                     .trust_domain = Td("example.org"),
                     .not_before = TestNow(),
                     .not_after = TestNow() + hours(24 * 365)};
  ASSERT_OK_AND_ASSIGN(Certificate intermediate, SignIntermediateCa(ca_tmpl, root.cert, root.key));
  EXPECT_EQ(intermediate.NotAfter(), root.cert.NotAfter());

  // Requested entirely after the issuer expires: nothing valid is left.
  tmpl.not_before = root.cert.NotAfter() + hours(1);
  tmpl.not_after = root.cert.NotAfter() + hours(2);
  auto late = SignLeaf(tmpl, root.cert, root.key);
  ASSERT_FALSE(late.ok());
  EXPECT_THAT(std::string(late.status().message()), HasSubstr("not_after is not after not_before"));
}

TEST(X509SvidTest, IntermediateChain) {
  ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
  ASSERT_OK_AND_ASSIGN(Ca mid, testing::MakeIntermediateCa(root, Td("example.org"), TestNow()));
  ASSERT_OK_AND_ASSIGN(Leaf leaf, testing::MakeLeaf(mid, Id("spiffe://example.org/a"), TestNow()));
  EXPECT_TRUE(mid.cert.IsCa());
  EXPECT_THAT(mid.cert.UriSans(), ElementsAre("spiffe://example.org"));
  EXPECT_EQ(mid.cert.AuthorityKeyId(), root.cert.SubjectKeyId());
  EXPECT_EQ(leaf.cert.AuthorityKeyId(), mid.cert.SubjectKeyId());
  EXPECT_EQ(X509_check_issued(root.cert.get(), mid.cert.get()), X509_V_OK);
  EXPECT_EQ(X509_check_issued(mid.cert.get(), leaf.cert.get()), X509_V_OK);
  EXPECT_EQ(X509_get_key_usage(mid.cert.get()),
            static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
}

TEST(X509SvidTest, SignatureDigestFollowsIssuerKey) {
  struct Case {
    KeyType type;
    std::string alg;
  };
  for (const Case& c :
       {Case{KeyType::kEcP256, "ecdsa-with-SHA256"}, Case{KeyType::kEcP384, "ecdsa-with-SHA384"},
        Case{KeyType::kRsa2048, "RSA-SHA256"}}) {
    ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow(), c.type));
    ASSERT_OK_AND_ASSIGN(Leaf leaf,
                         testing::MakeLeaf(root, Id("spiffe://example.org/a"), TestNow()));
    EXPECT_EQ(SignatureAlgorithm(root.cert), c.alg) << KeyTypeName(c.type);
    EXPECT_EQ(SignatureAlgorithm(leaf.cert), c.alg) << KeyTypeName(c.type);
    EXPECT_EQ(root.cert.public_key().type(), c.type);
  }
}

TEST(X509SvidTest, RefusesBadTemplates) {
  ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
  ASSERT_OK_AND_ASSIGN(Leaf leaf, testing::MakeLeaf(root, Id("spiffe://example.org/a"), TestNow()));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  LeafTemplate good{.public_key = key.public_key(),
                    .spiffe_id = Id("spiffe://example.org/b"),
                    .not_before = TestNow(),
                    .not_after = TestNow() + hours(1)};
  ASSERT_TRUE(SignLeaf(good, root.cert, root.key).ok());

  auto expect_error = [](const absl::StatusOr<Certificate>& r, const std::string& substr) {
    ASSERT_FALSE(r.ok()) << substr;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(substr));
  };

  LeafTemplate t = good;
  t.spiffe_id = Id("spiffe://example.org");
  expect_error(SignLeaf(t, root.cert, root.key), "must have a path");

  expect_error(SignLeaf(good, leaf.cert, leaf.key), "is not a CA");
  expect_error(SignLeaf(good, root.cert, key), "issuer key does not match");

  t = good;
  t.not_after = t.not_before;
  expect_error(SignLeaf(t, root.cert, root.key), "not_after is not after not_before");

  t = good;
  t.dns_names = {"bad name"};
  expect_error(SignLeaf(t, root.cert, root.key), "DNS name \"bad name\"");
  t.dns_names = {""};
  expect_error(SignLeaf(t, root.cert, root.key), "DNS name is empty");

  t = good;
  t.subject = {{"NoSuchAttribute", "x"}};
  expect_error(SignLeaf(t, root.cert, root.key), "subject attribute \"NoSuchAttribute\"");

  CaTemplate ca{.public_key = key.public_key(),
                .trust_domain = Td("example.org"),
                .not_before = TestNow(),
                .not_after = TestNow() + hours(1)};
  expect_error(SignSelfSignedCa(ca, root.key), "signing key does not match");
  ca.max_path_len = -1;
  expect_error(SignSelfSignedCa(ca, key), "max_path_len is negative");

  // pathLen 0 allows leaves below but no further CA.
  ca.max_path_len = 0;
  ASSERT_OK_AND_ASSIGN(Certificate pl0, SignSelfSignedCa(ca, key));
  Ca pl0_ca{key, pl0};
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate(KeyType::kEcP256));
  CaTemplate child{.public_key = other.public_key(),
                   .trust_domain = Td("example.org"),
                   .not_before = TestNow(),
                   .not_after = TestNow() + hours(1)};
  expect_error(SignIntermediateCa(child, pl0, key), "pathLenConstraint 0");
  EXPECT_TRUE(testing::MakeLeaf(pl0_ca, Id("spiffe://example.org/ok"), TestNow()).ok());
}

TEST(X509SvidTest, LongDnsNameStaysOutOfCn) {
  ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
  std::string long_name = std::string(70, 'a') + ".example.org";
  ASSERT_OK_AND_ASSIGN(
      Leaf leaf, testing::MakeLeaf(root, Id("spiffe://example.org/a"), TestNow(), {long_name}));
  EXPECT_EQ(leaf.cert.SubjectString(), "O=SPIRE,C=US");
  EXPECT_THAT(leaf.cert.DnsSans(), ElementsAre(long_name));
}

// The subjectPublicKeyInfo of `cert`, as encoded in it.
std::string Spki(const Certificate& cert) { return testing::EncodedSpki(cert.get()); }

// A leaf is handed out as built, without a DER round trip (see Build): it must be exactly what a
// peer parses from its DER, and carry the subjectPublicKeyInfo OpenSSL writes for the template's
// key, whether the key takes the EC shortcut or OpenSSL's general path.
TEST(X509SvidTest, LeafIsWhatItsDerParsesTo) {
  ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
  std::vector<PublicKey> keys;
  for (KeyType type : {KeyType::kEcP256, KeyType::kEcP384, KeyType::kRsa2048}) {
    ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(type));
    keys.push_back(key.public_key());
  }
  // A P-256 key that keeps its point compressed (the general path, which keeps it so).
  ASSERT_OK_AND_ASSIGN(PrivateKey compressed, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_EQ(EVP_PKEY_set_utf8_string_param(
                compressed.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"),
            1);
  ASSERT_OK_AND_ASSIGN(std::string compressed_spki, compressed.public_key().ToDer());
  ASSERT_OK_AND_ASSIGN(PublicKey compressed_key, PublicKey::FromDer(compressed_spki));
  keys.push_back(compressed_key);
  const std::vector<DistinguishedName> subjects = {
      DefaultLeafSubject(), {}, {{"O", "\u00dcn\u00efcode"}, {"OU", "a,b"}, {"CN", "x"}}};
  for (const PublicKey& key : keys) {
    ASSERT_OK_AND_ASSIGN(std::string key_spki, key.ToDer());
    for (const DistinguishedName& subject : subjects) {
      LeafTemplate tmpl{.public_key = key,
                        .spiffe_id = Id("spiffe://example.org/ns/web"),
                        .dns_names = {"web.example.org", "*.web.example.org"},
                        .subject = subject,
                        .not_before = TestNow() - kBackdate,
                        .not_after = TestNow() + hours(1)};
      ASSERT_OK_AND_ASSIGN(Certificate leaf, SignLeaf(tmpl, root.cert, root.key));
      const std::string der = leaf.ToDer();
      ASSERT_OK_AND_ASSIGN(Certificate parsed, Certificate::FromDer(der));
      EXPECT_EQ(parsed.ToDer(), der);
      EXPECT_EQ(leaf.ToDer(), der);
      EXPECT_EQ(X509_get_extension_flags(leaf.get()) & EXFLAG_INVALID, 0u);
      EXPECT_EQ(X509_verify(leaf.get(), root.cert.public_key().get()), 1);
      EXPECT_EQ(Spki(leaf), key_spki);
      EXPECT_EQ(Spki(parsed), key_spki);
      EXPECT_TRUE(leaf.public_key().Equals(key));
      EXPECT_EQ(leaf.public_key().type(), key.type());
      EXPECT_EQ(*leaf.public_key().ToDer(), key_spki);
      if (key.IsEc()) {  // a full provider key, e.g. for a JWK (x509_internal.h)
        BIGNUM* x = nullptr;
        EXPECT_EQ(EVP_PKEY_get_bn_param(leaf.public_key().get(), OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
        BN_free(x);
      }
      EXPECT_EQ(leaf.SubjectString(), parsed.SubjectString());
      EXPECT_EQ(leaf.SubjectKeyId(), parsed.SubjectKeyId());
      EXPECT_EQ(leaf.AuthorityKeyId(), root.cert.SubjectKeyId());
      EXPECT_EQ(leaf.NotAfter(), parsed.NotAfter());
      EXPECT_FALSE(leaf.IsCa());
    }
  }
  EXPECT_EQ(compressed_spki.size(), 59u) << "the compressed key was not kept compressed";
}

// Leaves minted from one issuer on several threads at once, as BatchNewX509SVID does.
TEST(X509SvidTest, ConcurrentLeavesFromOneIssuer) {
  ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
  constexpr int kThreads = 4;
  constexpr int kLeaves = 10;
  struct Minted {
    PublicKey key;
    absl::StatusOr<Certificate> cert;
  };
  std::vector<std::vector<Minted>> minted(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&root, &minted, t] {
      for (int i = 0; i < kLeaves; ++i) {
        absl::StatusOr<PrivateKey> key =
            PrivateKey::Generate(i % 3 == 2 ? KeyType::kEcP384 : KeyType::kEcP256);
        if (!key.ok()) return;
        LeafTemplate tmpl{.public_key = key->public_key(),
                          .spiffe_id = Id("spiffe://example.org/w" + std::to_string(t)),
                          .not_before = TestNow() - kBackdate,
                          .not_after = TestNow() + hours(1)};
        minted[t].push_back({key->public_key(), SignLeaf(tmpl, root.cert, root.key)});
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<std::string> serials;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(minted[t].size(), static_cast<size_t>(kLeaves));
    for (const Minted& m : minted[t]) {
      ASSERT_TRUE(m.cert.ok()) << m.cert.status();
      EXPECT_EQ(X509_verify(m.cert->get(), root.cert.public_key().get()), 1);
      EXPECT_TRUE(m.cert->public_key().Equals(m.key));
      EXPECT_EQ(Spki(*m.cert), *m.key.ToDer());
      EXPECT_THAT(m.cert->UriSans(), ElementsAre("spiffe://example.org/w" + std::to_string(t)));
      serials.insert(m.cert->SerialHex());
    }
  }
  EXPECT_EQ(serials.size(), static_cast<size_t>(kThreads * kLeaves));
}

// The issue asks for every kind of certificate to be accepted by the `openssl` tool itself.
class OpenSslCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(testing::RunCommand("openssl version").exit_code, 0) << "openssl CLI missing";
    ASSERT_FALSE(dir_.path().empty());
  }
  testing::TempDir dir_;
};

TEST_F(OpenSslCliTest, RootIntermediateAndLeafVerify) {
  ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
  ASSERT_OK_AND_ASSIGN(Ca mid, testing::MakeIntermediateCa(root, Td("example.org"), TestNow()));
  ASSERT_OK_AND_ASSIGN(Leaf leaf, testing::MakeLeaf(mid, Id("spiffe://example.org/ns/web"),
                                                    TestNow(), {"web.example.org"}));
  std::string ca_pem = dir_.Write("ca.pem", root.cert.ToPem());
  std::string mid_pem = dir_.Write("intermediate.pem", mid.cert.ToPem());
  std::string leaf_pem = dir_.Write("leaf.pem", leaf.cert.ToPem());
  std::string attime = " -attime " + testing::EpochSeconds(TestNow());

  auto r = testing::RunCommand("openssl verify" + attime + " -CAfile " + ca_pem + " -untrusted " +
                               mid_pem + " " + leaf_pem);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, leaf_pem + ": OK\n");

  r = testing::RunCommand("openssl verify" + attime + " -CAfile " + ca_pem + " " + mid_pem);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, mid_pem + ": OK\n");

  r = testing::RunCommand("openssl verify" + attime + " -CAfile " + ca_pem + " " + ca_pem);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, ca_pem + ": OK\n");

  // Without the intermediate, or at a time after the leaf expired, openssl must refuse.
  r = testing::RunCommand("openssl verify" + attime + " -CAfile " + ca_pem + " " + leaf_pem);
  EXPECT_NE(r.exit_code, 0) << r.output;
  r = testing::RunCommand("openssl verify -attime " + testing::EpochSeconds(TestNow() + hours(2)) +
                          " -CAfile " + ca_pem + " -untrusted " + mid_pem + " " + leaf_pem);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("certificate has expired"));

  r = testing::RunCommand("openssl x509 -noout -ext subjectAltName -in " + leaf_pem);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("URI:spiffe://example.org/ns/web, DNS:web.example.org"));

  r = testing::RunCommand("openssl x509 -noout -text -in " + leaf_pem);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("X509v3 Basic Constraints: critical\n                CA:FALSE"));
  EXPECT_THAT(r.output, HasSubstr("X509v3 Key Usage: critical\n                Digital "
                                  "Signature, Key Encipherment, Key Agreement\n"));
  EXPECT_THAT(r.output, HasSubstr("TLS Web Server Authentication, TLS Web Client Authentication"));
  EXPECT_THAT(r.output, HasSubstr("Subject: C = US, O = SPIRE, CN = web.example.org"));
  EXPECT_THAT(r.output, HasSubstr("X509v3 Subject Key Identifier"));
  EXPECT_THAT(r.output, HasSubstr("X509v3 Authority Key Identifier"));

  for (const std::string& ca : {ca_pem, mid_pem}) {
    r = testing::RunCommand("openssl x509 -noout -text -in " + ca);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("X509v3 Basic Constraints: critical\n                CA:TRUE"));
    EXPECT_THAT(
        r.output,
        HasSubstr("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"));
    EXPECT_THAT(r.output, Not(HasSubstr("TLS Web")));
    r = testing::RunCommand("openssl x509 -noout -ext subjectAltName -in " + ca);
    EXPECT_THAT(r.output, HasSubstr("URI:spiffe://example.org\n"));
  }
}

TEST_F(OpenSslCliTest, RsaAndP384ChainsVerify) {
  for (KeyType type : {KeyType::kEcP384, KeyType::kRsa2048}) {
    ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow(), type));
    ASSERT_OK_AND_ASSIGN(Leaf leaf,
                         testing::MakeLeaf(root, Id("spiffe://example.org/x"), TestNow()));
    std::string ca_pem = dir_.Write("ca.pem", root.cert.ToPem());
    std::string leaf_pem = dir_.Write("leaf.pem", leaf.cert.ToPem());
    auto r = testing::RunCommand("openssl verify -attime " + testing::EpochSeconds(TestNow()) +
                                 " -CAfile " + ca_pem + " " + leaf_pem);
    EXPECT_EQ(r.exit_code, 0) << KeyTypeName(type) << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr(": OK"));
  }
}

}  // namespace
}  // namespace tessera::spiffe
