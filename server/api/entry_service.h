// EntryService: the admin RPCs of SPIRE's /spire.api.server.entry.v1.Entry service — batch
// create, get, batch update, batch delete, list and count registration entries — with SPIRE's
// validation, per-item statuses and messages (SPIRE-API-FACTS §10). Every successful write is
// applied to the authorized-entry index and the affected agents are announced to the notifier.
// The agent RPCs (GetAuthorizedEntries, SyncAuthorizedEntries) are not served here and answer
// UNIMPLEMENTED.
//
// Thread-safe: holds no state of its own; the ServiceDeps collaborators are safe for concurrent
// use and outlive the service.
#pragma once

#include "grpcpp/server_context.h"
#include "server/api/service_deps.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"

namespace tessera::server {

namespace entryv1 = ::spire::api::server::entry::v1;

class EntryService final : public entryv1::Entry::Service {
 public:
  explicit EntryService(const ServiceDeps& deps) : deps_(deps) {}

  grpc::Status BatchCreateEntry(grpc::ServerContext* context,
                                const entryv1::BatchCreateEntryRequest* request,
                                entryv1::BatchCreateEntryResponse* response) override;
  grpc::Status GetEntry(grpc::ServerContext* context, const entryv1::GetEntryRequest* request,
                        ::spire::api::types::Entry* response) override;
  grpc::Status BatchDeleteEntry(grpc::ServerContext* context,
                                const entryv1::BatchDeleteEntryRequest* request,
                                entryv1::BatchDeleteEntryResponse* response) override;
  grpc::Status BatchUpdateEntry(grpc::ServerContext* context,
                                const entryv1::BatchUpdateEntryRequest* request,
                                entryv1::BatchUpdateEntryResponse* response) override;
  grpc::Status ListEntries(grpc::ServerContext* context, const entryv1::ListEntriesRequest* request,
                           entryv1::ListEntriesResponse* response) override;
  grpc::Status CountEntries(grpc::ServerContext* context,
                            const entryv1::CountEntriesRequest* request,
                            entryv1::CountEntriesResponse* response) override;

 private:
  // The announcement that follows every successful write.
  void Notify(const EntryIndex::AffectedAgents& agents) const;
  // One BatchUpdateEntry item: the entry as stored after the update.
  absl::StatusOr<Entry> UpdateOne(const ::spire::api::types::Entry& in,
                                  const ::spire::api::types::EntryMask* input_mask) const;

  const ServiceDeps deps_;
};

}  // namespace tessera::server
