#include "spiffe/x509_verify.h"

#include <openssl/x509_vfy.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_svid.h"
#include "spiffe/x509_test_util.h"

namespace tessera::spiffe {
namespace {

using std::chrono::hours;
using std::chrono::seconds;
using testing::Ca;
using testing::CraftOptions;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Id;
using testing::Leaf;
using testing::Td;
using testing::TestNow;

// A bundle source backed by a map: trust domains absent from it have no bundle.
X509AuthoritiesSource Bundles(std::map<std::string, std::vector<Certificate>> by_td) {
  return
      [by_td = std::move(by_td)](const TrustDomain& td) -> std::optional<std::vector<Certificate>> {
        auto it = by_td.find(td.name());
        if (it == by_td.end()) return std::nullopt;
        return it->second;
      };
}

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(root_, testing::MakeRootCa(Td("example.org"), TestNow()));
    ASSERT_OK_AND_ASSIGN(mid_, testing::MakeIntermediateCa(root_, Td("example.org"), TestNow()));
    ASSERT_OK_AND_ASSIGN(leaf_, testing::MakeLeaf(mid_, Id("spiffe://example.org/web"), TestNow()));
    ASSERT_OK_AND_ASSIGN(other_root_, testing::MakeRootCa(Td("other.org"), TestNow(),
                                                          KeyType::kEcP256, "other root"));
    ASSERT_OK_AND_ASSIGN(leaf_key_, PrivateKey::Generate(KeyType::kEcP256));
  }

  // A leaf crafted by hand under root_, valid at TestNow() unless `opts` says otherwise.
  absl::StatusOr<Certificate> Craft(CraftOptions opts) {
    if (opts.not_before == testing::TimePoint{}) {
      opts.not_before = TestNow() - hours(1);
      opts.not_after = TestNow() + hours(1);
    }
    return testing::Craft(opts, leaf_key_.public_key(), root_);
  }

  absl::StatusOr<VerifiedX509Svid> Verify(std::vector<Certificate> chain,
                                          testing::TimePoint now = TestNow()) {
    return VerifyX509Svid(
        chain, Bundles({{"example.org", {root_.cert}}, {"other.org", {other_root_.cert}}}), now);
  }

  // Asserts an Unauthenticated failure whose message contains `substr`.
  static void ExpectRejected(const absl::StatusOr<VerifiedX509Svid>& r, const std::string& substr) {
    ASSERT_FALSE(r.ok()) << "expected rejection: " << substr;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(substr));
    EXPECT_THAT(std::string(r.status().message()), ::testing::StartsWith("verify X509-SVID: "));
  }

  Ca root_{*PrivateKey::Generate(KeyType::kEcP256), Certificate::FromX509(nullptr)};
  Ca mid_ = root_;
  Leaf leaf_{root_.key, Certificate::FromX509(nullptr)};
  Ca other_root_ = root_;
  PrivateKey leaf_key_ = root_.key;
};

TEST_F(VerifyTest, AcceptsLeafUnderRoot) {
  ASSERT_OK_AND_ASSIGN(Leaf leaf,
                       testing::MakeLeaf(root_, Id("spiffe://example.org/a/b"), TestNow()));
  ASSERT_OK_AND_ASSIGN(VerifiedX509Svid v, Verify({leaf.cert}));
  EXPECT_EQ(v.id.str(), "spiffe://example.org/a/b");
  EXPECT_THAT(v.chain, ElementsAre(leaf.cert, root_.cert));
}

TEST_F(VerifyTest, AcceptsLeafUnderIntermediate) {
  ASSERT_OK_AND_ASSIGN(VerifiedX509Svid v, Verify({leaf_.cert, mid_.cert}));
  EXPECT_EQ(v.id.str(), "spiffe://example.org/web");
  EXPECT_THAT(v.chain, ElementsAre(leaf_.cert, mid_.cert, root_.cert));
  // notBefore is inclusive; OpenSSL treats the notAfter second itself as expired (RFC 5280
  // would still accept it), so the last accepted instant is one second earlier.
  EXPECT_TRUE(Verify({leaf_.cert, mid_.cert}, leaf_.cert.NotBefore()).ok());
  EXPECT_TRUE(Verify({leaf_.cert, mid_.cert}, leaf_.cert.NotAfter() - seconds(1)).ok());
  auto at_end = Verify({leaf_.cert, mid_.cert}, leaf_.cert.NotAfter());
  ExpectRejected(at_end, "certificate has expired");
}

