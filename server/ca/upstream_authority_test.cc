#include "server/ca/upstream_authority.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_test_util.h"

namespace tessera::server::ca {
namespace {

using spiffe::Certificate;
using spiffe::testing::Ca;
using spiffe::testing::Td;
using spiffe::testing::TempDir;
using spiffe::testing::TestNow;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

std::string Pem(std::initializer_list<Certificate> certs) {
  std::string out;
  for (const Certificate& c : certs) out += c.ToPem();
  return out;
}

class UpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto root = spiffe::testing::MakeRootCa(Td("upstream.test"), TestNow(),
                                            spiffe::KeyType::kEcP256, "upstream root");
    ASSERT_TRUE(root.ok());
    root_.emplace(*std::move(root));
    auto inter = spiffe::testing::MakeIntermediateCa(*root_, Td("upstream.test"), TestNow(),
                                                     "upstream intermediate");
    ASSERT_TRUE(inter.ok());
    inter_.emplace(*std::move(inter));
    auto key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256);
    ASSERT_TRUE(key.ok());
    our_key_.emplace(*std::move(key));
  }

  std::string KeyFile(const Ca& ca, const std::string& name = "upstream.key") {
    return dir_.Write(name, *ca.key.ToPkcs8Pem());
  }

  spiffe::CaTemplate Template(std::chrono::hours ttl = std::chrono::hours(6)) const {
    return spiffe::CaTemplate{.public_key = our_key_->public_key(),
                              .trust_domain = Td("example.org"),
                              .subject = spiffe::DefaultCaSubject(),
                              .not_before = TestNow() - spiffe::kBackdate,
                              .not_after = TestNow() + ttl,
                              .max_path_len = std::nullopt};
  }

  TempDir dir_;
  std::optional<Ca> root_;
  std::optional<Ca> inter_;
  std::optional<spiffe::PrivateKey> our_key_;
};

TEST_F(UpstreamTest, RootOnly) {
  DiskUpstreamAuthority upstream({.cert_file_path = dir_.Write("up.crt", Pem({root_->cert})),
                                  .key_file_path = KeyFile(*root_),
                                  .bundle_file_path = ""});
  ASSERT_TRUE(upstream.Check().ok());
  ASSERT_OK_AND_ASSIGN(UpstreamSignedCa out, upstream.SignIntermediate(Template()));
  ASSERT_EQ(out.chain.size(), 1u);
  EXPECT_THAT(out.roots, ElementsAre(root_->cert));
  const Certificate& ca = out.chain[0];
  EXPECT_TRUE(ca.IsCa());
  EXPECT_THAT(ca.UriSans(), ElementsAre("spiffe://example.org"));
  EXPECT_TRUE(ca.public_key().Equals(our_key_->public_key()));
  EXPECT_EQ(ca.AuthorityKeyId(), root_->cert.SubjectKeyId());
  EXPECT_EQ(ca.NotAfter(), TestNow() + std::chrono::hours(6));
}

TEST_F(UpstreamTest, IntermediateChainWithoutBundleFile) {
  DiskUpstreamAuthority upstream(
      {.cert_file_path = dir_.Write("up.crt", Pem({inter_->cert, root_->cert})),
       .key_file_path = KeyFile(*inter_),
       .bundle_file_path = ""});
  // Asking for more than the upstream has left: cut at the upstream certificate's expiry.
  ASSERT_OK_AND_ASSIGN(UpstreamSignedCa out,
                       upstream.SignIntermediate(Template(std::chrono::hours(48))));
  ASSERT_EQ(out.chain.size(), 2u);
  EXPECT_EQ(out.chain[1], inter_->cert);
  EXPECT_EQ(out.chain[0].AuthorityKeyId(), inter_->cert.SubjectKeyId());
  EXPECT_EQ(out.chain[0].NotAfter(), inter_->cert.NotAfter());
  EXPECT_THAT(out.roots, ElementsAre(root_->cert));
}

