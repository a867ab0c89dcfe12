#include "server/datastore/sqlite.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace tessera::server::sqlite {

absl::Status StatusFromCode(int code, std::string_view message) {
  std::string text = absl::StrCat("sqlite: ", AsAbsl(message));
  switch (code) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return absl::AlreadyExistsError(text);
    default:
      break;
  }
  switch (code & 0xff) {
    case SQLITE_CONSTRAINT:
      return absl::FailedPreconditionError(text);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(text);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(text);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(text);
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return absl::PermissionDeniedError(text);
    case SQLITE_CANTOPEN:
      return absl::FailedPreconditionError(text);
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
      return absl::InvalidArgumentError(text);
    default:
      return absl::InternalError(text);
  }
}

// --- Statement ---

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), db_(other.db_) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    db_ = other.db_;
  }
  return *this;
}

Statement::~Statement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

absl::Status Statement::BindResult(int rc, int index) {
  if (rc == SQLITE_OK) return absl::OkStatus();
  return StatusFromCode(rc, absl::StrCat("bind parameter ", index, ": ", sqlite3_errstr(rc)));
}

absl::Status Statement::BindInt(int index, int64_t value) {
  return BindResult(sqlite3_bind_int64(stmt_, index, value), index);
}

absl::Status Statement::BindText(int index, std::string_view value) {
  return BindResult(
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
      index);
}

absl::Status Statement::BindBlob(int index, std::string_view bytes) {
  // A zero-length blob with a null pointer would bind NULL; "" keeps it an empty blob.
  const char* data = bytes.empty() ? "" : bytes.data();
  return BindResult(sqlite3_bind_blob64(stmt_, index, data, bytes.size(), SQLITE_TRANSIENT), index);
}

absl::Status Statement::BindNull(int index) {
  return BindResult(sqlite3_bind_null(stmt_, index), index);
}

absl::Status Statement::Bind(int index, const Value& value) {
  struct Visitor {
    Statement* self;
    int index;
    absl::Status operator()(std::nullptr_t) const { return self->BindNull(index); }
    absl::Status operator()(int64_t v) const { return self->BindInt(index, v); }
    absl::Status operator()(const std::string& v) const { return self->BindText(index, v); }
    absl::Status operator()(const Blob& v) const { return self->BindBlob(index, v.bytes); }
  };
  return std::visit(Visitor{this, index}, value);
}

absl::Status Statement::BindAll(const std::vector<Value>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    RETURN_IF_ERROR(Bind(static_cast<int>(i + 1), values[i]));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return StatusFromCode(rc, sqlite3_errmsg(db_));
}

absl::Status Statement::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return absl::OkStatus();
  }
}

void Statement::Reset() { sqlite3_reset(stmt_); }

int64_t Statement::ColumnInt(int index) const { return sqlite3_column_int64(stmt_, index); }

std::string Statement::ColumnText(int index) const {
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, index)));
}

std::string Statement::ColumnBlob(int index) const {
  const void* data = sqlite3_column_blob(stmt_, index);
  if (data == nullptr) return "";
  return std::string(static_cast<const char*>(data),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, index)));
}

bool Statement::ColumnIsNull(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

// --- Database ---

absl::StatusOr<Database> Database::Open(const std::filesystem::path& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  // Even a failed open usually allocates a handle (it carries the message); own it either way.
  Database db(raw);
  if (rc != SQLITE_OK) {
    return StatusFromCode(rc, raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
  }
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Database::Database(Database&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

Database::~Database() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

absl::Status Database::Error(int rc) const { return StatusFromCode(rc, sqlite3_errmsg(db_)); }

absl::Status Database::Exec(std::string_view sql) {
  std::string text(sql);  // sqlite3_exec wants a NUL-terminated string
  char* message = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status status = StatusFromCode(rc, message != nullptr ? message : sqlite3_errstr(rc));
  sqlite3_free(message);
  return status;
}

absl::StatusOr<Statement> Database::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
  Statement statement(stmt, db_);
  if (rc != SQLITE_OK) return Error(rc);
  if (stmt == nullptr) return absl::InternalError("sqlite: prepare: empty statement");
  for (const char* p = tail; p != nullptr && p < sql.data() + sql.size(); ++p) {
    if (*p != ' ' && *p != '\n' && *p != '\t' && *p != ';') {
      return absl::InternalError("sqlite: prepare: more than one statement");
    }
  }
  return statement;
}

absl::Status Database::Run(std::string_view sql, const std::vector<Value>& params) {
  ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
  RETURN_IF_ERROR(stmt.BindAll(params));
  return stmt.Run();
}

absl::StatusOr<int64_t> Database::QueryInt(std::string_view sql, const std::vector<Value>& params) {
  ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
  RETURN_IF_ERROR(stmt.BindAll(params));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::InternalError("sqlite: query returned no row");
  return stmt.ColumnInt(0);
}

int64_t Database::Changes() const { return sqlite3_changes64(db_); }

int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

bool Database::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

// --- Transaction ---

absl::StatusOr<Transaction> Transaction::Begin(Database& db, Kind kind) {
  RETURN_IF_ERROR(db.Exec(kind == Kind::kWrite ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED"));
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  // Some errors (SQLITE_FULL, I/O errors) already rolled the transaction back.
  if (db_ != nullptr && db_->InTransaction()) (void)db_->Exec("ROLLBACK");
}

absl::Status Transaction::Commit() {
  if (db_ == nullptr) return absl::FailedPreconditionError("sqlite: transaction already ended");
  RETURN_IF_ERROR(db_->Exec("COMMIT"));  // on failure the destructor rolls back
  db_ = nullptr;
  return absl::OkStatus();
}

// --- Savepoint ---

absl::StatusOr<Savepoint> Savepoint::Begin(Database& db) {
  if (!db.InTransaction()) {
    return absl::FailedPreconditionError("sqlite: a savepoint needs an open transaction");
  }
  RETURN_IF_ERROR(db.Exec("SAVEPOINT tessera_item"));
  return Savepoint(&db);
}

Savepoint::Savepoint(Savepoint&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Savepoint::~Savepoint() {
  // Rolling back to a savepoint keeps it open; releasing it afterwards ends it with nothing
  // written. When an error already rolled back the whole transaction there is nothing to undo.
  if (db_ != nullptr && db_->InTransaction()) {
    (void)db_->Exec("ROLLBACK TO tessera_item; RELEASE tessera_item");
  }
}

absl::Status Savepoint::Release() {
  if (db_ == nullptr) return absl::FailedPreconditionError("sqlite: savepoint already ended");
  RETURN_IF_ERROR(db_->Exec("RELEASE tessera_item"));  // on failure the destructor rolls back
  db_ = nullptr;
  return absl::OkStatus();
}

}  // namespace tessera::server::sqlite
