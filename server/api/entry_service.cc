#include "server/api/entry_service.h"

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/api/convert.h"
#include "server/api/grpc_status.h"

namespace tessera::server {
namespace {

constexpr char kBatchCreateEntry[] = "/spire.api.server.entry.v1.Entry/BatchCreateEntry";
constexpr char kGetEntry[] = "/spire.api.server.entry.v1.Entry/GetEntry";
constexpr char kBatchDeleteEntry[] = "/spire.api.server.entry.v1.Entry/BatchDeleteEntry";
constexpr char kBatchUpdateEntry[] = "/spire.api.server.entry.v1.Entry/BatchUpdateEntry";
constexpr char kListEntries[] = "/spire.api.server.entry.v1.Entry/ListEntries";
constexpr char kCountEntries[] = "/spire.api.server.entry.v1.Entry/CountEntries";

void SetStatus(const absl::Status& status, types::Status* out) {
  out->set_code(static_cast<int32_t>(status.code()));
  out->set_message(status.ok() ? std::string("OK") : std::string(status.message()));
}

// SPIRE's "<context>: <cause>" with the cause's code, except that Unknown becomes Internal.
absl::Status Wrap(std::string_view context, const absl::Status& cause) {
  absl::StatusCode code = cause.code();
  if (code == absl::StatusCode::kUnknown) code = absl::StatusCode::kInternal;
  return absl::Status(code, absl::StrCat(AsAbsl(context), ": ", cause.message()));
}

// A client's malformed input is InvalidArgument whatever code the parser chose.
absl::Status Invalid(const absl::Status& cause) {
  return absl::InvalidArgumentError(cause.message());
}

const types::EntryMask* MaskOrNull(bool present, const types::EntryMask& mask) {
  return present ? &mask : nullptr;
}

// The stored entry with the masked fields replaced by the client's, so that validation sees a
// complete entry whose unmasked fields are the (already valid) stored ones.
types::Entry Merge(const types::Entry& stored, const types::Entry& in, const EntryMask& mask) {
  types::Entry out = stored;
  if (mask.spiffe_id) {
    if (in.has_spiffe_id()) {
      *out.mutable_spiffe_id() = in.spiffe_id();
    } else {
      out.clear_spiffe_id();
    }
  }
  if (mask.parent_id) {
    if (in.has_parent_id()) {
      *out.mutable_parent_id() = in.parent_id();
    } else {
      out.clear_parent_id();
    }
  }
  if (mask.selectors) *out.mutable_selectors() = in.selectors();
  if (mask.x509_svid_ttl) out.set_x509_svid_ttl(in.x509_svid_ttl());
  if (mask.jwt_svid_ttl) out.set_jwt_svid_ttl(in.jwt_svid_ttl());
  if (mask.dns_names) *out.mutable_dns_names() = in.dns_names();
  if (mask.federates_with) *out.mutable_federates_with() = in.federates_with();
  if (mask.admin) out.set_admin(in.admin());
  if (mask.downstream) out.set_downstream(in.downstream());
  if (mask.store_svid) out.set_store_svid(in.store_svid());
  if (mask.hint) out.set_hint(in.hint());
  if (mask.expires_at) out.set_expires_at(in.expires_at());
  if (mask.additional_attributes) {
    // One bit for both flags, as in SPIRE: an absent message clears them.
    if (in.has_additional_attributes()) {
      *out.mutable_additional_attributes() = in.additional_attributes();
    } else {
      out.clear_additional_attributes();
    }
  }
  return out;
}

absl::StatusOr<MatchBehavior> MatchFromProto(int value) {
  if (value < 0 || value > static_cast<int>(MatchBehavior::kAny)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown match behavior ", value));
  }
  return static_cast<MatchBehavior>(value);
}

// ListEntriesRequest.Filter and CountEntriesRequest.Filter have the same fields.
template <typename ProtoFilter>
absl::StatusOr<EntryFilter> FilterFromProto(const ProtoFilter& in, const spiffe::TrustDomain& td) {
  EntryFilter filter;
  if (in.has_by_spiffe_id()) {
    absl::StatusOr<spiffe::SpiffeId> id = IdFromProto(in.by_spiffe_id());
    absl::Status valid = id.ok() ? ValidateWorkloadId(*id, td) : id.status();
    if (!valid.ok()) return Wrap("malformed by_spiffe_id filter", Invalid(valid));
    filter.by_spiffe_id = *std::move(id);
  }
  if (in.has_by_parent_id()) {
    absl::StatusOr<spiffe::SpiffeId> id = IdFromProto(in.by_parent_id());
    if (!id.ok()) return Wrap("malformed by_parent_id filter", Invalid(id.status()));
    if (!id->MemberOf(td)) {
      return absl::InvalidArgumentError(absl::StrCat("malformed by_parent_id filter: \"", id->str(),
                                                     "\" is not a member of trust domain \"",
                                                     td.name(), "\""));
    }
    filter.by_parent_id = *std::move(id);
  }
  if (in.has_by_selectors()) {
    absl::StatusOr<spiffe::SelectorSet> selectors =
        SelectorsFromProto(in.by_selectors().selectors());
    if (!selectors.ok()) return Wrap("malformed by_selectors filter", Invalid(selectors.status()));
    absl::StatusOr<MatchBehavior> match = MatchFromProto(in.by_selectors().match());
    if (!match.ok()) return Wrap("malformed by_selectors filter", match.status());
    filter.by_selectors = SelectorMatch{*std::move(selectors), *match};
  }
  if (in.has_by_federates_with()) {
    FederatesWithMatch federates;
    if (in.by_federates_with().trust_domains().empty()) {
      return absl::InvalidArgumentError(
          "malformed by_federates_with filter: empty trust domain set");
    }
    for (const std::string& text : in.by_federates_with().trust_domains()) {
      absl::StatusOr<spiffe::TrustDomain> federated = spiffe::TrustDomain::FromIdOrName(text);
      if (!federated.ok()) {
        return Wrap("malformed by_federates_with filter", Invalid(federated.status()));
      }
      federates.trust_domains.push_back(*std::move(federated));
    }
    absl::StatusOr<MatchBehavior> match = MatchFromProto(in.by_federates_with().match());
    if (!match.ok()) return Wrap("malformed by_federates_with filter", match.status());
    federates.match = *match;
    filter.by_federates_with = std::move(federates);
  }
  if (in.has_by_hint()) filter.by_hint = in.by_hint().value();
  if (in.has_by_downstream()) filter.by_downstream = in.by_downstream().value();
  return filter;
}

}  // namespace

void EntryService::Notify(const EntryIndex::AffectedAgents& agents) const {
  if (deps_.notifier != nullptr && !agents.empty()) deps_.notifier->EntriesChanged(agents);
}

grpc::Status EntryService::BatchCreateEntry(grpc::ServerContext* context,
                                            const entryv1::BatchCreateEntryRequest* request,
                                            entryv1::BatchCreateEntryResponse* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kBatchCreateEntry, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  const types::EntryMask* output_mask =
      MaskOrNull(request->has_output_mask(), request->output_mask());
  // Every valid entry is stored in one transaction (one disk sync per batch); results keep the
  // request's order.
  std::vector<Entry> valid;
  std::vector<int> valid_index;
  for (const types::Entry& in : request->entries()) {
    auto* result = response->add_results();
    absl::StatusOr<Entry> entry = EntryFromProto(in, deps_.trust_domain);
    if (!entry.ok()) {
      SetStatus(entry.status(), result->mutable_status());
      continue;
    }
    // The store owns these: a client cannot backdate or pre-version an entry.
    entry->revision_number = 0;
    entry->created_at = 0;
    valid.push_back(*std::move(entry));
    valid_index.push_back(response->results_size() - 1);
  }
  std::vector<absl::StatusOr<CreateEntryResult>> created =
      deps_.datastore->CreateOrReturnEntries(valid);
  for (size_t i = 0; i < created.size(); ++i) {
    auto* result = response->mutable_results(valid_index[i]);
    if (!created[i].ok()) {
      SetStatus(Wrap("failed to create entry", created[i].status()), result->mutable_status());
      continue;
    }
    *result->mutable_entry() = EntryToProto(created[i]->entry, output_mask);
    if (!created[i]->created) {
      SetStatus(absl::AlreadyExistsError("similar entry already exists"), result->mutable_status());
      continue;
    }
    Notify(deps_.index->Upsert(created[i]->entry));
    SetStatus(absl::OkStatus(), result->mutable_status());
  }
  return grpc::Status::OK;
}

grpc::Status EntryService::GetEntry(grpc::ServerContext* context,
                                    const entryv1::GetEntryRequest* request,
                                    types::Entry* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kGetEntry, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  if (request->id().empty()) return ToGrpcStatus(absl::InvalidArgumentError("missing ID"));
  absl::StatusOr<std::optional<Entry>> entry = deps_.datastore->FetchEntry(request->id());
  if (!entry.ok()) return ToGrpcStatus(Wrap("failed to fetch entry", entry.status()));
  if (!entry->has_value()) return ToGrpcStatus(absl::NotFoundError("entry not found"));
  *response = EntryToProto(**entry, MaskOrNull(request->has_output_mask(), request->output_mask()));
  return grpc::Status::OK;
}

grpc::Status EntryService::BatchDeleteEntry(grpc::ServerContext* context,
                                            const entryv1::BatchDeleteEntryRequest* request,
                                            entryv1::BatchDeleteEntryResponse* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kBatchDeleteEntry, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  for (const std::string& id : request->ids()) {
    auto* result = response->add_results();
    result->set_id(id);
    if (id.empty()) {
      SetStatus(absl::InvalidArgumentError("missing entry ID"), result->mutable_status());
      continue;
    }
    absl::StatusOr<Entry> deleted = deps_.datastore->DeleteEntry(id);
    if (absl::IsNotFound(deleted.status())) {
      SetStatus(absl::NotFoundError("entry not found"), result->mutable_status());
      continue;
    }
    if (!deleted.ok()) {
      SetStatus(Wrap("failed to delete entry", deleted.status()), result->mutable_status());
      continue;
    }
    Notify(deps_.index->Remove(id));
    SetStatus(absl::OkStatus(), result->mutable_status());
  }
  return grpc::Status::OK;
}

absl::StatusOr<Entry> EntryService::UpdateOne(const types::Entry& in,
                                              const types::EntryMask* input_mask) const {
  if (in.id().empty()) return absl::InvalidArgumentError("failed to convert entry: missing ID");
  absl::StatusOr<std::optional<Entry>> stored = deps_.datastore->FetchEntry(in.id());
  if (!stored.ok()) return Wrap("failed to fetch entry", stored.status());
  if (!stored->has_value()) return absl::NotFoundError("failed to update entry: entry not found");
  EntryMask mask = EntryMaskFromProto(input_mask);
  ASSIGN_OR_RETURN(Entry entry,
                   EntryFromProto(Merge(EntryToProto(**stored), in, mask), deps_.trust_domain));
  absl::StatusOr<Entry> updated = deps_.datastore->UpdateEntry(entry, mask);
  if (!updated.ok()) return Wrap("failed to update entry", updated.status());
  return updated;
}

grpc::Status EntryService::BatchUpdateEntry(grpc::ServerContext* context,
                                            const entryv1::BatchUpdateEntryRequest* request,
                                            entryv1::BatchUpdateEntryResponse* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kBatchUpdateEntry, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  const types::EntryMask* input_mask = MaskOrNull(request->has_input_mask(), request->input_mask());
  const types::EntryMask* output_mask =
      MaskOrNull(request->has_output_mask(), request->output_mask());
  for (const types::Entry& in : request->entries()) {
    auto* result = response->add_results();
    absl::StatusOr<Entry> updated = UpdateOne(in, input_mask);
    if (!updated.ok()) {
      SetStatus(updated.status(), result->mutable_status());
      continue;
    }
    Notify(deps_.index->Upsert(*updated));
    *result->mutable_entry() = EntryToProto(*updated, output_mask);
    SetStatus(absl::OkStatus(), result->mutable_status());
  }
  return grpc::Status::OK;
}

grpc::Status EntryService::ListEntries(grpc::ServerContext* context,
                                       const entryv1::ListEntriesRequest* request,
                                       entryv1::ListEntriesResponse* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kListEntries, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  if (request->page_size() < 0) {
    return ToGrpcStatus(absl::InvalidArgumentError("page_size must not be negative"));
  }
  absl::StatusOr<EntryFilter> filter = FilterFromProto(request->filter(), deps_.trust_domain);
  if (!filter.ok()) return ToGrpcStatus(filter.status());
  absl::StatusOr<Page<Entry>> page = deps_.datastore->ListEntries(
      *filter, PageRequest{.page_size = request->page_size(), .token = request->page_token()});
  if (!page.ok()) return ToGrpcStatus(Wrap("failed to list entries", page.status()));
  const types::EntryMask* output_mask =
      MaskOrNull(request->has_output_mask(), request->output_mask());
  for (const Entry& entry : page->items) {
    *response->add_entries() = EntryToProto(entry, output_mask);
  }
  response->set_next_page_token(page->next_token);
  return grpc::Status::OK;
}

grpc::Status EntryService::CountEntries(grpc::ServerContext* context,
                                        const entryv1::CountEntriesRequest* request,
                                        entryv1::CountEntriesResponse* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kCountEntries, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  absl::StatusOr<EntryFilter> filter = FilterFromProto(request->filter(), deps_.trust_domain);
  if (!filter.ok()) return ToGrpcStatus(filter.status());
  absl::StatusOr<int64_t> count = deps_.datastore->CountEntries(*filter);
  if (!count.ok()) return ToGrpcStatus(Wrap("failed to count entries", count.status()));
  response->set_count(static_cast<int32_t>(*count));
  return grpc::Status::OK;
}

}  // namespace tessera::server
