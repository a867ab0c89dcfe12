// SqliteDataStore: attested nodes, node selectors and join tokens.
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/datastore/sqlite_datastore.h"
#include "server/datastore/sqlite_internal.h"

namespace tessera::server {
namespace {

using sqlite_internal::Stored;
using sqlite_internal::Where;
using TxKind = sqlite::Transaction::Kind;

// Nodes whose seq is returned by `seq_query` (empty: all), in seq order, with their selectors.
absl::StatusOr<std::vector<Stored<AttestedNode>>> LoadNodes(
    sqlite::Database& db, std::string_view seq_query, const std::vector<sqlite::Value>& params) {
  const std::string main_where =
      seq_query.empty() ? "" : absl::StrCat(" WHERE seq IN (", AsAbsl(seq_query), ")");
  std::vector<Stored<AttestedNode>> out;
  absl::flat_hash_map<std::string, size_t> index;
  {
    ASSIGN_OR_RETURN(sqlite::Statement stmt,
                     db.Prepare(absl::StrCat(
                         "SELECT seq, spiffe_id, attestation_type, cert_serial, cert_not_after, "
                         "new_cert_serial, new_cert_not_after, can_reattest, agent_version "
                         "FROM attested_nodes",
                         main_where, " ORDER BY seq")));
    RETURN_IF_ERROR(stmt.BindAll(params));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ASSIGN_OR_RETURN(spiffe::SpiffeId id, sqlite_internal::StoredId(stmt.ColumnText(1)));
      index[id.str()] = out.size();
      out.push_back({stmt.ColumnInt(0), AttestedNode{.id = std::move(id),
                                                     .attestation_type = stmt.ColumnText(2),
                                                     .cert_serial = stmt.ColumnText(3),
                                                     .cert_not_after = stmt.ColumnInt(4),
                                                     .new_cert_serial = stmt.ColumnText(5),
                                                     .new_cert_not_after = stmt.ColumnInt(6),
                                                     .can_reattest = stmt.ColumnBool(7),
                                                     .agent_version = stmt.ColumnText(8),
                                                     .selectors = {}}});
    }
  }
  if (out.empty()) return out;

  const std::string selector_where =
      seq_query.empty()
          ? ""
          : absl::StrCat(" WHERE spiffe_id IN (SELECT spiffe_id FROM attested_nodes WHERE seq IN (",
                         AsAbsl(seq_query), "))");
  ASSIGN_OR_RETURN(
      sqlite::Statement stmt,
      db.Prepare(absl::StrCat("SELECT spiffe_id, selector FROM node_selectors", selector_where)));
  RETURN_IF_ERROR(stmt.BindAll(params));
  std::vector<std::vector<spiffe::Selector>> selectors(out.size());
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    auto it = index.find(stmt.ColumnText(0));
    if (it == index.end()) continue;  // selectors stored ahead of their node
    ASSIGN_OR_RETURN(spiffe::Selector selector,
                     sqlite_internal::StoredSelector(stmt.ColumnText(1)));
    selectors[it->second].push_back(std::move(selector));
  }
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].record.selectors = spiffe::SelectorSet(std::move(selectors[i]));
  }
  return out;
}

absl::StatusOr<std::optional<Stored<AttestedNode>>> LoadNode(sqlite::Database& db,
                                                             const spiffe::SpiffeId& id) {
  ASSIGN_OR_RETURN(std::vector<Stored<AttestedNode>> rows,
                   LoadNodes(db, "SELECT seq FROM attested_nodes WHERE spiffe_id = ?", {id.str()}));
  if (rows.empty()) return std::nullopt;
  return std::move(rows.front());
}

