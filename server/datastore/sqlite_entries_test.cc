#include <functional>
#include <regex>
#include <set>
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
using testing::MakeBundle;
using testing::MakeEntry;
using testing::Selectors;
using testing::Td;

constexpr int64_t kNow = 1'800'000'000;  // FakeClock's start

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

class EntriesTest : public DataStoreTest {};

TEST_F(EntriesTest, CreateAssignsUuidRevisionAndCreationTime) {
  Entry in = MakeEntry("spiffe://example.org/web", "spiffe://example.org/agent", {"unix:uid:1000"});
  in.revision_number = 42;  // the store's to set
  in.created_at = 7;
  ASSERT_OK_AND_ASSIGN(Entry out, store_->CreateEntry(in));
  EXPECT_TRUE(std::regex_match(
      out.id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << out.id;
  EXPECT_EQ(out.revision_number, 0);
  EXPECT_EQ(out.created_at, kNow);
  ASSERT_OK_AND_ASSIGN(std::optional<Entry> fetched, store_->FetchEntry(out.id));
  ASSERT_TRUE(fetched.has_value());
  EXPECT_EQ(*fetched, out);

  ASSERT_OK_AND_ASSIGN(
      Entry other, store_->CreateEntry(MakeEntry("spiffe://example.org/db",
                                                 "spiffe://example.org/agent", {"unix:uid:1000"})));
  EXPECT_NE(other.id, out.id);
}

TEST_F(EntriesTest, RoundTripsEveryField) {
  ASSERT_TRUE(store_->CreateBundle(MakeBundle("fed-b.org")).ok());
  ASSERT_TRUE(store_->CreateBundle(MakeBundle("fed-a.org")).ok());
  Entry in = MakeEntry("spiffe://example.org/web", "spiffe://example.org/agent",
                       {"k8s:ns:web", "k8s:sa:default"});
  in.id = "My.Entry_1-x";
  in.x509_svid_ttl = 3600;
  in.jwt_svid_ttl = 300;
  in.dns_names = {"z.example.org", "a.example.org"};  // order kept: the first becomes the CN
  in.federates_with = {Td("fed-b.org"), Td("fed-a.org"), Td("fed-b.org")};
  in.admin = true;
  in.downstream = true;
  in.store_svid = true;
  in.hint = "external";
  in.expires_at = kNow + 86400;
  in.jwt_svid_include_jti = true;
  in.disable_x509_svid_prefetch = true;
  ASSERT_OK_AND_ASSIGN(Entry out, store_->CreateEntry(in));
  EXPECT_EQ(out.id, "My.Entry_1-x");
  EXPECT_TRUE(out.jwt_svid_include_jti);
  EXPECT_TRUE(out.disable_x509_svid_prefetch);
  EXPECT_THAT(out.federates_with, ElementsAre(Td("fed-b.org"), Td("fed-a.org")));
  Reopen();
  ASSERT_OK_AND_ASSIGN(std::optional<Entry> fetched, store_->FetchEntry("My.Entry_1-x"));
  ASSERT_TRUE(fetched.has_value());
  EXPECT_EQ(*fetched, out);
  EXPECT_THAT(fetched->dns_names, ElementsAre("z.example.org", "a.example.org"));
  EXPECT_EQ(fetched->selectors, Selectors({"k8s:sa:default", "k8s:ns:web"}));
  ASSERT_OK_AND_ASSIGN(std::optional<Entry> none, store_->FetchEntry("nope"));
  EXPECT_FALSE(none.has_value());
}

TEST_F(EntriesTest, ValidatesLikeSpire) {
  const std::string prefix = "datastore-validation: invalid registration entry: ";
  auto create = [&](auto mutate) {
    Entry e = MakeEntry("spiffe://example.org/w", "spiffe://example.org/a", {"unix:uid:1"});
    mutate(e);
    return store_->CreateEntry(e).status();
  };
  struct Case {
    std::string name;
    std::function<void(Entry&)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"long id", [](Entry& e) { e.id = std::string(256, 'a'); }, "entry ID too long"},
      {"slash", [](Entry& e) { e.id = "a/b"; }, "entry ID contains invalid characters"},
      {"space", [](Entry& e) { e.id = "a b"; }, "entry ID contains invalid characters"},
      {"utf8", [](Entry& e) { e.id = "caf\xC3\xA9"; }, "entry ID contains invalid characters"},
      {"x509 ttl", [](Entry& e) { e.x509_svid_ttl = -1; }, "X509SvidTtl is not set"},
      {"jwt ttl", [](Entry& e) { e.jwt_svid_ttl = -5; }, "JwtSvidTtl is not set"},
      {"no selectors", [](Entry& e) { e.selectors = {}; }, "missing selector list"},
      {"store_svid types",
       [](Entry& e) {
         e.store_svid = true;
         e.selectors = Selectors({"unix:uid:1", "k8s:ns:x"});
       },
       "selector types must be the same when store SVID is enabled"},
  };
  for (const Case& c : cases) {
    absl::Status status = create(c.mutate);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(Msg(status), prefix + c.message) << c.name;
  }
  ASSERT_OK_AND_ASSIGN(int64_t n, store_->CountEntries({}));
  EXPECT_EQ(n, 0);
  EXPECT_TRUE(create([](Entry& e) { e.id = std::string(255, 'a'); }).ok());
}

TEST_F(EntriesTest, DuplicateIdIsAlreadyExists) {
  Entry a = MakeEntry("spiffe://example.org/a", "spiffe://example.org/agent", {"unix:uid:1"});
  a.id = "same";
  ASSERT_TRUE(store_->CreateEntry(a).ok());
  Entry b = MakeEntry("spiffe://example.org/b", "spiffe://example.org/agent", {"unix:uid:2"});
  b.id = "same";
  absl::Status status = store_->CreateEntry(b).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(Msg(status), HasSubstr("\"same\" already exists"));
  EXPECT_FALSE(SimilarEntryId(status).has_value());
}

TEST_F(EntriesTest, SimilarEntryIsReturnedRegardlessOfSelectorOrder) {
  Entry first = MakeEntry("spiffe://example.org/web", "spiffe://example.org/agent",
                          {"k8s:ns:web", "k8s:sa:web", "unix:uid:1"});
  first.hint = "first";
  ASSERT_OK_AND_ASSIGN(Entry stored, store_->CreateEntry(first));

  Entry again = MakeEntry("spiffe://example.org/web", "spiffe://example.org/agent",
                          {"unix:uid:1", "k8s:sa:web", "k8s:ns:web"});
  again.id = "another-id";
  again.hint = "second";
  ASSERT_OK_AND_ASSIGN(CreateEntryResult result, store_->CreateOrReturnEntry(again));
  EXPECT_FALSE(result.created);
  EXPECT_EQ(result.entry, stored);

  absl::StatusOr<Entry> created = store_->CreateEntry(again);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Msg(created.status()), "similar entry already exists");
  EXPECT_EQ(SimilarEntryId(created.status()), stored.id);

  // Not similar: a different selector set, parent or SPIFFE ID.
  EXPECT_TRUE(store_
                  ->CreateEntry(MakeEntry("spiffe://example.org/web", "spiffe://example.org/agent",
                                          {"k8s:ns:web", "k8s:sa:web"}))
                  .ok());
  EXPECT_TRUE(store_
                  ->CreateEntry(MakeEntry("spiffe://example.org/web", "spiffe://example.org/a2",
                                          {"k8s:ns:web", "k8s:sa:web", "unix:uid:1"}))
                  .ok());
  EXPECT_TRUE(store_
                  ->CreateEntry(MakeEntry("spiffe://example.org/web2", "spiffe://example.org/agent",
                                          {"k8s:ns:web", "k8s:sa:web", "unix:uid:1"}))
                  .ok());
  ASSERT_OK_AND_ASSIGN(int64_t n, store_->CountEntries({}));
  EXPECT_EQ(n, 4);
  ASSERT_OK_AND_ASSIGN(std::optional<Entry> none, store_->FetchEntry("another-id"));
  EXPECT_FALSE(none.has_value());
}

