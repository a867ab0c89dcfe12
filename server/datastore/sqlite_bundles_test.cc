#include <google/protobuf/util/message_differencer.h>

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
using ::testing::IsEmpty;
using testing::MakeBundle;
using testing::MakeEntry;
using testing::Td;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

MATCHER_P(EqualsProto, expected, "") {
  return google::protobuf::util::MessageDifferencer::Equals(arg, expected);
}

std::vector<std::string> Ders(const Bundle& b) {
  std::vector<std::string> out;
  for (const auto& c : b.x509_authorities()) out.push_back(c.asn1());
  return out;
}

std::vector<std::string> Kids(const Bundle& b) {
  std::vector<std::string> out;
  for (const auto& k : b.jwt_authorities()) out.push_back(k.key_id());
  return out;
}

void AddJwtKey(Bundle& b, std::string kid, std::string key) {
  auto* k = b.add_jwt_authorities();
  k->set_key_id(std::move(kid));
  k->set_public_key(std::move(key));
  k->set_expires_at(1'900'000'000);
}

class BundlesTest : public DataStoreTest {};

TEST_F(BundlesTest, CreateFetchAndNormalizeTrustDomain) {
  Bundle in = MakeBundle("spiffe://fed.org", {"der1", std::string("d\0r2", 4)}, 7);
  in.set_refresh_hint(300);
  AddJwtKey(in, "kid1", "pkix1");
  ASSERT_OK_AND_ASSIGN(Bundle created, store_->CreateBundle(in));
  EXPECT_EQ(created.trust_domain(), "fed.org");
  Bundle expected = in;
  expected.set_trust_domain("fed.org");
  EXPECT_THAT(created, EqualsProto(expected));
  Reopen();
  ASSERT_OK_AND_ASSIGN(std::optional<Bundle> fetched, store_->FetchBundle(Td("fed.org")));
  ASSERT_TRUE(fetched.has_value());
  EXPECT_THAT(*fetched, EqualsProto(expected));

  absl::Status status = store_->CreateBundle(MakeBundle("fed.org")).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(Msg(status), HasSubstr("bundle already exists"));
  status = store_->CreateBundle(MakeBundle("Not A TD")).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(status), HasSubstr("datastore: create bundle: invalid bundle trust domain"));
  ASSERT_OK_AND_ASSIGN(fetched, store_->FetchBundle(Td("none.org")));
  EXPECT_FALSE(fetched.has_value());
}

TEST_F(BundlesTest, UpdateCopiesMaskedFields) {
  ASSERT_TRUE(store_->CreateBundle(MakeBundle("fed.org", {"a"}, 1)).ok());
  Bundle change = MakeBundle("fed.org", {"b", "c"}, 9);
  change.set_refresh_hint(60);
  BundleMask mask;
  mask.set_refresh_hint(true);
  ASSERT_OK_AND_ASSIGN(Bundle updated, store_->UpdateBundle(change, mask));
  EXPECT_EQ(updated.refresh_hint(), 60);
  EXPECT_THAT(Ders(updated), ElementsAre("a"));
  EXPECT_EQ(updated.sequence_number(), 1u);

  mask.set_x509_authorities(true);
  mask.set_sequence_number(true);
  ASSERT_OK_AND_ASSIGN(updated, store_->UpdateBundle(change, mask));
  EXPECT_THAT(Ders(updated), ElementsAre("b", "c"));
  EXPECT_EQ(updated.sequence_number(), 9u);
  ASSERT_OK_AND_ASSIGN(std::optional<Bundle> fetched, store_->FetchBundle(Td("fed.org")));
  EXPECT_THAT(*fetched, EqualsProto(updated));

  absl::Status status = store_->UpdateBundle(MakeBundle("none.org"), mask).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(status), HasSubstr("bundle not found"));
}

TEST_F(BundlesTest, SetIsAnUpsert) {
  ASSERT_OK_AND_ASSIGN(Bundle set, store_->SetBundle(MakeBundle("fed.org", {"a"}, 1)));
  ASSERT_OK_AND_ASSIGN(set, store_->SetBundle(MakeBundle("spiffe://fed.org", {"b"}, 2)));
  ASSERT_OK_AND_ASSIGN(std::optional<Bundle> fetched, store_->FetchBundle(Td("fed.org")));
  EXPECT_THAT(Ders(*fetched), ElementsAre("b"));
  EXPECT_EQ(fetched->sequence_number(), 2u);
  ASSERT_OK_AND_ASSIGN(int64_t n, store_->CountBundles());
  EXPECT_EQ(n, 1);
}

