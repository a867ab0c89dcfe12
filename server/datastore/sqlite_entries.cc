// SqliteDataStore: registration entries.
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/datastore/sqlite_datastore.h"
#include "server/datastore/sqlite_internal.h"

namespace tessera::server {
namespace sqlite_internal {

absl::StatusOr<std::vector<Stored<Entry>>> LoadEntries(sqlite::Database& db,
                                                       std::string_view seq_query,
                                                       const std::vector<sqlite::Value>& params) {
  const std::string main_where =
      seq_query.empty() ? "" : absl::StrCat(" WHERE seq IN (", AsAbsl(seq_query), ")");
  const std::string child_where =
      seq_query.empty() ? "" : absl::StrCat(" WHERE entry_seq IN (", AsAbsl(seq_query), ")");

  std::vector<Stored<Entry>> out;
  absl::flat_hash_map<int64_t, size_t> index;
  {
    ASSIGN_OR_RETURN(sqlite::Statement stmt,
                     db.Prepare(absl::StrCat(
                         "SELECT seq, id, spiffe_id, parent_id, x509_svid_ttl, jwt_svid_ttl, "
                         "admin, downstream, store_svid, hint, expires_at, revision_number, "
                         "created_at, jwt_svid_include_jti, disable_x509_svid_prefetch "
                         "FROM entries",
                         main_where, " ORDER BY seq")));
    RETURN_IF_ERROR(stmt.BindAll(params));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ASSIGN_OR_RETURN(spiffe::SpiffeId spiffe_id, StoredId(stmt.ColumnText(2)));
      ASSIGN_OR_RETURN(spiffe::SpiffeId parent_id, StoredId(stmt.ColumnText(3)));
      const int64_t seq = stmt.ColumnInt(0);
      index[seq] = out.size();
      out.push_back({seq, Entry{.id = stmt.ColumnText(1),
                                .spiffe_id = std::move(spiffe_id),
                                .parent_id = std::move(parent_id),
                                .selectors = {},
                                .x509_svid_ttl = static_cast<int32_t>(stmt.ColumnInt(4)),
                                .jwt_svid_ttl = static_cast<int32_t>(stmt.ColumnInt(5)),
                                .dns_names = {},
                                .federates_with = {},
                                .admin = stmt.ColumnBool(6),
                                .downstream = stmt.ColumnBool(7),
                                .store_svid = stmt.ColumnBool(8),
                                .hint = stmt.ColumnText(9),
                                .expires_at = stmt.ColumnInt(10),
                                .revision_number = stmt.ColumnInt(11),
                                .created_at = stmt.ColumnInt(12),
                                .jwt_svid_include_jti = stmt.ColumnBool(13),
                                .disable_x509_svid_prefetch = stmt.ColumnBool(14)}});
    }
  }
  if (out.empty()) return out;

