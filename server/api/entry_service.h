// EntryService: the admin RPCs of SPIRE's /spire.api.server.entry.v1.Entry service — batch
// create, get, batch update, batch delete, list and count registration entries — with SPIRE's
// validation, per-item statuses and messages (SPIRE-API-FACTS §10). Every successful write is
// applied to the authorized-entry index and the affected agents are announced to the notifier.
// The agent RPCs (GetAuthorizedEntries, SyncAuthorizedEntries; §9, in entry_service_agent.cc)
// answer from the index alone, so one agent's sync costs in proportion to its own entries.
//
// SyncAuthorizedEntries uses the synchronous API: its stream lives only while the agent walks
// the pages (spire-agent cancels it right after), so it holds a thread for that long, and the
// authorizer's datastore read stays off gRPC's callback threads.
//
// Thread-safe: holds no state of its own; the ServiceDeps collaborators are safe for concurrent
// use and outlive the service.
#pragma once

#include <cstddef>
#include <string_view>

#include "grpcpp/server_context.h"
#include "grpcpp/support/sync_stream.h"
#include "server/api/service_deps.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"

namespace tessera::server {

namespace entryv1 = ::spire::api::server::entry::v1;

class EntryService final : public entryv1::Entry::Service {
 public:
  // SPIRE's page size for SyncAuthorizedEntries (not configurable there either): up to this many
  // authorized entries go out in one response; more are announced as revision pages.
  static constexpr size_t kSyncPageSize = 500;

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

  // Agent RPCs (Access::kAgent): the caller's authorized entries (SPIRE-API-FACTS §8, §9).
  grpc::Status GetAuthorizedEntries(grpc::ServerContext* context,
                                    const entryv1::GetAuthorizedEntriesRequest* request,
                                    entryv1::GetAuthorizedEntriesResponse* response) override;
  grpc::Status SyncAuthorizedEntries(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<entryv1::SyncAuthorizedEntriesResponse,
                               entryv1::SyncAuthorizedEntriesRequest>* stream) override;

 private:
  // The announcement that follows every successful write.
  void Notify(const EntryIndex::AffectedAgents& agents) const;
  // One BatchUpdateEntry item: the entry as stored after the update.
  absl::StatusOr<Entry> UpdateOne(const ::spire::api::types::Entry& in,
                                  const ::spire::api::types::EntryMask* input_mask) const;
  // The agent calling an agent RPC `method`, once the authorizer admitted it.
  absl::StatusOr<spiffe::SpiffeId> AuthorizeAgent(const grpc::ServerContext& context,
                                                  std::string_view method) const;

  const ServiceDeps deps_;
};

}  // namespace tessera::server