TEST_F(BundlesTest, AppendAddsOnlyMissingAuthorities) {
  // No bundle yet: created as given.
  Bundle first = MakeBundle("example.org", {"ca1"}, 1);
  AddJwtKey(first, "k1", "pub1");
  ASSERT_OK_AND_ASSIGN(Bundle appended, store_->AppendBundle(first));
  EXPECT_THAT(appended, EqualsProto(first));

  Bundle more = MakeBundle("example.org", {"ca1", "ca2"}, 0);
  AddJwtKey(more, "k1", "pub1");  // already there
  AddJwtKey(more, "k2", "pub2");
  ASSERT_OK_AND_ASSIGN(appended, store_->AppendBundle(more));
  EXPECT_THAT(Ders(appended), ElementsAre("ca1", "ca2"));
  EXPECT_THAT(Kids(appended), ElementsAre("k1", "k2"));
  EXPECT_EQ(appended.sequence_number(), 2u);
  ASSERT_OK_AND_ASSIGN(std::optional<Bundle> fetched, store_->FetchBundle(Td("example.org")));
  EXPECT_THAT(*fetched, EqualsProto(appended));

  // Nothing new: no change, no sequence bump.
  ASSERT_OK_AND_ASSIGN(appended, store_->AppendBundle(more));
  EXPECT_EQ(appended.sequence_number(), 2u);
  ASSERT_OK_AND_ASSIGN(fetched, store_->FetchBundle(Td("example.org")));
  EXPECT_EQ(fetched->sequence_number(), 2u);
}

TEST_F(BundlesTest, ListPagesAndCounts) {
  for (std::string td : {"a.org", "b.org", "c.org"}) {
    ASSERT_TRUE(store_->CreateBundle(MakeBundle(td)).ok());
  }
  ASSERT_OK_AND_ASSIGN(Page<Bundle> all, store_->ListBundles({}));
  ASSERT_EQ(all.items.size(), 3u);
  EXPECT_EQ(all.items[2].trust_domain(), "c.org");
  EXPECT_EQ(all.next_token, "");
  std::vector<std::string> seen;
  PageRequest page{.page_size = 2, .token = ""};
  int pages = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(Page<Bundle> p, store_->ListBundles(page));
    ++pages;
    for (const Bundle& b : p.items) seen.push_back(b.trust_domain());
    if (p.next_token.empty()) break;
    page.token = p.next_token;
  }
  EXPECT_THAT(seen, ElementsAre("a.org", "b.org", "c.org"));
  EXPECT_EQ(pages, 3);  // 2 + 1 + the empty page
  EXPECT_EQ(store_->ListBundles({2, "garbage"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(int64_t n, store_->CountBundles());
  EXPECT_EQ(n, 3);
}

// Entries a and b federate with fed.org, c with other.org only, d with nothing.
class DeleteBundleTest : public DataStoreTest {
 protected:
  void SetUp() override {
    DataStoreTest::SetUp();
    ASSERT_TRUE(store_->CreateBundle(MakeBundle("fed.org")).ok());
    ASSERT_TRUE(store_->CreateBundle(MakeBundle("other.org")).ok());
    Add("a", {"fed.org"});
    Add("b", {"fed.org", "other.org"});
    Add("c", {"other.org"});
    Add("d", {});
  }
  void Add(std::string id, std::vector<std::string> feds) {
    Entry e = MakeEntry("spiffe://example.org/" + id, "spiffe://example.org/agent", {"u:1"});
    e.id = id;
    for (const std::string& f : feds) e.federates_with.push_back(Td(f));
    ASSERT_TRUE(store_->CreateEntry(e).ok());
  }
  Entry Fetch(std::string_view id) {
    auto e = store_->FetchEntry(id);
    EXPECT_TRUE(e.ok() && e->has_value()) << id;
    return **e;
  }
  bool Exists(std::string_view id) {
    auto e = store_->FetchEntry(id);
    return e.ok() && e->has_value();
  }
  bool BundleExists(std::string_view td) {
    auto b = store_->FetchBundle(Td(td));
    return b.ok() && b->has_value();
  }
};

TEST_F(DeleteBundleTest, RestrictRefusesWhileEntriesFederate) {
  absl::Status status = store_->DeleteBundle(Td("fed.org"), BundleDeleteMode::kRestrict).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(status), HasSubstr("federated with 2 registration entries"));
  EXPECT_TRUE(BundleExists("fed.org"));
  EXPECT_TRUE(Exists("a") && Exists("b"));

  ASSERT_TRUE(store_->CreateBundle(MakeBundle("lonely.org")).ok());
  ASSERT_OK_AND_ASSIGN(DeleteBundleResult result,
                       store_->DeleteBundle(Td("lonely.org"), BundleDeleteMode::kRestrict));
  EXPECT_THAT(result.affected_entries, IsEmpty());
  EXPECT_FALSE(BundleExists("lonely.org"));

  status = store_->DeleteBundle(Td("lonely.org"), BundleDeleteMode::kRestrict).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(status), HasSubstr("bundle not found"));
}

