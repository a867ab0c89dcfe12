#include "server/api/grpc_status.h"

#include <string>

#include "absl/strings/cord.h"
#include "common/strings.h"
#include "google/rpc/status.pb.h"

namespace tessera::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message(status.message());
  google::rpc::Status details;
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    google::protobuf::Any* any = details.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(payload));
  });
  if (details.details_size() == 0) return grpc::Status(code, message);
  details.set_code(static_cast<int32_t>(code));
  details.set_message(message);
  return grpc::Status(code, message, details.SerializeAsString());
}

absl::Status PermissionDeniedWithReason(std::string_view message,
                                        spire::api::types::PermissionDeniedDetails::Reason reason) {
  absl::Status status = absl::PermissionDeniedError(AsAbsl(message));
  spire::api::types::PermissionDeniedDetails details;
  details.set_reason(reason);
  status.SetPayload(kPermissionDeniedDetailsUrl, absl::Cord(details.SerializeAsString()));
  return status;
}

}  // namespace tessera::server
