// BundleService: the federated-bundle RPCs (list and batch create, update, set, delete).
#include <algorithm>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "server/api/bundle_service.h"
#include "server/api/convert.h"
#include "server/api/grpc_status.h"
#include "spiffe/certificate.h"

namespace tessera::server {
namespace {

namespace types = ::spire::api::types;

constexpr char kListFederatedBundles[] = "/spire.api.server.bundle.v1.Bundle/ListFederatedBundles";
constexpr char kBatchCreateFederatedBundle[] =
    "/spire.api.server.bundle.v1.Bundle/BatchCreateFederatedBundle";
constexpr char kBatchUpdateFederatedBundle[] =
    "/spire.api.server.bundle.v1.Bundle/BatchUpdateFederatedBundle";
constexpr char kBatchSetFederatedBundle[] =
    "/spire.api.server.bundle.v1.Bundle/BatchSetFederatedBundle";
constexpr char kBatchDeleteFederatedBundle[] =
    "/spire.api.server.bundle.v1.Bundle/BatchDeleteFederatedBundle";

constexpr std::string_view kCreatingOwn =
    "creating a federated bundle for the server's own trust domain is not allowed";
constexpr std::string_view kUpdatingOwn =
    "updating a federated bundle for the server's own trust domain is not allowed";
constexpr std::string_view kSettingOwn =
    "setting a federated bundle for the server's own trust domain is not allowed";
constexpr std::string_view kRemovingOwn =
    "removing the bundle for the server trust domain is not allowed";

void SetStatus(const absl::Status& status, types::Status* out) {
  out->set_code(static_cast<int32_t>(status.code()));
  out->set_message(status.ok() ? std::string("OK") : std::string(status.message()));
}

absl::Status Internal(std::string_view context, const absl::Status& cause) {
  return absl::InternalError(absl::StrCat(AsAbsl(context), ": ", cause.message()));
}

const types::BundleMask* MaskOrNull(bool present, const types::BundleMask& mask) {
  return present ? &mask : nullptr;
}

types::BundleMask AllFields() {
  types::BundleMask mask;
  mask.set_x509_authorities(true);
  mask.set_jwt_authorities(true);
  mask.set_refresh_hint(true);
  mask.set_sequence_number(true);
  mask.set_wit_authorities(true);
  return mask;
}

// The bundle a write stores: validated as SPIRE's ProtoToBundle does (certificates parse, JWT keys
// are PKIX with a key ID), its trust domain as a name, and one certificate per X.509 authority
// (an element may hold several concatenated certificates; SPIRE stores them apart).
absl::StatusOr<types::Bundle> Storable(const types::Bundle& in) {
  absl::StatusOr<spiffe::Bundle> parsed = BundleFromProto(in);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("failed to convert bundle: ", parsed.status().message()));
  }
  types::Bundle out = in;
  out.set_trust_domain(parsed->trust_domain().name());
  out.clear_x509_authorities();
  for (const types::X509Certificate& authority : in.x509_authorities()) {
    absl::StatusOr<std::vector<spiffe::Certificate>> certs =
        spiffe::ParseDerChain(authority.asn1());
    if (!certs.ok()) {  // BundleFromProto accepted it, so this cannot happen
      return Internal("failed to convert bundle", certs.status());
    }
    for (const spiffe::Certificate& cert : *certs) {
      types::X509Certificate* stored = out.add_x509_authorities();
      stored->set_asn1(cert.ToDer());
      stored->set_tainted(authority.tainted());
    }
  }
  return out;
}

absl::StatusOr<BundleDeleteMode> DeleteModeFromProto(int mode) {
  switch (mode) {
    case bundlev1::BatchDeleteFederatedBundleRequest::RESTRICT:
      return BundleDeleteMode::kRestrict;
    case bundlev1::BatchDeleteFederatedBundleRequest::DELETE:
      return BundleDeleteMode::kDelete;
    case bundlev1::BatchDeleteFederatedBundleRequest::DISSOCIATE:
      return BundleDeleteMode::kDissociate;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("failed to parse deletion mode: unhandled delete mode \"", mode, "\""));
  }
}

