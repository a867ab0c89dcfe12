// Internals of WorkloadApiClient shared by its .cc files and tests: the conversion of Workload
// API responses into the client's types. Each conversion checks what the standard makes
// mandatory and returns InvalidArgument naming the offending field; the client reports such a
// response as malformed. Thread-safe (stateless).
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"
#include "spiffe/bundle.h"
#include "spiffe/id.h"
#include "spiffe/workload/workload.pb.h"
#include "spiffe/workload_client.h"

namespace tessera::spiffe::internal {

// Longest hint accepted (the standard says longer ones should not be supported).
inline constexpr size_t kMaxHintBytes = 1024;

// A bundle map key: "spiffe://<td>" as the standard writes it, or a bare trust-domain name (as
// go-spiffe also accepts).
absl::StatusOr<TrustDomain> TrustDomainFromBundleKey(std::string_view key);

absl::StatusOr<X509Context> X509ContextFromResponse(const ::X509SVIDResponse& response);
absl::StatusOr<BundleSet> X509BundlesFromResponse(const ::X509BundlesResponse& response);
absl::StatusOr<BundleSet> JwtBundlesFromResponse(const ::JWTBundlesResponse& response);
absl::StatusOr<std::vector<WorkloadJwtSvid>> JwtSvidsFromResponse(
    const ::JWTSVIDResponse& response);
absl::StatusOr<ValidatedJwtSvid> ValidatedJwtSvidFromResponse(
    const ::ValidateJWTSVIDResponse& response);

// protobuf Struct → JSON object; integral numbers within ±2^53 become integers.
nlohmann::json StructToJson(const google::protobuf::Struct& value);

}  // namespace tessera::spiffe::internal
