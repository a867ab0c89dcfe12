// SqliteDataStore: trust bundles and the CA journal.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/datastore/sqlite_datastore.h"
#include "server/datastore/sqlite_internal.h"

namespace tessera::server {
namespace {

using sqlite_internal::Stored;
using TxKind = sqlite::Transaction::Kind;

// A copy of `bundle` whose trust_domain is the bare name.
absl::StatusOr<Bundle> Normalize(const Bundle& bundle) {
  absl::StatusOr<spiffe::TrustDomain> td = spiffe::TrustDomain::FromIdOrName(bundle.trust_domain());
  if (!td.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid bundle trust domain: ", td.status().message()));
  }
  Bundle out = bundle;
  out.set_trust_domain(td->name());
  return out;
}

absl::StatusOr<sqlite::Value> Serialize(const Bundle& bundle) {
  std::string bytes;
  if (!bundle.SerializeToString(&bytes)) return absl::InternalError("cannot serialize bundle");
  return sqlite::Blob{std::move(bytes)};
}

absl::StatusOr<Bundle> Parse(const std::string& bytes) {
  Bundle bundle;
  if (!bundle.ParseFromString(bytes)) return absl::DataLossError("stored bundle does not parse");
  return bundle;
}

absl::StatusOr<std::optional<Stored<Bundle>>> LoadBundle(sqlite::Database& db,
                                                         const std::string& td_name) {
  ASSIGN_OR_RETURN(sqlite::Statement stmt,
                   db.Prepare("SELECT seq, data FROM bundles WHERE trust_domain = ?"));
  RETURN_IF_ERROR(stmt.BindText(1, td_name));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::nullopt;
  ASSIGN_OR_RETURN(Bundle bundle, Parse(stmt.ColumnBlob(1)));
  return Stored<Bundle>{stmt.ColumnInt(0), std::move(bundle)};
}

absl::Status WriteBundle(sqlite::Database& db, const Bundle& bundle) {
  ASSIGN_OR_RETURN(sqlite::Value data, Serialize(bundle));
  return db.Run(
      "INSERT INTO bundles (trust_domain, data) VALUES (?, ?) "
      "ON CONFLICT (trust_domain) DO UPDATE SET data = excluded.data",
      {bundle.trust_domain(), std::move(data)});
}

absl::Status NotFound(std::string_view context) {
  return absl::NotFoundError(absl::StrCat(AsAbsl(context), ": bundle not found"));
}

// Appends the keys of `from` that `to` lacks (same key_id and public key); true if any.
template <typename Keys>
bool MergeKeys(const Keys& from, Keys& to) {
  bool changed = false;
  for (const auto& key : from) {
    bool present = false;
    for (const auto& have : to) {
      if (have.key_id() == key.key_id() && have.public_key() == key.public_key()) {
        present = true;
        break;
      }
    }
    if (!present) {
      *to.Add() = key;
      changed = true;
    }
  }
  return changed;
}

}  // namespace

absl::StatusOr<Bundle> SqliteDataStore::CreateBundle(const Bundle& bundle) {
  constexpr std::string_view kContext = "datastore: create bundle";
  ASSIGN_OR_RETURN(Bundle normalized, Normalize(bundle), Annotate(_, kContext));
  ASSIGN_OR_RETURN(sqlite::Value data, Serialize(normalized), Annotate(_, kContext));
  absl::MutexLock lock(&mu_);
  absl::Status status = db_.Run("INSERT INTO bundles (trust_domain, data) VALUES (?, ?)",
                                {normalized.trust_domain(), std::move(data)});
  if (status.code() == absl::StatusCode::kAlreadyExists) {
    return absl::AlreadyExistsError(absl::StrCat(AsAbsl(kContext), ": bundle already exists"));
  }
  RETURN_IF_ERROR(Annotate(status, kContext));
  return normalized;
}

absl::StatusOr<std::optional<Bundle>> SqliteDataStore::FetchBundle(const spiffe::TrustDomain& td) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::optional<Stored<Bundle>> row, LoadBundle(db_, td.name()),
                   Annotate(_, "datastore: fetch bundle"));
  if (!row.has_value()) return std::nullopt;
  return std::move(row->record);
}

