// Opening a SqliteDataStore: file permissions, connection settings and schema migrations.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/unique_fd.h"
#include "server/datastore/sqlite_datastore.h"
#include "server/datastore/sqlite_internal.h"

namespace tessera::server {
namespace {

struct Migration {
  int version;
  std::string_view sql;
};

// Version 1: the initial schema. Rows are keyed by an AUTOINCREMENT `seq`, which is never
// reused: it orders listings by creation and serves as the page cursor. Set-valued fields live in
// child tables, unique per (owner, value), indexed by value for the selector and federates-with
// filters.
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE entries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  spiffe_id TEXT NOT NULL,
  parent_id TEXT NOT NULL,
  x509_svid_ttl INTEGER NOT NULL,
  jwt_svid_ttl INTEGER NOT NULL,
  admin INTEGER NOT NULL,
  downstream INTEGER NOT NULL,
  store_svid INTEGER NOT NULL,
  hint TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  revision_number INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX entries_by_spiffe_id ON entries (spiffe_id, parent_id);
CREATE INDEX entries_by_parent_id ON entries (parent_id);
CREATE INDEX entries_by_hint ON entries (hint);
CREATE INDEX entries_by_expires_at ON entries (expires_at);

CREATE TABLE entry_selectors (
  entry_seq INTEGER NOT NULL REFERENCES entries (seq) ON DELETE CASCADE,
  selector TEXT NOT NULL,
  PRIMARY KEY (entry_seq, selector)
) WITHOUT ROWID;
CREATE INDEX entry_selectors_by_selector ON entry_selectors (selector);

CREATE TABLE entry_dns_names (
  entry_seq INTEGER NOT NULL REFERENCES entries (seq) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  name TEXT NOT NULL,
  PRIMARY KEY (entry_seq, position)
) WITHOUT ROWID;

CREATE TABLE bundles (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  trust_domain TEXT NOT NULL UNIQUE,
  data BLOB NOT NULL
);

-- The foreign key to bundles makes a bundle that entries federate with undeletable by mistake.
CREATE TABLE entry_federated_tds (
  entry_seq INTEGER NOT NULL REFERENCES entries (seq) ON DELETE CASCADE,
  trust_domain TEXT NOT NULL REFERENCES bundles (trust_domain),
  position INTEGER NOT NULL,
  PRIMARY KEY (entry_seq, trust_domain)
) WITHOUT ROWID;
CREATE INDEX entry_federated_tds_by_td ON entry_federated_tds (trust_domain);

CREATE TABLE attested_nodes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  spiffe_id TEXT NOT NULL UNIQUE,
  attestation_type TEXT NOT NULL,
  cert_serial TEXT NOT NULL,
  cert_not_after INTEGER NOT NULL,
  new_cert_serial TEXT NOT NULL,
  new_cert_not_after INTEGER NOT NULL,
  can_reattest INTEGER NOT NULL,
  agent_version TEXT NOT NULL
);
CREATE INDEX attested_nodes_by_type ON attested_nodes (attestation_type);
CREATE INDEX attested_nodes_by_not_after ON attested_nodes (cert_not_after);

-- Keyed by SPIFFE ID, not by node row: attestation stores the selectors before the node.
CREATE TABLE node_selectors (
  spiffe_id TEXT NOT NULL,
  selector TEXT NOT NULL,
  PRIMARY KEY (spiffe_id, selector)
) WITHOUT ROWID;
CREATE INDEX node_selectors_by_selector ON node_selectors (selector);

CREATE TABLE join_tokens (
  token TEXT NOT NULL PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX join_tokens_by_expires_at ON join_tokens (expires_at);

CREATE TABLE ca_journal (
  name TEXT NOT NULL PRIMARY KEY,
  data BLOB NOT NULL
) WITHOUT ROWID;
)sql";

// Version 2: SPIRE's Entry.AdditionalAttributes. The defaults give every existing entry SPIRE's
// defaults (both false), so the upgrade rewrites no row.
constexpr std::string_view kSchemaV2 = R"sql(
ALTER TABLE entries ADD COLUMN jwt_svid_include_jti INTEGER NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN disable_x509_svid_prefetch INTEGER NOT NULL DEFAULT 0;
)sql";