TEST_F(EntriesTest, FederatingWithoutBundleFailsLikeSpire) {
  Entry e = MakeEntry("spiffe://example.org/w", "spiffe://example.org/a", {"unix:uid:1"});
  e.federates_with = {Td("other.org")};
  absl::Status status = store_->CreateEntry(e).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Msg(status), "unable to find federated bundle \"spiffe://other.org\"");
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entries"), 0);

  ASSERT_TRUE(store_->CreateBundle(MakeBundle("other.org")).ok());
  EXPECT_TRUE(store_->CreateEntry(e).ok());
}

TEST_F(EntriesTest, UpdateCopiesMaskedFieldsAndBumpsRevision) {
  Entry in = MakeEntry("spiffe://example.org/w", "spiffe://example.org/a", {"unix:uid:1"});
  in.hint = "old";
  in.dns_names = {"old.example.org"};
  ASSERT_OK_AND_ASSIGN(Entry stored, store_->CreateEntry(in));
  clock_.Advance(std::chrono::hours(1));

  Entry change =
      MakeEntry("spiffe://example.org/other", "spiffe://example.org/other-parent", {"unix:uid:2"});
  change.id = stored.id;
  change.hint = "new";
  change.x509_svid_ttl = 60;
  change.dns_names = {"ignored.example.org"};
  change.admin = true;
  EntryMask mask;
  mask.hint = true;
  mask.x509_svid_ttl = true;
  ASSERT_OK_AND_ASSIGN(Entry updated, store_->UpdateEntry(change, mask));
  Entry expected = stored;
  expected.hint = "new";
  expected.x509_svid_ttl = 60;
  expected.revision_number = 1;
  EXPECT_EQ(updated, expected);
  ASSERT_OK_AND_ASSIGN(std::optional<Entry> fetched, store_->FetchEntry(stored.id));
  EXPECT_EQ(*fetched, expected);

  // Every field, including the child tables.
  ASSERT_TRUE(store_->CreateBundle(MakeBundle("fed.org")).ok());
  change.federates_with = {Td("fed.org")};
  ASSERT_OK_AND_ASSIGN(updated, store_->UpdateEntry(change, EntryMask::All()));
  EXPECT_EQ(updated.revision_number, 2);
  EXPECT_EQ(updated.created_at, kNow);
  EXPECT_EQ(updated.spiffe_id, Id("spiffe://example.org/other"));
  EXPECT_EQ(updated.parent_id, Id("spiffe://example.org/other-parent"));
  EXPECT_EQ(updated.selectors, Selectors({"unix:uid:2"}));
  EXPECT_THAT(updated.dns_names, ElementsAre("ignored.example.org"));
  EXPECT_TRUE(updated.admin);
  ASSERT_OK_AND_ASSIGN(fetched, store_->FetchEntry(stored.id));
  EXPECT_EQ(*fetched, updated);
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entry_selectors"), 1);

  // An empty mask still bumps the revision.
  ASSERT_OK_AND_ASSIGN(updated, store_->UpdateEntry(change, EntryMask{}));
  EXPECT_EQ(updated.revision_number, 3);
}