TEST_F(VerifyTest, PresentedRootInChainIsHarmless) {
  ASSERT_OK_AND_ASSIGN(VerifiedX509Svid v, Verify({leaf_.cert, mid_.cert, root_.cert}));
  EXPECT_THAT(v.chain, ElementsAre(leaf_.cert, mid_.cert, root_.cert));
}

TEST_F(VerifyTest, IntermediateInBundleIsAnAnchor) {
  // Decision (documented in x509_verify.h): every bundle certificate is a trust anchor, as with
  // Go's x509 roots, so a bundle may pin an intermediate.
  auto r = VerifyX509Svid(std::vector<Certificate>{leaf_.cert},
                          Bundles({{"example.org", {mid_.cert}}}), TestNow());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->chain, ElementsAre(leaf_.cert, mid_.cert));
}

TEST_F(VerifyTest, LeafIsNeverItsOwnAnchor) {
  auto r = VerifyX509Svid(std::vector<Certificate>{leaf_.cert},
                          Bundles({{"example.org", {leaf_.cert}}}), TestNow());
  ExpectRejected(r, "the leaf certificate is itself a bundle authority");
}

TEST_F(VerifyTest, SeveralAuthoritiesInOneBundle) {
  ASSERT_OK_AND_ASSIGN(Ca next_root,
                       testing::MakeRootCa(Td("example.org"), TestNow(), KeyType::kEcP384, "next"));
  ASSERT_OK_AND_ASSIGN(Leaf leaf,
                       testing::MakeLeaf(next_root, Id("spiffe://example.org/a"), TestNow()));
  auto r = VerifyX509Svid(std::vector<Certificate>{leaf.cert},
                          Bundles({{"example.org", {root_.cert, next_root.cert}}}), TestNow());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->chain, ElementsAre(leaf.cert, next_root.cert));
}

TEST_F(VerifyTest, RejectsEmptyChain) { ExpectRejected(Verify({}), "empty certificate chain"); }

TEST_F(VerifyTest, RejectsTwoUriSansEvenIfOneIsNotSpiffe) {
  ASSERT_OK_AND_ASSIGN(Certificate leaf,
                       Craft({.san = "URI:spiffe://example.org/a,URI:https://example.org/b"}));
  ASSERT_EQ(leaf.UriSans().size(), 2u);
  ExpectRejected(Verify({leaf}), "must have exactly one URI SAN, it has 2");
  ASSERT_OK_AND_ASSIGN(Certificate two_spiffe,
                       Craft({.san = "URI:spiffe://example.org/a,URI:spiffe://example.org/b"}));
  ExpectRejected(Verify({two_spiffe}), "must have exactly one URI SAN, it has 2");
}

TEST_F(VerifyTest, RejectsNoUriSan) {
  ASSERT_OK_AND_ASSIGN(Certificate dns_only, Craft({.san = "DNS:web.example.org"}));
  ExpectRejected(Verify({dns_only}), "must have exactly one URI SAN, it has 0");
  ASSERT_OK_AND_ASSIGN(Certificate no_san, Craft({.san = ""}));
  ExpectRejected(Verify({no_san}), "must have exactly one URI SAN, it has 0");
}

TEST_F(VerifyTest, RejectsNonSpiffeOrMalformedUri) {
  ASSERT_OK_AND_ASSIGN(Certificate https, Craft({.san = "URI:https://example.org/a"}));
  ExpectRejected(Verify({https}), "scheme is missing or invalid");
  ASSERT_OK_AND_ASSIGN(Certificate upper, Craft({.san = "URI:spiffe://Example.org/a"}));
  ExpectRejected(Verify({upper}), "leaf URI SAN \"spiffe://Example.org/a\"");
}

TEST_F(VerifyTest, RejectsRootPathLeaf) {
  ASSERT_OK_AND_ASSIGN(Certificate leaf, Craft({.san = "URI:spiffe://example.org"}));
  ExpectRejected(Verify({leaf}), "spiffe://example.org has no path");
}

