// BundleService: SPIRE's /spire.api.server.bundle.v1.Bundle service over the datastore's bundles
// (SPIRE-API-FACTS §10, §11). Served: GetBundle (open to anyone), GetFederatedBundle (admin or
// agent), and, for admins only, AppendBundle, CountBundles, ListFederatedBundles and
// Batch{Create,Update,Set,Delete}FederatedBundle. PublishJWTAuthority (downstream servers) is not
// overridden and answers UNIMPLEMENTED.
//
// Batch RPCs answer one result per item, in request order, each with SPIRE's status; an invalid
// item writes nothing and does not stop the others. An RPC that changed any bundle announces it
// once (ChangeNotifier::BundleChanged); deleting a bundle also applies the entries it deleted or
// dissociated to the entry index and announces the agents concerned.
//
// Thread-safe: holds no state of its own; the ServiceDeps collaborators are safe for concurrent
// use and outlive the service.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"
#include "server/api/service_deps.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"

namespace tessera::server {

namespace bundlev1 = ::spire::api::server::bundle::v1;

class BundleService final : public bundlev1::Bundle::Service {
 public:
  explicit BundleService(const ServiceDeps& deps) : deps_(deps) {}

  grpc::Status GetBundle(grpc::ServerContext* context, const bundlev1::GetBundleRequest* request,
                         ::spire::api::types::Bundle* response) override;
  grpc::Status AppendBundle(grpc::ServerContext* context,
                            const bundlev1::AppendBundleRequest* request,
                            ::spire::api::types::Bundle* response) override;
  grpc::Status CountBundles(grpc::ServerContext* context,
                            const bundlev1::CountBundlesRequest* request,
                            bundlev1::CountBundlesResponse* response) override;
  grpc::Status GetFederatedBundle(grpc::ServerContext* context,
                                  const bundlev1::GetFederatedBundleRequest* request,
                                  ::spire::api::types::Bundle* response) override;

  // In bundle_service_federated.cc.
  grpc::Status ListFederatedBundles(grpc::ServerContext* context,
                                    const bundlev1::ListFederatedBundlesRequest* request,
                                    bundlev1::ListFederatedBundlesResponse* response) override;
  grpc::Status BatchCreateFederatedBundle(
      grpc::ServerContext* context, const bundlev1::BatchCreateFederatedBundleRequest* request,
      bundlev1::BatchCreateFederatedBundleResponse* response) override;
  grpc::Status BatchUpdateFederatedBundle(
      grpc::ServerContext* context, const bundlev1::BatchUpdateFederatedBundleRequest* request,
      bundlev1::BatchUpdateFederatedBundleResponse* response) override;
  grpc::Status BatchSetFederatedBundle(
      grpc::ServerContext* context, const bundlev1::BatchSetFederatedBundleRequest* request,
      bundlev1::BatchSetFederatedBundleResponse* response) override;
  grpc::Status BatchDeleteFederatedBundle(
      grpc::ServerContext* context, const bundlev1::BatchDeleteFederatedBundleRequest* request,
      bundlev1::BatchDeleteFederatedBundleResponse* response) override;

 private:
  // SPIRE's output_mask rule: null means every field; trust_domain is always returned.
  static void ApplyMask(const ::spire::api::types::BundleMask* mask,
                        ::spire::api::types::Bundle* bundle);

  // The shape the create, update and set batches share: one result per item in request order,
  // holding the item's status and, on success, the stored bundle under `output_mask`; one
  // BundleChanged when any item changed something. Defined in bundle_service_federated.cc.
  template <typename Result, typename One>
  void RunBatch(const google::protobuf::RepeatedPtrField<::spire::api::types::Bundle>& bundles,
                const ::spire::api::types::BundleMask* output_mask,
                google::protobuf::RepeatedPtrField<Result>* results, One one);

  // `text` names a trust domain other than the server's own; `own_message` is SPIRE's refusal.
  absl::StatusOr<spiffe::TrustDomain> FederatedTrustDomain(std::string_view text,
                                                           std::string_view own_message) const;
  // One item of each batch RPC: the bundle as stored, or the item's status.
  absl::StatusOr<::spire::api::types::Bundle> CreateOne(const ::spire::api::types::Bundle& in);
  absl::StatusOr<::spire::api::types::Bundle> UpdateOne(
      const ::spire::api::types::Bundle& in, const ::spire::api::types::BundleMask& input_mask);
  absl::StatusOr<::spire::api::types::Bundle> SetOne(const ::spire::api::types::Bundle& in);
  // Deletes the bundle and applies the affected entries to the index; the agents concerned are
  // added to `agents`.
  absl::Status DeleteOne(std::string_view trust_domain, BundleDeleteMode mode,
                         EntryIndex::AffectedAgents& agents);

  const ServiceDeps deps_;
};

}  // namespace tessera::server
