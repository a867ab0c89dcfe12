// The one place where our absl::Status becomes a gRPC status on the wire.
//
// Typed error details travel as absl::Status payloads keyed by their Any type URL (see
// WithPermissionDeniedReason); ToGrpcStatus packs them into a google.rpc.Status sent in the
// `grpc-status-details-bin` trailer, as SPIRE does for PermissionDeniedDetails. Stateless.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"
#include "spire/api/types/permissiondenieddetails.pb.h"

namespace tessera::server {

inline constexpr char kPermissionDeniedDetailsUrl[] =
    "type.googleapis.com/spire.api.types.PermissionDeniedDetails";

grpc::Status ToGrpcStatus(const absl::Status& status);

// A PermissionDenied status carrying SPIRE's reason for a refused agent.
absl::Status PermissionDeniedWithReason(std::string_view message,
                                        spire::api::types::PermissionDeniedDetails::Reason reason);

}  // namespace tessera::server