TEST_F(DeleteBundleTest, DeleteAlsoDeletesFederatingEntries) {
  ASSERT_OK_AND_ASSIGN(DeleteBundleResult result,
                       store_->DeleteBundle(Td("fed.org"), BundleDeleteMode::kDelete));
  ASSERT_EQ(result.affected_entries.size(), 2u);
  EXPECT_EQ(result.affected_entries[0].id, "a");
  EXPECT_EQ(result.affected_entries[1].id, "b");
  EXPECT_THAT(result.affected_entries[1].federates_with,
              ElementsAre(Td("fed.org"), Td("other.org")));
  EXPECT_FALSE(Exists("a"));
  EXPECT_FALSE(Exists("b"));
  EXPECT_TRUE(Exists("c") && Exists("d"));
  EXPECT_FALSE(BundleExists("fed.org"));
  EXPECT_TRUE(BundleExists("other.org"));
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entry_federated_tds"), 1);  // c's
}

TEST_F(DeleteBundleTest, DissociateRemovesTheTrustDomainFromEntries) {
  ASSERT_OK_AND_ASSIGN(DeleteBundleResult result,
                       store_->DeleteBundle(Td("fed.org"), BundleDeleteMode::kDissociate));
  ASSERT_EQ(result.affected_entries.size(), 2u);
  EXPECT_EQ(result.affected_entries[0], Fetch("a"));
  EXPECT_EQ(result.affected_entries[1], Fetch("b"));
  EXPECT_THAT(Fetch("a").federates_with, IsEmpty());
  EXPECT_THAT(Fetch("b").federates_with, ElementsAre(Td("other.org")));
  EXPECT_EQ(Fetch("a").revision_number, 1);
  EXPECT_EQ(Fetch("c").revision_number, 0);
  EXPECT_FALSE(BundleExists("fed.org"));
}

TEST_F(DeleteBundleTest, FailureAfterEntriesWereDeletedRollsEverythingBack) {
  {
    sqlite::Database raw = Raw();
    ASSERT_TRUE(raw.Exec("CREATE TRIGGER boom BEFORE DELETE ON bundles "
                         "BEGIN SELECT RAISE(ABORT, 'injected'); END")
                    .ok());
  }
  for (BundleDeleteMode mode : {BundleDeleteMode::kDelete, BundleDeleteMode::kDissociate}) {
    absl::Status status = store_->DeleteBundle(Td("fed.org"), mode).status();
    EXPECT_THAT(Msg(status), HasSubstr("injected"));
    EXPECT_TRUE(BundleExists("fed.org"));
    EXPECT_THAT(Fetch("a").federates_with, ElementsAre(Td("fed.org")));
    EXPECT_EQ(Fetch("a").revision_number, 0);
    EXPECT_THAT(Fetch("b").federates_with, ElementsAre(Td("fed.org"), Td("other.org")));
  }
}

TEST_F(BundlesTest, CaJournalStoresOpaqueBytes) {
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> none, store_->FetchCaJournal("x509"));
  EXPECT_FALSE(none.has_value());
  const std::string blob("\x00\x01journal\xff", 10);
  ASSERT_TRUE(store_->SetCaJournal("x509", blob).ok());
  ASSERT_TRUE(store_->SetCaJournal("jwt", "").ok());
  Reopen();
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> got, store_->FetchCaJournal("x509"));
  EXPECT_EQ(got, blob);
  ASSERT_OK_AND_ASSIGN(got, store_->FetchCaJournal("jwt"));
  EXPECT_EQ(got, "");
  ASSERT_TRUE(store_->SetCaJournal("x509", "v2").ok());
  ASSERT_OK_AND_ASSIGN(got, store_->FetchCaJournal("x509"));
  EXPECT_EQ(got, "v2");
}

}  // namespace
}  // namespace tessera::server
