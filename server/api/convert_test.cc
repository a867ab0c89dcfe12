#include "server/api/convert.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_test_util.h"

namespace tessera::server {
namespace {

using spiffe::testing::Id;
using spiffe::testing::Td;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

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
  in.mutable_additional_attributes()->set_jwt_svid_include_jti(true);
  in.mutable_additional_attributes()->set_disable_x509_svid_prefetch(true);
  absl::StatusOr<Entry> entry = EntryFromProto(in, Td("example.org"));
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->spiffe_id, Id("spiffe://example.org/web"));
  EXPECT_TRUE(entry->jwt_svid_include_jti);
  EXPECT_TRUE(entry->disable_x509_svid_prefetch);
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
  ASSERT_TRUE(out.has_additional_attributes());
  EXPECT_TRUE(out.additional_attributes().jwt_svid_include_jti());
  EXPECT_TRUE(out.additional_attributes().disable_x509_svid_prefetch());
  // Nothing is lost either way.
  absl::StatusOr<Entry> back = EntryFromProto(out, Td("example.org"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, *entry);
}

TEST(ConvertTest, AdditionalAttributesEachAloneAndAbsent) {
  types::Entry in = ValidEntry();
  Entry entry = *EntryFromProto(in, Td("example.org"));
  EXPECT_FALSE(entry.jwt_svid_include_jti);
  EXPECT_FALSE(entry.disable_x509_svid_prefetch);
  // Output without a mask always carries the message, even with both flags false.
  types::Entry out = EntryToProto(entry);
  ASSERT_TRUE(out.has_additional_attributes());
  EXPECT_FALSE(out.additional_attributes().jwt_svid_include_jti());
  EXPECT_FALSE(out.additional_attributes().disable_x509_svid_prefetch());

  in.mutable_additional_attributes()->set_jwt_svid_include_jti(true);
  entry = *EntryFromProto(in, Td("example.org"));
  EXPECT_TRUE(entry.jwt_svid_include_jti);
  EXPECT_FALSE(entry.disable_x509_svid_prefetch);
  out = EntryToProto(entry);
  EXPECT_TRUE(out.additional_attributes().jwt_svid_include_jti());
  EXPECT_FALSE(out.additional_attributes().disable_x509_svid_prefetch());

  in.mutable_additional_attributes()->set_jwt_svid_include_jti(false);
  in.mutable_additional_attributes()->set_disable_x509_svid_prefetch(true);
  entry = *EntryFromProto(in, Td("example.org"));
  EXPECT_FALSE(entry.jwt_svid_include_jti);
  EXPECT_TRUE(entry.disable_x509_svid_prefetch);
  out = EntryToProto(entry);
  EXPECT_FALSE(out.additional_attributes().jwt_svid_include_jti());
  EXPECT_TRUE(out.additional_attributes().disable_x509_svid_prefetch());
}

TEST(ConvertTest, OutputMaskGovernsAdditionalAttributes) {
  Entry entry = *EntryFromProto(ValidEntry(), Td("example.org"));
  entry.id = "abc";
  entry.jwt_svid_include_jti = true;
  types::EntryMask mask;
  mask.set_hint(true);
  EXPECT_FALSE(EntryToProto(entry, &mask).has_additional_attributes());
  mask.set_additional_attributes(true);
  types::Entry out = EntryToProto(entry, &mask);
  ASSERT_TRUE(out.has_additional_attributes());
  EXPECT_TRUE(out.additional_attributes().jwt_svid_include_jti());
  EXPECT_FALSE(out.has_spiffe_id());
  EXPECT_EQ(out.id(), "abc");
  // Marked with both flags false, the message is still there: the field was asked for.
  entry.jwt_svid_include_jti = false;
  out = EntryToProto(entry, &mask);
  EXPECT_TRUE(out.has_additional_attributes());
  EXPECT_EQ(out.additional_attributes().ByteSizeLong(), 0u);
}

TEST(ConvertTest, InputMaskMapsEveryBitToTheStoreMask) {
  EntryMask all = EntryMaskFromProto(nullptr);
  EXPECT_TRUE(all.additional_attributes);
  EXPECT_TRUE(all.spiffe_id && all.parent_id && all.selectors && all.x509_svid_ttl &&
              all.jwt_svid_ttl && all.dns_names && all.federates_with && all.admin &&
              all.downstream && all.store_svid && all.hint && all.expires_at);

  types::EntryMask none;
  EntryMask empty = EntryMaskFromProto(&none);
  EXPECT_FALSE(empty.spiffe_id || empty.parent_id || empty.selectors || empty.x509_svid_ttl ||
               empty.jwt_svid_ttl || empty.dns_names || empty.federates_with || empty.admin ||
               empty.downstream || empty.store_svid || empty.hint || empty.expires_at ||
               empty.additional_attributes);

  types::EntryMask attributes;
  attributes.set_additional_attributes(true);
  attributes.set_revision_number(true);  // the store's: never copied from a client
  attributes.set_created_at(true);
  EntryMask mapped = EntryMaskFromProto(&attributes);
  EXPECT_TRUE(mapped.additional_attributes);
  EXPECT_FALSE(mapped.hint || mapped.selectors || mapped.spiffe_id);

  // One proto bit per store bit.
  using Setter = void (types::EntryMask::*)(bool);
  using Field = bool EntryMask::*;
  const std::vector<std::pair<Setter, Field>> pairs = {
      {&types::EntryMask::set_spiffe_id, &EntryMask::spiffe_id},
      {&types::EntryMask::set_parent_id, &EntryMask::parent_id},
      {&types::EntryMask::set_selectors, &EntryMask::selectors},
      {&types::EntryMask::set_x509_svid_ttl, &EntryMask::x509_svid_ttl},
      {&types::EntryMask::set_jwt_svid_ttl, &EntryMask::jwt_svid_ttl},
      {&types::EntryMask::set_dns_names, &EntryMask::dns_names},
      {&types::EntryMask::set_federates_with, &EntryMask::federates_with},
      {&types::EntryMask::set_admin, &EntryMask::admin},
      {&types::EntryMask::set_downstream, &EntryMask::downstream},
      {&types::EntryMask::set_store_svid, &EntryMask::store_svid},
      {&types::EntryMask::set_hint, &EntryMask::hint},
      {&types::EntryMask::set_expires_at, &EntryMask::expires_at},
      {&types::EntryMask::set_additional_attributes, &EntryMask::additional_attributes},
  };
  for (size_t i = 0; i < pairs.size(); ++i) {
    types::EntryMask one;
    (one.*pairs[i].first)(true);
    EntryMask got = EntryMaskFromProto(&one);
    for (size_t j = 0; j < pairs.size(); ++j) {
      EXPECT_EQ(got.*pairs[j].second, i == j) << i << " " << j;
    }
  }
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
  EXPECT_EQ(ConvertError(e), "failed to convert entry: missing selector type");
  e = ValidEntry();
  e.mutable_selectors(0)->set_type("a:b");
  EXPECT_EQ(ConvertError(e), "failed to convert entry: selector type contains ':'");
  e = ValidEntry();
  e.mutable_selectors(0)->set_value("");
  EXPECT_EQ(ConvertError(e), "failed to convert entry: missing selector value");

  e = ValidEntry();
  e.mutable_spiffe_id()->set_path("/spire/agent/x");
  EXPECT_THAT(ConvertError(e), HasSubstr("path is in the reserved namespace"));
  e = ValidEntry();
  e.mutable_spiffe_id()->set_trust_domain("other.org");
  EXPECT_THAT(ConvertError(e), HasSubstr("is not a member of trust domain \"example.org\""));
  e = ValidEntry();
  e.mutable_spiffe_id()->set_path("");
  EXPECT_EQ(ConvertError(e),
            "failed to convert entry: invalid spiffe ID: \"spiffe://example.org\" is not a "
            "workload in trust domain \"example.org\"; path is empty");
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
  EXPECT_EQ(ConvertError(e),
            "failed to convert entry: invalid DNS name: \"bad_name.example\" has a label with a "
            "character other than a letter, digit or '-'");
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

TEST(ConvertTest, AgentIdsWithSpiresMessages) {
  const spiffe::TrustDomain td = Td("example.org");
  EXPECT_TRUE(ValidateAgentId(Id("spiffe://example.org/spire/agent/x509pop/ab"), td).ok());
  absl::Status s = ValidateAgentId(Id("spiffe://example.org/web"), td);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(s),
            "\"spiffe://example.org/web\" is not an agent in trust domain \"example.org\"; path "
            "is not in the agent namespace");
  s = ValidateAgentId(Id("spiffe://example.org"), td);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(s),
            "\"spiffe://example.org\" is not an agent in trust domain \"example.org\"; path is "
            "empty");
  EXPECT_EQ(Message(ValidateAgentId(Id("spiffe://other.org/spire/agent/x/1"), td)),
            "\"spiffe://other.org/spire/agent/x/1\" is not a member of trust domain "
            "\"example.org\"");
  // The other trust domain's own root is not a member either: membership is checked first.
  EXPECT_EQ(Message(ValidateAgentId(Id("spiffe://other.org"), td)),
            "\"spiffe://other.org\" is not a member of trust domain \"example.org\"");
}

