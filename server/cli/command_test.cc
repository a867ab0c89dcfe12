// The flag parsers every command uses: TTLs, SPIFFE IDs, trust domains, selectors, times.
#include "server/cli/command.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::server::cli {
namespace {

using ::testing::HasSubstr;

TEST(ParseTtlFlagTest, SecondsAndDurations) {
  EXPECT_EQ(ParseTtlFlag("--ttl", "90").value(), 90);
  EXPECT_EQ(ParseTtlFlag("--ttl", "0").value(), 0);
  EXPECT_EQ(ParseTtlFlag("--ttl", "1h30m").value(), 5400);
  EXPECT_EQ(ParseTtlFlag("--ttl", "2147483647").value(), 2147483647);
  // A fraction of a second counts as a whole one.
  EXPECT_EQ(ParseTtlFlag("--ttl", "1500ms").value(), 2);
  EXPECT_EQ(ParseTtlFlag("--ttl", "1ns").value(), 1);
}

TEST(ParseTtlFlagTest, Refusals) {
  for (const char* bad :
       {"", "-1", "1x", "1 h", "h", "2147483648", "99999999999999999999", "24856d"}) {
    absl::StatusOr<int32_t> ttl = ParseTtlFlag("--x509-svid-ttl", bad);
    ASSERT_FALSE(ttl.ok()) << bad;
    EXPECT_EQ(ttl.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(ttl.status().message()), ::testing::StartsWith("--x509-svid-ttl: "))
        << bad;
  }
  EXPECT_THAT(std::string(ParseTtlFlag("--ttl", "2147483648").status().message()),
              HasSubstr("is more than 2147483647 seconds"));
}

TEST(ParseIdFlagTest, NamesTheFlagAndValue) {
  EXPECT_EQ(ParseIdFlag("--spiffe-id", "spiffe://example.org/a").value().str(),
            "spiffe://example.org/a");
  absl::StatusOr<spiffe::SpiffeId> bad = ParseIdFlag("--parent-id", "spiffe://example.org/a/");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              ::testing::StartsWith("--parent-id \"spiffe://example.org/a/\": invalid SPIFFE ID"));
}

TEST(ParseTrustDomainFlagTest, NameOrId) {
  EXPECT_EQ(ParseTrustDomainFlag("--id", "other.org").value().name(), "other.org");
  EXPECT_EQ(ParseTrustDomainFlag("--id", "spiffe://other.org").value().name(), "other.org");
  EXPECT_FALSE(ParseTrustDomainFlag("--id", "spiffe://other.org/path").ok());
  EXPECT_FALSE(ParseTrustDomainFlag("--id", "UPPER.org").ok());
}

TEST(ParseSelectorFlagsTest, SplitsAtTheFirstColon) {
  google::protobuf::RepeatedPtrField<types::Selector> out;
  ASSERT_TRUE(ParseSelectorFlags("--selector", {"docker:label:app:web", "unix:uid:0"}, &out).ok());
  ASSERT_EQ(out.size(), 2);
  EXPECT_EQ(out[0].type(), "docker");
  EXPECT_EQ(out[0].value(), "label:app:web");
  EXPECT_EQ(out[1].type(), "unix");
  for (const char* bad : {"nocolon", ":v", "t:", "t\n:v"}) {
    google::protobuf::RepeatedPtrField<types::Selector> none;
    absl::Status s = ParseSelectorFlags("--selector", {bad}, &none);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_THAT(std::string(s.message()), ::testing::StartsWith("--selector: invalid selector"));
  }
}

TEST(ParseTimeFlagTest, UnixSecondsOrRfc3339) {
  EXPECT_EQ(ParseTimeFlag("--expires-at", "1767225600").value(), 1767225600);
  EXPECT_EQ(ParseTimeFlag("--expires-at", "2026-01-01T00:00:00Z").value(), 1767225600);
  EXPECT_EQ(ParseTimeFlag("--expires-at", "2026-01-01T01:00:00+01:00").value(), 1767225600);
  for (const char* bad : {"", "-5", "2026-01-01", "tomorrow", "99999999999999999999"}) {
    absl::StatusOr<int64_t> t = ParseTimeFlag("--expires-at", bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_THAT(std::string(t.status().message()),
                HasSubstr("expected Unix seconds or an RFC 3339"));
  }
}

TEST(FormatTest, SpireLayouts) {
  EXPECT_EQ(FormatUnixTime(0), "1970-01-01 00:00:00 +0000 UTC");
  EXPECT_EQ(FormatUnixTime(1767225600), "2026-01-01 00:00:00 +0000 UTC");
  EXPECT_EQ(Plural(1, "entry", "entries"), "1 entry");
  EXPECT_EQ(Plural(0, "entry", "entries"), "0 entries");
  EXPECT_EQ(MatchBehaviorFromFlag("exact"), types::SelectorMatch::MATCH_EXACT);
  EXPECT_EQ(MatchBehaviorFromFlag("subset"), types::SelectorMatch::MATCH_SUBSET);
  EXPECT_EQ(MatchBehaviorFromFlag("superset"), types::SelectorMatch::MATCH_SUPERSET);
  EXPECT_EQ(MatchBehaviorFromFlag("any"), types::SelectorMatch::MATCH_ANY);
  types::SPIFFEID id;
  EXPECT_EQ(IdString(id), "");
  id.set_trust_domain("example.org");
  id.set_path("/a");
  EXPECT_EQ(IdString(id), "spiffe://example.org/a");
}

}  // namespace
}  // namespace tessera::server::cli
