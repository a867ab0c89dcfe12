// CreateOrReturnEntries: many entries in one transaction, each succeeding or failing alone.
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/datastore/datastore_test_util.h"

namespace tessera::server {
namespace {

using testing::DataStoreTest;
using ::testing::HasSubstr;
using testing::MakeEntry;
using testing::Td;

class BatchCreateTest : public DataStoreTest {
 protected:
  static std::string Msg(const absl::StatusOr<CreateEntryResult>& result) {
    return std::string(result.status().message());
  }
};

TEST_F(BatchCreateTest, BatchCreatesEachEntryOnItsOwnInOneTransaction) {
  {
    sqlite::Database raw = Raw();
    ASSERT_TRUE(raw.Exec("CREATE TRIGGER boom BEFORE INSERT ON entry_dns_names "
                         "WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'injected'); END")
                    .ok());
  }
  Entry a = MakeEntry("spiffe://example.org/a", "spiffe://example.org/agent", {"unix:uid:1"});
  a.id = "a";
  Entry invalid = MakeEntry("spiffe://example.org/i", "spiffe://example.org/agent", {});
  Entry half_way = MakeEntry("spiffe://example.org/h", "spiffe://example.org/agent", {"x:1"});
  half_way.dns_names = {"fine.example.org", "boom"};
  Entry similar_to_a = a;
  similar_to_a.id = "";
  similar_to_a.hint = "second";
  Entry same_id = MakeEntry("spiffe://example.org/s", "spiffe://example.org/agent", {"y:1"});
  same_id.id = "a";
  Entry unknown_bundle = MakeEntry("spiffe://example.org/u", "spiffe://example.org/agent", {"z:1"});
  unknown_bundle.federates_with = {Td("other.org")};
  Entry last = MakeEntry("spiffe://example.org/l", "spiffe://example.org/agent", {"unix:uid:2"});
  last.dns_names = {"last.example.org"};
  const std::vector<Entry> batch = {a,       invalid,        half_way, similar_to_a,
                                    same_id, unknown_bundle, last};

  std::vector<absl::StatusOr<CreateEntryResult>> results = store_->CreateOrReturnEntries(batch);
  ASSERT_EQ(results.size(), batch.size());
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_TRUE(results[0]->created);
  EXPECT_EQ(results[1].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(results[2]), HasSubstr("injected"));
  ASSERT_TRUE(results[3].ok()) << results[3].status();
  EXPECT_FALSE(results[3]->created);  // the earlier entry of the same batch is seen
  EXPECT_EQ(results[3]->entry, results[0]->entry);
  EXPECT_EQ(results[4].status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(results[5].status().code(), absl::StatusCode::kInternal);
  ASSERT_TRUE(results[6].ok()) << results[6].status();
  EXPECT_TRUE(results[6]->created);
  EXPECT_EQ(results[6]->entry.created_at, results[0]->entry.created_at);
  EXPECT_GT(results[6]->entry.created_at, 0);

  // Exactly the two created entries are stored, with their child rows; the failed ones left
  // nothing behind.
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entries"), 2);
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entry_selectors"), 2);
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entry_dns_names"), 1);
  ASSERT_OK_AND_ASSIGN(std::optional<Entry> fetched, store_->FetchEntry(results[6]->entry.id));
  EXPECT_EQ(*fetched, results[6]->entry);
  EXPECT_TRUE(store_->CreateOrReturnEntries({}).empty());
}

TEST_F(BatchCreateTest, BatchThatCannotCommitWritesNothing) {
  {
    // A deferred foreign key violation is only detected at COMMIT.
    sqlite::Database raw = Raw();
    ASSERT_TRUE(raw.Exec("CREATE TABLE late_parent (id INTEGER PRIMARY KEY);"
                         "CREATE TABLE late_child (p INTEGER REFERENCES late_parent (id) "
                         "DEFERRABLE INITIALLY DEFERRED);"
                         "CREATE TRIGGER late AFTER INSERT ON entries WHEN NEW.hint = 'late' "
                         "BEGIN INSERT INTO late_child VALUES (42); END")
                    .ok());
  }
  Entry fine = MakeEntry("spiffe://example.org/f", "spiffe://example.org/agent", {"unix:uid:1"});
  Entry late = MakeEntry("spiffe://example.org/l", "spiffe://example.org/agent", {"unix:uid:2"});
  late.hint = "late";
  Entry invalid = MakeEntry("spiffe://example.org/i", "spiffe://example.org/agent", {});
  std::vector<absl::StatusOr<CreateEntryResult>> results =
      store_->CreateOrReturnEntries(std::vector<Entry>{fine, late, invalid});
  ASSERT_EQ(results.size(), 3u);
  for (int i : {0, 1}) {
    EXPECT_EQ(results[i].status().code(), absl::StatusCode::kFailedPrecondition)
        << results[i].status();
    EXPECT_THAT(Msg(results[i]), HasSubstr("datastore: create entry"));
    EXPECT_THAT(Msg(results[i]), HasSubstr("FOREIGN KEY"));
  }
  EXPECT_EQ(results[2].status().code(), absl::StatusCode::kInvalidArgument);  // its own error
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entries"), 0);
  // No transaction is left open.
  EXPECT_TRUE(store_->CreateOrReturnEntries(std::vector<Entry>{fine})[0].ok());
  EXPECT_EQ(RawCount("SELECT COUNT(*) FROM entries"), 1);
}

}  // namespace
}  // namespace tessera::server
