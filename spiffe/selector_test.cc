#include "spiffe/selector.h"

#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::spiffe {
namespace {

using ::testing::ElementsAre;

Selector S(std::string_view text) {
  absl::StatusOr<Selector> s = Selector::Parse(text);
  EXPECT_TRUE(s.ok()) << text << ": " << s.status();
  return *s;
}

SelectorSet Set(std::initializer_list<std::string_view> texts) {
  absl::StatusOr<SelectorSet> set = SelectorSet::Parse(texts);
  EXPECT_TRUE(set.ok()) << set.status();
  return *set;
}

TEST(SelectorTest, SplitsAtTheFirstColon) {
  struct Case {
    std::string text, type, value;
  };
  for (const Case& c : std::vector<Case>{
           {"unix:uid:1000", "unix", "uid:1000"},
           {"k8s:ns:web", "k8s", "ns:web"},
           {"k8s:pod-label:app:frontend", "k8s", "pod-label:app:frontend"},
           {"docker:label:app:web", "docker", "label:app:web"},
           {"docker:image_id:sha256:0123abcd", "docker", "image_id:sha256:0123abcd"},
           {"systemd:id:nginx.service", "systemd", "id:nginx.service"},
           {"spiffe_id:spiffe://example.org/spire/agent/join_token/abc", "spiffe_id",
            "spiffe://example.org/spire/agent/join_token/abc"},
           {"x509pop:subject:cn:agent 1", "x509pop", "subject:cn:agent 1"},
           {"t:v", "t", "v"},
           {"t::", "t", ":"},
           {"unix:caf\xC3\xA9", "unix", "caf\xC3\xA9"},
       }) {
    absl::StatusOr<Selector> s = Selector::Parse(c.text);
    ASSERT_TRUE(s.ok()) << c.text << ": " << s.status();
    EXPECT_EQ(s->type(), c.type);
    EXPECT_EQ(s->value(), c.value);
    EXPECT_EQ(s->ToString(), c.text);
  }
}

TEST(SelectorTest, RejectsBadInput) {
  struct Case {
    std::string text, message;
  };
  for (const Case& c : std::vector<Case>{
           {"", R"(invalid selector "": expected "type:value")"},
           {"unix", R"(invalid selector "unix": expected "type:value")"},
           {":uid:0", R"(invalid selector ":uid:0": missing selector type)"},
           {":", R"(invalid selector ":": missing selector type)"},
           {"unix:", R"(invalid selector "unix:": missing selector value)"},
           {"unix:uid:0\n",
            R"(invalid selector "unix:uid:0\n": selector value contains a control character)"},
           {"un\tix:uid:0",
            R"(invalid selector "un\tix:uid:0": selector type contains a control character)"},
           {std::string("unix:uid\0", 9),
            R"(invalid selector "unix:uid\x00": selector value contains a control character)"},
           {"unix:uid\x7f",
            R"(invalid selector "unix:uid\x7f": selector value contains a control character)"},
           {"unix:\xFF", R"(invalid selector "unix:\xff": selector value is not valid UTF-8)"},
           {"\xC0\xAF:x", R"(invalid selector "\xc0\xaf:x": selector type is not valid UTF-8)"},
       }) {
    absl::StatusOr<Selector> s = Selector::Parse(c.text);
    ASSERT_FALSE(s.ok()) << ::testing::PrintToString(c.text) << " was accepted";
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(s.status().message()), c.message);
  }
}

TEST(SelectorTest, EnforcesLengthLimits) {
  EXPECT_TRUE(Selector::Parse(std::string(kMaxSelectorTypeLength, 't') + ":v").ok());
  EXPECT_TRUE(Selector::Parse("t:" + std::string(kMaxSelectorValueLength, 'v')).ok());

  const absl::StatusOr<Selector> long_type =
      Selector::Parse(std::string(kMaxSelectorTypeLength + 1, 't') + ":v");
  ASSERT_FALSE(long_type.ok());
  EXPECT_THAT(std::string(long_type.status().message()),
              ::testing::EndsWith("...: selector type is longer than 255 bytes"));
  const absl::StatusOr<Selector> long_value =
      Selector::Parse("t:" + std::string(kMaxSelectorValueLength + 1, 'v'));
  ASSERT_FALSE(long_value.ok());
  EXPECT_THAT(std::string(long_value.status().message()),
              ::testing::EndsWith("...: selector value is longer than 4096 bytes"));
  // The message quotes only a prefix of the offending input.
  EXPECT_LT(long_value.status().message().size(), 200u);
}

TEST(SelectorTest, CreateFromPartsMatchesSpireMessages) {
  absl::StatusOr<Selector> s = Selector::Create("docker", "label:app:web");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, S("docker:label:app:web"));
  EXPECT_EQ(s->type(), "docker");

  EXPECT_EQ(std::string(Selector::Create("", "x").status().message()),
            R"(invalid selector ":x": missing selector type)");
  EXPECT_EQ(std::string(Selector::Create("a:b", "x").status().message()),
            R"(invalid selector "a:b:x": selector type contains ':')");
  EXPECT_EQ(std::string(Selector::Create("unix", "").status().message()),
            R"(invalid selector "unix:": missing selector value)");
}