TEST_F(VerifyTest, RejectsLeafThatIsACa) {
  ASSERT_OK_AND_ASSIGN(Certificate leaf, Craft({.san = "URI:spiffe://example.org/a",
                                                .basic_constraints = "critical,CA:TRUE"}));
  ExpectRejected(Verify({leaf}), "leaf certificate is a CA");
}

TEST_F(VerifyTest, RejectsLeafKeyUsageViolations) {
  ASSERT_OK_AND_ASSIGN(Certificate cert_sign,
                       Craft({.san = "URI:spiffe://example.org/a",
                              .key_usage = "critical,digitalSignature,keyCertSign"}));
  ExpectRejected(Verify({cert_sign}), "leaf keyUsage has keyCertSign");
  ASSERT_OK_AND_ASSIGN(Certificate crl_sign,
                       Craft({.san = "URI:spiffe://example.org/a",
                              .key_usage = "critical,digitalSignature,cRLSign"}));
  ExpectRejected(Verify({crl_sign}), "leaf keyUsage has cRLSign");
  ASSERT_OK_AND_ASSIGN(Certificate no_ds, Craft({.san = "URI:spiffe://example.org/a",
                                                 .key_usage = "critical,keyEncipherment"}));
  ExpectRejected(Verify({no_ds}), "leaf keyUsage lacks digitalSignature");
  ASSERT_OK_AND_ASSIGN(Certificate no_ku,
                       Craft({.san = "URI:spiffe://example.org/a", .key_usage = ""}));
  ExpectRejected(Verify({no_ku}), "leaf certificate has no keyUsage extension");
}

TEST_F(VerifyTest, ExtKeyUsageIsNotEnforced) {
  ASSERT_OK_AND_ASSIGN(Certificate server_only,
                       Craft({.san = "URI:spiffe://example.org/a", .ext_key_usage = "serverAuth"}));
  EXPECT_TRUE(Verify({server_only}).ok());
  ASSERT_OK_AND_ASSIGN(Certificate no_eku,
                       Craft({.san = "URI:spiffe://example.org/a", .ext_key_usage = ""}));
  ASSERT_OK_AND_ASSIGN(VerifiedX509Svid v, Verify({no_eku}));
  EXPECT_EQ(v.id.str(), "spiffe://example.org/a");
}

TEST_F(VerifyTest, RejectsExpiredAndNotYetValid) {
  std::vector<Certificate> chain = {leaf_.cert, mid_.cert};
  ExpectRejected(Verify(chain, leaf_.cert.NotAfter() + seconds(1)), "certificate has expired");
  ExpectRejected(Verify(chain, leaf_.cert.NotBefore() - seconds(1)),
                 "certificate is not yet valid");
  // An expired intermediate breaks the chain even while the leaf is in its window.
  ASSERT_OK_AND_ASSIGN(Certificate long_leaf, Craft({.san = "URI:spiffe://example.org/a",
                                                     .not_before = TestNow() - hours(1),
                                                     .not_after = TestNow() + hours(100)}));
  ExpectRejected(Verify({long_leaf}, root_.cert.NotAfter() + seconds(1)),
                 "certificate has expired");
}

TEST_F(VerifyTest, OnlyTheLeafsTrustDomainBundleIsUsed) {
  // A leaf claiming example.org but signed by other.org's CA, with both bundles known: must fail
  // even though its issuer is a trusted authority (of another trust domain).
  ASSERT_OK_AND_ASSIGN(Leaf forged,
                       testing::MakeLeaf(other_root_, Id("spiffe://example.org/admin"), TestNow()));
  ExpectRejected(Verify({forged.cert}), "unable to get local issuer certificate");
  // The same CA's legitimate SVIDs verify.
  ASSERT_OK_AND_ASSIGN(Leaf legit,
                       testing::MakeLeaf(other_root_, Id("spiffe://other.org/svc"), TestNow()));
  ASSERT_OK_AND_ASSIGN(VerifiedX509Svid v, Verify({legit.cert}));
  EXPECT_EQ(v.id.trust_domain().name(), "other.org");
}

