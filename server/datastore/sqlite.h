// A small RAII layer over the SQLite C API: a connection, prepared statements with typed binds
// and columns, and a transaction guard that rolls back unless committed. SQLite result codes
// become absl::Status codes (constraint violations → AlreadyExists / FailedPrecondition, busy →
// Unavailable, corruption → DataLoss) with SQLite's own message as text.
//
// Not thread-safe: a Database and the statements prepared on it belong to one thread at a time
// (SqliteDataStore serializes every use behind its mutex). Statements must be destroyed before
// the Database that prepared them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tessera::server::sqlite {

// A value to bind: NULL, an integer, text, or a blob (text and blobs both as bytes).
struct Blob {
  std::string bytes;
};
using Value = std::variant<std::nullptr_t, int64_t, std::string, Blob>;

// Maps a SQLite (extended) result code to a status carrying `message`.
absl::Status StatusFromCode(int code, std::string_view message);

class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are numbered from 1, as in SQLite. Text and blobs are copied (SQLITE_TRANSIENT),
  // so the arguments need not outlive the statement.
  absl::Status BindInt(int index, int64_t value);
  absl::Status BindText(int index, std::string_view value);
  absl::Status BindBlob(int index, std::string_view bytes);
  absl::Status BindNull(int index);
  absl::Status Bind(int index, const Value& value);
  // Binds values[i] to parameter i + 1.
  absl::Status BindAll(const std::vector<Value>& values);

  // Advances: true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps to completion, for statements that return no rows.
  absl::Status Run();
  // Makes the statement runnable again; bindings are kept.
  void Reset();

  // Columns are numbered from 0. Valid only after Step() returned true.
  int64_t ColumnInt(int index) const;
  bool ColumnBool(int index) const { return ColumnInt(index) != 0; }
  std::string ColumnText(int index) const;
  std::string ColumnBlob(int index) const;
  bool ColumnIsNull(int index) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  absl::Status BindResult(int rc, int index);

  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;  // not owned; for error messages
};

class Database {
 public:
  // Opens (creating when missing) the database file at `path`.
  static absl::StatusOr<Database> Open(const std::filesystem::path& path);

  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more ';'-separated statements that take no parameters (schema, pragmas).
  absl::Status Exec(std::string_view sql);
  absl::StatusOr<Statement> Prepare(std::string_view sql);
  // Prepares, binds `params` and runs a statement that returns no rows.
  absl::Status Run(std::string_view sql, const std::vector<Value>& params = {});
  // Prepares, binds and returns the first column of the first row, which must exist.
  absl::StatusOr<int64_t> QueryInt(std::string_view sql, const std::vector<Value>& params = {});

  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  int64_t LastInsertRowId() const;
  bool InTransaction() const;

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  absl::Status Error(int rc) const;

  sqlite3* db_ = nullptr;
};

// Begins a transaction on construction and rolls it back on destruction unless Commit()
// succeeded, so an early return or error anywhere in a multi-statement change leaves nothing
// behind. Immediate transactions take the write lock at BEGIN: a writer never fails half-way
// with SQLITE_BUSY on lock upgrade.
class Transaction {
 public:
  enum class Kind { kRead, kWrite };
  static absl::StatusOr<Transaction> Begin(Database& db, Kind kind);

  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  absl::Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;  // null once committed, rolled back or moved from
};

// A savepoint inside the current transaction: rolled back to (undoing only what was written since)
// on destruction unless Release() succeeded. Lets one transaction carry many independent changes,
// each of which may fail on its own. Savepoints must be released or destroyed in reverse order.
class Savepoint {
 public:
  static absl::StatusOr<Savepoint> Begin(Database& db);

  Savepoint(Savepoint&& other) noexcept;
  Savepoint& operator=(Savepoint&&) = delete;
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  ~Savepoint();

  absl::Status Release();

 private:
  explicit Savepoint(Database* db) : db_(db) {}
  Database* db_;  // null once released, rolled back or moved from
};

}  // namespace tessera::server::sqlite