TEST(SelectorTest, EqualityOrderingAndHashing) {
  EXPECT_EQ(S("unix:uid:0"), S("unix:uid:0"));
  EXPECT_NE(S("unix:uid:0"), S("unix:uid:00"));
  EXPECT_NE(S("unix:uid:0"), S("Unix:uid:0"));
  EXPECT_LT(S("k8s:ns:a"), S("k8s:ns:b"));
  EXPECT_LT(S("docker:x"), S("unix:x"));

  absl::flat_hash_set<Selector> absl_set = {S("unix:uid:0"), S("unix:uid:0"), S("k8s:ns:a")};
  EXPECT_EQ(absl_set.size(), 2u);
  std::unordered_set<Selector> std_set = {S("unix:uid:0"), S("unix:uid:0"), S("k8s:ns:a")};
  EXPECT_EQ(std_set.size(), 2u);
  std::map<Selector, int> ordered = {{S("unix:b"), 1}, {S("unix:a"), 2}};
  EXPECT_EQ(ordered.begin()->first, S("unix:a"));
}

TEST(SelectorSetTest, SortsAndDeduplicates) {
  const SelectorSet set = Set({"unix:uid:0", "k8s:ns:web", "unix:uid:0", "k8s:ns:web", "a:b"});
  EXPECT_EQ(set.size(), 3u);
  EXPECT_THAT(set.Strings(), ElementsAre("a:b", "k8s:ns:web", "unix:uid:0"));
  EXPECT_EQ(set.ToString(), "[a:b k8s:ns:web unix:uid:0]");
  EXPECT_EQ(SelectorSet().ToString(), "[]");
  EXPECT_EQ(set, Set({"unix:uid:0", "a:b", "k8s:ns:web"}));

  const std::vector<std::string> texts = {"unix:uid:0", "bad"};
  const absl::StatusOr<SelectorSet> bad = SelectorSet::Parse(texts);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(std::string(bad.status().message()),
            R"(invalid selector "bad": expected "type:value")");
}

TEST(SelectorSetTest, EntryMatchesWhenAllItsSelectorsAreOnTheWorkload) {
  const SelectorSet workload =
      Set({"unix:uid:1000", "unix:gid:1000", "unix:user:web", "k8s:ns:prod", "k8s:sa:frontend",
           "k8s:pod-label:app:frontend", "docker:label:app:web"});
  EXPECT_TRUE(Set({"unix:uid:1000"}).IsSubsetOf(workload));
  EXPECT_TRUE(Set({"k8s:ns:prod", "k8s:sa:frontend"}).IsSubsetOf(workload));
  EXPECT_TRUE(Set({"docker:label:app:web", "unix:uid:1000"}).IsSubsetOf(workload));
  EXPECT_TRUE(workload.IsSubsetOf(workload));

  EXPECT_FALSE(Set({"unix:uid:0"}).IsSubsetOf(workload));
  EXPECT_FALSE(Set({"k8s:ns:prod", "k8s:sa:backend"}).IsSubsetOf(workload));
  EXPECT_FALSE(Set({"k8s:ns:prod", "k8s:sa:frontend", "k8s:node-name:n1"}).IsSubsetOf(workload));
  // Values are compared whole: no prefix or partial match.
  EXPECT_FALSE(Set({"docker:label:app"}).IsSubsetOf(workload));
  EXPECT_FALSE(Set({"unix:uid:100"}).IsSubsetOf(workload));
  // Types matter: the same value under another type is a different selector.
  EXPECT_FALSE(Set({"docker:ns:prod"}).IsSubsetOf(workload));
}

TEST(SelectorSetTest, EmptyEntryNeverMatches) {
  // An entry without selectors must not match every workload.
  EXPECT_FALSE(SelectorSet().IsSubsetOf(Set({"unix:uid:0"})));
  EXPECT_FALSE(SelectorSet().IsSubsetOf(SelectorSet()));
  // And a workload without selectors matches nothing.
  EXPECT_FALSE(Set({"unix:uid:0"}).IsSubsetOf(SelectorSet()));
}

TEST(SelectorSetTest, IntersectsContainsAndMerge) {
  const SelectorSet a = Set({"unix:uid:0", "k8s:ns:a"});
  EXPECT_TRUE(a.Intersects(Set({"k8s:ns:a", "k8s:ns:b"})));
  EXPECT_FALSE(a.Intersects(Set({"k8s:ns:b", "unix:uid:1"})));
  EXPECT_FALSE(a.Intersects(SelectorSet()));
  EXPECT_TRUE(a.Contains(S("unix:uid:0")));
  EXPECT_FALSE(a.Contains(S("unix:uid:1")));

  SelectorSet merged = a;
  merged.Merge(Set({"k8s:ns:a", "docker:label:x:y"}));
  EXPECT_THAT(merged.Strings(), ElementsAre("docker:label:x:y", "k8s:ns:a", "unix:uid:0"));
  merged.Merge(SelectorSet());
  EXPECT_EQ(merged.size(), 3u);
}

TEST(SelectorSetTest, SubsetCheckAgreesWithNaiveCheckOnLargeSets) {
  std::vector<Selector> workload_selectors;
  workload_selectors.reserve(500);
  for (int i = 0; i < 500; ++i) {
    workload_selectors.push_back(S("k8s:pod-label:key" + std::to_string(i) + ":v"));
  }
  const SelectorSet workload(workload_selectors);
  for (int start = 0; start < 500; start += 37) {
    std::vector<Selector> entry_selectors;
    for (int i = start; i < start + 20 && i < 500; i += 3) {
      entry_selectors.push_back(workload_selectors[static_cast<size_t>(i)]);
    }
    SelectorSet entry(entry_selectors);
    EXPECT_TRUE(entry.IsSubsetOf(workload)) << start;
    entry.Merge(Set({"k8s:pod-label:missing:v"}));
    EXPECT_FALSE(entry.IsSubsetOf(workload)) << start;
  }
}

}  // namespace
}  // namespace tessera::spiffe
