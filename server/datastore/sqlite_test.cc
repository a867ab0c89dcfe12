#include "server/datastore/sqlite.h"

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_test_util.h"  // ASSERT_OK_AND_ASSIGN

namespace tessera::server::sqlite {
namespace {

using ::testing::HasSubstr;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tessera-sqlite-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    ASSERT_OK_AND_ASSIGN(Database db, Database::Open(dir_ / "t.db"));
    db_ = std::make_unique<Database>(std::move(db));
    ASSERT_TRUE(db_->Exec("CREATE TABLE t (k TEXT PRIMARY KEY, i INTEGER, b BLOB)").ok());
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<Database> db_;
};

TEST_F(SqliteTest, BindsAndReadsEveryType) {
  const std::string blob("\x00\x01\x02", 3);
  ASSERT_TRUE(db_->Run("INSERT INTO t VALUES (?, ?, ?)",
                       {std::string("k\0ey", 4), int64_t{-9'000'000'000}, Blob{blob}})
                  .ok());
  ASSERT_TRUE(
      db_->Run("INSERT INTO t VALUES (?, ?, ?)", {std::string("n"), nullptr, Blob{""}}).ok());
  ASSERT_OK_AND_ASSIGN(Statement stmt, db_->Prepare("SELECT k, i, b FROM t ORDER BY k"));
  ASSERT_OK_AND_ASSIGN(bool row, stmt.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(stmt.ColumnText(0), std::string("k\0ey", 4));
  EXPECT_EQ(stmt.ColumnInt(1), -9'000'000'000);
  EXPECT_EQ(stmt.ColumnBlob(2), blob);
  ASSERT_OK_AND_ASSIGN(row, stmt.Step());
  ASSERT_TRUE(row);
  EXPECT_TRUE(stmt.ColumnIsNull(1));
  EXPECT_FALSE(stmt.ColumnIsNull(2));  // an empty blob, not NULL
  EXPECT_EQ(stmt.ColumnBlob(2), "");
  ASSERT_OK_AND_ASSIGN(row, stmt.Step());
  EXPECT_FALSE(row);
}

TEST_F(SqliteTest, MapsErrors) {
  ASSERT_TRUE(db_->Run("INSERT INTO t (k) VALUES (?)", {std::string("a")}).ok());
  absl::Status dup = db_->Run("INSERT INTO t (k) VALUES (?)", {std::string("a")});
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(dup.message()), HasSubstr("UNIQUE constraint failed"));
  EXPECT_EQ(db_->Prepare("SELECT nonsense FROM nowhere").status().code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(db_->Prepare("SELECT 1; SELECT 2").status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(db_->Prepare("SELECT 1;  \n").ok());
  EXPECT_EQ(db_->Run("SELECT ?", {int64_t{1}, int64_t{2}}).code(),
            absl::StatusCode::kInvalidArgument);  // SQLITE_RANGE
  EXPECT_EQ(db_->QueryInt("SELECT i FROM t WHERE k = 'none'").status().code(),
            absl::StatusCode::kInternal);
}

TEST_F(SqliteTest, TransactionRollsBackUnlessCommitted) {
  {
    ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_, Transaction::Kind::kWrite));
    ASSERT_TRUE(db_->Run("INSERT INTO t (k) VALUES ('gone')").ok());
    EXPECT_TRUE(db_->InTransaction());
  }
  EXPECT_FALSE(db_->InTransaction());
  ASSERT_OK_AND_ASSIGN(int64_t n, db_->QueryInt("SELECT COUNT(*) FROM t"));
  EXPECT_EQ(n, 0);
  {
    ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_, Transaction::Kind::kWrite));
    ASSERT_TRUE(db_->Run("INSERT INTO t (k) VALUES ('kept')").ok());
    Transaction moved = std::move(tx);  // the moved-from guard does nothing
    ASSERT_TRUE(moved.Commit().ok());
    EXPECT_EQ(moved.Commit().code(), absl::StatusCode::kFailedPrecondition);
  }
  ASSERT_OK_AND_ASSIGN(n, db_->QueryInt("SELECT COUNT(*) FROM t"));
  EXPECT_EQ(n, 1);
}

TEST_F(SqliteTest, SavepointUndoesOnlyItsOwnWritesUnlessReleased) {
  EXPECT_EQ(Savepoint::Begin(*db_).status().code(), absl::StatusCode::kFailedPrecondition);
  {
    ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_, Transaction::Kind::kWrite));
    ASSERT_TRUE(db_->Run("INSERT INTO t (k) VALUES ('before')").ok());
    {
      ASSERT_OK_AND_ASSIGN(Savepoint undone, Savepoint::Begin(*db_));
      ASSERT_TRUE(db_->Run("INSERT INTO t (k) VALUES ('undone')").ok());
    }
    EXPECT_TRUE(db_->InTransaction());
    {
      ASSERT_OK_AND_ASSIGN(Savepoint kept, Savepoint::Begin(*db_));
      ASSERT_TRUE(db_->Run("INSERT INTO t (k) VALUES ('kept')").ok());
      Savepoint moved = std::move(kept);  // the moved-from guard does nothing
      ASSERT_TRUE(moved.Release().ok());
      EXPECT_EQ(moved.Release().code(), absl::StatusCode::kFailedPrecondition);
    }
    EXPECT_TRUE(db_->InTransaction());  // releasing a savepoint does not end the transaction
    ASSERT_TRUE(tx.Commit().ok());
  }
  ASSERT_OK_AND_ASSIGN(int64_t n, db_->QueryInt("SELECT COUNT(*) FROM t WHERE k = 'undone'"));
  EXPECT_EQ(n, 0);
  ASSERT_OK_AND_ASSIGN(n, db_->QueryInt("SELECT COUNT(*) FROM t"));
  EXPECT_EQ(n, 2);
}

TEST_F(SqliteTest, OpenFailsCleanlyForMissingDirectory) {
  absl::StatusOr<Database> db = Database::Open(dir_ / "no" / "such" / "dir.db");
  EXPECT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace tessera::server::sqlite