TEST_F(EntriesTest, AdditionalAttributesRoundTripEachAloneAndFollowTheirMaskBit) {
  Entry jti = MakeEntry("spiffe://example.org/jti", "spiffe://example.org/a", {"unix:uid:1"});
  jti.jwt_svid_include_jti = true;
  Entry lazy = MakeEntry("spiffe://example.org/lazy", "spiffe://example.org/a", {"unix:uid:1"});
  lazy.disable_x509_svid_prefetch = true;
  ASSERT_OK_AND_ASSIGN(Entry stored_jti, store_->CreateEntry(jti));
  ASSERT_OK_AND_ASSIGN(Entry stored_lazy, store_->CreateEntry(lazy));
  Reopen();
  ASSERT_OK_AND_ASSIGN(std::optional<Entry> fetched, store_->FetchEntry(stored_jti.id));
  EXPECT_TRUE(fetched->jwt_svid_include_jti);
  EXPECT_FALSE(fetched->disable_x509_svid_prefetch);
  ASSERT_OK_AND_ASSIGN(fetched, store_->FetchEntry(stored_lazy.id));
  EXPECT_FALSE(fetched->jwt_svid_include_jti);
  EXPECT_TRUE(fetched->disable_x509_svid_prefetch);
  // Listings load them too.
  ASSERT_OK_AND_ASSIGN(std::vector<Entry> all, store_->ListAllEntries());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], stored_jti);
  EXPECT_EQ(all[1], stored_lazy);
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entries WHERE jwt_svid_include_jti = 1"), 1);
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entries WHERE disable_x509_svid_prefetch = 1"), 1);

  // Another field's mask leaves them alone.
  Entry change = stored_jti;
  change.jwt_svid_include_jti = false;
  change.disable_x509_svid_prefetch = true;
  change.hint = "h";
  EntryMask hint_only;
  hint_only.hint = true;
  ASSERT_OK_AND_ASSIGN(Entry updated, store_->UpdateEntry(change, hint_only));
  EXPECT_TRUE(updated.jwt_svid_include_jti);
  EXPECT_FALSE(updated.disable_x509_svid_prefetch);
  EXPECT_EQ(updated.hint, "h");

  // Their bit copies both, and only them.
  change.hint = "ignored";
  EntryMask attributes;
  attributes.additional_attributes = true;
  ASSERT_OK_AND_ASSIGN(updated, store_->UpdateEntry(change, attributes));
  EXPECT_FALSE(updated.jwt_svid_include_jti);
  EXPECT_TRUE(updated.disable_x509_svid_prefetch);
  EXPECT_EQ(updated.hint, "h");
  EXPECT_EQ(updated.revision_number, 2);
  ASSERT_OK_AND_ASSIGN(fetched, store_->FetchEntry(stored_jti.id));
  EXPECT_EQ(*fetched, updated);

  // EntryMask::All() includes them.
  change = updated;
  change.jwt_svid_include_jti = true;
  change.disable_x509_svid_prefetch = false;
  ASSERT_OK_AND_ASSIGN(updated, store_->UpdateEntry(change, EntryMask::All()));
  EXPECT_TRUE(updated.jwt_svid_include_jti);
  EXPECT_FALSE(updated.disable_x509_svid_prefetch);
  ASSERT_OK_AND_ASSIGN(fetched, store_->FetchEntry(stored_jti.id));
  EXPECT_EQ(*fetched, updated);
}