TEST_F(VerifyTest, RejectsWhenOnlyAnotherTrustDomainHasABundle) {
  auto r = VerifyX509Svid(std::vector<Certificate>{leaf_.cert, mid_.cert},
                          Bundles({{"other.org", {other_root_.cert, root_.cert}}}), TestNow());
  ExpectRejected(r, "no bundle for trust domain \"example.org\"");
}

TEST_F(VerifyTest, RejectsMissingOrEmptyBundle) {
  std::vector<Certificate> chain = {leaf_.cert, mid_.cert};
  ExpectRejected(VerifyX509Svid(chain, Bundles({}), TestNow()),
                 "no bundle for trust domain \"example.org\"");
  ExpectRejected(VerifyX509Svid(chain, X509AuthoritiesSource(), TestNow()), "no bundle");
  ExpectRejected(VerifyX509Svid(chain, Bundles({{"example.org", {}}}), TestNow()),
                 "bundle for trust domain \"example.org\" has no X.509 authorities");
}

TEST_F(VerifyTest, RejectsBrokenSignature) {
  std::string der = leaf_.cert.ToDer();
  der.back() ^= 0x01;  // inside the signature value
  ASSERT_OK_AND_ASSIGN(Certificate broken, Certificate::FromDer(der));
  ExpectRejected(Verify({broken, mid_.cert}), "certificate signature failure");
}

TEST_F(VerifyTest, RejectsNonCaIntermediate) {
  ASSERT_OK_AND_ASSIGN(Leaf other,
                       testing::MakeLeaf(root_, Id("spiffe://example.org/x"), TestNow()));
  ExpectRejected(Verify({leaf_.cert, other.cert, mid_.cert}), "intermediate certificate #1");
  ExpectRejected(Verify({leaf_.cert, other.cert, mid_.cert}), "is not a CA");
}

TEST_F(VerifyTest, EnforcesPathLenConstraint) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  CaTemplate tmpl{.public_key = key.public_key(),
                  .trust_domain = Td("example.org"),
                  .not_before = TestNow() - hours(1),
                  .not_after = TestNow() + hours(10),
                  .max_path_len = 0};
  ASSERT_OK_AND_ASSIGN(Certificate pl0_cert, SignSelfSignedCa(tmpl, key));
  Ca pl0{key, pl0_cert};
  // The library refuses to sign a CA under pathLen 0, so craft one.
  ASSERT_OK_AND_ASSIGN(PrivateKey sub_key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(Certificate sub_cert,
                       testing::Craft({.subject_cn = "sub",
                                       .san = "URI:spiffe://example.org",
                                       .basic_constraints = "critical,CA:TRUE",
                                       .key_usage = "critical,keyCertSign,cRLSign",
                                       .ext_key_usage = "",
                                       .not_before = TestNow() - hours(1),
                                       .not_after = TestNow() + hours(5)},
                                      sub_key.public_key(), pl0));
  Ca sub{sub_key, sub_cert};
  ASSERT_OK_AND_ASSIGN(Leaf leaf, testing::MakeLeaf(sub, Id("spiffe://example.org/a"), TestNow()));
  auto r = VerifyX509Svid(std::vector<Certificate>{leaf.cert, sub.cert},
                          Bundles({{"example.org", {pl0.cert}}}), TestNow());
  ExpectRejected(r, "path length constraint exceeded");
}

using ChainToRootsTest = VerifyTest;

TEST_F(ChainToRootsTest, GoodChainReturnsPathLeafFirst) {
  std::vector<Certificate> roots = {other_root_.cert, root_.cert};
  ASSERT_OK_AND_ASSIGN(ChainVerification v,
                       VerifyChainToRoots(std::vector{leaf_.cert, mid_.cert}, roots, TestNow()));
  EXPECT_TRUE(v.verified());
  EXPECT_EQ(v.rejection, std::nullopt);
  EXPECT_THAT(v.path, ElementsAre(leaf_.cert, mid_.cert, root_.cert));
  // A root that is not self-signed is an anchor too, and the path stops there.
  ASSERT_OK_AND_ASSIGN(
      v, VerifyChainToRoots(std::vector{leaf_.cert}, std::vector{mid_.cert}, TestNow()));
  EXPECT_THAT(v.path, ElementsAre(leaf_.cert, mid_.cert));
  // Unlike VerifyX509Svid, a leaf that is itself a root is accepted, alone.
  ASSERT_OK_AND_ASSIGN(
      v, VerifyChainToRoots(std::vector{leaf_.cert}, std::vector{leaf_.cert}, TestNow()));
  EXPECT_THAT(v.path, ElementsAre(leaf_.cert));
}

