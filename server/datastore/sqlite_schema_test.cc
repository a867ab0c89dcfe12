#include <sys/stat.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/datastore/datastore_test_util.h"
#include "server/datastore/sqlite_internal.h"

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

// A database as a build that knew only schema version 1 left it: that build's tables, filled by
// that build's statements (no additional-attribute columns yet).
TEST_F(SchemaTest, UpgradesAVersion1DatabaseInPlaceKeepingEveryEntry) {
  store_.reset();
  const std::filesystem::path old_path = dir_ / "v1.sqlite3";
  const std::string_view v1_sql = sqlite_internal::MigrationSql(1);
  ASSERT_FALSE(v1_sql.empty());
  ASSERT_TRUE(sqlite_internal::MigrationSql(SqliteDataStore::SchemaVersion() + 1).empty());
  {
    ASSERT_OK_AND_ASSIGN(sqlite::Database old, sqlite::Database::Open(old_path));
    ASSERT_TRUE(old.Exec("CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), "
                         "version INTEGER NOT NULL);"
                         "INSERT INTO schema_version (id, version) VALUES (1, 1)")
                    .ok());
    ASSERT_TRUE(old.Exec(v1_sql).ok());
    ASSERT_TRUE(
        old.Run("INSERT INTO bundles (trust_domain, data) VALUES (?, ?)",
                {std::string("fed.org"), sqlite::Blob{MakeBundle("fed.org").SerializeAsString()}})
            .ok());
    const char* insert_entry =
        "INSERT INTO entries (id, spiffe_id, parent_id, x509_svid_ttl, jwt_svid_ttl, admin, "
        "downstream, store_svid, hint, expires_at, revision_number, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    ASSERT_TRUE(
        old.Run(insert_entry, {std::string("old-1"), std::string("spiffe://example.org/w"),
                               std::string("spiffe://example.org/a"), int64_t{600}, int64_t{60},
                               int64_t{1}, int64_t{0}, int64_t{0}, std::string("h"),
                               int64_t{1'900'000'000}, int64_t{3}, int64_t{1'700'000'000}})
            .ok());
    const int64_t seq1 = old.LastInsertRowId();
    ASSERT_TRUE(
        old.Run(insert_entry, {std::string("old-2"), std::string("spiffe://example.org/x"),
                               std::string("spiffe://example.org/a"), int64_t{0}, int64_t{0},
                               int64_t{0}, int64_t{1}, int64_t{1}, std::string(""), int64_t{0},
                               int64_t{0}, int64_t{1'700'000'001}})
            .ok());
    const int64_t seq2 = old.LastInsertRowId();
    for (auto [seq, selector] : {std::pair{seq1, "unix:uid:1"}, std::pair{seq1, "unix:gid:2"},
                                 std::pair{seq2, "k8s:ns:x"}}) {
      ASSERT_TRUE(old.Run("INSERT INTO entry_selectors (entry_seq, selector) VALUES (?, ?)",
                          {seq, std::string(selector)})
                      .ok());
    }
    ASSERT_TRUE(old.Run("INSERT INTO entry_dns_names (entry_seq, position, name) VALUES (?, 0, ?)",
                        {seq1, std::string("w.example.org")})
                    .ok());
    ASSERT_TRUE(old.Run("INSERT INTO entry_federated_tds (entry_seq, trust_domain, position) "
                        "VALUES (?, ?, 0)",
                        {seq1, std::string("fed.org")})
                    .ok());
  }

  ASSERT_OK_AND_ASSIGN(store_, SqliteDataStore::Open(old_path, clock_));
  {
    ASSERT_OK_AND_ASSIGN(sqlite::Database raw, sqlite::Database::Open(old_path));
    ASSERT_OK_AND_ASSIGN(int64_t version, raw.QueryInt("SELECT version FROM schema_version"));
    EXPECT_EQ(version, SqliteDataStore::SchemaVersion());
  }
  ASSERT_OK_AND_ASSIGN(std::vector<Entry> entries, store_->ListAllEntries());
  ASSERT_EQ(entries.size(), 2u);
  Entry first =
      MakeEntry("spiffe://example.org/w", "spiffe://example.org/a", {"unix:uid:1", "unix:gid:2"});
  first.id = "old-1";
  first.x509_svid_ttl = 600;
  first.jwt_svid_ttl = 60;
  first.admin = true;
  first.hint = "h";
  first.expires_at = 1'900'000'000;
  first.revision_number = 3;
  first.created_at = 1'700'000'000;
  first.dns_names = {"w.example.org"};
  first.federates_with = {Td("fed.org")};
  EXPECT_EQ(entries[0], first);  // the additional attributes came up false
  Entry second = MakeEntry("spiffe://example.org/x", "spiffe://example.org/a", {"k8s:ns:x"});
  second.id = "old-2";
  second.downstream = true;
  second.store_svid = true;
  second.created_at = 1'700'000'001;
  EXPECT_EQ(entries[1], second);

  // The upgraded database takes the new fields, and keeps them across a reopen.
  Entry change = entries[0];
  change.jwt_svid_include_jti = true;
  EntryMask mask;
  mask.additional_attributes = true;
  ASSERT_OK_AND_ASSIGN(Entry updated, store_->UpdateEntry(change, mask));
  EXPECT_TRUE(updated.jwt_svid_include_jti);
  EXPECT_EQ(updated.revision_number, 4);
  store_.reset();
  ASSERT_OK_AND_ASSIGN(store_, SqliteDataStore::Open(old_path, clock_));
  ASSERT_OK_AND_ASSIGN(std::optional<Entry> fetched, store_->FetchEntry("old-1"));
  EXPECT_EQ(fetched, updated);
  ASSERT_OK_AND_ASSIGN(fetched, store_->FetchEntry("old-2"));
  EXPECT_EQ(fetched, second);
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