absl::Status WriteNodeSelectors(sqlite::Database& db, const spiffe::SpiffeId& id,
                                const spiffe::SelectorSet& set) {
  RETURN_IF_ERROR(db.Run("DELETE FROM node_selectors WHERE spiffe_id = ?", {id.str()}));
  ASSIGN_OR_RETURN(sqlite::Statement stmt,
                   db.Prepare("INSERT INTO node_selectors (spiffe_id, selector) VALUES (?, ?)"));
  for (const spiffe::Selector& selector : set) {
    stmt.Reset();
    RETURN_IF_ERROR(stmt.BindAll({id.str(), selector.ToString()}));
    RETURN_IF_ERROR(stmt.Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<Where> NodeWhere(const NodeFilter& filter) {
  Where where;
  if (filter.by_attestation_type) {
    where.Add("n.attestation_type = ?", {*filter.by_attestation_type});
  }
  if (filter.by_banned) {
    where.Add(*filter.by_banned ? "n.cert_serial = ''" : "n.cert_serial <> ''");
  }
  if (filter.by_can_reattest) {
    where.Add("n.can_reattest = ?", {static_cast<int64_t>(*filter.by_can_reattest)});
  }
  if (filter.by_expires_before) where.Add("n.cert_not_after < ?", {*filter.by_expires_before});
  if (filter.by_selector_match) {
    if (filter.by_selector_match->selectors.empty()) {
      return absl::InvalidArgumentError("cannot filter by an empty selector set");
    }
    sqlite_internal::AddSetMatch(where, "n.spiffe_id", "node_selectors", "spiffe_id", "selector",
                                 filter.by_selector_match->selectors.Strings(),
                                 filter.by_selector_match->match);
  }
  return where;
}

}  // namespace

absl::StatusOr<AttestedNode> SqliteDataStore::CreateAttestedNode(const AttestedNode& node) {
  constexpr std::string_view kContext = "datastore: create attested node";
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kWrite), Annotate(_, kContext));
  absl::Status status = db_.Run(
      "INSERT INTO attested_nodes (spiffe_id, attestation_type, cert_serial, cert_not_after, "
      "new_cert_serial, new_cert_not_after, can_reattest, agent_version) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      {node.id.str(), node.attestation_type, node.cert_serial, node.cert_not_after,
       node.new_cert_serial, node.new_cert_not_after, static_cast<int64_t>(node.can_reattest),
       node.agent_version});
  if (status.code() == absl::StatusCode::kAlreadyExists) {
    return absl::AlreadyExistsError(
        absl::StrCat(AsAbsl(kContext), ": node \"", node.id.str(), "\" already exists"));
  }
  if (status.ok()) status = WriteNodeSelectors(db_, node.id, node.selectors);
  if (status.ok()) status = tx.Commit();
  RETURN_IF_ERROR(Annotate(status, kContext));
  return node;
}

absl::StatusOr<std::optional<AttestedNode>> SqliteDataStore::FetchAttestedNode(
    const spiffe::SpiffeId& id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kRead),
                   Annotate(_, "datastore: fetch attested node"));
  ASSIGN_OR_RETURN(std::optional<Stored<AttestedNode>> row, LoadNode(db_, id),
                   Annotate(_, "datastore: fetch attested node"));
  if (!row.has_value()) return std::nullopt;
  return std::move(row->record);
}