TEST(ConvertTest, WorkloadIdsWithSpiresMessages) {
  const spiffe::TrustDomain td = Td("example.org");
  EXPECT_TRUE(ValidateWorkloadId(Id("spiffe://example.org/web"), td).ok());
  EXPECT_TRUE(ValidateWorkloadId(Id("spiffe://example.org/spirex"), td).ok());
  absl::Status s = ValidateWorkloadId(Id("spiffe://example.org"), td);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(s),
            "\"spiffe://example.org\" is not a workload in trust domain \"example.org\"; path is "
            "empty");
  for (const char* reserved : {"spiffe://example.org/spire", "spiffe://example.org/spire/x"}) {
    EXPECT_EQ(Message(ValidateWorkloadId(Id(reserved), td)),
              absl::StrCat("\"", reserved,
                           "\" is not a workload in trust domain \"example.org\"; path is in the "
                           "reserved namespace"));
  }
  EXPECT_EQ(Message(ValidateWorkloadId(Id("spiffe://other.org"), td)),
            "\"spiffe://other.org\" is not a member of trust domain \"example.org\"");
}

TEST(ConvertTest, SelectorMessagesAreSpiresWithoutTheLibraryPrefix) {
  auto error = [](std::string type, std::string value) {
    google::protobuf::RepeatedPtrField<types::Selector> list;
    types::Selector* s = list.Add();
    s->set_type(std::move(type));
    s->set_value(std::move(value));
    absl::StatusOr<spiffe::SelectorSet> set = SelectorsFromProto(list);
    EXPECT_FALSE(set.ok());
    EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
    return set.ok() ? std::string() : Message(set.status());
  };
  EXPECT_EQ(error("", "v"), "missing selector type");
  EXPECT_EQ(error("", ""), "missing selector type");
  EXPECT_EQ(error("a:b", "v"), "selector type contains ':'");
  EXPECT_EQ(error("a:", ""), "selector type contains ':'");
  EXPECT_EQ(error("unix", ""), "missing selector value");
  // Our own limits, in the same style.
  EXPECT_EQ(error("unix", "uid:1\n"), "selector value contains a control character");
  EXPECT_EQ(error("un\tix", "uid"), "selector type contains a control character");
  EXPECT_EQ(error("unix", "\xff"), "selector value is not valid UTF-8");
  EXPECT_EQ(error(std::string(256, 't'), "v"), "selector type is longer than 255 bytes");
  EXPECT_EQ(error("unix", std::string(5000, 'v')), "selector value is longer than 4096 bytes");
  EXPECT_EQ(Message(SelectorsFromProto({}).status()), "selector list is empty");

  google::protobuf::RepeatedPtrField<types::Selector> good;
  good.Add()->set_type("unix");
  good.Mutable(0)->set_value("uid:0");
  absl::StatusOr<spiffe::SelectorSet> set = SelectorsFromProto(good);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->Strings(), std::vector<std::string>{"unix:uid:0"});
}

