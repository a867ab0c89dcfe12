// Helpers shared by the server client's .cc files (server_client*.cc); not part of its API.
// Stateless functions: thread-safe.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "grpcpp/support/status.h"

namespace tessera::agent::server_client_internal {

// A gRPC status as ours, keeping its code, the message prefixed with `what`.
inline absl::Status FromGrpc(const grpc::Status& status, std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(AsAbsl(what), ": ", status.error_message()));
}

// A protocol violation by the server.
inline absl::Status Protocol(std::string_view what, std::string_view problem) {
  return absl::InternalError(absl::StrCat(AsAbsl(what), ": ", AsAbsl(problem)));
}

}  // namespace tessera::agent::server_client_internal
