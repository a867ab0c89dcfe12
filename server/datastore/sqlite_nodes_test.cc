#include <atomic>
#include <string>
#include <thread>
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
using testing::MakeNode;
using testing::Selectors;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

std::vector<std::string> Paths(const std::vector<AttestedNode>& nodes) {
  std::vector<std::string> out;
  for (const AttestedNode& n : nodes) out.emplace_back(n.id.path());
  return out;
}

class NodesTest : public DataStoreTest {};

TEST_F(NodesTest, CreateFetchAndDuplicates) {
  AttestedNode node = MakeNode("spiffe://example.org/spire/agent/x509pop/abc");
  node.attestation_type = "x509pop";
  node.new_cert_serial = "99";
  node.new_cert_not_after = 1'800'007'200;
  node.can_reattest = true;
  node.agent_version = "1.9.0";
  node.selectors = Selectors({"x509pop:subject:cn:abc", "x509pop:ca:fingerprint:ff"});
  ASSERT_OK_AND_ASSIGN(AttestedNode created, store_->CreateAttestedNode(node));
  EXPECT_EQ(created, node);
  Reopen();
  ASSERT_OK_AND_ASSIGN(std::optional<AttestedNode> fetched, store_->FetchAttestedNode(node.id));
  ASSERT_TRUE(fetched.has_value());
  EXPECT_EQ(*fetched, node);

  absl::Status status = store_->CreateAttestedNode(node).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(Msg(status), HasSubstr("already exists"));

  ASSERT_OK_AND_ASSIGN(fetched, store_->FetchAttestedNode(Id("spiffe://example.org/other")));
  EXPECT_FALSE(fetched.has_value());
}

TEST_F(NodesTest, UpdateCopiesMaskedFieldsOnly) {
  AttestedNode node = MakeNode("spiffe://example.org/spire/agent/join_token/t");
  node.selectors = Selectors({"a:1"});
  ASSERT_TRUE(store_->CreateAttestedNode(node).ok());

  // BanAgent: both serials cleared, nothing else.
  AttestedNode ban = MakeNode("spiffe://example.org/spire/agent/join_token/t", "");
  ban.attestation_type = "ignored";
  ban.selectors = Selectors({"ignored:1"});
  NodeMask mask;
  mask.cert_serial = true;
  mask.new_cert_serial = true;
  ASSERT_OK_AND_ASSIGN(AttestedNode banned, store_->UpdateAttestedNode(ban, mask));
  EXPECT_TRUE(banned.banned());
  EXPECT_EQ(banned.attestation_type, "join_token");
  EXPECT_EQ(banned.cert_not_after, node.cert_not_after);
  EXPECT_EQ(banned.selectors, Selectors({"a:1"}));
  ASSERT_OK_AND_ASSIGN(std::optional<AttestedNode> fetched, store_->FetchAttestedNode(node.id));
  EXPECT_EQ(*fetched, banned);

  AttestedNode all = MakeNode("spiffe://example.org/spire/agent/join_token/t", "777");
  all.attestation_type = "x509pop";
  all.cert_not_after = 5;
  all.new_cert_serial = "778";
  all.new_cert_not_after = 6;
  all.can_reattest = true;
  all.agent_version = "v2";
  all.selectors = Selectors({"b:2", "c:3"});
  ASSERT_OK_AND_ASSIGN(AttestedNode updated, store_->UpdateAttestedNode(all, NodeMask::All()));
  EXPECT_EQ(updated, all);
  ASSERT_OK_AND_ASSIGN(fetched, store_->FetchAttestedNode(node.id));
  EXPECT_EQ(*fetched, all);

  absl::Status status =
      store_->UpdateAttestedNode(MakeNode("spiffe://example.org/missing"), NodeMask::All())
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(status), HasSubstr("datastore: update attested node"));
}

