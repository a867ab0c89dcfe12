#include "server/api/bundle_service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "server/api/convert.h"
#include "server/api/grpc_status.h"

namespace tessera::server {
namespace {

namespace types = ::spire::api::types;

constexpr char kGetBundle[] = "/spire.api.server.bundle.v1.Bundle/GetBundle";
constexpr char kAppendBundle[] = "/spire.api.server.bundle.v1.Bundle/AppendBundle";
constexpr char kCountBundles[] = "/spire.api.server.bundle.v1.Bundle/CountBundles";
constexpr char kGetFederatedBundle[] = "/spire.api.server.bundle.v1.Bundle/GetFederatedBundle";

}  // namespace

void BundleService::ApplyMask(const types::BundleMask* mask, types::Bundle* bundle) {
  if (mask == nullptr) return;
  if (!mask->x509_authorities()) bundle->clear_x509_authorities();
  if (!mask->jwt_authorities()) bundle->clear_jwt_authorities();
  if (!mask->refresh_hint()) bundle->clear_refresh_hint();
  if (!mask->sequence_number()) bundle->clear_sequence_number();
  if (!mask->wit_authorities()) bundle->clear_wit_authorities();
}

grpc::Status BundleService::GetBundle(grpc::ServerContext* context,
                                      const bundlev1::GetBundleRequest* request,
                                      types::Bundle* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kGetBundle, Access::kAny); !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  auto bundle = deps_.datastore->FetchBundle(deps_.trust_domain);
  if (!bundle.ok()) {
    return ToGrpcStatus(
        absl::InternalError(absl::StrCat("failed to fetch bundle: ", bundle.status().message())));
  }
  if (!bundle->has_value()) return ToGrpcStatus(absl::NotFoundError("bundle not found"));
  *response = std::move(**bundle);
  ApplyMask(request->has_output_mask() ? &request->output_mask() : nullptr, response);
  return grpc::Status::OK;
}

grpc::Status BundleService::AppendBundle(grpc::ServerContext* context,
                                         const bundlev1::AppendBundleRequest* request,
                                         types::Bundle* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kAppendBundle, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  if (request->x509_authorities().empty() && request->jwt_authorities().empty()) {
    return ToGrpcStatus(absl::InvalidArgumentError("no authorities to append"));
  }
  types::Bundle append;
  append.set_trust_domain(deps_.trust_domain.name());
  *append.mutable_x509_authorities() = request->x509_authorities();
  *append.mutable_jwt_authorities() = request->jwt_authorities();
  // Parsing is the validation: certificates must be DER, JWT keys PKIX with a key ID.
  if (auto parsed = BundleFromProto(append); !parsed.ok()) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("failed to convert authorities: ", parsed.status().message())));
  }
  auto stored = deps_.datastore->AppendBundle(append);
  if (!stored.ok()) {
    return ToGrpcStatus(
        absl::InternalError(absl::StrCat("failed to append bundle: ", stored.status().message())));
  }
  deps_.notifier->BundleChanged();
  *response = std::move(*stored);
  ApplyMask(request->has_output_mask() ? &request->output_mask() : nullptr, response);
  return grpc::Status::OK;
}

grpc::Status BundleService::CountBundles(grpc::ServerContext* context,
                                         const bundlev1::CountBundlesRequest* /*request*/,
                                         bundlev1::CountBundlesResponse* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kCountBundles, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  auto count = deps_.datastore->CountBundles();
  if (!count.ok()) {
    return ToGrpcStatus(
        absl::InternalError(absl::StrCat("failed to count bundles: ", count.status().message())));
  }
  response->set_count(static_cast<int32_t>(*count));
  return grpc::Status::OK;
}

grpc::Status BundleService::GetFederatedBundle(grpc::ServerContext* context,
                                               const bundlev1::GetFederatedBundleRequest* request,
                                               types::Bundle* response) {
  if (auto caller =
          deps_.authorizer->Authorize(*context, kGetFederatedBundle, Access::kAdminOrAgent);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  auto td = spiffe::TrustDomain::FromIdOrName(request->trust_domain());
  if (!td.ok()) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("trust domain argument is not valid: ", td.status().message())));
  }
  if (*td == deps_.trust_domain) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        "getting a federated bundle for the server's own trust domain is not allowed"));
  }
  auto bundle = deps_.datastore->FetchBundle(*td);
  if (!bundle.ok()) {
    return ToGrpcStatus(
        absl::InternalError(absl::StrCat("failed to fetch bundle: ", bundle.status().message())));
  }
  if (!bundle->has_value()) return ToGrpcStatus(absl::NotFoundError("bundle not found"));
  *response = std::move(**bundle);
  ApplyMask(request->has_output_mask() ? &request->output_mask() : nullptr, response);
  return grpc::Status::OK;
}

}  // namespace tessera::server
