#include "spiffe/id.h"

#include <map>
#include <string>
#include <unordered_set>

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::spiffe {
namespace {

using ::testing::HasSubstr;

struct Vector {
  std::string input;
  std::string error;  // empty: valid
};

// Every vector of SPIFFE-FACTS §1, with the go-spiffe error text where it is invalid.
const Vector kVectors[] = {
    {"spiffe://example.org", ""},
    {"spiffe://example.org/workload", ""},
    {"spiffe://staging.example.com/payments/mysql", ""},
    {"spiffe://k8s-west.example.com/ns/staging/sa/default", ""},
    {"spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453", ""},
    {"spiffe://trust_domain.example.com/Svc/UPPER_case", ""},
    {"spiffe://td/.path", ""},
    {"spiffe://td/..path", ""},
    {"spiffe://td/...", ""},
    {"spiffe://192.168.1.10/svc", ""},
    {"spiffe://a-b_c.d/x-y_z.0", ""},
    {"", "cannot be empty"},
    {"spiffe://", "trust domain is missing"},
    {"spiffe:///path", "trust domain is missing"},
    {"http://example.org/x", "scheme is missing or invalid"},
    {"SPIFFE://example.org/x", "scheme is missing or invalid"},
    {"Spiffe://example.org/x", "scheme is missing or invalid"},
    {"spiffe:/example.org/x", "scheme is missing or invalid"},
    {"spiffe://Example.org/x", "trust domain characters are limited"},
    {"spiffe://example.org:8080/x", "trust domain characters are limited"},
    {"spiffe://user@example.org/x", "trust domain characters are limited"},
    {"spiffe://[::1]/x", "trust domain characters are limited"},
    {"spiffe://%62%61%64/x", "trust domain characters are limited"},
    {"spiffe://example.org/", "path cannot have a trailing slash"},
    {"spiffe://example.org/a/b/", "path cannot have a trailing slash"},
    {"spiffe://example.org//a", "path cannot contain empty segments"},
    {"spiffe://example.org/./a", "path cannot contain dot segments"},
    {"spiffe://example.org/a/..", "path cannot contain dot segments"},
    {"spiffe://example.org/%41bc", "path segment characters are limited"},
    {"spiffe://example.org/a?x=1", "path segment characters are limited"},
    {"spiffe://example.org/a#frag", "path segment characters are limited"},
    {"spiffe://example.org/a b", "path segment characters are limited"},
    {"spiffe://example.org/p:1", "path segment characters are limited"},
    {"spiffe://example.org/p~1", "path segment characters are limited"},
    {"spiffe://example.org/p$", "path segment characters are limited"},
    {"spiffe://example.org/h\xC3\xA9", "path segment characters are limited"},
    {"spiffe://example.org?x", "trust domain characters are limited"},
    {"spiffe://exa mple.org/x", "trust domain characters are limited"},
};

void PrintTo(const Vector& v, std::ostream* os) { *os << '"' << v.input << '"'; }

class SpiffeIdVectorTest : public ::testing::TestWithParam<Vector> {};

TEST_P(SpiffeIdVectorTest, ParsesStrictly) {
  const Vector& v = GetParam();
  absl::StatusOr<SpiffeId> id = SpiffeId::Parse(v.input);
  if (v.error.empty()) {
    ASSERT_TRUE(id.ok()) << v.input << ": " << id.status();
    EXPECT_EQ(id->str(), v.input);
  } else {
    ASSERT_FALSE(id.ok()) << v.input << " was accepted";
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(id.status().message()), HasSubstr(v.error)) << v.input;
  }
}

INSTANTIATE_TEST_SUITE_P(SpiffeFacts, SpiffeIdVectorTest, ::testing::ValuesIn(kVectors));

std::string IdOfLength(size_t length) {
  std::string id = "spiffe://example.org/";
  while (id.size() < length) id += (id.size() % 64 == 63) ? '/' : 'a';
  if (id.back() == '/') id.back() = 'b';
  return id;
}

TEST(SpiffeIdTest, Accepts2048Bytes) {
  std::string id = IdOfLength(2048);
  ASSERT_EQ(id.size(), 2048u);
  absl::StatusOr<SpiffeId> parsed = SpiffeId::Parse(id);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->str().size(), 2048u);
}

TEST(SpiffeIdTest, RejectsLongerThan2048Bytes) {
  absl::StatusOr<SpiffeId> parsed = SpiffeId::Parse(IdOfLength(2049));
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("longer than 2048"));
}

