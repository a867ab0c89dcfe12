#include <sys/stat.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/datastore/datastore_test_util.h"

namespace tessera::server {
namespace {

using testing::DataStoreTest;
using ::testing::HasSubstr;
using testing::Id;
using testing::MakeBundle;
using testing::MakeEntry;
using testing::MakeNode;
using testing::Td;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

mode_t Mode(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

class SchemaTest : public DataStoreTest {};

TEST_F(SchemaTest, FreshDatabaseIsMigratedWithTightPermissionsAndWal) {
  EXPECT_EQ(RawCount("SELECT version FROM schema_version"), SqliteDataStore::SchemaVersion());
  EXPECT_EQ(Mode(db_path()), 0600u);
  EXPECT_EQ(Mode(db_path().parent_path()), 0700u);
  ASSERT_TRUE(
      store_->CreateEntry(MakeEntry("spiffe://example.org/w", "spiffe://example.org/a", {"u:1"}))
          .ok());
  const std::filesystem::path wal = db_path().string() + "-wal";
  ASSERT_TRUE(std::filesystem::exists(wal));
  EXPECT_EQ(Mode(wal), 0600u);

  sqlite::Database raw = Raw();
  ASSERT_OK_AND_ASSIGN(sqlite::Statement stmt, raw.Prepare("PRAGMA journal_mode"));
  ASSERT_OK_AND_ASSIGN(bool row, stmt.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(stmt.ColumnText(0), "wal");
  // Every table the layout promises exists.
  for (std::string table :
       {"entries", "entry_selectors", "entry_dns_names", "entry_federated_tds", "attested_nodes",
        "node_selectors", "join_tokens", "bundles", "ca_journal"}) {
    EXPECT_EQ(RawCount(absl::StrCat("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                                    "AND name = '",
                                    table, "'")),
              1)
        << table;
  }
}

TEST_F(SchemaTest, ReopeningKeepsEverything) {
  ASSERT_OK_AND_ASSIGN(Bundle bundle, store_->CreateBundle(MakeBundle("fed.org", {"ca"})));
  Entry e = MakeEntry("spiffe://example.org/w", "spiffe://example.org/a", {"u:1"});
  e.federates_with = {Td("fed.org")};
  ASSERT_OK_AND_ASSIGN(Entry entry, store_->CreateEntry(e));
  AttestedNode node = MakeNode("spiffe://example.org/spire/agent/x/1");
  node.selectors = testing::Selectors({"x:1"});
  ASSERT_TRUE(store_->CreateAttestedNode(node).ok());
  ASSERT_TRUE(store_->CreateJoinToken({.token = "t", .expires_at = 9}).ok());
  ASSERT_TRUE(store_->SetCaJournal("ca", "journal").ok());

  Reopen();
  Reopen();  // a second open finds nothing to migrate
  EXPECT_EQ(RawCount("SELECT version FROM schema_version"), SqliteDataStore::SchemaVersion());
  ASSERT_OK_AND_ASSIGN(std::optional<Entry> got_entry, store_->FetchEntry(entry.id));
  EXPECT_EQ(got_entry, entry);
  ASSERT_OK_AND_ASSIGN(std::optional<AttestedNode> got_node, store_->FetchAttestedNode(node.id));
  EXPECT_EQ(got_node, node);
  ASSERT_OK_AND_ASSIGN(std::optional<Bundle> got_bundle, store_->FetchBundle(Td("fed.org")));
  EXPECT_EQ(got_bundle->SerializeAsString(), bundle.SerializeAsString());
  ASSERT_OK_AND_ASSIGN(JoinToken token, store_->TakeJoinToken("t"));
  EXPECT_EQ(token.expires_at, 9);
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> journal, store_->FetchCaJournal("ca"));
  EXPECT_EQ(journal, "journal");
}

TEST_F(SchemaTest, RefusesANewerSchema) {
  store_.reset();
  {
    sqlite::Database raw = Raw();
    ASSERT_TRUE(raw.Run("UPDATE schema_version SET version = ?",
                        {int64_t{SqliteDataStore::SchemaVersion() + 1}})
                    .ok());
  }
  absl::StatusOr<std::unique_ptr<SqliteDataStore>> opened =
      SqliteDataStore::Open(db_path(), clock_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(opened.status()),
              HasSubstr(absl::StrCat("datastore: open ", db_path().string())));
  EXPECT_THAT(Msg(opened.status()),
              HasSubstr(absl::StrCat("schema version ", SqliteDataStore::SchemaVersion() + 1,
                                     " is newer")));
}

TEST_F(SchemaTest, TightensALooseExistingFile) {
  store_.reset();
  ASSERT_EQ(::chmod(db_path().c_str(), 0644), 0);
  Reopen();
  EXPECT_EQ(Mode(db_path()), 0600u);
}

TEST_F(SchemaTest, RejectsAFileThatIsNotADatabase) {
  store_.reset();
  const std::filesystem::path junk = dir_ / "junk.sqlite3";
  {
    std::ofstream out(junk);
    out << std::string(4096, 'x');
  }
  absl::StatusOr<std::unique_ptr<SqliteDataStore>> opened = SqliteDataStore::Open(junk, clock_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(opened.status()), HasSubstr("not a database"));

  opened = SqliteDataStore::Open(dir_, clock_);  // a directory
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(Msg(opened.status()), HasSubstr("datastore: open"));
}

}  // namespace
}  // namespace tessera::server
