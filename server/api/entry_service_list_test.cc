// EntryService ListEntries and CountEntries: every filter, pagination to the end, output masks,
// and malformed filters refused.
#include "server/api/entry_service_test_util.h"

namespace tessera::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class EntryListTest : public EntryServiceTest {
 protected:
  void SetUp() override {
    EntryServiceTest::SetUp();
    if (HasFatalFailure()) return;
    auto c = ProtoEntry("/c", "/other", {{"unix", "uid:1"}});
    c.set_hint("h");
    auto d = ProtoEntry("/d", kAgentPath, {{"unix", "uid:9"}});
    d.set_downstream(true);
    auto resp = Create({ProtoEntry("/a", kAgentPath, {{"unix", "uid:1"}}),
                        ProtoEntry("/b", kAgentPath, {{"unix", "uid:2"}, {"unix", "gid:1"}}), c, d,
                        ProtoEntry("/e", kAgentPath, {{"k8s", "ns:x"}})});
    for (const auto& r : resp.results()) ASSERT_EQ(r.status().code(), 0) << r.status().message();
  }
  static types::SelectorMatch Match(std::vector<std::pair<std::string, std::string>> selectors,
                                    types::SelectorMatch::MatchBehavior match) {
    types::SelectorMatch m;
    for (auto& [type, value] : selectors) {
      auto* s = m.add_selectors();
      s->set_type(type);
      s->set_value(value);
    }
    m.set_match(match);
    return m;
  }
};

TEST_F(EntryListTest, PaginationEndsOnAnEmptyPage) {
  std::vector<int> sizes;
  EXPECT_THAT(ListPaths({}, 2, &sizes), ElementsAre("/a", "/b", "/c", "/d", "/e"));
  EXPECT_THAT(sizes, ElementsAre(2, 2, 1, 0));
  sizes.clear();
  EXPECT_THAT(ListPaths({}, 0, &sizes), ElementsAre("/a", "/b", "/c", "/d", "/e"));
  EXPECT_THAT(sizes, ElementsAre(5));
  EXPECT_EQ(CountRpc(), 5);
}

TEST_F(EntryListTest, Filters) {
  using Filter = entryv1::ListEntriesRequest::Filter;
  Filter by_id;
  *by_id.mutable_by_spiffe_id() = ProtoId("example.org", "/b");
  EXPECT_THAT(ListPaths(by_id), ElementsAre("/b"));

  Filter by_parent;
  *by_parent.mutable_by_parent_id() = ProtoId("example.org", "/other");
  EXPECT_THAT(ListPaths(by_parent), ElementsAre("/c"));

  Filter exact;
  *exact.mutable_by_selectors() = Match({{"unix", "uid:1"}}, types::SelectorMatch::MATCH_EXACT);
  EXPECT_THAT(ListPaths(exact), ElementsAre("/a", "/c"));
  Filter superset;
  *superset.mutable_by_selectors() =
      Match({{"unix", "uid:2"}}, types::SelectorMatch::MATCH_SUPERSET);
  EXPECT_THAT(ListPaths(superset), ElementsAre("/b"));
  Filter any;
  *any.mutable_by_selectors() =
      Match({{"unix", "gid:1"}, {"k8s", "ns:x"}}, types::SelectorMatch::MATCH_ANY);
  EXPECT_THAT(ListPaths(any), ElementsAre("/b", "/e"));
  Filter subset;
  *subset.mutable_by_selectors() =
      Match({{"unix", "uid:1"}, {"unix", "uid:9"}}, types::SelectorMatch::MATCH_SUBSET);
  EXPECT_THAT(ListPaths(subset), ElementsAre("/a", "/c", "/d"));

  Filter hint;
  hint.mutable_by_hint()->set_value("h");
  EXPECT_THAT(ListPaths(hint), ElementsAre("/c"));
  Filter downstream;
  downstream.mutable_by_downstream()->set_value(true);
  EXPECT_THAT(ListPaths(downstream), ElementsAre("/d"));

  // AND of conditions, and the same filter on CountEntries.
  Filter both = exact;
  *both.mutable_by_parent_id() = ProtoId("example.org", kAgentPath);
  EXPECT_THAT(ListPaths(both), ElementsAre("/a"));
  entryv1::CountEntriesRequest::Filter count_filter;
  *count_filter.mutable_by_selectors() = exact.by_selectors();
  EXPECT_EQ(CountRpc(count_filter), 2);
  count_filter.mutable_by_downstream()->set_value(false);
  EXPECT_EQ(CountRpc(count_filter), 2);
  count_filter.mutable_by_hint()->set_value("h");
  EXPECT_EQ(CountRpc(count_filter), 1);
}

TEST_F(EntryListTest, MalformedFiltersAreInvalidArgument) {
  using Filter = entryv1::ListEntriesRequest::Filter;
  std::vector<std::pair<Filter, std::string>> cases;
  Filter f;
  *f.mutable_by_spiffe_id() = ProtoId("other.org", "/a");
  cases.push_back({f, "malformed by_spiffe_id filter"});
  f.Clear();
  *f.mutable_by_spiffe_id() = ProtoId("example.org", "/a//b");
  cases.push_back({f, "malformed by_spiffe_id filter"});
  f.Clear();
  *f.mutable_by_parent_id() = ProtoId("other.org", "/spire/agent/x");
  cases.push_back({f, "malformed by_parent_id filter"});
  f.Clear();
  f.mutable_by_selectors();
  cases.push_back({f, "malformed by_selectors filter"});
  f.Clear();
  *f.mutable_by_selectors() = Match({{"unix:x", "1"}}, types::SelectorMatch::MATCH_ANY);
  cases.push_back({f, "malformed by_selectors filter"});
  f.Clear();
  f.mutable_by_federates_with();
  cases.push_back({f, "malformed by_federates_with filter"});
  f.Clear();
  f.mutable_by_federates_with()->add_trust_domains("Not A TD");
  cases.push_back({f, "malformed by_federates_with filter"});
  for (const auto& [filter, message] : cases) {
    SCOPED_TRACE(filter.ShortDebugString());
    entryv1::ListEntriesRequest req;
    *req.mutable_filter() = filter;
    entryv1::ListEntriesResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->ListEntries(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr(message));

    entryv1::CountEntriesRequest count_req;
    count_req.mutable_filter()->ParseFromString(filter.SerializeAsString());
    entryv1::CountEntriesResponse count_resp;
    grpc::ClientContext count_ctx;
    grpc::Status cs = stub_->CountEntries(&count_ctx, count_req, &count_resp);
    EXPECT_EQ(cs.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(cs.error_message(), HasSubstr(message));
  }
}

TEST_F(EntryListTest, OutputMaskAndBadPageToken) {
  entryv1::ListEntriesRequest req;
  req.mutable_output_mask()->set_hint(true);
  req.mutable_filter()->mutable_by_hint()->set_value("h");
  entryv1::ListEntriesResponse resp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->ListEntries(&ctx, req, &resp).ok());
  }
  ASSERT_EQ(resp.entries_size(), 1);
  EXPECT_FALSE(resp.entries(0).id().empty());
  EXPECT_EQ(resp.entries(0).hint(), "h");
  EXPECT_FALSE(resp.entries(0).has_spiffe_id());
  EXPECT_EQ(resp.entries(0).selectors_size(), 0);

  entryv1::ListEntriesRequest bad;
  bad.set_page_size(2);
  bad.set_page_token("garbage");
  grpc::ClientContext ctx;
  grpc::Status s = stub_->ListEntries(&ctx, bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("failed to list entries"));
}

}  // namespace
}  // namespace tessera::server::testing