TEST(SpiffeIdTest, TrustDomainLongerThan255IsRejected) {
  EXPECT_TRUE(TrustDomain::Parse(std::string(255, 'a')).ok());
  EXPECT_FALSE(TrustDomain::Parse(std::string(256, 'a')).ok());
  EXPECT_FALSE(SpiffeId::Parse("spiffe://" + std::string(256, 'a') + "/x").ok());
}

TEST(SpiffeIdTest, PartsAndMembership) {
  SpiffeId id = *SpiffeId::Parse("spiffe://example.org/ns/web/sa/default");
  EXPECT_EQ(id.trust_domain().name(), "example.org");
  EXPECT_EQ(id.path(), "/ns/web/sa/default");
  EXPECT_FALSE(id.IsTrustDomainId());
  EXPECT_TRUE(id.MemberOf(*TrustDomain::Parse("example.org")));
  EXPECT_FALSE(id.MemberOf(*TrustDomain::Parse("example.com")));
  EXPECT_FALSE(id.MemberOf(*TrustDomain::Parse("example.or")));

  SpiffeId td_id = *SpiffeId::Parse("spiffe://example.org");
  EXPECT_TRUE(td_id.IsTrustDomainId());
  EXPECT_EQ(td_id.path(), "");
  EXPECT_EQ(td_id, id.trust_domain().Id());
}

TEST(TrustDomainTest, ParseAndIdForms) {
  TrustDomain td = *TrustDomain::Parse("example.org");
  EXPECT_EQ(td.name(), "example.org");
  EXPECT_EQ(td.IdString(), "spiffe://example.org");
  EXPECT_EQ(td.Id().str(), "spiffe://example.org");
  EXPECT_TRUE(td.Id().IsTrustDomainId());

  EXPECT_EQ(TrustDomain::FromIdOrName("spiffe://example.org")->name(), "example.org");
  EXPECT_EQ(TrustDomain::FromIdOrName("spiffe://example.org/x")->name(), "example.org");
  EXPECT_EQ(TrustDomain::FromIdOrName("example.org")->name(), "example.org");
  EXPECT_FALSE(TrustDomain::FromIdOrName("Example.org").ok());
  EXPECT_FALSE(TrustDomain::FromIdOrName("example.org:443").ok());
  EXPECT_FALSE(TrustDomain::Parse("").ok());
  EXPECT_FALSE(TrustDomain::Parse("spiffe://example.org").ok());
}

TEST(SpiffeIdTest, FromPathAndSegments) {
  TrustDomain td = *TrustDomain::Parse("example.org");
  EXPECT_EQ(SpiffeId::FromPath(td, "/a/b")->str(), "spiffe://example.org/a/b");
  EXPECT_EQ(SpiffeId::FromPath(td, "")->str(), "spiffe://example.org");
  EXPECT_FALSE(SpiffeId::FromPath(td, "a/b").ok());
  EXPECT_FALSE(SpiffeId::FromPath(td, "/a/").ok());
  EXPECT_EQ(SpiffeId::FromSegments(td, {"spire", "agent", "join_token", "abc"})->str(),
            "spiffe://example.org/spire/agent/join_token/abc");
  EXPECT_FALSE(SpiffeId::FromSegments(td, {"a/b"}).ok());
  EXPECT_FALSE(SpiffeId::FromSegments(td, {".."}).ok());
  EXPECT_FALSE(SpiffeId::FromSegments(td, {""}).ok());
}

TEST(SpiffeIdTest, UsableAsMapKeys) {
  SpiffeId a = *SpiffeId::Parse("spiffe://example.org/a");
  SpiffeId b = *SpiffeId::Parse("spiffe://example.org/b");
  std::map<SpiffeId, int> ordered{{b, 2}, {a, 1}};
  EXPECT_EQ(ordered.begin()->first, a);
  std::unordered_set<SpiffeId> hashed{a, b, a};
  EXPECT_EQ(hashed.size(), 2u);
  absl::flat_hash_set<SpiffeId> absl_hashed{a, b, a};
  EXPECT_EQ(absl_hashed.size(), 2u);
  absl::flat_hash_set<TrustDomain> tds{a.trust_domain(), b.trust_domain()};
  EXPECT_EQ(tds.size(), 1u);
  std::unordered_set<TrustDomain> std_tds{a.trust_domain()};
  EXPECT_TRUE(std_tds.contains(*TrustDomain::Parse("example.org")));
}

TEST(SpiffeIdTest, PathIsCaseSensitive) {
  EXPECT_NE(*SpiffeId::Parse("spiffe://example.org/A"), *SpiffeId::Parse("spiffe://example.org/a"));
}

}  // namespace
}  // namespace tessera::spiffe