TEST_F(UpstreamTest, BundleFileSuppliesRoots) {
  ASSERT_OK_AND_ASSIGN(Ca other_root, spiffe::testing::MakeRootCa(Td("upstream.test"), TestNow()));
  DiskUpstreamAuthority upstream(
      {.cert_file_path = dir_.Write("up.crt", Pem({inter_->cert})),
       .key_file_path = KeyFile(*inter_),
       .bundle_file_path = dir_.Write("bundle.crt", Pem({other_root.cert, root_->cert}))});
  ASSERT_OK_AND_ASSIGN(UpstreamSignedCa out, upstream.SignIntermediate(Template()));
  ASSERT_EQ(out.chain.size(), 2u);
  EXPECT_EQ(out.chain[1], inter_->cert);
  EXPECT_THAT(out.roots, ElementsAre(other_root.cert, root_->cert));
}

TEST_F(UpstreamTest, RereadsFilesOnEverySignature) {
  std::string cert_path = dir_.Write("up.crt", Pem({root_->cert}));
  std::string key_path = KeyFile(*root_);
  DiskUpstreamAuthority upstream({cert_path, key_path, ""});
  ASSERT_TRUE(upstream.SignIntermediate(Template()).ok());
  ASSERT_OK_AND_ASSIGN(Ca new_root, spiffe::testing::MakeRootCa(Td("upstream.test"), TestNow()));
  dir_.Write("up.crt", Pem({new_root.cert}));
  KeyFile(new_root);
  ASSERT_OK_AND_ASSIGN(UpstreamSignedCa out, upstream.SignIntermediate(Template()));
  EXPECT_THAT(out.roots, ElementsAre(new_root.cert));
}

TEST_F(UpstreamTest, Errors) {
  ASSERT_OK_AND_ASSIGN(
      spiffe::testing::Leaf leaf,
      spiffe::testing::MakeLeaf(*root_, spiffe::testing::Id("spiffe://x/y"), TestNow()));
  ASSERT_OK_AND_ASSIGN(Ca stranger, spiffe::testing::MakeRootCa(Td("elsewhere"), TestNow()));
  std::string chain = dir_.Write("chain.crt", Pem({inter_->cert, root_->cert}));
  struct Case {
    DiskUpstreamConfig config;
    std::string error;
  };
  const Case cases[] = {
      {{dir_.path() + "/missing.crt", KeyFile(*inter_), ""}, "missing.crt"},
      {{chain, dir_.path() + "/missing.key", ""}, "read key"},
      {{dir_.Write("empty.crt", ""), KeyFile(*inter_), ""}, "empty.crt"},
      {{dir_.Write("junk.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        KeyFile(*inter_), ""},
       "junk.crt"},
      {{chain, dir_.Write("junk.key", "not a key"), ""}, "does not hold a private key"},
      {{chain, KeyFile(*root_, "root.key"), ""}, "does not match the first certificate"},
      {{dir_.Write("leaf.crt", Pem({leaf.cert, root_->cert})),
        dir_.Write("leaf.key", *leaf.key.ToPkcs8Pem()), ""},
       "is not a CA"},
      {{dir_.Write("order.crt", Pem({inter_->cert, stranger.cert})), KeyFile(*inter_), ""},
       "certificate 1 of"},
      {{dir_.Write("lone.crt", Pem({inter_->cert})), KeyFile(*inter_),
        dir_.Write("stranger.crt", Pem({stranger.cert}))},
       "does not chain to any certificate of"},
      {{chain, KeyFile(*inter_), dir_.path() + "/missing-bundle.crt"}, "missing-bundle.crt"},
  };
  for (const Case& c : cases) {
    DiskUpstreamAuthority upstream(c.config);
    absl::Status check = upstream.Check();
    EXPECT_FALSE(check.ok()) << c.error;
    EXPECT_THAT(Message(check), HasSubstr("upstream authority")) << c.error;
    EXPECT_THAT(Message(check), HasSubstr(c.error));
    auto signed_ca = upstream.SignIntermediate(Template());
    EXPECT_FALSE(signed_ca.ok()) << c.error;
  }
}

TEST_F(UpstreamTest, ExpiredUpstreamCannotSign) {
  DiskUpstreamAuthority upstream({.cert_file_path = dir_.Write("up.crt", Pem({root_->cert})),
                                  .key_file_path = KeyFile(*root_),
                                  .bundle_file_path = ""});
  spiffe::CaTemplate tmpl = Template();
  tmpl.not_before = root_->cert.NotAfter() + std::chrono::hours(1);
  tmpl.not_after = tmpl.not_before + std::chrono::hours(6);
  EXPECT_FALSE(upstream.SignIntermediate(tmpl).ok());
}

}  // namespace
}  // namespace tessera::server::ca
