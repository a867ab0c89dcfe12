#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/datastore/datastore_test_util.h"

namespace tessera::server {
namespace {

using testing::DataStoreTest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Id;
using testing::MakeBundle;
using testing::MakeEntry;
using testing::Selectors;
using testing::Td;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

std::vector<std::string> Ids(const std::vector<Entry>& entries) {
  std::vector<std::string> ids;
  for (const Entry& e : entries) ids.push_back(e.id);
  return ids;
}

// e1..e5 with overlapping selectors and federated trust domains.
class EntryFilterTest : public DataStoreTest {
 protected:
  void SetUp() override {
    DataStoreTest::SetUp();
    ASSERT_TRUE(store_->CreateBundle(MakeBundle("fed1.org")).ok());
    ASSERT_TRUE(store_->CreateBundle(MakeBundle("fed2.org")).ok());
    Add("e1", "/w1", "/agent1", {"a:1"}, {}, "h1", false);
    Add("e2", "/w2", "/agent1", {"a:1", "b:2"}, {"fed1.org"}, "h2", true);
    Add("e3", "/w3", "/agent2", {"a:1", "b:2", "c:3"}, {"fed1.org", "fed2.org"}, "", false);
    Add("e4", "/w4", "/agent2", {"b:2"}, {"fed2.org"}, "", false);
    Add("e5", "/w1", "/agent2", {"d:4"}, {}, "", false);
  }
  void Add(std::string id, std::string path, std::string parent,
           std::initializer_list<std::string_view> selectors, std::vector<std::string> feds,
           std::string hint, bool downstream) {
    Entry e = MakeEntry("spiffe://example.org" + path, "spiffe://example.org" + parent, selectors);
    e.id = id;
    for (const std::string& f : feds) e.federates_with.push_back(Td(f));
    e.hint = hint;
    e.downstream = downstream;
    ASSERT_TRUE(store_->CreateEntry(e).ok());
  }
  // Lists with `filter` (page by page, two at a time, to mix in pagination) and checks that
  // CountEntries agrees.
  std::vector<std::string> Match(const EntryFilter& filter) {
    std::vector<std::string> ids;
    PageRequest page{.page_size = 2, .token = ""};
    for (int guard = 0; guard < 10; ++guard) {
      auto result = store_->ListEntries(filter, page);
      EXPECT_TRUE(result.ok()) << result.status();
      if (!result.ok()) return {};
      for (const Entry& e : result->items) ids.push_back(e.id);
      if (result->next_token.empty()) break;
      page.token = result->next_token;
    }
    auto count = store_->CountEntries(filter);
    EXPECT_TRUE(count.ok()) << count.status();
    EXPECT_EQ(count.value_or(-1), static_cast<int64_t>(ids.size()));
    return ids;
  }
  std::vector<std::string> BySelectors(std::initializer_list<std::string_view> s, MatchBehavior m) {
    return Match({.by_selectors = SelectorMatch{.selectors = Selectors(s), .match = m}});
  }
  std::vector<std::string> ByFederates(std::vector<std::string> tds, MatchBehavior m) {
    FederatesWithMatch match{.trust_domains = {}, .match = m};
    for (const std::string& td : tds) match.trust_domains.push_back(Td(td));
    return Match({.by_federates_with = match});
  }
};

TEST_F(EntryFilterTest, BySelectorsInEveryMode) {
  using M = MatchBehavior;
  EXPECT_THAT(BySelectors({"b:2", "a:1"}, M::kExact), ElementsAre("e2"));
  EXPECT_THAT(BySelectors({"a:1", "b:2"}, M::kSubset), ElementsAre("e1", "e2", "e4"));
  EXPECT_THAT(BySelectors({"a:1", "b:2"}, M::kSuperset), ElementsAre("e2", "e3"));
  EXPECT_THAT(BySelectors({"a:1", "b:2"}, M::kAny), ElementsAre("e1", "e2", "e3", "e4"));
  EXPECT_THAT(BySelectors({"a:1"}, M::kExact), ElementsAre("e1"));
  EXPECT_THAT(BySelectors({"x:9"}, M::kAny), ElementsAre());
  EXPECT_THAT(BySelectors({"a:1", "b:2", "c:3", "d:4"}, M::kSubset),
              ElementsAre("e1", "e2", "e3", "e4", "e5"));
}

TEST_F(EntryFilterTest, ByFederatesWithInEveryMode) {
  using M = MatchBehavior;
  EXPECT_THAT(ByFederates({"fed1.org"}, M::kExact), ElementsAre("e2"));
  EXPECT_THAT(ByFederates({"fed1.org"}, M::kSubset), ElementsAre("e2"));
  EXPECT_THAT(ByFederates({"fed1.org"}, M::kSuperset), ElementsAre("e2", "e3"));
  EXPECT_THAT(ByFederates({"fed1.org"}, M::kAny), ElementsAre("e2", "e3"));
  EXPECT_THAT(ByFederates({"fed2.org", "fed1.org"}, M::kExact), ElementsAre("e3"));
  EXPECT_THAT(ByFederates({"fed1.org", "fed2.org"}, M::kSubset), ElementsAre("e2", "e3", "e4"));
  EXPECT_THAT(ByFederates({"fed1.org", "fed2.org", "fed1.org"}, M::kSuperset), ElementsAre("e3"));
  EXPECT_THAT(ByFederates({"fed1.org", "fed2.org"}, M::kAny), ElementsAre("e2", "e3", "e4"));
}

TEST_F(EntryFilterTest, ByScalarFieldsAndCombinations) {
  EXPECT_THAT(Match({.by_spiffe_id = Id("spiffe://example.org/w1")}), ElementsAre("e1", "e5"));
  EXPECT_THAT(Match({.by_parent_id = Id("spiffe://example.org/agent2")}),
              ElementsAre("e3", "e4", "e5"));
  EXPECT_THAT(Match({.by_hint = "h2"}), ElementsAre("e2"));
  EXPECT_THAT(Match({.by_hint = ""}), ElementsAre("e3", "e4", "e5"));
  EXPECT_THAT(Match({.by_downstream = true}), ElementsAre("e2"));
  EXPECT_THAT(Match({.by_downstream = false}), ElementsAre("e1", "e3", "e4", "e5"));
  EXPECT_THAT(Match({}), ElementsAre("e1", "e2", "e3", "e4", "e5"));
  EXPECT_THAT(Match({.by_spiffe_id = Id("spiffe://example.org/w1"),
                     .by_parent_id = Id("spiffe://example.org/agent2")}),
              ElementsAre("e5"));
  EXPECT_THAT(Match({.by_parent_id = Id("spiffe://example.org/agent1"),
                     .by_selectors = SelectorMatch{Selectors({"b:2"}), MatchBehavior::kAny}}),
              ElementsAre("e2"));
  EXPECT_THAT(
      Match({.by_selectors = SelectorMatch{Selectors({"a:1"}), MatchBehavior::kSuperset},
             .by_federates_with = FederatesWithMatch{{Td("fed2.org")}, MatchBehavior::kAny}}),
      ElementsAre("e3"));
}

TEST_F(EntryFilterTest, EmptyFilterSetsAreRejected) {
  absl::Status status =
      store_->ListEntries({.by_selectors = SelectorMatch{}}, PageRequest{}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(status), HasSubstr("empty selector set"));
  status = store_->CountEntries({.by_federates_with = FederatesWithMatch{}}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EntryFilterTest, PaginationEndsOnEmptyPage) {
  ASSERT_OK_AND_ASSIGN(Page<Entry> all, store_->ListEntries({}, PageRequest{}));
  EXPECT_THAT(Ids(all.items), ElementsAre("e1", "e2", "e3", "e4", "e5"));
  EXPECT_EQ(all.next_token, "");

  PageRequest page{.page_size = 2, .token = ""};
  std::vector<std::vector<std::string>> pages;
  for (int guard = 0; guard < 10; ++guard) {
    ASSERT_OK_AND_ASSIGN(Page<Entry> p, store_->ListEntries({}, page));
    pages.push_back(Ids(p.items));
    if (p.items.empty()) {
      EXPECT_EQ(p.next_token, "");
      break;
    }
    EXPECT_NE(p.next_token, "");
    if (pages.size() == 1) {
      // Inserted behind the cursor: shows up at the end, once.
      ASSERT_TRUE(store_
                      ->CreateEntry(MakeEntry("spiffe://example.org/late",
                                              "spiffe://example.org/agent1", {"z:1"}))
                      .ok());
    }
    page.token = p.next_token;
  }
  ASSERT_EQ(pages.size(), 4u);
  EXPECT_THAT(pages[0], ElementsAre("e1", "e2"));
  EXPECT_THAT(pages[1], ElementsAre("e3", "e4"));
  ASSERT_EQ(pages[2].size(), 2u);
  EXPECT_EQ(pages[2][0], "e5");
  EXPECT_TRUE(pages[3].empty());

  // Exactly one full page: the next one is empty.
  ASSERT_OK_AND_ASSIGN(Page<Entry> six, store_->ListEntries({}, {.page_size = 6, .token = ""}));
  EXPECT_EQ(six.items.size(), 6u);
  ASSERT_OK_AND_ASSIGN(Page<Entry> after,
                       store_->ListEntries({}, {.page_size = 6, .token = six.next_token}));
  EXPECT_TRUE(after.items.empty());
  EXPECT_EQ(after.next_token, "");

  // A token past the end is simply an empty page.
  ASSERT_OK_AND_ASSIGN(Page<Entry> past,
                       store_->ListEntries({}, {.page_size = 2, .token = "100000"}));
  EXPECT_TRUE(past.items.empty());
}

TEST_F(EntryFilterTest, GarbageTokensAreInvalidArgument) {
  for (const std::string& token :
       std::vector<std::string>{"abc", "-1", "0", "1.5", "0x10", " 1", "1 ", "007",
                                "99999999999999999999", std::string("1\0", 2)}) {
    absl::Status status = store_->ListEntries({}, {.page_size = 2, .token = token}).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << token;
    EXPECT_THAT(Msg(status), HasSubstr("invalid page token")) << token;
  }
  EXPECT_EQ(store_->ListEntries({}, {.page_size = -1, .token = ""}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(EntryFilterTest, ListAllEntriesLoadsEverythingInCreationOrder) {
  ASSERT_OK_AND_ASSIGN(std::vector<Entry> all, store_->ListAllEntries());
  EXPECT_THAT(Ids(all), ElementsAre("e1", "e2", "e3", "e4", "e5"));
  EXPECT_EQ(all[2].selectors, Selectors({"a:1", "b:2", "c:3"}));
  EXPECT_THAT(all[2].federates_with, ElementsAre(Td("fed1.org"), Td("fed2.org")));
  for (const Entry& e : all) {
    ASSERT_OK_AND_ASSIGN(std::optional<Entry> one, store_->FetchEntry(e.id));
    EXPECT_EQ(*one, e);
  }
}

}  // namespace
}  // namespace tessera::server
