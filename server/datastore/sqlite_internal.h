// Internals shared by the SqliteDataStore source files: WHERE-clause building, page tokens,
// decoding stored values, and the record loaders that several operations reuse. Every function
// here runs on the caller's connection inside the caller's transaction; none locks anything
// (SqliteDataStore holds its mutex around them). Not part of the datastore's API.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "server/datastore/datastore.h"
#include "server/datastore/sqlite.h"
#include "server/datastore/types.h"
#include "spiffe/id.h"
#include "spiffe/selector.h"

namespace tessera::server::sqlite_internal {

// Conditions joined with AND, and the values their '?' placeholders take, in order. Only SQL
// written in this code goes into `conditions`; values always travel as bound parameters.
struct Where {
  std::vector<std::string> conditions;
  std::vector<sqlite::Value> params;

  void Add(std::string condition, std::vector<sqlite::Value> values = {});
  // " WHERE a AND b", or "" when there is no condition.
  std::string Sql() const;
};

// Adds "<key_expr> belongs to an owner whose set in <table>(<owner_column>, <value_column>)
// compares with `values` as `match` says". `values` must be non-empty and duplicate-free.
void AddSetMatch(Where& where, std::string_view key_expr, std::string_view table,
                 std::string_view owner_column, std::string_view value_column,
                 const std::vector<std::string>& values, MatchBehavior match);

// The row id after which a page starts: 0 for "", else the decimal token (InvalidArgument for
// anything else). Also checks page_size ≥ 0.
absl::StatusOr<int64_t> PageStart(const PageRequest& page);
// SQLite's LIMIT for a page: -1 (no limit) for page_size 0.
int64_t PageLimit(const PageRequest& page);
// The next token for a page whose last row id is `last_seq` (nullopt: the page was empty).
std::string NextPageToken(const PageRequest& page, std::optional<int64_t> last_seq);

// Decoders for stored text; a failure means the database was altered behind our back.
absl::StatusOr<spiffe::SpiffeId> StoredId(std::string_view text);
absl::StatusOr<spiffe::Selector> StoredSelector(std::string_view text);
absl::StatusOr<spiffe::TrustDomain> StoredTrustDomain(std::string_view text);

// Unix seconds.
int64_t UnixSeconds(const Clock::TimePoint& t);

template <typename T>
struct Stored {
  int64_t seq;  // row id: creation order and page cursor
  T record;
};

// Entries whose seq is returned by `seq_query` (SQL selecting one column of entry seqs, using
// `params`), in seq order, with selectors, DNS names and federated trust domains. An empty
// `seq_query` loads every entry.
absl::StatusOr<std::vector<Stored<Entry>>> LoadEntries(sqlite::Database& db,
                                                       std::string_view seq_query,
                                                       const std::vector<sqlite::Value>& params);

// The first of `trust_domains` that has no stored bundle, if any.
absl::StatusOr<std::optional<spiffe::TrustDomain>> FindMissingBundle(
    sqlite::Database& db, const std::vector<spiffe::TrustDomain>& trust_domains);
// The error for an entry that federates with a trust domain without a bundle: SPIRE's text and
// code (Internal), so the API layer passes it on unchanged.
absl::Status MissingBundleError(const spiffe::TrustDomain& td);

// Bumps the revision of entry `seq`, for changes made to it other than by UpdateEntry.
absl::Status BumpEntryRevision(sqlite::Database& db, int64_t seq);

// The SQL that migration `version` runs (empty for an unknown version), so that tests can build a
// database exactly as an older build left it.
std::string_view MigrationSql(int version);

}  // namespace tessera::server::sqlite_internal
