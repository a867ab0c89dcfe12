#include "spiffe/bundle.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_test_util.h"

namespace tessera::spiffe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsNull;
using ::testing::Pointee;

std::string Message(const absl::Status& s) { return std::string(s.message()); }
TrustDomain Td(std::string_view s) { return *TrustDomain::Parse(s); }

// Runs a shell command and returns its output; fails the test on a non-zero exit.
std::string RunOk(const std::string& command) {
  testing::CommandResult result = testing::RunCommand(command);
  EXPECT_EQ(result.exit_code, 0) << command << "\n" << result.output;
  return result.output;
}

Certificate MakeCa(const std::string& cn) {
  return testing::OpensslSelfSignedCa(cn, "ec -pkeyopt ec_paramgen_curve:P-256");
}

struct Fixtures {
  Certificate ca1 = MakeCa("bundle-ca1");
  Certificate ca2 = MakeCa("bundle-ca2");
  PublicKey k1 = PrivateKey::Generate(KeyType::kEcP256)->public_key();
  PublicKey k2 = PrivateKey::Generate(KeyType::kEcP384)->public_key();
};

const Fixtures& F() {
  static const Fixtures* f = new Fixtures();
  return *f;
}

TEST(BundleTest, X509Authorities) {
  Bundle b(Td("example.org"));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.trust_domain(), Td("example.org"));
  EXPECT_TRUE(b.AddX509Authority(F().ca1));
  EXPECT_FALSE(b.AddX509Authority(F().ca1));  // same DER: not added twice
  EXPECT_TRUE(b.AddX509Authority(F().ca2));
  EXPECT_THAT(b.x509_authorities(), ElementsAre(F().ca1, F().ca2));
  EXPECT_TRUE(b.HasX509Authority(F().ca2));
  EXPECT_FALSE(b.empty());
  EXPECT_TRUE(b.RemoveX509Authority(F().ca1));
  EXPECT_FALSE(b.RemoveX509Authority(F().ca1));
  EXPECT_FALSE(b.HasX509Authority(F().ca1));
  EXPECT_THAT(b.x509_authorities(), ElementsAre(F().ca2));
  b.SetX509Authorities({F().ca1, F().ca2, F().ca1});
  EXPECT_THAT(b.x509_authorities(), ElementsAre(F().ca1, F().ca2));
}

TEST(BundleTest, JwtAuthorities) {
  Bundle b(Td("example.org"));
  ASSERT_TRUE(b.AddJwtAuthority("k1", F().k1).ok());
  EXPECT_TRUE(b.AddJwtAuthority("k1", F().k1).ok());  // same key again: no-op
  auto dup = b.AddJwtAuthority("k1", F().k2);
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(Message(dup), HasSubstr("duplicate JWT authority key ID \"k1\""));
  auto empty = b.AddJwtAuthority("", F().k2);
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(empty), HasSubstr("key ID cannot be empty"));
  ASSERT_TRUE(b.AddJwtAuthority("k2", F().k2).ok());
  ASSERT_NE(b.FindJwtAuthority("k1"), nullptr);
  EXPECT_TRUE(b.FindJwtAuthority("k1")->Equals(F().k1));
  EXPECT_TRUE(b.FindJwtAuthority("k2")->Equals(F().k2));
  EXPECT_THAT(b.FindJwtAuthority("k3"), IsNull());
  EXPECT_EQ(b.jwt_authorities().size(), 2u);
  EXPECT_TRUE(b.RemoveJwtAuthority("k1"));
  EXPECT_FALSE(b.RemoveJwtAuthority("k1"));
  EXPECT_THAT(b.FindJwtAuthority("k1"), IsNull());
  EXPECT_FALSE(b.empty());
}

TEST(BundleTest, Equality) {
  Bundle a(Td("example.org"));
  a.AddX509Authority(F().ca1);
  ASSERT_TRUE(a.AddJwtAuthority("k1", F().k1).ok());
  a.set_sequence_number(7);
  a.set_refresh_hint(std::chrono::seconds(300));
  Bundle b = a;
  EXPECT_EQ(a, b);

  Bundle other_td(Td("other.org"));
  other_td.AddX509Authority(F().ca1);
  ASSERT_TRUE(other_td.AddJwtAuthority("k1", F().k1).ok());
  other_td.set_sequence_number(7);
  other_td.set_refresh_hint(std::chrono::seconds(300));
  EXPECT_NE(a, other_td);

  b.set_sequence_number(8);
  EXPECT_NE(a, b);
  b = a;
  b.set_refresh_hint(std::nullopt);
  EXPECT_NE(a, b);
  b = a;
  b.AddX509Authority(F().ca2);
  EXPECT_NE(a, b);
  b = a;
  b.RemoveJwtAuthority("k1");
  ASSERT_TRUE(b.AddJwtAuthority("k1", F().k2).ok());  // same kid, different key
  EXPECT_NE(a, b);
  b = a;
  b.RemoveJwtAuthority("k1");
  ASSERT_TRUE(b.AddJwtAuthority("k9", F().k1).ok());  // same key, different kid
  EXPECT_NE(a, b);
}

