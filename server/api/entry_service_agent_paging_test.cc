// SyncAuthorizedEntries past one page (more than 500 authorized entries): revision pages, then
// full entries for the ids the agent asks for, walked exactly as spire-agent walks it
// (SPIRE-API-FACTS §9, agent side). These RPCs read only the authorized-entry index, so the bulk
// entries go into the index alone (with the store, each insert is a synced SQLite transaction and
// a thousand of them take seconds); the fixture keeps its own copy of what it registered to
// check the answers against.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/entry_service_agent_test_util.h"

namespace tessera::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

constexpr size_t kPage = EntryService::kSyncPageSize;

// What one walk saw, for assertions on the paging itself.
struct Walk {
  std::vector<int> revision_pages;               // sizes, in order
  std::vector<bool> revision_more;               // `more` of each revision page
  std::vector<std::string> revision_ids;         // every revision's id, in arrival order
  std::vector<std::vector<std::string>> chunks;  // the ids requested, per request
  std::vector<std::vector<int>> entry_pages;     // per request: the entry page sizes
  bool single_response = false;
};

class SyncPagingTest : public EntryServiceAgentTest {
 protected:
  void SetUp() override {
    EntryServiceAgentTest::SetUp();
    if (HasFatalFailure()) return;
    agent_ = AddAgent(kAgentA);
    other_ = AddAgent(kAgentB);
  }

  // `n` entries parented to `parent`, with ids that sort in creation order and assorted
  // revision numbers and creation times, as the store would have left them.
  std::vector<std::string> PutMany(size_t n, const std::string& parent, const std::string& tag) {
    std::vector<std::string> ids;
    const int64_t now = std::chrono::system_clock::to_time_t(clock_.Now());
    for (size_t i = 0; i < n; ++i) {
      char suffix[16];
      std::snprintf(suffix, sizeof(suffix), "%05zu", i);
      Entry entry = MakeEntry("spiffe://example.org/" + tag + "/" + suffix, parent,
                              {"unix:uid:" + std::to_string(i)});
      entry.id = tag + "-" + suffix;
      entry.hint = "h";
      entry.x509_svid_ttl = 600;  // masked out for the agent
      entry.revision_number = static_cast<int64_t>(i % 5);
      entry.created_at = now - static_cast<int64_t>(i % 3);
      Register(entry);
      ids.push_back(entry.id);
    }
    return ids;
  }
  void Register(const Entry& entry) {
    registry_.insert_or_assign(entry.id, entry);
    index_->Upsert(entry);
  }
  void Unregister(const std::string& id) {
    registry_.erase(id);
    index_->Remove(id);
  }
  types::Entry ExpectedFor(const std::string& id, const types::EntryMask& mask) {
    auto it = registry_.find(id);
    EXPECT_NE(it, registry_.end()) << id;
    return it == registry_.end() ? types::Entry{} : EntryToProto(it->second, &mask);
  }

