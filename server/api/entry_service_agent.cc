// The agent RPCs of EntryService: GetAuthorizedEntries and SyncAuthorizedEntries
// (SPIRE-API-FACTS §9). Both answer from the authorized-entry index, never from a registry
// listing, so a call costs in proportion to the calling agent's entries.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/api/convert.h"
#include "server/api/entry_service.h"
#include "server/api/grpc_status.h"

namespace tessera::server {
namespace {

constexpr char kGetAuthorizedEntries[] = "/spire.api.server.entry.v1.Entry/GetAuthorizedEntries";
constexpr char kSyncAuthorizedEntries[] = "/spire.api.server.entry.v1.Entry/SyncAuthorizedEntries";

using SyncStream = grpc::ServerReaderWriter<entryv1::SyncAuthorizedEntriesResponse,
                                            entryv1::SyncAuthorizedEntriesRequest>;

// The agent's entries sorted by id, so that the {ids} requests are answered by binary search.
std::vector<EntryIndex::EntryPtr> SortedById(std::vector<EntryIndex::EntryPtr> entries) {
  std::sort(
      entries.begin(), entries.end(),
      [](const EntryIndex::EntryPtr& a, const EntryIndex::EntryPtr& b) { return a->id < b->id; });
  return entries;
}

const Entry* FindById(const std::vector<EntryIndex::EntryPtr>& sorted, const std::string& id) {
  auto it = std::lower_bound(
      sorted.begin(), sorted.end(), id,
      [](const EntryIndex::EntryPtr& entry, const std::string& key) { return entry->id < key; });
  if (it == sorted.end() || (*it)->id != id) return nullptr;
  return it->get();
}

// Phase 2 of a large sync: every entry's (id, revision_number, created_at), in pages of
// kSyncPageSize with more=true on all but the last. False when the client has gone.
bool SendRevisions(const std::vector<EntryIndex::EntryPtr>& entries, SyncStream& stream) {
  for (size_t start = 0; start < entries.size(); start += EntryService::kSyncPageSize) {
    const size_t end = std::min(entries.size(), start + EntryService::kSyncPageSize);
    entryv1::SyncAuthorizedEntriesResponse page;
    for (size_t i = start; i < end; ++i) {
      entryv1::EntryRevision* revision = page.add_entry_revisions();
      revision->set_id(entries[i]->id);
      revision->set_revision_number(entries[i]->revision_number);
      revision->set_created_at(entries[i]->created_at);
    }
    page.set_more(end < entries.size());
    if (!stream.Write(page)) return false;
  }
  return true;
}

// Phase 3: the full entries for one {ids} request. Ids are served in sorted order; unknown ids
// and ids of entries not authorized for this agent are skipped without a word (an agent must
// not learn which other entries exist). Pages hold at most kSyncPageSize entries; the last one
// says more=false, even when empty, because that is what ends the agent's read loop.
bool SendRequested(std::vector<std::string> ids, const std::vector<EntryIndex::EntryPtr>& sorted,
                   const types::EntryMask* mask, SyncStream& stream) {
  std::sort(ids.begin(), ids.end());
  entryv1::SyncAuthorizedEntriesResponse page;
  for (const std::string& id : ids) {
    const Entry* entry = FindById(sorted, id);
    if (entry == nullptr) continue;
    *page.add_entries() = EntryToProto(*entry, mask);
    if (static_cast<size_t>(page.entries_size()) < EntryService::kSyncPageSize) continue;
    page.set_more(true);
    if (!stream.Write(page)) return false;
    page.Clear();
  }
  page.set_more(false);
  return stream.Write(page);
}

}  // namespace

absl::StatusOr<spiffe::SpiffeId> EntryService::AuthorizeAgent(const grpc::ServerContext& context,
                                                              std::string_view method) const {
  absl::StatusOr<Caller> caller = deps_.authorizer->Authorize(context, method, Access::kAgent);
  if (!caller.ok()) return caller.status();
  // The agent check admits only callers with a verified SVID; this is a broken invariant.
  if (!caller->id.has_value()) return absl::InternalError("caller ID missing from request context");
  return *caller->id;
}

grpc::Status EntryService::GetAuthorizedEntries(grpc::ServerContext* context,
                                                const entryv1::GetAuthorizedEntriesRequest* request,
                                                entryv1::GetAuthorizedEntriesResponse* response) {
  absl::StatusOr<spiffe::SpiffeId> agent = AuthorizeAgent(*context, kGetAuthorizedEntries);
  if (!agent.ok()) return ToGrpcStatus(agent.status());
  const types::EntryMask* mask = request->has_output_mask() ? &request->output_mask() : nullptr;
  for (const EntryIndex::EntryPtr& entry : SortedById(deps_.index->AuthorizedEntries(*agent))) {
    *response->add_entries() = EntryToProto(*entry, mask);
  }
  return grpc::Status::OK;
}

grpc::Status EntryService::SyncAuthorizedEntries(grpc::ServerContext* context, SyncStream* stream) {
  absl::StatusOr<spiffe::SpiffeId> agent = AuthorizeAgent(*context, kSyncAuthorizedEntries);
  if (!agent.ok()) return ToGrpcStatus(agent.status());

  entryv1::SyncAuthorizedEntriesRequest first;
  // A client that leaves without asking (EOF or cancel) ends the stream normally.
  if (!stream->Read(&first)) return grpc::Status::OK;
  if (!first.ids().empty()) {
    return ToGrpcStatus(
        absl::InvalidArgumentError("specifying IDs on initial request is not supported"));
  }
  // The agent decides from revision numbers which entries it must fetch in full.
  if (first.has_output_mask() && !first.output_mask().revision_number()) {
    return ToGrpcStatus(absl::InvalidArgumentError("revision number cannot be masked"));
  }
  // The first request's mask governs the whole stream; later requests' masks are ignored.
  const types::EntryMask* mask = first.has_output_mask() ? &first.output_mask() : nullptr;

  // One snapshot for the whole stream, so that the revisions announced and the entries served
  // afterwards agree even while the registry changes.
  const std::vector<EntryIndex::EntryPtr> entries =
      SortedById(deps_.index->AuthorizedEntries(*agent));

  if (entries.size() <= kSyncPageSize) {
    entryv1::SyncAuthorizedEntriesResponse all;
    for (const EntryIndex::EntryPtr& entry : entries)
      *all.add_entries() = EntryToProto(*entry, mask);
    all.set_more(false);
    stream->Write(all);
    return grpc::Status::OK;
  }

  if (!SendRevisions(entries, *stream)) return grpc::Status::OK;
  entryv1::SyncAuthorizedEntriesRequest request;
  while (stream->Read(&request)) {
    std::vector<std::string> ids(request.ids().begin(), request.ids().end());
    if (!SendRequested(std::move(ids), entries, mask, *stream)) break;
  }
  // A failed write or read means the client went away (EOF, cancel): nothing left to say.
  return grpc::Status::OK;
}

}  // namespace tessera::server