absl::StatusOr<AttestedNode> SqliteDataStore::UpdateAttestedNode(const AttestedNode& node,
                                                                 const NodeMask& mask) {
  constexpr std::string_view kContext = "datastore: update attested node";
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kWrite), Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::optional<Stored<AttestedNode>> row, LoadNode(db_, node.id),
                   Annotate(_, kContext));
  if (!row.has_value()) {
    return absl::NotFoundError(
        absl::StrCat(AsAbsl(kContext), ": node \"", node.id.str(), "\" not found"));
  }
  AttestedNode updated = std::move(row->record);
  if (mask.attestation_type) updated.attestation_type = node.attestation_type;
  if (mask.cert_serial) updated.cert_serial = node.cert_serial;
  if (mask.cert_not_after) updated.cert_not_after = node.cert_not_after;
  if (mask.new_cert_serial) updated.new_cert_serial = node.new_cert_serial;
  if (mask.new_cert_not_after) updated.new_cert_not_after = node.new_cert_not_after;
  if (mask.can_reattest) updated.can_reattest = node.can_reattest;
  if (mask.agent_version) updated.agent_version = node.agent_version;
  if (mask.selectors) updated.selectors = node.selectors;
  absl::Status status = db_.Run(
      "UPDATE attested_nodes SET attestation_type = ?, cert_serial = ?, cert_not_after = ?, "
      "new_cert_serial = ?, new_cert_not_after = ?, can_reattest = ?, agent_version = ? "
      "WHERE seq = ?",
      {updated.attestation_type, updated.cert_serial, updated.cert_not_after,
       updated.new_cert_serial, updated.new_cert_not_after,
       static_cast<int64_t>(updated.can_reattest), updated.agent_version, row->seq});
  if (status.ok() && mask.selectors) {
    status = WriteNodeSelectors(db_, updated.id, updated.selectors);
  }
  if (status.ok()) status = tx.Commit();
  RETURN_IF_ERROR(Annotate(status, kContext));
  return updated;
}

absl::StatusOr<AttestedNode> SqliteDataStore::DeleteAttestedNode(const spiffe::SpiffeId& id) {
  constexpr std::string_view kContext = "datastore: delete attested node";
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kWrite), Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::optional<Stored<AttestedNode>> row, LoadNode(db_, id),
                   Annotate(_, kContext));
  if (!row.has_value()) {
    return absl::NotFoundError(
        absl::StrCat(AsAbsl(kContext), ": node \"", id.str(), "\" not found"));
  }
  absl::Status status = db_.Run("DELETE FROM attested_nodes WHERE seq = ?", {row->seq});
  if (status.ok()) status = db_.Run("DELETE FROM node_selectors WHERE spiffe_id = ?", {id.str()});
  if (status.ok()) status = tx.Commit();
  RETURN_IF_ERROR(Annotate(status, kContext));
  return std::move(row->record);
}

absl::StatusOr<Page<AttestedNode>> SqliteDataStore::ListAttestedNodes(const NodeFilter& filter,
                                                                      const PageRequest& page) {
  constexpr std::string_view kContext = "datastore: list attested nodes";
  ASSIGN_OR_RETURN(int64_t start, sqlite_internal::PageStart(page), Annotate(_, kContext));
  ASSIGN_OR_RETURN(Where where, NodeWhere(filter), Annotate(_, kContext));
  where.Add("n.seq > ?", {start});
  std::vector<sqlite::Value> params = where.params;
  params.emplace_back(sqlite_internal::PageLimit(page));
  const std::string seq_query =
      absl::StrCat("SELECT n.seq FROM attested_nodes n", where.Sql(), " ORDER BY n.seq LIMIT ?");

  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kRead), Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::vector<Stored<AttestedNode>> rows, LoadNodes(db_, seq_query, params),
                   Annotate(_, kContext));
  RETURN_IF_ERROR(Annotate(tx.Commit(), kContext));
  Page<AttestedNode> result;
  std::optional<int64_t> last;
  if (!rows.empty()) last = rows.back().seq;
  result.next_token = sqlite_internal::NextPageToken(page, last);
  for (Stored<AttestedNode>& row : rows) result.items.push_back(std::move(row.record));
  return result;
}

absl::StatusOr<int64_t> SqliteDataStore::CountAttestedNodes(const NodeFilter& filter) {
  constexpr std::string_view kContext = "datastore: count attested nodes";
  ASSIGN_OR_RETURN(Where where, NodeWhere(filter), Annotate(_, kContext));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(int64_t count,
                   db_.QueryInt(absl::StrCat("SELECT COUNT(*) FROM attested_nodes n", where.Sql()),
                                where.params),
                   Annotate(_, kContext));
  return count;
}

