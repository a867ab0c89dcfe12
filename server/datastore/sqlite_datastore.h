// SqliteDataStore: the DataStore on an embedded SQLite database (the default; one server per
// database file).
//
// The file is opened in WAL mode with foreign keys enforced and a busy timeout; it is created
// 0600 (its directory 0700 when missing), and the WAL/shared-memory files inherit that mode.
// The schema is versioned: Open applies the pending migrations in order, each in its own
// transaction, and refuses a database written by a newer build (FailedPrecondition).
//
// Records live in normalized tables (entries with entry_selectors, entry_dns_names and
// entry_federated_tds; attested_nodes with node_selectors; join_tokens; bundles holding the
// serialized spire.api.types.Bundle; ca_journal), with indexes behind every filter. Each call
// runs in one transaction, writes in an immediate one.
//
// Thread-safety: safe for concurrent use. One connection serves every call, serialized by a
// mutex: the server is not database-bound, and this keeps SQLite's locking trivially correct.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "server/datastore/datastore.h"
#include "server/datastore/sqlite.h"

namespace tessera::server {

class SqliteDataStore final : public DataStore {
 public:
  // Opens or creates the database at `path`. `clock` (entry created_at) must outlive the store.
  static absl::StatusOr<std::unique_ptr<SqliteDataStore>> Open(const std::filesystem::path& path,
                                                               const Clock& clock);
  // The schema version this build creates and understands.
  static int SchemaVersion();

  SqliteDataStore(const SqliteDataStore&) = delete;
  SqliteDataStore& operator=(const SqliteDataStore&) = delete;

  absl::StatusOr<CreateEntryResult> CreateOrReturnEntry(const Entry& entry) override;
  std::vector<absl::StatusOr<CreateEntryResult>> CreateOrReturnEntries(
      std::span<const Entry> entries) override;
  absl::StatusOr<std::optional<Entry>> FetchEntry(std::string_view id) override;
  absl::StatusOr<Entry> UpdateEntry(const Entry& entry, const EntryMask& mask) override;
  absl::StatusOr<Entry> DeleteEntry(std::string_view id) override;
  absl::StatusOr<Page<Entry>> ListEntries(const EntryFilter& filter,
                                          const PageRequest& page) override;
  absl::StatusOr<int64_t> CountEntries(const EntryFilter& filter) override;
  absl::StatusOr<std::vector<Entry>> ListAllEntries() override;

  absl::StatusOr<AttestedNode> CreateAttestedNode(const AttestedNode& node) override;
  absl::StatusOr<std::optional<AttestedNode>> FetchAttestedNode(
      const spiffe::SpiffeId& id) override;
  absl::StatusOr<AttestedNode> UpdateAttestedNode(const AttestedNode& node,
                                                  const NodeMask& mask) override;
  absl::StatusOr<AttestedNode> DeleteAttestedNode(const spiffe::SpiffeId& id) override;
  absl::StatusOr<Page<AttestedNode>> ListAttestedNodes(const NodeFilter& filter,
                                                       const PageRequest& page) override;
  absl::StatusOr<int64_t> CountAttestedNodes(const NodeFilter& filter) override;
  absl::Status SetNodeSelectors(const spiffe::SpiffeId& id,
                                const spiffe::SelectorSet& selectors) override;
  absl::StatusOr<spiffe::SelectorSet> FetchNodeSelectors(const spiffe::SpiffeId& id) override;
  absl::StatusOr<std::vector<AttestedNode>> ListAllNodes() override;

  absl::Status CreateJoinToken(const JoinToken& token) override;
  absl::StatusOr<JoinToken> TakeJoinToken(std::string_view token) override;
  absl::StatusOr<int64_t> PruneJoinTokens(int64_t expires_before) override;

  absl::StatusOr<Bundle> CreateBundle(const Bundle& bundle) override;
  absl::StatusOr<std::optional<Bundle>> FetchBundle(const spiffe::TrustDomain& td) override;
  absl::StatusOr<Bundle> UpdateBundle(const Bundle& bundle, const BundleMask& mask) override;
  absl::StatusOr<Bundle> SetBundle(const Bundle& bundle) override;
  absl::StatusOr<Bundle> AppendBundle(const Bundle& bundle) override;
  absl::StatusOr<DeleteBundleResult> DeleteBundle(const spiffe::TrustDomain& td,
                                                  BundleDeleteMode mode) override;
  absl::StatusOr<Page<Bundle>> ListBundles(const PageRequest& page) override;
  absl::StatusOr<int64_t> CountBundles() override;

  absl::Status SetCaJournal(std::string_view name, std::string_view data) override;
  absl::StatusOr<std::optional<std::string>> FetchCaJournal(std::string_view name) override;

 private:
  SqliteDataStore(sqlite::Database db, const Clock& clock) : clock_(clock), db_(std::move(db)) {}

  // One entry of CreateOrReturnEntries, inside its open transaction, under a savepoint of its
  // own so a failure undoes only this entry.
  absl::StatusOr<CreateEntryResult> CreateOrReturnEntryInTransaction(const Entry& entry,
                                                                     int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Set at construction, never changed.
  const Clock& clock_;

  absl::Mutex mu_;
  sqlite::Database db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::server
