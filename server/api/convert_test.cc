#include "server/api/convert.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_test_util.h"

namespace tessera::server {
namespace {

using spiffe::testing::Id;
using spiffe::testing::Td;
using ::testing::HasSubstr;

types::Entry ValidEntry() {
  types::Entry e;
  e.mutable_parent_id()->set_trust_domain("example.org");
  e.mutable_parent_id()->set_path("/spire/agent/join_token/t");
  e.mutable_spiffe_id()->set_trust_domain("example.org");
  e.mutable_spiffe_id()->set_path("/web");
  types::Selector* s = e.add_selectors();
  s->set_type("unix");
  s->set_value("uid:1000");
  return e;
}

std::string ConvertError(const types::Entry& e) {
  absl::StatusOr<Entry> r = EntryFromProto(e, Td("example.org"));
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

TEST(ConvertTest, EntryRoundTrip) {
  types::Entry in = ValidEntry();
  in.set_id("e1");
  in.set_x509_svid_ttl(600);
  in.set_jwt_svid_ttl(60);
  in.add_dns_names("web.example.org");
  in.add_dns_names("*.web.example.org");
  in.add_federates_with("other.org");
  in.add_federates_with("spiffe://third.org");
  in.set_admin(true);
  in.set_downstream(true);
  in.set_hint("web");
  in.set_expires_at(2000000000);
  absl::StatusOr<Entry> entry = EntryFromProto(in, Td("example.org"));
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->spiffe_id, Id("spiffe://example.org/web"));
  EXPECT_EQ(entry->federates_with.size(), 2u);
  EXPECT_EQ(entry->federates_with[1].name(), "third.org");
  types::Entry out = EntryToProto(*entry);
  EXPECT_EQ(out.spiffe_id().path(), "/web");
  EXPECT_EQ(out.selectors(0).type(), "unix");
  EXPECT_EQ(out.selectors(0).value(), "uid:1000");
  EXPECT_EQ(out.federates_with(1), "third.org");
  EXPECT_EQ(out.dns_names_size(), 2);
  EXPECT_TRUE(out.admin());
  EXPECT_EQ(out.expires_at(), 2000000000);
}

TEST(ConvertTest, EntryMaskKeepsIdAndMarkedFields) {
  Entry entry = *EntryFromProto(ValidEntry(), Td("example.org"));
  entry.id = "abc";
  entry.hint = "h";
  types::EntryMask mask;
  mask.set_hint(true);
  types::Entry out = EntryToProto(entry, &mask);
  EXPECT_EQ(out.id(), "abc");
  EXPECT_EQ(out.hint(), "h");
  EXPECT_FALSE(out.has_spiffe_id());
  EXPECT_EQ(out.selectors_size(), 0);
}

TEST(ConvertTest, EntryValidationErrors) {
  types::Entry e = ValidEntry();
  e.clear_selectors();
  EXPECT_EQ(ConvertError(e), "failed to convert entry: selector list is empty");

  e = ValidEntry();
  e.mutable_selectors(0)->set_type("");
  EXPECT_THAT(ConvertError(e), HasSubstr("missing selector type"));
  e = ValidEntry();
  e.mutable_selectors(0)->set_type("a:b");
  EXPECT_THAT(ConvertError(e), HasSubstr("selector type contains ':'"));
  e = ValidEntry();
  e.mutable_selectors(0)->set_value("");
  EXPECT_THAT(ConvertError(e), HasSubstr("missing selector value"));

  e = ValidEntry();
  e.mutable_spiffe_id()->set_path("/spire/agent/x");
  EXPECT_THAT(ConvertError(e), HasSubstr("path is in the reserved namespace"));
  e = ValidEntry();
  e.mutable_spiffe_id()->set_trust_domain("other.org");
  EXPECT_THAT(ConvertError(e), HasSubstr("is not a member of trust domain \"example.org\""));
  e = ValidEntry();
  e.mutable_spiffe_id()->set_path("");
  EXPECT_THAT(ConvertError(e), HasSubstr("has an empty path"));
  e = ValidEntry();
  e.mutable_spiffe_id()->set_path("/a/");
  EXPECT_THAT(ConvertError(e), HasSubstr("trailing slash"));
  e = ValidEntry();
  e.mutable_parent_id()->set_trust_domain("Other.org");
  EXPECT_THAT(ConvertError(e), HasSubstr("invalid parent ID"));
  e = ValidEntry();
  e.clear_parent_id();
  EXPECT_THAT(ConvertError(e), HasSubstr("missing parent ID"));
  e = ValidEntry();
  e.set_x509_svid_ttl(-1);
  EXPECT_THAT(ConvertError(e), HasSubstr("x509_svid_ttl must not be negative"));
  e = ValidEntry();
  e.add_dns_names("bad_name.example");
  EXPECT_THAT(ConvertError(e), HasSubstr("invalid DNS name"));
  e = ValidEntry();
  e.set_hint(std::string(1025, 'h'));
  EXPECT_THAT(ConvertError(e), HasSubstr("hint is longer than 1024"));
  e = ValidEntry();
  e.add_federates_with("spiffe://Bad");
  EXPECT_THAT(ConvertError(e), HasSubstr("invalid federated trust domain"));
}

TEST(ConvertTest, ParentMayEqualSpiffeIdAndBeAnyPathInTheTrustDomain) {
  types::Entry e = ValidEntry();
  e.mutable_parent_id()->set_path("/web");
  EXPECT_TRUE(EntryFromProto(e, Td("example.org")).ok());
}

TEST(ConvertTest, AgentIds) {
  EXPECT_TRUE(
      ValidateAgentId(Id("spiffe://example.org/spire/agent/x509pop/ab"), Td("example.org")).ok());
  EXPECT_THAT(
      std::string(ValidateAgentId(Id("spiffe://example.org/web"), Td("example.org")).message()),
      HasSubstr("path is not in the agent namespace"));
}

TEST(ConvertTest, BundleRoundTripKeepsKeysAndExpiry) {
  auto now = spiffe::testing::TestNow();
  spiffe::testing::Ca ca = *spiffe::testing::MakeRootCa(Td("example.org"), now);
  spiffe::Bundle bundle(Td("example.org"));
  bundle.AddX509Authority(ca.cert);
  ASSERT_TRUE(bundle.AddJwtAuthority("kid1", ca.key.public_key()).ok());
  bundle.set_sequence_number(7);
  bundle.set_refresh_hint(std::chrono::seconds(300));
  types::Bundle proto = BundleToProto(bundle, {{"kid1", 1234}});
  EXPECT_EQ(proto.trust_domain(), "example.org");
  EXPECT_EQ(proto.jwt_authorities(0).expires_at(), 1234);
  JwtKeyExpiry expiry;
  absl::StatusOr<spiffe::Bundle> back = BundleFromProto(proto, &expiry);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, bundle);
  EXPECT_EQ(expiry.at("kid1"), 1234);

  proto.mutable_jwt_authorities(0)->set_key_id("");
  EXPECT_EQ(BundleFromProto(proto).status().message(), "missing key ID");
  proto = BundleToProto(bundle);
  proto.mutable_x509_authorities(0)->set_asn1("garbage");
  EXPECT_FALSE(BundleFromProto(proto).ok());
  proto = BundleToProto(bundle);
  proto.set_trust_domain("spiffe://example.org");
  EXPECT_TRUE(BundleFromProto(proto).ok());
}

}  // namespace
}  // namespace tessera::server