// Append only: a released migration is never edited, a change is a new version.
constexpr Migration kMigrations[] = {
    {1, kSchemaV1},
    {2, kSchemaV2},
};

absl::Status ErrnoError(std::string_view what, const std::filesystem::path& path) {
  return absl::ErrnoToStatus(errno, absl::StrCat(AsAbsl(what), " ", path.string()));
}

// Creates the directory (0700) and the file (0600) ourselves: SQLite would create the file with
// the umask's mode. An existing file readable by others is tightened.
absl::Status PrepareFile(const std::filesystem::path& path) {
  std::filesystem::path dir = path.parent_path();
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("create directory ", dir.string(), ": ", ec.message()));
    }
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("chmod ", dir.string(), ": ", ec.message()));
    }
  }
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return ErrnoError("open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("stat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path.string(), " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0 && ::fchmod(fd.get(), 0600) != 0) return ErrnoError("chmod", path);
  return absl::OkStatus();
}

absl::Status Configure(sqlite::Database& db) {
  // Waits for another process's write lock instead of failing at once.
  RETURN_IF_ERROR(db.Exec("PRAGMA busy_timeout = 5000"));
  RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys = ON"));
  ASSIGN_OR_RETURN(int64_t fk, db.QueryInt("PRAGMA foreign_keys"));
  if (fk != 1) return absl::FailedPreconditionError("sqlite: foreign keys are not supported");
  ASSIGN_OR_RETURN(sqlite::Statement wal, db.Prepare("PRAGMA journal_mode = WAL"));
  ASSIGN_OR_RETURN(bool row, wal.Step());
  std::string mode = row ? wal.ColumnText(0) : "";
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("sqlite: cannot enable WAL journal mode (got \"", mode, "\")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ReadVersion(sqlite::Database& db) {
  return db.QueryInt("SELECT version FROM schema_version WHERE id = 1");
}

absl::Status Migrate(sqlite::Database& db) {
  {
    ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db, sqlite::Transaction::Kind::kWrite));
    RETURN_IF_ERROR(
        db.Exec("CREATE TABLE IF NOT EXISTS schema_version ("
                "id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);"
                "INSERT OR IGNORE INTO schema_version (id, version) VALUES (1, 0)"));
    RETURN_IF_ERROR(tx.Commit());
  }
  const int latest = SqliteDataStore::SchemaVersion();
  for (const Migration& migration : kMigrations) {
    // Re-read under the write lock: another process may have migrated meanwhile.
    ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db, sqlite::Transaction::Kind::kWrite));
    ASSIGN_OR_RETURN(int64_t version, ReadVersion(db));
    if (version > latest) {
      return absl::FailedPreconditionError(absl::StrCat("database schema version ", version,
                                                        " is newer than the newest this "
                                                        "build knows (",
                                                        latest, "); use a newer tessera-server"));
    }
    if (version >= migration.version) continue;
    RETURN_IF_ERROR(Annotate(db.Exec(migration.sql),
                             absl::StrCat("migrate to schema version ", migration.version)));
    RETURN_IF_ERROR(
        db.Run("UPDATE schema_version SET version = ? WHERE id = 1", {int64_t{migration.version}}));
    RETURN_IF_ERROR(tx.Commit());
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view sqlite_internal::MigrationSql(int version) {
  for (const Migration& migration : kMigrations) {
    if (migration.version == version) return migration.sql;
  }
  return {};
}

int SqliteDataStore::SchemaVersion() { return std::end(kMigrations)[-1].version; }

absl::StatusOr<std::unique_ptr<SqliteDataStore>> SqliteDataStore::Open(
    const std::filesystem::path& path, const Clock& clock) {
  const std::string context = absl::StrCat("datastore: open ", path.string());
  RETURN_IF_ERROR(Annotate(PrepareFile(path), context));
  ASSIGN_OR_RETURN(sqlite::Database db, sqlite::Database::Open(path), Annotate(_, context));
  RETURN_IF_ERROR(Annotate(Configure(db), context));
  RETURN_IF_ERROR(Annotate(Migrate(db), context));
  return std::unique_ptr<SqliteDataStore>(new SqliteDataStore(std::move(db), clock));
}

}  // namespace tessera::server