// SPIRE's SQL store words the RESTRICT refusal "datastore-sql: cannot delete bundle; ...", and
// tools show it verbatim; ours carries our own operation prefix instead.
std::string DeleteFailureMessage(const absl::Status& cause) {
  constexpr std::string_view kRestrict = "cannot delete bundle; ";
  std::string_view message(cause.message().data(), cause.message().size());
  if (cause.code() == absl::StatusCode::kFailedPrecondition) {
    if (size_t at = message.find(kRestrict); at != std::string_view::npos) {
      return absl::StrCat("failed to delete federated bundle: datastore-sql: ",
                          AsAbsl(message.substr(at)));
    }
  }
  return absl::StrCat("failed to delete federated bundle: ", AsAbsl(message));
}

}  // namespace

absl::StatusOr<spiffe::TrustDomain> BundleService::FederatedTrustDomain(
    std::string_view text, std::string_view own_message) const {
  absl::StatusOr<spiffe::TrustDomain> td = spiffe::TrustDomain::FromIdOrName(text);
  if (!td.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("trust domain argument is not valid: ", td.status().message()));
  }
  if (*td == deps_.trust_domain) return absl::InvalidArgumentError(AsAbsl(own_message));
  return td;
}

grpc::Status BundleService::ListFederatedBundles(
    grpc::ServerContext* context, const bundlev1::ListFederatedBundlesRequest* request,
    bundlev1::ListFederatedBundlesResponse* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kListFederatedBundles, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  // As SPIRE: a page size of zero or less lists everything and ignores the token.
  PageRequest page;
  if (request->page_size() > 0) {
    page.page_size = request->page_size();
    page.token = request->page_token();
  }
  absl::StatusOr<Page<Bundle>> listed = deps_.datastore->ListBundles(page);
  if (!listed.ok()) return ToGrpcStatus(Internal("failed to list bundles", listed.status()));
  const types::BundleMask* mask = MaskOrNull(request->has_output_mask(), request->output_mask());
  for (Bundle& bundle : listed->items) {
    // The own bundle takes its place in the page, so a page may come back short (as in SPIRE).
    if (bundle.trust_domain() == deps_.trust_domain.name()) continue;
    types::Bundle* out = response->add_bundles();
    *out = std::move(bundle);
    ApplyMask(mask, out);
  }
  response->set_next_page_token(listed->next_token);
  return grpc::Status::OK;
}

absl::StatusOr<types::Bundle> BundleService::CreateOne(const types::Bundle& in) {
  absl::StatusOr<spiffe::TrustDomain> td = FederatedTrustDomain(in.trust_domain(), kCreatingOwn);
  if (!td.ok()) return td.status();
  absl::StatusOr<types::Bundle> storable = Storable(in);
  if (!storable.ok()) return storable.status();
  absl::StatusOr<Bundle> created = deps_.datastore->CreateBundle(*storable);
  if (absl::IsAlreadyExists(created.status())) {
    return absl::AlreadyExistsError("bundle already exists");
  }
  if (!created.ok()) return Internal("unable to create bundle", created.status());
  return created;
}

absl::StatusOr<types::Bundle> BundleService::UpdateOne(const types::Bundle& in,
                                                       const types::BundleMask& input_mask) {
  absl::StatusOr<spiffe::TrustDomain> td = FederatedTrustDomain(in.trust_domain(), kUpdatingOwn);
  if (!td.ok()) return td.status();
  // The whole bundle is validated, masked-out fields too, as SPIRE does.
  absl::StatusOr<types::Bundle> storable = Storable(in);
  if (!storable.ok()) return storable.status();
  absl::StatusOr<Bundle> updated = deps_.datastore->UpdateBundle(*storable, input_mask);
  if (absl::IsNotFound(updated.status())) return absl::NotFoundError("bundle not found");
  if (!updated.ok()) return Internal("failed to update bundle", updated.status());
  return updated;
}

absl::StatusOr<types::Bundle> BundleService::SetOne(const types::Bundle& in) {
  absl::StatusOr<spiffe::TrustDomain> td = FederatedTrustDomain(in.trust_domain(), kSettingOwn);
  if (!td.ok()) return td.status();
  absl::StatusOr<types::Bundle> storable = Storable(in);
  if (!storable.ok()) return storable.status();
  absl::StatusOr<Bundle> set = deps_.datastore->SetBundle(*storable);
  if (!set.ok()) return Internal("failed to set bundle", set.status());
  return set;
}