  // Each child query visits its rows once and hands them to their entry through `index`.
  auto for_each_child = [&](std::string_view sql, auto&& handle) -> absl::Status {
    ASSIGN_OR_RETURN(sqlite::Statement stmt, db.Prepare(sql));
    RETURN_IF_ERROR(stmt.BindAll(params));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return absl::OkStatus();
      auto it = index.find(stmt.ColumnInt(0));
      if (it == index.end()) continue;
      RETURN_IF_ERROR(handle(it->second, stmt));
    }
  };
  std::vector<std::vector<spiffe::Selector>> selectors(out.size());
  RETURN_IF_ERROR(for_each_child(
      absl::StrCat("SELECT entry_seq, selector FROM entry_selectors", child_where),
      [&](size_t i, sqlite::Statement& stmt) -> absl::Status {
        ASSIGN_OR_RETURN(spiffe::Selector selector, StoredSelector(stmt.ColumnText(1)));
        selectors[i].push_back(std::move(selector));
        return absl::OkStatus();
      }));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].record.selectors = spiffe::SelectorSet(std::move(selectors[i]));
  }
  RETURN_IF_ERROR(for_each_child(absl::StrCat("SELECT entry_seq, name FROM entry_dns_names",
                                              child_where, " ORDER BY entry_seq, position"),
                                 [&](size_t i, sqlite::Statement& stmt) -> absl::Status {
                                   out[i].record.dns_names.push_back(stmt.ColumnText(1));
                                   return absl::OkStatus();
                                 }));
  RETURN_IF_ERROR(for_each_child(
      absl::StrCat("SELECT entry_seq, trust_domain FROM entry_federated_tds", child_where,
                   " ORDER BY entry_seq, position"),
      [&](size_t i, sqlite::Statement& stmt) -> absl::Status {
        ASSIGN_OR_RETURN(spiffe::TrustDomain td, StoredTrustDomain(stmt.ColumnText(1)));
        out[i].record.federates_with.push_back(std::move(td));
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<std::optional<spiffe::TrustDomain>> FindMissingBundle(
    sqlite::Database& db, const std::vector<spiffe::TrustDomain>& trust_domains) {
  for (const spiffe::TrustDomain& td : trust_domains) {
    ASSIGN_OR_RETURN(
        int64_t n, db.QueryInt("SELECT COUNT(*) FROM bundles WHERE trust_domain = ?", {td.name()}));
    if (n == 0) return td;
  }
  return std::nullopt;
}

absl::Status MissingBundleError(const spiffe::TrustDomain& td) {
  return absl::InternalError(
      absl::StrCat("unable to find federated bundle \"", td.IdString(), "\""));
}

absl::Status BumpEntryRevision(sqlite::Database& db, int64_t seq) {
  return db.Run("UPDATE entries SET revision_number = revision_number + 1 WHERE seq = ?", {seq});
}

}  // namespace sqlite_internal

namespace {

using sqlite_internal::Stored;
using sqlite_internal::Where;

constexpr std::string_view kValidation = "datastore-validation: invalid registration entry: ";

// The store's own rules (SPIRE's datastore validation, same messages); the API layer checks IDs,
// selector syntax, DNS names and the like before.
absl::Status ValidateEntry(const Entry& entry) {
  if (entry.selectors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(kValidation), "missing selector list"));
  }
  if (entry.store_svid) {
    // Selectors from different platforms would make the stored SVID's owner ambiguous.
    std::string_view type = entry.selectors.selectors().front().type();
    for (const spiffe::Selector& s : entry.selectors) {
      if (s.type() != type) {
        return absl::InvalidArgumentError(absl::StrCat(
            AsAbsl(kValidation), "selector types must be the same when store SVID is enabled"));
      }
    }
  }
  RETURN_IF_ERROR(ValidateEntryId(entry.id));
  if (entry.x509_svid_ttl < 0) {
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(kValidation), "X509SvidTtl is not set"));
  }
  if (entry.jwt_svid_ttl < 0) {
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(kValidation), "JwtSvidTtl is not set"));
  }
  return absl::OkStatus();
}

// Keeps the first occurrence of each trust domain: the child table holds a set.
std::vector<spiffe::TrustDomain> Dedupe(const std::vector<spiffe::TrustDomain>& tds) {
  std::vector<spiffe::TrustDomain> out;
  absl::flat_hash_set<spiffe::TrustDomain> seen;
  for (const spiffe::TrustDomain& td : tds) {
    if (seen.insert(td).second) out.push_back(td);
  }
  return out;
}