TEST_F(EntriesTest, AdditionalAttributesDoNotMakeAnEntryDissimilar) {
  Entry plain = MakeEntry("spiffe://example.org/w", "spiffe://example.org/a", {"unix:uid:1"});
  ASSERT_OK_AND_ASSIGN(Entry first, store_->CreateEntry(plain));
  Entry with_attributes = plain;
  with_attributes.jwt_svid_include_jti = true;
  with_attributes.disable_x509_svid_prefetch = true;
  ASSERT_OK_AND_ASSIGN(CreateEntryResult again, store_->CreateOrReturnEntry(with_attributes));
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.entry, first);
  EXPECT_FALSE(again.entry.jwt_svid_include_jti);
  absl::Status status = store_->CreateEntry(with_attributes).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Msg(status), "similar entry already exists");
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entries"), 1);
}

TEST_F(EntriesTest, UpdateRejectsBadValuesAndMissingEntries) {
  ASSERT_OK_AND_ASSIGN(Entry stored,
                       store_->CreateEntry(MakeEntry("spiffe://example.org/w",
                                                     "spiffe://example.org/a", {"unix:uid:1"})));
  Entry change = stored;
  change.jwt_svid_ttl = -1;
  EntryMask mask;
  mask.jwt_svid_ttl = true;
  absl::Status status = store_->UpdateEntry(change, mask).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(status), HasSubstr("JwtSvidTtl is not set"));
  // Unmasked bad values are not looked at.
  EXPECT_TRUE(store_->UpdateEntry(change, EntryMask{}).ok());

  change = stored;
  change.selectors = {};
  mask = EntryMask{};
  mask.selectors = true;
  EXPECT_EQ(store_->UpdateEntry(change, mask).status().code(), absl::StatusCode::kInvalidArgument);

  change = stored;
  change.federates_with = {Td("nobundle.org")};
  mask = EntryMask{};
  mask.federates_with = true;
  status = store_->UpdateEntry(change, mask).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Msg(status), "unable to find federated bundle \"spiffe://nobundle.org\"");

  ASSERT_OK_AND_ASSIGN(std::optional<Entry> fetched, store_->FetchEntry(stored.id));
  EXPECT_EQ(fetched->revision_number, 1);  // only the empty-mask update went through
  EXPECT_EQ(fetched->selectors, stored.selectors);

  change.id = "missing";
  status = store_->UpdateEntry(change, EntryMask::All()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(status), HasSubstr("datastore: update entry"));
}