  // One sync, as spire-agent does it (agent/client): send the mask; with no revisions the reply
  // is the whole set; otherwise read revision pages while `more`, work out which entries are
  // missing or stale in `cache`, ask for them sorted in chunks of the first page's size and read
  // each chunk's pages until more=false; drop what was not announced; cancel the stream.
  Walk SyncLikeSpireAgent(const std::shared_ptr<grpc::Channel>& channel,
                          std::map<std::string, types::Entry>& cache) {
    Walk walk;
    Stream s = OpenSync(channel);
    SyncRequest first;
    *first.mutable_output_mask() = AgentMask();
    EXPECT_TRUE(s.rw->Write(first));
    SyncResponse resp = s.Read();
    if (resp.entry_revisions().empty()) {
      walk.single_response = true;
      EXPECT_FALSE(resp.more());
      cache.clear();
      for (const types::Entry& e : resp.entries()) cache[e.id()] = e;
      SyncResponse extra;
      EXPECT_FALSE(s.rw->Read(&extra)) << "the server must end the stream after the full set";
      grpc::Status status = s.rw->Finish();
      EXPECT_TRUE(status.ok()) << status.error_message();
      return walk;
    }

    std::map<std::string, entryv1::EntryRevision> revisions;
    const size_t chunk_size = static_cast<size_t>(resp.entry_revisions_size());
    while (true) {
      EXPECT_THAT(resp.entries(), IsEmpty()) << "entries during the revision phase";
      walk.revision_pages.push_back(resp.entry_revisions_size());
      walk.revision_more.push_back(resp.more());
      for (const entryv1::EntryRevision& r : resp.entry_revisions()) {
        walk.revision_ids.push_back(r.id());
        revisions[r.id()] = r;
      }
      if (!resp.more()) break;
      resp = s.Read();
    }

    std::vector<std::string> needed;
    for (const auto& [id, r] : revisions) {
      auto it = cache.find(id);
      bool stale = it == cache.end() || it->second.revision_number() != r.revision_number() ||
                   (r.created_at() != 0 && it->second.created_at() != r.created_at());
      if (stale) needed.push_back(id);
    }
    std::sort(needed.begin(), needed.end());
    for (size_t start = 0; start < needed.size(); start += chunk_size) {
      SyncRequest req;
      const size_t end = std::min(needed.size(), start + chunk_size);
      for (size_t i = start; i < end; ++i) req.add_ids(needed[i]);
      walk.chunks.emplace_back(req.ids().begin(), req.ids().end());
      EXPECT_TRUE(s.rw->Write(req));
      walk.entry_pages.emplace_back();
      do {
        resp = s.Read();
        EXPECT_THAT(resp.entry_revisions(), IsEmpty()) << "revisions during the entries phase";
        walk.entry_pages.back().push_back(resp.entries_size());
        for (const types::Entry& e : resp.entries()) cache[e.id()] = e;
      } while (resp.more());
    }
    std::erase_if(cache, [&](const auto& kv) { return !revisions.contains(kv.first); });
    s.ctx->TryCancel();
    grpc::Status status = s.rw->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED) << status.error_message();
    return walk;
  }

  void ExpectCacheMatchesRegistry(const std::map<std::string, types::Entry>& cache,
                                  const std::vector<std::string>& ids) {
    std::vector<std::string> cached;
    for (const auto& [id, e] : cache) cached.push_back(id);
    std::vector<std::string> sorted = ids;
    std::sort(sorted.begin(), sorted.end());
    ASSERT_THAT(cached, ElementsAreArray(sorted));
    const types::EntryMask mask = AgentMask();
    for (const auto& [id, e] : cache) {
      ASSERT_TRUE(Same(e, ExpectedFor(id, mask))) << e.DebugString();
    }
  }

  std::map<std::string, Entry> registry_;
  std::optional<spiffe::ClientIdentity> agent_, other_;
};

TEST_F(SyncPagingTest, FiveHundredEntriesStillComeInOneResponse) {
  std::vector<std::string> ids = PutMany(kPage, kAgentA, "a");
  std::map<std::string, types::Entry> cache;
  Walk walk = SyncLikeSpireAgent(TlsChannel(agent_), cache);
  EXPECT_TRUE(walk.single_response);
  ExpectCacheMatchesRegistry(cache, ids);

  // One more and the server switches to revisions: a full page, then a page of one.
  ids.push_back(PutMany(1, kAgentA, "b")[0]);
  cache.clear();
  walk = SyncLikeSpireAgent(TlsChannel(agent_), cache);
  EXPECT_FALSE(walk.single_response);
  EXPECT_THAT(walk.revision_pages, ElementsAre(500, 1));
  EXPECT_THAT(walk.revision_more, ElementsAre(true, false));
  ExpectCacheMatchesRegistry(cache, ids);
}

TEST_F(SyncPagingTest, LargeSetIsWalkedByRevisionsThenIdsAndResyncFetchesOnlyChanges) {
  std::vector<std::string> ids = PutMany(1201, kAgentA, "a");
  std::vector<std::string> others = PutMany(7, kAgentB, "z");

  std::map<std::string, types::Entry> cache;
  Walk walk = SyncLikeSpireAgent(TlsChannel(agent_), cache);
  ASSERT_FALSE(walk.single_response);
  EXPECT_THAT(walk.revision_pages, ElementsAre(500, 500, 201));
  EXPECT_THAT(walk.revision_more, ElementsAre(true, true, false));
  std::set<std::string> announced(walk.revision_ids.begin(), walk.revision_ids.end());
  EXPECT_EQ(announced.size(), walk.revision_ids.size()) << "an id announced twice";
  EXPECT_EQ(announced, std::set<std::string>(ids.begin(), ids.end()));
  // Chunks of 500 ids: a full page (more) and the empty closing page; then the rest at once.
  ASSERT_EQ(walk.chunks.size(), 3u);
  EXPECT_THAT(walk.entry_pages,
              ElementsAre(ElementsAre(500, 0), ElementsAre(500, 0), ElementsAre(201)));
  ExpectCacheMatchesRegistry(cache, ids);

  // Changes: two updated (revision bump), one deleted, one added; one cached copy made stale
  // by created_at only.
  for (const std::string& id : {ids[3], ids[1100]}) {
    Entry changed = registry_.at(id);
    changed.hint = "changed";
    ++changed.revision_number;
    Register(changed);
  }
  Unregister(ids[600]);
  std::string added = PutMany(1, kAgentA, "n")[0];
  cache[ids[42]].set_created_at(1);

  walk = SyncLikeSpireAgent(TlsChannel(agent_), cache);
  EXPECT_THAT(walk.revision_pages, ElementsAre(500, 500, 201));
  ASSERT_EQ(walk.chunks.size(), 1u);
  EXPECT_THAT(walk.chunks[0], ElementsAre(ids[3], ids[42], ids[1100], added));
  EXPECT_THAT(walk.entry_pages, ElementsAre(ElementsAre(4)));
  EXPECT_EQ(cache[ids[3]].hint(), "changed");
  EXPECT_EQ(cache[ids[3]].revision_number(), 4);
  std::vector<std::string> now = ids;
  now.erase(now.begin() + 600);
  now.push_back(added);
  ExpectCacheMatchesRegistry(cache, now);
}