absl::StatusOr<Where> EntryWhere(const EntryFilter& filter) {
  Where where;
  if (filter.by_spiffe_id) where.Add("e.spiffe_id = ?", {filter.by_spiffe_id->str()});
  if (filter.by_parent_id) where.Add("e.parent_id = ?", {filter.by_parent_id->str()});
  if (filter.by_hint) where.Add("e.hint = ?", {*filter.by_hint});
  if (filter.by_downstream) {
    where.Add("e.downstream = ?", {static_cast<int64_t>(*filter.by_downstream)});
  }
  if (filter.by_selectors) {
    if (filter.by_selectors->selectors.empty()) {
      return absl::InvalidArgumentError("cannot filter by an empty selector set");
    }
    sqlite_internal::AddSetMatch(where, "e.seq", "entry_selectors", "entry_seq", "selector",
                                 filter.by_selectors->selectors.Strings(),
                                 filter.by_selectors->match);
  }
  if (filter.by_federates_with) {
    std::vector<std::string> names;
    for (const spiffe::TrustDomain& td : Dedupe(filter.by_federates_with->trust_domains)) {
      names.push_back(td.name());
    }
    if (names.empty()) {
      return absl::InvalidArgumentError("cannot filter by an empty federates-with set");
    }
    sqlite_internal::AddSetMatch(where, "e.seq", "entry_federated_tds", "entry_seq", "trust_domain",
                                 names, filter.by_federates_with->match);
  }
  return where;
}

absl::StatusOr<std::optional<Stored<Entry>>> LoadEntryById(sqlite::Database& db,
                                                           std::string_view id) {
  ASSIGN_OR_RETURN(
      std::vector<Stored<Entry>> rows,
      sqlite_internal::LoadEntries(db, "SELECT seq FROM entries WHERE id = ?", {std::string(id)}));
  if (rows.empty()) return std::nullopt;
  return std::move(rows.front());
}

absl::Status WriteSelectors(sqlite::Database& db, int64_t seq, const spiffe::SelectorSet& set) {
  RETURN_IF_ERROR(db.Run("DELETE FROM entry_selectors WHERE entry_seq = ?", {seq}));
  ASSIGN_OR_RETURN(sqlite::Statement stmt,
                   db.Prepare("INSERT INTO entry_selectors (entry_seq, selector) VALUES (?, ?)"));
  for (const spiffe::Selector& selector : set) {
    stmt.Reset();
    RETURN_IF_ERROR(stmt.BindAll({seq, selector.ToString()}));
    RETURN_IF_ERROR(stmt.Run());
  }
  return absl::OkStatus();
}

absl::Status WriteDnsNames(sqlite::Database& db, int64_t seq,
                           const std::vector<std::string>& names) {
  RETURN_IF_ERROR(db.Run("DELETE FROM entry_dns_names WHERE entry_seq = ?", {seq}));
  ASSIGN_OR_RETURN(
      sqlite::Statement stmt,
      db.Prepare("INSERT INTO entry_dns_names (entry_seq, position, name) VALUES (?, ?, ?)"));
  for (size_t i = 0; i < names.size(); ++i) {
    stmt.Reset();
    RETURN_IF_ERROR(stmt.BindAll({seq, static_cast<int64_t>(i), names[i]}));
    RETURN_IF_ERROR(stmt.Run());
  }
  return absl::OkStatus();
}

absl::Status WriteFederatesWith(sqlite::Database& db, int64_t seq,
                                const std::vector<spiffe::TrustDomain>& tds) {
  RETURN_IF_ERROR(db.Run("DELETE FROM entry_federated_tds WHERE entry_seq = ?", {seq}));
  ASSIGN_OR_RETURN(sqlite::Statement stmt,
                   db.Prepare("INSERT INTO entry_federated_tds (entry_seq, trust_domain, position) "
                              "VALUES (?, ?, ?)"));
  for (size_t i = 0; i < tds.size(); ++i) {
    stmt.Reset();
    RETURN_IF_ERROR(stmt.BindAll({seq, tds[i].name(), static_cast<int64_t>(i)}));
    RETURN_IF_ERROR(stmt.Run());
  }
  return absl::OkStatus();
}