TEST_F(NodesTest, DeleteReturnsNodeAndDropsSelectors) {
  AttestedNode node = MakeNode("spiffe://example.org/spire/agent/join_token/t", "");
  node.selectors = Selectors({"a:1", "b:2"});
  ASSERT_TRUE(store_->CreateAttestedNode(node).ok());
  ASSERT_OK_AND_ASSIGN(AttestedNode deleted, store_->DeleteAttestedNode(node.id));
  EXPECT_EQ(deleted, node);
  EXPECT_EQ(store_->DeleteAttestedNode(node.id).status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(spiffe::SelectorSet left, store_->FetchNodeSelectors(node.id));
  EXPECT_TRUE(left.empty());
  // Deleting lifts the ban: the ID can attest again.
  node.cert_serial = "1";
  EXPECT_TRUE(store_->CreateAttestedNode(node).ok());
}

TEST_F(NodesTest, NodeSelectorsCanPrecedeTheNodeAndAreReplaced) {
  const spiffe::SpiffeId id = Id("spiffe://example.org/spire/agent/x/1");
  std::vector<std::string> dupes = {"a:1", "b:2", "a:1"};
  ASSERT_OK_AND_ASSIGN(spiffe::SelectorSet with_dupes, spiffe::SelectorSet::Parse(dupes));
  ASSERT_TRUE(store_->SetNodeSelectors(id, with_dupes).ok());
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM node_selectors"), 2);
  ASSERT_OK_AND_ASSIGN(spiffe::SelectorSet got, store_->FetchNodeSelectors(id));
  EXPECT_EQ(got, Selectors({"a:1", "b:2"}));

  AttestedNode node = MakeNode(id.str());
  node.selectors = Selectors({"c:3"});
  ASSERT_TRUE(store_->CreateAttestedNode(node).ok());
  ASSERT_OK_AND_ASSIGN(got, store_->FetchNodeSelectors(id));
  EXPECT_EQ(got, Selectors({"c:3"}));

  ASSERT_TRUE(store_->SetNodeSelectors(id, Selectors({"d:4", "e:5"})).ok());
  ASSERT_OK_AND_ASSIGN(std::optional<AttestedNode> fetched, store_->FetchAttestedNode(id));
  EXPECT_EQ(fetched->selectors, Selectors({"d:4", "e:5"}));
  ASSERT_TRUE(store_->SetNodeSelectors(id, {}).ok());
  ASSERT_OK_AND_ASSIGN(fetched, store_->FetchAttestedNode(id));
  EXPECT_TRUE(fetched->selectors.empty());
}

class NodeFilterTest : public DataStoreTest {
 protected:
  void SetUp() override {
    DataStoreTest::SetUp();
    Add("/n1", "join_token", "1", 100, false, {});
    Add("/n2", "x509pop", "", 200, true, {"x509pop:a", "x509pop:b"});
    Add("/n3", "x509pop", "3", 300, true, {"x509pop:a"});
    Add("/n4", "k8s_psat", "4", 400, false, {"k8s:c"});
  }
  void Add(std::string path, std::string type, std::string serial, int64_t not_after, bool reattest,
           std::vector<std::string> selectors) {
    AttestedNode n = MakeNode("spiffe://example.org" + path, serial);
    n.attestation_type = type;
    n.cert_not_after = not_after;
    n.can_reattest = reattest;
    n.selectors = *spiffe::SelectorSet::Parse(selectors);
    ASSERT_TRUE(store_->CreateAttestedNode(n).ok());
  }
  std::vector<std::string> Match(const NodeFilter& filter) {
    auto page = store_->ListAttestedNodes(filter, {});
    EXPECT_TRUE(page.ok()) << page.status();
    auto count = store_->CountAttestedNodes(filter);
    EXPECT_TRUE(count.ok()) << count.status();
    if (!page.ok()) return {};
    EXPECT_EQ(count.value_or(-1), static_cast<int64_t>(page->items.size()));
    EXPECT_EQ(page->next_token, "");
    return Paths(page->items);
  }
  std::vector<std::string> BySelectors(std::initializer_list<std::string_view> s, MatchBehavior m) {
    return Match({.by_selector_match = SelectorMatch{.selectors = Selectors(s), .match = m}});
  }
};

TEST_F(NodeFilterTest, EveryFilter) {
  EXPECT_THAT(Match({}), ElementsAre("/n1", "/n2", "/n3", "/n4"));
  EXPECT_THAT(Match({.by_attestation_type = "x509pop"}), ElementsAre("/n2", "/n3"));
  EXPECT_THAT(Match({.by_banned = true}), ElementsAre("/n2"));
  EXPECT_THAT(Match({.by_banned = false}), ElementsAre("/n1", "/n3", "/n4"));
  EXPECT_THAT(Match({.by_can_reattest = true}), ElementsAre("/n2", "/n3"));
  EXPECT_THAT(Match({.by_can_reattest = false}), ElementsAre("/n1", "/n4"));
  EXPECT_THAT(Match({.by_expires_before = 300}), ElementsAre("/n1", "/n2"));
  EXPECT_THAT(Match({.by_attestation_type = "x509pop", .by_banned = false}), ElementsAre("/n3"));
  using M = MatchBehavior;
  EXPECT_THAT(BySelectors({"x509pop:b", "x509pop:a"}, M::kExact), ElementsAre("/n2"));
  EXPECT_THAT(BySelectors({"x509pop:a", "x509pop:b"}, M::kSubset), ElementsAre("/n2", "/n3"));
  EXPECT_THAT(BySelectors({"x509pop:a", "k8s:c"}, M::kSubset), ElementsAre("/n3", "/n4"));
  EXPECT_THAT(BySelectors({"x509pop:a"}, M::kSuperset), ElementsAre("/n2", "/n3"));
  EXPECT_THAT(BySelectors({"x509pop:b", "k8s:c"}, M::kAny), ElementsAre("/n2", "/n4"));
  EXPECT_EQ(store_->ListAttestedNodes({.by_selector_match = SelectorMatch{}}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(NodeFilterTest, PaginationAndAllNodes) {
  ASSERT_OK_AND_ASSIGN(Page<AttestedNode> p1, store_->ListAttestedNodes({}, {3, ""}));
  EXPECT_THAT(Paths(p1.items), ElementsAre("/n1", "/n2", "/n3"));
  ASSERT_OK_AND_ASSIGN(Page<AttestedNode> p2, store_->ListAttestedNodes({}, {3, p1.next_token}));
  EXPECT_THAT(Paths(p2.items), ElementsAre("/n4"));
  ASSERT_FALSE(p2.next_token.empty());
  ASSERT_OK_AND_ASSIGN(Page<AttestedNode> p3, store_->ListAttestedNodes({}, {3, p2.next_token}));
  EXPECT_TRUE(p3.items.empty());
  EXPECT_EQ(p3.next_token, "");
  EXPECT_EQ(store_->ListAttestedNodes({}, {3, "x"}).status().code(),
            absl::StatusCode::kInvalidArgument);

  ASSERT_OK_AND_ASSIGN(std::vector<AttestedNode> all, store_->ListAllNodes());
  EXPECT_THAT(Paths(all), ElementsAre("/n1", "/n2", "/n3", "/n4"));
  EXPECT_EQ(all[1].selectors, Selectors({"x509pop:a", "x509pop:b"}));
  EXPECT_TRUE(all[0].selectors.empty());
}

TEST_F(NodesTest, JoinTokensAreSingleUse) {
  ASSERT_TRUE(store_->CreateJoinToken({.token = "tok", .expires_at = 500}).ok());
  absl::Status status = store_->CreateJoinToken({.token = "tok", .expires_at = 600});
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateJoinToken({.token = "", .expires_at = 600}).code(),
            absl::StatusCode::kInvalidArgument);

  Reopen();
  ASSERT_OK_AND_ASSIGN(JoinToken taken, store_->TakeJoinToken("tok"));
  EXPECT_EQ(taken, (JoinToken{.token = "tok", .expires_at = 500}));
  status = store_->TakeJoinToken("tok").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(status), HasSubstr("datastore: take join token"));
  EXPECT_EQ(store_->TakeJoinToken("never").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(NodesTest, ConcurrentTakersGetTheTokenOnce) {
  ASSERT_TRUE(store_->CreateJoinToken({.token = "race", .expires_at = 1}).ok());
  std::atomic<int> winners = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (store_->TakeJoinToken("race").ok()) ++winners;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
}

TEST_F(NodesTest, PruneJoinTokens) {
  for (int64_t at : {100, 200, 300}) {
    ASSERT_TRUE(
        store_->CreateJoinToken({.token = "t" + std::to_string(at), .expires_at = at}).ok());
  }
  ASSERT_OK_AND_ASSIGN(int64_t pruned, store_->PruneJoinTokens(200));
  EXPECT_EQ(pruned, 1);
  EXPECT_EQ(store_->TakeJoinToken("t100").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->TakeJoinToken("t200").ok());
  EXPECT_TRUE(store_->TakeJoinToken("t300").ok());
  ASSERT_OK_AND_ASSIGN(pruned, store_->PruneJoinTokens(1000));
  EXPECT_EQ(pruned, 0);
}

}  // namespace
}  // namespace tessera::server
