// Where the CA keeps what must outlive the process and be shared: its journal and the trust
// domain's bundle, both in the datastore (so several servers on one PostgreSQL database see the
// same bundle, and a restart finds the CA it had).
//
// DataStoreBundlePublisher merges the CA's bundle into the stored one rather than overwriting
// it: authorities an operator appended (AppendBundle) stay until they expire, authorities the
// CA retired leave once expired (the CA prunes them at expiry anyway), and the stored sequence
// number only ever grows — max(stored + 1, the CA's) on every change — so agents never see it
// go back after a restart or when another server published last.
//
// Thread-safety: both are safe for concurrent use (the datastore is); Publish is called from the
// CA's rotation thread only.
#pragma once

#include <functional>
#include <string>

#include "common/clock.h"
#include "server/ca/ca_manager.h"
#include "server/ca/journal.h"
#include "server/datastore/datastore.h"

namespace tessera::server {

class DataStoreJournalStore final : public ca::JournalStore {
 public:
  explicit DataStoreJournalStore(DataStore& datastore) : datastore_(datastore) {}
  absl::StatusOr<std::optional<std::string>> Load() override;
  absl::Status Save(std::string_view bytes) override;

 private:
  DataStore& datastore_;
};

class DataStoreBundlePublisher final : public ca::BundlePublisher {
 public:
  // `on_change` runs after a publish changed the stored bundle (push to agents, TLS roots).
  DataStoreBundlePublisher(DataStore& datastore, const Clock& clock,
                           std::function<void()> on_change)
      : datastore_(datastore), clock_(clock), on_change_(std::move(on_change)) {}

  absl::Status Publish(const ca::BundleContents& contents) override;

 private:
  DataStore& datastore_;
  const Clock& clock_;
  const std::function<void()> on_change_;
};

// The bundle to store: the CA's authorities, plus the stored ones the CA does not have that
// are still valid at `now`; the sequence number grows when the content changed. nullopt when
// `stored` already has exactly this content. Exposed for tests.
std::optional<Bundle> MergeOwnBundle(const ca::BundleContents& contents,
                                     const std::optional<Bundle>& stored,
                                     std::chrono::system_clock::time_point now);

}  // namespace tessera::server