// Checks the federated bundles; the error for a missing one is SPIRE's, without our context.
absl::Status CheckBundles(sqlite::Database& db, const std::vector<spiffe::TrustDomain>& tds,
                          std::string_view context) {
  ASSIGN_OR_RETURN(std::optional<spiffe::TrustDomain> missing,
                   sqlite_internal::FindMissingBundle(db, tds), Annotate(_, context));
  if (missing.has_value()) return sqlite_internal::MissingBundleError(*missing);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> InsertEntry(sqlite::Database& db, const Entry& e) {
  RETURN_IF_ERROR(db.Run(
      "INSERT INTO entries (id, spiffe_id, parent_id, x509_svid_ttl, jwt_svid_ttl, admin, "
      "downstream, store_svid, hint, expires_at, revision_number, created_at, "
      "jwt_svid_include_jti, disable_x509_svid_prefetch) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      {e.id, e.spiffe_id.str(), e.parent_id.str(), int64_t{e.x509_svid_ttl},
       int64_t{e.jwt_svid_ttl}, static_cast<int64_t>(e.admin), static_cast<int64_t>(e.downstream),
       static_cast<int64_t>(e.store_svid), e.hint, e.expires_at, e.revision_number, e.created_at,
       static_cast<int64_t>(e.jwt_svid_include_jti),
       static_cast<int64_t>(e.disable_x509_svid_prefetch)}));
  const int64_t seq = db.LastInsertRowId();
  RETURN_IF_ERROR(WriteSelectors(db, seq, e.selectors));
  RETURN_IF_ERROR(WriteDnsNames(db, seq, e.dns_names));
  RETURN_IF_ERROR(WriteFederatesWith(db, seq, e.federates_with));
  return seq;
}

using TxKind = sqlite::Transaction::Kind;

}  // namespace

absl::StatusOr<CreateEntryResult> SqliteDataStore::CreateOrReturnEntry(const Entry& entry) {
  return std::move(CreateOrReturnEntries(std::span(&entry, 1)).front());
}

std::vector<absl::StatusOr<CreateEntryResult>> SqliteDataStore::CreateOrReturnEntries(
    std::span<const Entry> entries) {
  const int64_t now = sqlite_internal::UnixSeconds(clock_.Now());
  absl::MutexLock lock(&mu_);
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_, TxKind::kWrite);
  if (!tx.ok()) {
    return std::vector<absl::StatusOr<CreateEntryResult>>(
        entries.size(), Annotate(tx.status(), "datastore: create entry"));
  }
  std::vector<absl::StatusOr<CreateEntryResult>> results;
  results.reserve(entries.size());
  for (const Entry& entry : entries) {
    results.push_back(CreateOrReturnEntryInTransaction(entry, now));
  }
  if (absl::Status committed = tx->Commit(); !committed.ok()) {
    for (absl::StatusOr<CreateEntryResult>& result : results) {
      if (result.ok()) result = Annotate(committed, "datastore: create entry");
    }
  }
  return results;
}

absl::StatusOr<CreateEntryResult> SqliteDataStore::CreateOrReturnEntryInTransaction(
    const Entry& entry, int64_t now) {
  constexpr std::string_view kContext = "datastore: create entry";
  RETURN_IF_ERROR(ValidateEntry(entry));
  Entry stored = entry;
  stored.federates_with = Dedupe(entry.federates_with);
  stored.revision_number = 0;
  stored.created_at = now;
  if (stored.id.empty()) {
    ASSIGN_OR_RETURN(stored.id, NewUuidV4());
  }

  ASSIGN_OR_RETURN(sqlite::Savepoint savepoint, sqlite::Savepoint::Begin(db_),
                   Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::vector<Stored<Entry>> candidates,
                   sqlite_internal::LoadEntries(
                       db_, "SELECT seq FROM entries WHERE spiffe_id = ? AND parent_id = ?",
                       {entry.spiffe_id.str(), entry.parent_id.str()}),
                   Annotate(_, kContext));
  for (Stored<Entry>& candidate : candidates) {
    if (candidate.record.selectors == entry.selectors) {
      return CreateEntryResult{.entry = std::move(candidate.record), .created = false};
    }
  }
  RETURN_IF_ERROR(CheckBundles(db_, stored.federates_with, kContext));
  ASSIGN_OR_RETURN(int64_t taken,
                   db_.QueryInt("SELECT COUNT(*) FROM entries WHERE id = ?", {stored.id}),
                   Annotate(_, kContext));
  if (taken != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat(AsAbsl(kContext), ": an entry with id \"", stored.id, "\" already exists"));
  }
  RETURN_IF_ERROR(Annotate(InsertEntry(db_, stored).status(), kContext));
  RETURN_IF_ERROR(Annotate(savepoint.Release(), kContext));
  return CreateEntryResult{.entry = std::move(stored), .created = true};
}