absl::Status BundleService::DeleteOne(std::string_view trust_domain, BundleDeleteMode mode,
                                      EntryIndex::AffectedAgents& agents) {
  absl::StatusOr<spiffe::TrustDomain> td = FederatedTrustDomain(trust_domain, kRemovingOwn);
  if (!td.ok()) return td.status();
  absl::StatusOr<DeleteBundleResult> deleted = deps_.datastore->DeleteBundle(*td, mode);
  if (absl::IsNotFound(deleted.status())) return absl::NotFoundError("bundle not found");
  if (!deleted.ok()) {
    return absl::Status(deleted.status().code(), DeleteFailureMessage(deleted.status()));
  }
  for (const Entry& entry : deleted->affected_entries) {
    EntryIndex::AffectedAgents affected = mode == BundleDeleteMode::kDelete
                                              ? deps_.index->Remove(entry.id)
                                              : deps_.index->Upsert(entry);
    agents.insert(agents.end(), std::make_move_iterator(affected.begin()),
                  std::make_move_iterator(affected.end()));
  }
  return absl::OkStatus();
}

template <typename Result, typename One>
void BundleService::RunBatch(const google::protobuf::RepeatedPtrField<types::Bundle>& bundles,
                             const types::BundleMask* output_mask,
                             google::protobuf::RepeatedPtrField<Result>* results, One one) {
  bool changed = false;
  for (const types::Bundle& in : bundles) {
    Result* result = results->Add();
    absl::StatusOr<types::Bundle> stored = one(in);
    SetStatus(stored.status(), result->mutable_status());
    if (!stored.ok()) continue;
    changed = true;
    *result->mutable_bundle() = *std::move(stored);
    ApplyMask(output_mask, result->mutable_bundle());
  }
  if (changed) deps_.notifier->BundleChanged();
}

grpc::Status BundleService::BatchCreateFederatedBundle(
    grpc::ServerContext* context, const bundlev1::BatchCreateFederatedBundleRequest* request,
    bundlev1::BatchCreateFederatedBundleResponse* response) {
  if (auto caller =
          deps_.authorizer->Authorize(*context, kBatchCreateFederatedBundle, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  RunBatch(request->bundle(), MaskOrNull(request->has_output_mask(), request->output_mask()),
           response->mutable_results(), [this](const types::Bundle& in) { return CreateOne(in); });
  return grpc::Status::OK;
}

grpc::Status BundleService::BatchUpdateFederatedBundle(
    grpc::ServerContext* context, const bundlev1::BatchUpdateFederatedBundleRequest* request,
    bundlev1::BatchUpdateFederatedBundleResponse* response) {
  if (auto caller =
          deps_.authorizer->Authorize(*context, kBatchUpdateFederatedBundle, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  // An absent input mask updates every field (spire-controller-manager sends none).
  const types::BundleMask input_mask =
      request->has_input_mask() ? request->input_mask() : AllFields();
  RunBatch(request->bundle(), MaskOrNull(request->has_output_mask(), request->output_mask()),
           response->mutable_results(),
           [&](const types::Bundle& in) { return UpdateOne(in, input_mask); });
  return grpc::Status::OK;
}

grpc::Status BundleService::BatchSetFederatedBundle(
    grpc::ServerContext* context, const bundlev1::BatchSetFederatedBundleRequest* request,
    bundlev1::BatchSetFederatedBundleResponse* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kBatchSetFederatedBundle, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  RunBatch(request->bundle(), MaskOrNull(request->has_output_mask(), request->output_mask()),
           response->mutable_results(), [this](const types::Bundle& in) { return SetOne(in); });
  return grpc::Status::OK;
}

grpc::Status BundleService::BatchDeleteFederatedBundle(
    grpc::ServerContext* context, const bundlev1::BatchDeleteFederatedBundleRequest* request,
    bundlev1::BatchDeleteFederatedBundleResponse* response) {
  if (auto caller =
          deps_.authorizer->Authorize(*context, kBatchDeleteFederatedBundle, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  absl::StatusOr<BundleDeleteMode> mode = DeleteModeFromProto(request->mode());
  if (!mode.ok()) return ToGrpcStatus(mode.status());
  EntryIndex::AffectedAgents agents;
  bool changed = false;
  for (const std::string& trust_domain : request->trust_domains()) {
    auto* result = response->add_results();
    result->set_trust_domain(trust_domain);
    absl::Status deleted = DeleteOne(trust_domain, *mode, agents);
    SetStatus(deleted, result->mutable_status());
    changed |= deleted.ok();
  }
  std::sort(agents.begin(), agents.end());
  agents.erase(std::unique(agents.begin(), agents.end()), agents.end());
  if (!agents.empty()) deps_.notifier->EntriesChanged(agents);
  if (changed) deps_.notifier->BundleChanged();
  return grpc::Status::OK;
}

}  // namespace tessera::server
