// The agent side of SyncAuthorizedEntries (SPIRE-API-FACTS §9) and the checks spire-agent makes
// on each entry it receives.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "agent/server_client.h"
#include "agent/server_client_internal.h"
#include "common/status.h"
#include "common/strings.h"
#include "grpcpp/grpcpp.h"
#include "spdlog/spdlog.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"

namespace tessera::agent {
namespace {

namespace entryv1 = ::spire::api::server::entry::v1;
namespace types = ::spire::api::types;
using server_client_internal::FromGrpc;
using server_client_internal::Protocol;

constexpr std::string_view kSync = "sync authorized entries";

using SyncStream = grpc::ClientReaderWriter<entryv1::SyncAuthorizedEntriesRequest,
                                            entryv1::SyncAuthorizedEntriesResponse>;

struct Revision {
  int64_t revision_number = 0;
  int64_t created_at = 0;
};

// Builds the result of one conversation from the entries the server sends.
class EntryCollector {
 public:
  EntryCollector(const EntryMap& cached, EntryMap& result, EntrySyncStats& stats)
      : cached_(cached), result_(result), stats_(stats) {}

  void Add(const types::Entry& proto) {
    ++stats_.received;
    absl::StatusOr<CachedEntry> entry = EntryFromAgentProto(proto);
    if (!entry.ok()) {
      ++stats_.dropped;
      spdlog::warn("agent: dropping invalid entry \"{}\" from the server: {}", proto.id(),
                   AsStd(entry.status().message()));
      return;
    }
    // An unchanged entry keeps its pointer, so consumers can tell what changed by identity.
    auto it = cached_.find(entry->id);
    if (it != cached_.end() && *it->second == *entry) {
      result_[entry->id] = it->second;
    } else {
      std::string id = entry->id;
      result_[id] = std::make_shared<const CachedEntry>(*std::move(entry));
    }
  }