absl::StatusOr<Bundle> SqliteDataStore::UpdateBundle(const Bundle& bundle, const BundleMask& mask) {
  constexpr std::string_view kContext = "datastore: update bundle";
  ASSIGN_OR_RETURN(Bundle normalized, Normalize(bundle), Annotate(_, kContext));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kWrite), Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::optional<Stored<Bundle>> row, LoadBundle(db_, normalized.trust_domain()),
                   Annotate(_, kContext));
  if (!row.has_value()) return NotFound(kContext);
  Bundle updated = std::move(row->record);
  if (mask.x509_authorities()) *updated.mutable_x509_authorities() = normalized.x509_authorities();
  if (mask.jwt_authorities()) *updated.mutable_jwt_authorities() = normalized.jwt_authorities();
  if (mask.wit_authorities()) *updated.mutable_wit_authorities() = normalized.wit_authorities();
  if (mask.refresh_hint()) updated.set_refresh_hint(normalized.refresh_hint());
  if (mask.sequence_number()) updated.set_sequence_number(normalized.sequence_number());
  absl::Status status = WriteBundle(db_, updated);
  if (status.ok()) status = tx.Commit();
  RETURN_IF_ERROR(Annotate(status, kContext));
  return updated;
}

absl::StatusOr<Bundle> SqliteDataStore::SetBundle(const Bundle& bundle) {
  constexpr std::string_view kContext = "datastore: set bundle";
  ASSIGN_OR_RETURN(Bundle normalized, Normalize(bundle), Annotate(_, kContext));
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Annotate(WriteBundle(db_, normalized), kContext));
  return normalized;
}

absl::StatusOr<Bundle> SqliteDataStore::AppendBundle(const Bundle& bundle) {
  constexpr std::string_view kContext = "datastore: append bundle";
  ASSIGN_OR_RETURN(Bundle normalized, Normalize(bundle), Annotate(_, kContext));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kWrite), Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::optional<Stored<Bundle>> row, LoadBundle(db_, normalized.trust_domain()),
                   Annotate(_, kContext));
  Bundle result;
  if (!row.has_value()) {
    result = std::move(normalized);
  } else {
    result = std::move(row->record);
    bool changed = false;
    for (const auto& cert : normalized.x509_authorities()) {
      bool present = false;
      for (const auto& have : result.x509_authorities()) present |= have.asn1() == cert.asn1();
      if (!present) {
        *result.add_x509_authorities() = cert;
        changed = true;
      }
    }
    changed |= MergeKeys(normalized.jwt_authorities(), *result.mutable_jwt_authorities());
    changed |= MergeKeys(normalized.wit_authorities(), *result.mutable_wit_authorities());
    if (!changed) return result;  // nothing to write; the transaction rolls back harmlessly
    result.set_sequence_number(result.sequence_number() + 1);
  }
  absl::Status status = WriteBundle(db_, result);
  if (status.ok()) status = tx.Commit();
  RETURN_IF_ERROR(Annotate(status, kContext));
  return result;
}