TEST_F(EntriesTest, DeleteReturnsEntryAndRemovesChildRows) {
  Entry in = MakeEntry("spiffe://example.org/w", "spiffe://example.org/a", {"a:1", "b:2"});
  in.dns_names = {"x.example.org"};
  ASSERT_OK_AND_ASSIGN(Entry stored, store_->CreateEntry(in));
  ASSERT_OK_AND_ASSIGN(Entry deleted, store_->DeleteEntry(stored.id));
  EXPECT_EQ(deleted, stored);
  absl::Status status = store_->DeleteEntry(stored.id).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(status), HasSubstr("not found"));
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entry_selectors"), 0);
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entry_dns_names"), 0);
}

TEST_F(EntriesTest, FailureHalfWayLeavesNothingBehind) {
  {
    // The third kind of row an entry writes fails: entries and selectors were already inserted.
    sqlite::Database raw = Raw();
    ASSERT_TRUE(raw.Exec("CREATE TRIGGER boom BEFORE INSERT ON entry_dns_names "
                         "WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'injected'); END")
                    .ok());
  }
  Entry e = MakeEntry("spiffe://example.org/w", "spiffe://example.org/a", {"a:1", "b:2"});
  e.dns_names = {"fine.example.org", "boom"};
  absl::Status status = store_->CreateEntry(e).status();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(Msg(status), HasSubstr("datastore: create entry"));
  EXPECT_THAT(Msg(status), HasSubstr("injected"));
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entries"), 0);
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entry_selectors"), 0);
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entry_dns_names"), 0);

  // The store is usable afterwards (no transaction left open), and a failed update changes
  // nothing either.
  e.dns_names = {"fine.example.org"};
  e.hint = "before";
  ASSERT_OK_AND_ASSIGN(Entry stored, store_->CreateEntry(e));
  Entry change = stored;
  change.hint = "after";
  change.selectors = Selectors({"c:3"});
  change.dns_names = {"boom"};
  EXPECT_FALSE(store_->UpdateEntry(change, EntryMask::All()).ok());
  ASSERT_OK_AND_ASSIGN(std::optional<Entry> fetched, store_->FetchEntry(stored.id));
  EXPECT_EQ(*fetched, stored);
}

TEST_F(EntriesTest, ConcurrentWritersAndReaders) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
        Entry e =
            MakeEntry("spiffe://example.org/" + name, "spiffe://example.org/agent", {"unix:uid:1"});
        if (!store_->CreateEntry(e).ok()) ++failures[t];
        auto page = store_->ListEntries({.by_parent_id = Id("spiffe://example.org/agent")},
                                        {.page_size = 10, .token = ""});
        if (!page.ok() || page->items.empty()) ++failures[t];
        if (!store_->CountEntries({}).ok()) ++failures[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(failures, ::testing::Each(0));
  ASSERT_OK_AND_ASSIGN(std::vector<Entry> all, store_->ListAllEntries());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<std::string> ids;
  for (const Entry& e : all) ids.insert(e.id);
  EXPECT_EQ(ids.size(), all.size());
}

}  // namespace
}  // namespace tessera::server
