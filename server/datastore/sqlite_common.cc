// Helpers shared by the SqliteDataStore source files.
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/datastore/sqlite_internal.h"

namespace tessera::server::sqlite_internal {

void Where::Add(std::string condition, std::vector<sqlite::Value> values) {
  conditions.push_back(std::move(condition));
  for (sqlite::Value& v : values) params.push_back(std::move(v));
}

std::string Where::Sql() const {
  if (conditions.empty()) return "";
  return absl::StrCat(" WHERE ", absl::StrJoin(conditions, " AND "));
}

void AddSetMatch(Where& where, std::string_view key_expr, std::string_view table,
                 std::string_view owner_column, std::string_view value_column,
                 const std::vector<std::string>& values, MatchBehavior match) {
  std::vector<sqlite::Value> params(values.begin(), values.end());
  std::string placeholders;
  for (size_t i = 0; i < values.size(); ++i) absl::StrAppend(&placeholders, i ? ",?" : "?");
  const auto key = AsAbsl(key_expr), t = AsAbsl(table), owner = AsAbsl(owner_column),
             value = AsAbsl(value_column);
  const auto count = static_cast<int64_t>(values.size());
  std::string sql;
  switch (match) {
    case MatchBehavior::kAny:
      sql = absl::StrCat(key, " IN (SELECT ", owner, " FROM ", t, " WHERE ", value, " IN (",
                         placeholders, "))");
      break;
    case MatchBehavior::kSuperset:
      // Rows are unique per (owner, value): an owner holding all of R has exactly |R| hits.
      sql = absl::StrCat(key, " IN (SELECT ", owner, " FROM ", t, " WHERE ", value, " IN (",
                         placeholders, ") GROUP BY ", owner, " HAVING COUNT(*) = ?)");
      params.emplace_back(count);
      break;
    case MatchBehavior::kSubset:
    case MatchBehavior::kExact: {
      // Every row of the owner is a hit: hits equal the owner's set size. Owners without rows
      // never appear, so the subset is non-empty.
      sql = absl::StrCat(key, " IN (SELECT m.", owner, " FROM ", t, " m WHERE m.", value, " IN (",
                         placeholders, ") GROUP BY m.", owner,
                         " HAVING COUNT(*) = (SELECT COUNT(*) FROM ", t, " a WHERE a.", owner,
                         " = m.", owner, ")");
      if (match == MatchBehavior::kExact) {
        absl::StrAppend(&sql, " AND COUNT(*) = ?");
        params.emplace_back(count);
      }
      absl::StrAppend(&sql, ")");
      break;
    }
  }
  where.Add(std::move(sql), std::move(params));
}

absl::StatusOr<int64_t> PageStart(const PageRequest& page) {
  if (page.page_size < 0) return absl::InvalidArgumentError("page size cannot be negative");
  if (page.token.empty()) return 0;
  // Our tokens are positive row ids printed in decimal; refuse anything else rather than guess.
  // 18 digits always fit in an int64_t.
  const absl::Status invalid = absl::InvalidArgumentError("invalid page token");
  if (page.token.size() > 18 || page.token[0] == '0') return invalid;
  int64_t value = 0;
  for (char c : page.token) {
    if (c < '0' || c > '9') return invalid;
    value = value * 10 + (c - '0');
  }
  return value;
}

int64_t PageLimit(const PageRequest& page) { return page.page_size > 0 ? page.page_size : -1; }

std::string NextPageToken(const PageRequest& page, std::optional<int64_t> last_seq) {
  if (page.page_size == 0 || !last_seq.has_value()) return "";
  return absl::StrCat(*last_seq);
}

absl::StatusOr<spiffe::SpiffeId> StoredId(std::string_view text) {
  absl::StatusOr<spiffe::SpiffeId> id = spiffe::SpiffeId::Parse(text);
  if (!id.ok())
    return absl::DataLossError(absl::StrCat("stored SPIFFE ID: ", id.status().message()));
  return id;
}

absl::StatusOr<spiffe::Selector> StoredSelector(std::string_view text) {
  absl::StatusOr<spiffe::Selector> selector = spiffe::Selector::Parse(text);
  if (!selector.ok()) {
    return absl::DataLossError(absl::StrCat("stored selector: ", selector.status().message()));
  }
  return selector;
}

absl::StatusOr<spiffe::TrustDomain> StoredTrustDomain(std::string_view text) {
  absl::StatusOr<spiffe::TrustDomain> td = spiffe::TrustDomain::Parse(text);
  if (!td.ok()) {
    return absl::DataLossError(absl::StrCat("stored trust domain: ", td.status().message()));
  }
  return td;
}

int64_t UnixSeconds(const Clock::TimePoint& t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace tessera::server::sqlite_internal