absl::StatusOr<DeleteBundleResult> SqliteDataStore::DeleteBundle(const spiffe::TrustDomain& td,
                                                                 BundleDeleteMode mode) {
  constexpr std::string_view kContext = "datastore: delete bundle";
  constexpr std::string_view kFederated =
      "SELECT entry_seq FROM entry_federated_tds WHERE trust_domain = ?";
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kWrite), Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::optional<Stored<Bundle>> bundle, LoadBundle(db_, td.name()),
                   Annotate(_, kContext));
  if (!bundle.has_value()) return NotFound(kContext);
  ASSIGN_OR_RETURN(std::vector<Stored<Entry>> entries,
                   sqlite_internal::LoadEntries(db_, kFederated, {td.name()}),
                   Annotate(_, kContext));

  DeleteBundleResult result;
  absl::Status status;
  if (!entries.empty()) {
    switch (mode) {
      case BundleDeleteMode::kRestrict:
        return absl::FailedPreconditionError(absl::StrCat(AsAbsl(kContext),
                                                          ": cannot delete bundle; federated with ",
                                                          entries.size(), " registration entries"));
      case BundleDeleteMode::kDelete:
        for (Stored<Entry>& entry : entries) {
          if (status.ok()) status = db_.Run("DELETE FROM entries WHERE seq = ?", {entry.seq});
          result.affected_entries.push_back(std::move(entry.record));
        }
        break;
      case BundleDeleteMode::kDissociate:
        status = db_.Run("DELETE FROM entry_federated_tds WHERE trust_domain = ?", {td.name()});
        for (Stored<Entry>& entry : entries) {
          // Agents notice changed entries by their revision.
          if (status.ok()) status = sqlite_internal::BumpEntryRevision(db_, entry.seq);
          Entry& e = entry.record;
          std::erase(e.federates_with, td);
          e.revision_number += 1;
          result.affected_entries.push_back(std::move(e));
        }
        break;
    }
  }
  if (status.ok()) status = db_.Run("DELETE FROM bundles WHERE seq = ?", {bundle->seq});
  if (status.ok()) status = tx.Commit();
  RETURN_IF_ERROR(Annotate(status, kContext));
  return result;
}

absl::StatusOr<Page<Bundle>> SqliteDataStore::ListBundles(const PageRequest& page) {
  constexpr std::string_view kContext = "datastore: list bundles";
  ASSIGN_OR_RETURN(int64_t start, sqlite_internal::PageStart(page), Annotate(_, kContext));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(sqlite::Statement stmt,
                   db_.Prepare("SELECT seq, data FROM bundles WHERE seq > ? ORDER BY seq LIMIT ?"),
                   Annotate(_, kContext));
  RETURN_IF_ERROR(Annotate(stmt.BindAll({start, sqlite_internal::PageLimit(page)}), kContext));
  Page<Bundle> result;
  std::optional<int64_t> last;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step(), Annotate(_, kContext));
    if (!row) break;
    last = stmt.ColumnInt(0);
    ASSIGN_OR_RETURN(Bundle bundle, Parse(stmt.ColumnBlob(1)), Annotate(_, kContext));
    result.items.push_back(std::move(bundle));
  }
  result.next_token = sqlite_internal::NextPageToken(page, last);
  return result;
}

absl::StatusOr<int64_t> SqliteDataStore::CountBundles() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(int64_t count, db_.QueryInt("SELECT COUNT(*) FROM bundles"),
                   Annotate(_, "datastore: count bundles"));
  return count;
}

// --- CA journal ---

absl::Status SqliteDataStore::SetCaJournal(std::string_view name, std::string_view data) {
  absl::MutexLock lock(&mu_);
  return Annotate(db_.Run("INSERT INTO ca_journal (name, data) VALUES (?, ?) "
                          "ON CONFLICT (name) DO UPDATE SET data = excluded.data",
                          {std::string(name), sqlite::Blob{std::string(data)}}),
                  "datastore: set ca journal");
}

absl::StatusOr<std::optional<std::string>> SqliteDataStore::FetchCaJournal(std::string_view name) {
  constexpr std::string_view kContext = "datastore: fetch ca journal";
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(sqlite::Statement stmt,
                   db_.Prepare("SELECT data FROM ca_journal WHERE name = ?"),
                   Annotate(_, kContext));
  RETURN_IF_ERROR(Annotate(stmt.BindText(1, name), kContext));
  ASSIGN_OR_RETURN(bool row, stmt.Step(), Annotate(_, kContext));
  if (!row) return std::nullopt;
  return stmt.ColumnBlob(0);
}

}  // namespace tessera::server