absl::Status SqliteDataStore::SetNodeSelectors(const spiffe::SpiffeId& id,
                                               const spiffe::SelectorSet& selectors) {
  constexpr std::string_view kContext = "datastore: set node selectors";
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kWrite), Annotate(_, kContext));
  absl::Status status = WriteNodeSelectors(db_, id, selectors);
  if (status.ok()) status = tx.Commit();
  return Annotate(status, kContext);
}

absl::StatusOr<spiffe::SelectorSet> SqliteDataStore::FetchNodeSelectors(
    const spiffe::SpiffeId& id) {
  constexpr std::string_view kContext = "datastore: fetch node selectors";
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(sqlite::Statement stmt,
                   db_.Prepare("SELECT selector FROM node_selectors WHERE spiffe_id = ?"),
                   Annotate(_, kContext));
  RETURN_IF_ERROR(Annotate(stmt.BindText(1, id.str()), kContext));
  std::vector<spiffe::Selector> selectors;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step(), Annotate(_, kContext));
    if (!row) break;
    ASSIGN_OR_RETURN(spiffe::Selector selector, sqlite_internal::StoredSelector(stmt.ColumnText(0)),
                     Annotate(_, kContext));
    selectors.push_back(std::move(selector));
  }
  return spiffe::SelectorSet(std::move(selectors));
}

absl::StatusOr<std::vector<AttestedNode>> SqliteDataStore::ListAllNodes() {
  constexpr std::string_view kContext = "datastore: list all nodes";
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_, TxKind::kRead), Annotate(_, kContext));
  ASSIGN_OR_RETURN(std::vector<Stored<AttestedNode>> rows, LoadNodes(db_, "", {}),
                   Annotate(_, kContext));
  RETURN_IF_ERROR(Annotate(tx.Commit(), kContext));
  std::vector<AttestedNode> nodes;
  nodes.reserve(rows.size());
  for (Stored<AttestedNode>& row : rows) nodes.push_back(std::move(row.record));
  return nodes;
}

// --- Join tokens ---

absl::Status SqliteDataStore::CreateJoinToken(const JoinToken& token) {
  constexpr std::string_view kContext = "datastore: create join token";
  if (token.token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(kContext), ": token is empty"));
  }
  absl::MutexLock lock(&mu_);
  absl::Status status = db_.Run("INSERT INTO join_tokens (token, expires_at) VALUES (?, ?)",
                                {token.token, token.expires_at});
  if (status.code() == absl::StatusCode::kAlreadyExists) {
    return absl::AlreadyExistsError(absl::StrCat(AsAbsl(kContext), ": token already exists"));
  }
  return Annotate(status, kContext);
}

absl::StatusOr<JoinToken> SqliteDataStore::TakeJoinToken(std::string_view token) {
  constexpr std::string_view kContext = "datastore: take join token";
  absl::MutexLock lock(&mu_);
  // One statement deletes and returns: no second caller can take the same token.
  ASSIGN_OR_RETURN(
      sqlite::Statement stmt,
      db_.Prepare("DELETE FROM join_tokens WHERE token = ? RETURNING token, expires_at"),
      Annotate(_, kContext));
  RETURN_IF_ERROR(Annotate(stmt.BindText(1, token), kContext));
  ASSIGN_OR_RETURN(bool row, stmt.Step(), Annotate(_, kContext));
  if (!row) {
    return absl::NotFoundError(absl::StrCat(AsAbsl(kContext), ": token not found"));
  }
  JoinToken taken{.token = stmt.ColumnText(0), .expires_at = stmt.ColumnInt(1)};
  RETURN_IF_ERROR(Annotate(stmt.Run(), kContext));  // completes the statement
  return taken;
}

absl::StatusOr<int64_t> SqliteDataStore::PruneJoinTokens(int64_t expires_before) {
  constexpr std::string_view kContext = "datastore: prune join tokens";
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Annotate(
      db_.Run("DELETE FROM join_tokens WHERE expires_at < ?", {expires_before}), kContext));
  return db_.Changes();
}

}  // namespace tessera::server