 private:
  const EntryMap& cached_;
  EntryMap& result_;
  EntrySyncStats& stats_;
};

// Ends a conversation that went as expected: half-close, then the server's status.
absl::Status Finish(SyncStream& stream) {
  stream.WritesDone();
  return FromGrpc(stream.Finish(), kSync);
}

// Ends a conversation after a protocol violation: we hang up.
absl::Status Abort(SyncStream& stream, grpc::ClientContext& ctx, absl::Status violation) {
  ctx.TryCancel();
  stream.Finish();
  return violation;
}

// Ends a conversation whose stream failed under us (a read or write returned false): the call is
// over, and its status says why.
absl::Status Broken(SyncStream& stream) {
  grpc::Status status = stream.Finish();
  if (status.ok()) return Protocol(kSync, "stream ended early");
  return FromGrpc(status, kSync);
}

// One conversation; fills `result` and `stats`.
absl::Status Converse(entryv1::Entry::Stub& stub, grpc::ClientContext& ctx, const EntryMap& cached,
                      EntryMap& result, EntrySyncStats& stats) {
  EntryCollector collector(cached, result, stats);
  std::unique_ptr<SyncStream> stream = stub.SyncAuthorizedEntries(&ctx);
  entryv1::SyncAuthorizedEntriesRequest first;
  *first.mutable_output_mask() = AgentEntryMask();
  entryv1::SyncAuthorizedEntriesResponse response;
  if (!stream->Write(first) || !stream->Read(&response)) return Broken(*stream);

  // Up to one page of entries: the first answer is the complete set.
  if (response.entry_revisions().empty()) {
    for (const types::Entry& entry : response.entries()) collector.Add(entry);
    return Finish(*stream);
  }

  // Phase 1: every revision, in pages; their size is the size of our id requests.
  stats.paged = true;
  const size_t page_size = static_cast<size_t>(response.entry_revisions_size());
  std::unordered_map<std::string, Revision> revisions;
  for (;;) {
    if (!response.entries().empty()) {
      return Abort(*stream, ctx, Protocol(kSync, "unexpected entries among revisions"));
    }
    for (const entryv1::EntryRevision& revision : response.entry_revisions()) {
      ++stats.revisions;
      revisions[revision.id()] = {revision.revision_number(), revision.created_at()};
    }
    if (!response.more()) break;
    if (!stream->Read(&response)) return Broken(*stream);
  }

  // Phase 2: what is unchanged is kept, the rest is asked for in full.
  std::vector<std::string> needed;
  for (const auto& [id, revision] : revisions) {
    auto it = cached.find(id);
    const bool stale = it == cached.end() ||
                       it->second->revision_number != revision.revision_number ||
                       (revision.created_at != 0 && it->second->created_at != revision.created_at);
    if (stale) {
      needed.push_back(id);
    } else {
      result[id] = it->second;
    }
  }
  std::sort(needed.begin(), needed.end());
  stats.requested = needed.size();
  for (size_t start = 0; start < needed.size(); start += page_size) {
    const size_t end = std::min(needed.size(), start + page_size);
    entryv1::SyncAuthorizedEntriesRequest request;
    for (size_t i = start; i < end; ++i) request.add_ids(needed[i]);
    if (!stream->Write(request)) return Broken(*stream);
    do {
      if (!stream->Read(&response)) return Broken(*stream);
      if (!response.entry_revisions().empty()) {
        return Abort(*stream, ctx, Protocol(kSync, "unexpected revisions among entries"));
      }
      for (const types::Entry& entry : response.entries()) {
        // Only what was announced: an entry the revisions did not list is not ours to keep.
        if (revisions.contains(entry.id())) collector.Add(entry);
      }
    } while (response.more());
  }
  // Entries not announced in the revisions (deleted since the last sync) are simply not copied.
  return Finish(*stream);
}

}  // namespace

types::EntryMask AgentEntryMask() {
  types::EntryMask mask;
  mask.set_spiffe_id(true);
  mask.set_selectors(true);
  mask.set_federates_with(true);
  mask.set_admin(true);
  mask.set_downstream(true);
  mask.set_revision_number(true);
  mask.set_store_svid(true);
  mask.set_hint(true);
  mask.set_additional_attributes(true);
  mask.set_created_at(true);
  return mask;
}

absl::StatusOr<CachedEntry> EntryFromAgentProto(const types::Entry& in) {
  if (in.id().empty()) return absl::InvalidArgumentError("missing entry ID");
  ASSIGN_OR_RETURN(spiffe::TrustDomain td,
                   spiffe::TrustDomain::FromIdOrName(in.spiffe_id().trust_domain()),
                   Annotate(_, "invalid SPIFFE ID"));
  ASSIGN_OR_RETURN(spiffe::SpiffeId id, spiffe::SpiffeId::FromPath(td, in.spiffe_id().path()),
                   Annotate(_, "invalid SPIFFE ID"));
  if (in.selectors().empty()) return absl::InvalidArgumentError("selector list is empty");
  std::vector<spiffe::Selector> selectors;
  selectors.reserve(static_cast<size_t>(in.selectors_size()));
  for (const types::Selector& selector : in.selectors()) {
    ASSIGN_OR_RETURN(spiffe::Selector parsed,
                     spiffe::Selector::Create(selector.type(), selector.value()),
                     Annotate(_, "invalid selector"));
    selectors.push_back(std::move(parsed));
  }
  std::vector<spiffe::TrustDomain> federates_with;
  for (const std::string& text : in.federates_with()) {
    ASSIGN_OR_RETURN(spiffe::TrustDomain federated, spiffe::TrustDomain::FromIdOrName(text),
                     Annotate(_, "invalid federates_with value"));
    if (std::find(federates_with.begin(), federates_with.end(), federated) ==
        federates_with.end()) {
      federates_with.push_back(std::move(federated));
    }
  }
  return CachedEntry{.id = in.id(),
                     .spiffe_id = std::move(id),
                     .selectors = spiffe::SelectorSet(std::move(selectors)),
                     .federates_with = std::move(federates_with),
                     .revision_number = in.revision_number(),
                     .created_at = in.created_at(),
                     .hint = in.hint(),
                     .admin = in.admin(),
                     .downstream = in.downstream()};
}

absl::StatusOr<EntryMap> ServerClient::SyncAuthorizedEntries(const EntryMap& cached) {
  EntryMap result;
  EntrySyncStats stats;
  RETURN_IF_ERROR(
      Call(kSync, [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& ctx) {
        result.clear();
        stats = {};
        std::unique_ptr<entryv1::Entry::Stub> stub = entryv1::Entry::NewStub(channel);
        return Converse(*stub, ctx, cached, result, stats);
      }));
  stats.total = result.size();
  {
    std::lock_guard lock(mu_);
    last_sync_stats_ = stats;
  }
  return result;
}

}  // namespace tessera::agent