TEST_F(SyncPagingTest, IdRequestsSkipUnknownAndForeignIdsAndAnswerSorted) {
  std::vector<std::string> ids = PutMany(kPage + 1, kAgentA, "a");
  std::vector<std::string> others = PutMany(2, kAgentB, "z");
  Stream s = OpenSync(TlsChannel(agent_));
  SyncRequest first;
  *first.mutable_output_mask() = AgentMask();
  ASSERT_TRUE(s.rw->Write(first));
  ASSERT_TRUE(s.Read().more());
  ASSERT_FALSE(s.Read().more());

  // Out of order, with an unknown id and another agent's entry; a mask on a later request is
  // ignored (the first request's applies to the whole stream).
  SyncRequest req;
  req.add_ids(ids[500]);
  req.add_ids("no-such-entry");
  req.add_ids(others[0]);
  req.add_ids(ids[7]);
  req.mutable_output_mask()->set_parent_id(true);
  ASSERT_TRUE(s.rw->Write(req));
  SyncResponse resp = s.Read();
  EXPECT_FALSE(resp.more());
  EXPECT_THAT(resp.entry_revisions(), IsEmpty());
  EXPECT_THAT(Ids(resp.entries()), ElementsAre(ids[7], ids[500]));
  const types::EntryMask mask = AgentMask();
  for (const types::Entry& e : resp.entries()) {
    EXPECT_TRUE(Same(e, ExpectedFor(e.id(), mask))) << e.DebugString();
    EXPECT_FALSE(e.has_parent_id());
    EXPECT_EQ(e.x509_svid_ttl(), 0);
  }

  // Nothing known: still one closing page.
  req.Clear();
  req.add_ids(others[1]);
  ASSERT_TRUE(s.rw->Write(req));
  resp = s.Read();
  EXPECT_FALSE(resp.more());
  EXPECT_THAT(resp.entries(), IsEmpty());

  ASSERT_TRUE(s.rw->Write(SyncRequest{}));
  resp = s.Read();
  EXPECT_FALSE(resp.more());
  EXPECT_THAT(resp.entries(), IsEmpty());

  // The client's EOF ends the stream normally.
  s.rw->WritesDone();
  EXPECT_FALSE(s.rw->Read(&resp));
  grpc::Status status = s.rw->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(SyncPagingTest, SnapshotTakenAtTheStartServesTheWholeStream) {
  std::vector<std::string> ids = PutMany(kPage + 1, kAgentA, "a");
  Stream s = OpenSync(TlsChannel(agent_));
  SyncRequest first;
  *first.mutable_output_mask() = AgentMask();
  ASSERT_TRUE(s.rw->Write(first));
  ASSERT_TRUE(s.Read().more());
  ASSERT_FALSE(s.Read().more());

  // Deleted after the revisions went out: the stream still answers from what it announced.
  Unregister(ids[0]);
  SyncRequest req;
  req.add_ids(ids[0]);
  ASSERT_TRUE(s.rw->Write(req));
  SyncResponse resp = s.Read();
  EXPECT_THAT(Ids(resp.entries()), ElementsAre(ids[0]));
  s.ctx->TryCancel();
  EXPECT_EQ(s.rw->Finish().error_code(), grpc::StatusCode::CANCELLED);

  // A new stream no longer sees it.
  entryv1::GetAuthorizedEntriesResponse all;
  ASSERT_TRUE(GetAuthorized(TlsChannel(agent_), nullptr, &all).ok());
  EXPECT_EQ(all.entries_size(), static_cast<int>(kPage));
}

}  // namespace
}  // namespace tessera::server::testing