TEST(BundleSetTest, LookupsNeverCrossTrustDomains) {
  Bundle example(Td("example.org"));
  example.AddX509Authority(F().ca1);
  ASSERT_TRUE(example.AddJwtAuthority("k1", F().k1).ok());
  Bundle other(Td("other.org"));
  other.AddX509Authority(F().ca2);
  ASSERT_TRUE(other.AddJwtAuthority("k2", F().k2).ok());

  BundleSet set;
  EXPECT_TRUE(set.empty());
  set.Put(example);
  set.Put(other);
  EXPECT_EQ(set.size(), 2u);
  EXPECT_THAT(set.Find(Td("example.org")), Pointee(example));
  EXPECT_THAT(set.X509AuthoritiesFor(Td("example.org")), Pointee(ElementsAre(F().ca1)));
  EXPECT_THAT(set.X509AuthoritiesFor(Td("other.org")), Pointee(ElementsAre(F().ca2)));
  EXPECT_THAT(set.X509AuthoritiesFor(Td("unknown.org")), IsNull());
  ASSERT_NE(set.FindJwtAuthority(Td("example.org"), "k1"), nullptr);
  EXPECT_TRUE(set.FindJwtAuthority(Td("example.org"), "k1")->Equals(F().k1));
  // k2 exists, but in other.org only.
  EXPECT_THAT(set.FindJwtAuthority(Td("example.org"), "k2"), IsNull());
  EXPECT_THAT(set.FindJwtAuthority(Td("unknown.org"), "k1"), IsNull());
  const JwtAuthoritySource& source = set;
  ASSERT_NE(source.JwtAuthoritiesFor(Td("other.org")), nullptr);
  EXPECT_EQ(source.JwtAuthoritiesFor(Td("other.org"))->count("k2"), 1u);
  EXPECT_THAT(source.JwtAuthoritiesFor(Td("unknown.org")), IsNull());

  // Put replaces the whole bundle of a trust domain.
  Bundle replacement(Td("example.org"));
  replacement.AddX509Authority(F().ca2);
  set.Put(replacement);
  EXPECT_EQ(set.size(), 2u);
  EXPECT_THAT(set.X509AuthoritiesFor(Td("example.org")), Pointee(ElementsAre(F().ca2)));
  EXPECT_THAT(set.FindJwtAuthority(Td("example.org"), "k1"), IsNull());

  BundleSet copy = set;
  EXPECT_EQ(copy, set);
  EXPECT_TRUE(copy.Remove(Td("other.org")));
  EXPECT_FALSE(copy.Remove(Td("other.org")));
  EXPECT_NE(copy, set);
  std::vector<std::string> names;
  for (const auto& [td, bundle] : set) names.push_back(td.name());
  EXPECT_THAT(names, ElementsAre("example.org", "other.org"));
}

TEST(BundleTest, PemRoundTripReadableByOpenSsl) {
  Bundle b(Td("example.org"));
  b.AddX509Authority(F().ca1);
  b.AddX509Authority(F().ca2);
  std::string pem = X509AuthoritiesToPem(b);
  std::string path = testing::ProcessScratch().Write("bundle.pem", pem);
  std::string listing = RunOk("openssl storeutl -noout -text -certs " + path);
  EXPECT_THAT(listing, HasSubstr("Subject: O=SPIFFE, CN=bundle-ca1"));
  EXPECT_THAT(listing, HasSubstr("Subject: O=SPIFFE, CN=bundle-ca2"));
  EXPECT_THAT(listing, HasSubstr("Total found: 2"));

  auto parsed = BundleFromX509Pem(Td("example.org"), pem);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, b);
  auto bad = BundleFromX509Pem(Td("example.org"), "no certificates here");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(bad.status()), HasSubstr("PEM bundle for \"example.org\""));
}

TEST(BundleTest, DerRoundTrip) {
  Bundle b(Td("example.org"));
  b.AddX509Authority(F().ca1);
  b.AddX509Authority(F().ca2);
  std::string der = X509AuthoritiesToDer(b);
  EXPECT_EQ(der, F().ca1.ToDer() + F().ca2.ToDer());
  auto parsed = BundleFromX509Der(Td("example.org"), der);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, b);
  auto truncated = BundleFromX509Der(Td("example.org"), der.substr(0, der.size() - 1));
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(truncated.status()), HasSubstr("DER bundle for \"example.org\""));
  EXPECT_FALSE(BundleFromX509Der(Td("example.org"), "").ok());
}

}  // namespace
}  // namespace tessera::spiffe
