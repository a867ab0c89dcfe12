// BundleService: SPIRE's /spire.api.server.bundle.v1.Bundle service over the datastore's bundles
// (SPIRE-API-FACTS §10). Served: GetBundle (open to anyone), AppendBundle and CountBundles
// (admin), GetFederatedBundle (admin or agent). Every other RPC of the service is not overridden
// and answers UNIMPLEMENTED.
//
// Thread-safe: holds no state of its own; the ServiceDeps collaborators are safe for concurrent
// use and outlive the service.
#pragma once

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

 private:
  const ServiceDeps deps_;
};

}  // namespace tessera::server