TEST_F(ChainToRootsTest, UntrustedRootIsRejectedWhereTheIssuerIsMissing) {
  ASSERT_OK_AND_ASSIGN(ChainVerification v,
                       VerifyChainToRoots(std::vector{leaf_.cert, mid_.cert},
                                          std::vector{other_root_.cert}, TestNow()));
  EXPECT_FALSE(v.verified());
  EXPECT_THAT(v.path, ::testing::IsEmpty());
  ASSERT_TRUE(v.rejection.has_value());
  EXPECT_EQ(v.rejection->error, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(v.rejection->reason, "unable to get local issuer certificate");
  EXPECT_EQ(v.rejection->depth, 1);  // the intermediate's issuer is unknown
  // No roots at all: the same verdict, about the leaf when it comes alone.
  ASSERT_OK_AND_ASSIGN(v, VerifyChainToRoots(std::vector{leaf_.cert}, {}, TestNow()));
  ASSERT_TRUE(v.rejection.has_value());
  EXPECT_EQ(v.rejection->error, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(v.rejection->depth, 0);
}

TEST_F(ChainToRootsTest, ExpiryReportsTheDepthOfTheExpiredCertificate) {
  std::vector<Certificate> chain = {leaf_.cert, mid_.cert};
  std::vector<Certificate> roots = {root_.cert};
  ASSERT_OK_AND_ASSIGN(ChainVerification v,
                       VerifyChainToRoots(chain, roots, leaf_.cert.NotAfter() + seconds(1)));
  ASSERT_TRUE(v.rejection.has_value());
  EXPECT_EQ(v.rejection->error, X509_V_ERR_CERT_HAS_EXPIRED);
  EXPECT_EQ(v.rejection->reason, "certificate has expired");
  EXPECT_EQ(v.rejection->depth, 0);
  // A leaf whose window has not begun, under a root whose window has.
  ASSERT_OK_AND_ASSIGN(Certificate future, Craft({.san = "URI:spiffe://example.org/a",
                                                  .not_before = TestNow() + hours(1),
                                                  .not_after = TestNow() + hours(2)}));
  ASSERT_OK_AND_ASSIGN(v, VerifyChainToRoots(std::vector{future}, roots, TestNow()));
  ASSERT_TRUE(v.rejection.has_value());
  EXPECT_EQ(v.rejection->error, X509_V_ERR_CERT_NOT_YET_VALID);
  EXPECT_EQ(v.rejection->depth, 0);
  // OpenSSL checks validity from the root down: once the intermediate has expired (the root has
  // not), it is the one reported, though the leaf has expired too.
  ASSERT_LT(mid_.cert.NotAfter(), root_.cert.NotAfter());
  ASSERT_OK_AND_ASSIGN(v, VerifyChainToRoots(chain, roots, mid_.cert.NotAfter() + seconds(1)));
  ASSERT_TRUE(v.rejection.has_value());
  EXPECT_EQ(v.rejection->error, X509_V_ERR_CERT_HAS_EXPIRED);
  EXPECT_EQ(v.rejection->depth, 1);
}

TEST_F(ChainToRootsTest, BadArgumentsAreNoVerdict) {
  std::vector<Certificate> roots = {root_.cert};
  auto empty = VerifyChainToRoots({}, roots, TestNow());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.status().message(), "verify chain: empty certificate chain");
  auto null_cert =
      VerifyChainToRoots(std::vector{leaf_.cert, Certificate::FromX509(nullptr)}, roots, TestNow());
  ASSERT_FALSE(null_cert.ok());
  EXPECT_EQ(null_cert.status().code(), absl::StatusCode::kInvalidArgument);
  auto null_root = VerifyChainToRoots(std::vector{leaf_.cert},
                                      std::vector{Certificate::FromX509(nullptr)}, TestNow());
  ASSERT_FALSE(null_root.ok());
  EXPECT_EQ(null_root.status().message(), "verify chain: null root");
}

TEST(ValidateLeafProfileTest, ReturnsIdOrInvalidArgument) {
  ASSERT_OK_AND_ASSIGN(Ca root, testing::MakeRootCa(Td("example.org"), TestNow()));
  ASSERT_OK_AND_ASSIGN(Leaf leaf, testing::MakeLeaf(root, Id("spiffe://example.org/a"), TestNow()));
  ASSERT_OK_AND_ASSIGN(SpiffeId id, ValidateLeafProfile(leaf.cert));
  EXPECT_EQ(id.str(), "spiffe://example.org/a");
  auto r = ValidateLeafProfile(root.cert);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("has no path"));
}