TEST(ConvertTest, DnsNames) {
  for (const char* good : {"example.org", "a", "*.example.org", "web-1.Example.ORG", "1.2.3",
                           "xn--bcher-kva.example"}) {
    EXPECT_TRUE(ValidateDnsName(good).ok()) << good;
  }
  EXPECT_TRUE(ValidateDnsName(std::string(63, 'a') + "." + std::string(63, 'b')).ok());
  struct Case {
    std::string name;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "empty DNS name"},
      {std::string(254, 'a'),
       absl::StrCat("\"", std::string(254, 'a'), "\" is longer than 253 bytes")},
      {std::string(64, 'a') + ".org",
       absl::StrCat("\"", std::string(64, 'a'), ".org\" has a label longer than 63 bytes")},
      {"a..b", "\"a..b\" has an empty label"},
      {"example.org.", "\"example.org.\" has an empty label"},
      {".example.org", "\".example.org\" has an empty label"},
      {"*", "\"*\" has a label with a character other than a letter, digit or '-'"},
      {"a.*.org", "\"a.*.org\" has a label with a character other than a letter, digit or '-'"},
      {"-a.org", "\"-a.org\" has a label that starts or ends with '-'"},
      {"a-.org", "\"a-.org\" has a label that starts or ends with '-'"},
      {"a_b.org", "\"a_b.org\" has a label with a character other than a letter, digit or '-'"},
      {"a\nb", "\"a\\nb\" has a label with a character other than a letter, digit or '-'"},
      {"b\xc3\xbc.example",
       "\"b\\xc3\\xbc.example\" has a label with a character other than a letter, digit or '-'"},
  };
  for (const Case& c : cases) {
    absl::Status s = ValidateDnsName(c.name);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(Message(s), c.message);
  }
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
  EXPECT_EQ(Message(BundleFromProto(proto).status()),
            "unable to parse JWT authority: missing key ID");
  // The key is parsed before its ID is looked at, as SPIRE does.
  proto.mutable_jwt_authorities(0)->set_public_key("garbage");
  EXPECT_THAT(Message(BundleFromProto(proto).status()),
              StartsWith("unable to parse JWT authority: "));
  EXPECT_THAT(Message(BundleFromProto(proto).status()), Not(HasSubstr("missing key ID")));
  proto = BundleToProto(bundle);
  proto.mutable_jwt_authorities(0)->set_public_key("garbage");
  absl::Status s = BundleFromProto(proto).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), StartsWith("unable to parse JWT authority: "));
  EXPECT_THAT(Message(s), Not(HasSubstr("kid1")));
  proto = BundleToProto(bundle);
  proto.mutable_x509_authorities(0)->set_asn1("garbage");
  s = BundleFromProto(proto).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), StartsWith("unable to parse X.509 authority: "));
  proto = BundleToProto(bundle);
  proto.set_trust_domain("spiffe://example.org");
  EXPECT_TRUE(BundleFromProto(proto).ok());
}

}  // namespace
}  // namespace tessera::server