absl::StatusOr<std::optional<Entry>> SqliteDataStore::FetchEntry(std::string_view id) {
  constexpr std::string_view kContext = "datastore: fetch entry";
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kRead), Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::optional<Stored<Entry>> row, LoadEntryById(db_, id), Annotate(_, kContext));
  if (!row.has_value()) return std::nullopt;
  return std::move(row->record);
}

absl::StatusOr<Entry> SqliteDataStore::UpdateEntry(const Entry& entry, const EntryMask& mask) {
  constexpr std::string_view kContext = "datastore: update entry";
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kWrite), Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::optional<Stored<Entry>> row, LoadEntryById(db_, entry.id),
                   Annotate(_, kContext));
  if (!row.has_value()) {
    return absl::NotFoundError(
        absl::StrCat(AsAbsl(kContext), ": entry \"", entry.id, "\" not found"));
  }
  const int64_t seq = row->seq;
  Entry updated = std::move(row->record);
  if (mask.spiffe_id) updated.spiffe_id = entry.spiffe_id;
  if (mask.parent_id) updated.parent_id = entry.parent_id;
  if (mask.selectors) updated.selectors = entry.selectors;
  if (mask.x509_svid_ttl) updated.x509_svid_ttl = entry.x509_svid_ttl;
  if (mask.jwt_svid_ttl) updated.jwt_svid_ttl = entry.jwt_svid_ttl;
  if (mask.dns_names) updated.dns_names = entry.dns_names;
  if (mask.federates_with) updated.federates_with = Dedupe(entry.federates_with);
  if (mask.admin) updated.admin = entry.admin;
  if (mask.downstream) updated.downstream = entry.downstream;
  if (mask.store_svid) updated.store_svid = entry.store_svid;
  if (mask.hint) updated.hint = entry.hint;
  if (mask.expires_at) updated.expires_at = entry.expires_at;
  if (mask.additional_attributes) {
    updated.jwt_svid_include_jti = entry.jwt_svid_include_jti;
    updated.disable_x509_svid_prefetch = entry.disable_x509_svid_prefetch;
  }
  updated.revision_number += 1;
  RETURN_IF_ERROR(ValidateEntry(updated));
  if (mask.federates_with) RETURN_IF_ERROR(CheckBundles(db_, updated.federates_with, kContext));

  absl::Status status = db_.Run(
      "UPDATE entries SET spiffe_id = ?, parent_id = ?, x509_svid_ttl = ?, jwt_svid_ttl = ?, "
      "admin = ?, downstream = ?, store_svid = ?, hint = ?, expires_at = ?, "
      "revision_number = ?, jwt_svid_include_jti = ?, disable_x509_svid_prefetch = ? "
      "WHERE seq = ?",
      {updated.spiffe_id.str(), updated.parent_id.str(), int64_t{updated.x509_svid_ttl},
       int64_t{updated.jwt_svid_ttl}, static_cast<int64_t>(updated.admin),
       static_cast<int64_t>(updated.downstream), static_cast<int64_t>(updated.store_svid),
       updated.hint, updated.expires_at, updated.revision_number,
       static_cast<int64_t>(updated.jwt_svid_include_jti),
       static_cast<int64_t>(updated.disable_x509_svid_prefetch), seq});
  if (status.ok() && mask.selectors) status = WriteSelectors(db_, seq, updated.selectors);
  if (status.ok() && mask.dns_names) status = WriteDnsNames(db_, seq, updated.dns_names);
  if (status.ok() && mask.federates_with) {
    status = WriteFederatesWith(db_, seq, updated.federates_with);
  }
  if (status.ok()) status = tx.Commit();
  RETURN_IF_ERROR(Annotate(status, kContext));
  return updated;
}