class ParseSvidTest : public VerifyTest {};

TEST_F(ParseSvidTest, ParsesDerChainAndKey) {
  std::vector<Certificate> chain = {leaf_.cert, mid_.cert};
  ASSERT_OK_AND_ASSIGN(std::string key_der, leaf_.key.ToPkcs8Der());
  ASSERT_OK_AND_ASSIGN(X509Svid svid, ParseX509Svid(ChainToDer(chain), key_der));
  EXPECT_EQ(svid.id.str(), "spiffe://example.org/web");
  EXPECT_THAT(svid.chain, ElementsAre(leaf_.cert, mid_.cert));
  EXPECT_TRUE(svid.key.public_key().Equals(leaf_.cert.public_key()));
}

TEST_F(ParseSvidTest, ParsesPem) {
  std::vector<Certificate> chain = {leaf_.cert, mid_.cert};
  ASSERT_OK_AND_ASSIGN(std::string key_pem, leaf_.key.ToPkcs8Pem());
  ASSERT_OK_AND_ASSIGN(X509Svid svid, ParseX509SvidPem(ChainToPem(chain), key_pem));
  EXPECT_EQ(svid.id.str(), "spiffe://example.org/web");
  EXPECT_EQ(svid.chain.size(), 2u);
}

TEST_F(ParseSvidTest, RejectsMismatchedKey) {
  ASSERT_OK_AND_ASSIGN(std::string key_der, leaf_key_.ToPkcs8Der());
  auto r = ParseX509Svid(leaf_.cert.ToDer(), key_der);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("private key does not match the leaf certificate's public key"));
}

TEST_F(ParseSvidTest, RejectsBadIntermediates) {
  ASSERT_OK_AND_ASSIGN(std::string key_der, leaf_.key.ToPkcs8Der());
  ASSERT_OK_AND_ASSIGN(Leaf other,
                       testing::MakeLeaf(root_, Id("spiffe://example.org/x"), TestNow()));
  auto r = ParseX509Svid(leaf_.cert.ToDer() + other.cert.ToDer(), key_der);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("is not a CA"));

  ASSERT_OK_AND_ASSIGN(PrivateKey k, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(Certificate no_cert_sign,
                       testing::Craft({.subject_cn = "weak ca",
                                       .san = "URI:spiffe://example.org",
                                       .basic_constraints = "critical,CA:TRUE",
                                       .key_usage = "critical,cRLSign",
                                       .ext_key_usage = "",
                                       .not_before = TestNow(),
                                       .not_after = TestNow() + hours(1)},
                                      k.public_key(), root_));
  r = ParseX509Svid(leaf_.cert.ToDer() + no_cert_sign.ToDer(), key_der);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("lacks keyCertSign"));
}

TEST_F(ParseSvidTest, RejectsBadInput) {
  ASSERT_OK_AND_ASSIGN(std::string key_der, leaf_.key.ToPkcs8Der());
  auto r = ParseX509Svid("", key_der);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("parse X509-SVID: "));
  EXPECT_FALSE(ParseX509Svid(leaf_.cert.ToDer(), "").ok());
  EXPECT_FALSE(ParseX509Svid(leaf_.cert.ToDer(), key_der + "x").ok());
  EXPECT_FALSE(ParseX509Svid(leaf_.cert.ToDer() + "x", key_der).ok());
  // A CA certificate is not an SVID.
  ASSERT_OK_AND_ASSIGN(std::string root_key, root_.key.ToPkcs8Der());
  r = ParseX509Svid(root_.cert.ToDer(), root_key);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("has no path"));
}

}  // namespace
}  // namespace tessera::spiffe