absl::StatusOr<Entry> SqliteDataStore::DeleteEntry(std::string_view id) {
  constexpr std::string_view kContext = "datastore: delete entry";
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kWrite), Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::optional<Stored<Entry>> row, LoadEntryById(db_, id), Annotate(_, kContext));
  if (!row.has_value()) {
    return absl::NotFoundError(
        absl::StrCat(AsAbsl(kContext), ": entry \"", AsAbsl(id), "\" not found"));
  }
  // The child rows go with it (ON DELETE CASCADE).
  RETURN_IF_ERROR(Annotate(db_.Run("DELETE FROM entries WHERE seq = ?", {row->seq}), kContext));
  RETURN_IF_ERROR(Annotate(tx.Commit(), kContext));
  return std::move(row->record);
}

absl::StatusOr<Page<Entry>> SqliteDataStore::ListEntries(const EntryFilter& filter,
                                                         const PageRequest& page) {
  constexpr std::string_view kContext = "datastore: list entries";
  ASSIGN_OR_RETURN(int64_t start, sqlite_internal::PageStart(page), Annotate(_, kContext));
  ASSIGN_OR_RETURN(Where where, EntryWhere(filter), Annotate(_, kContext));
  where.Add("e.seq > ?", {start});
  std::vector<sqlite::Value> params = where.params;
  params.emplace_back(sqlite_internal::PageLimit(page));
  const std::string seq_query =
      absl::StrCat("SELECT e.seq FROM entries e", where.Sql(), " ORDER BY e.seq LIMIT ?");

  absl::MutexLock lock(&mu_);
  // One read transaction: the entry rows and their child rows come from the same snapshot.
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kRead), Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::vector<Stored<Entry>> rows,
                   sqlite_internal::LoadEntries(db_, seq_query, params), Annotate(_, kContext));
  RETURN_IF_ERROR(Annotate(tx.Commit(), kContext));
  Page<Entry> result;
  std::optional<int64_t> last;
  if (!rows.empty()) last = rows.back().seq;
  result.next_token = sqlite_internal::NextPageToken(page, last);
  result.items.reserve(rows.size());
  for (Stored<Entry>& row : rows) result.items.push_back(std::move(row.record));
  return result;
}

absl::StatusOr<int64_t> SqliteDataStore::CountEntries(const EntryFilter& filter) {
  constexpr std::string_view kContext = "datastore: count entries";
  ASSIGN_OR_RETURN(Where where, EntryWhere(filter), Annotate(_, kContext));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(
      int64_t count,
      db_.QueryInt(absl::StrCat("SELECT COUNT(*) FROM entries e", where.Sql()), where.params),
      Annotate(_, kContext));
  return count;
}

absl::StatusOr<std::vector<Entry>> SqliteDataStore::ListAllEntries() {
  constexpr std::string_view kContext = "datastore: list all entries";
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kRead), Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::vector<Stored<Entry>> rows, sqlite_internal::LoadEntries(db_, "", {}),
                   Annotate(_, kContext));
  RETURN_IF_ERROR(Annotate(tx.Commit(), kContext));
  std::vector<Entry> entries;
  entries.reserve(rows.size());
  for (Stored<Entry>& row : rows) entries.push_back(std::move(row.record));
  return entries;
}

}  // namespace tessera::server
