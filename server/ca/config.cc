#include "server/ca/config.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/units.h"

namespace tessera::server::ca {
namespace {

absl::Status CheckTtl(std::string_view name, std::chrono::seconds ttl, bool zero_means_default) {
  if (ttl.count() < 0 || (ttl.count() == 0 && !zero_means_default)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ca config: ", AsAbsl(name), " must be positive, got ",
                     FormatDuration(std::chrono::duration_cast<std::chrono::nanoseconds>(ttl))));
  }
  if (ttl > kMaxCaTtl) {
    return absl::InvalidArgumentError(
        absl::StrCat("ca config: ", AsAbsl(name), " is longer than 10 years"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateCaConfig(const CaConfig& config) {
  RETURN_IF_ERROR(CheckTtl("ca_ttl", config.ca_ttl, false));
  RETURN_IF_ERROR(CheckTtl("jwt_key_ttl", config.jwt_key_ttl, true));
  RETURN_IF_ERROR(CheckTtl("default_x509_svid_ttl", config.default_x509_svid_ttl, false));
  RETURN_IF_ERROR(CheckTtl("default_jwt_svid_ttl", config.default_jwt_svid_ttl, false));
  RETURN_IF_ERROR(CheckTtl("agent_ttl", config.agent_ttl, true));
  if (config.upstream.has_value()) {
    if (config.upstream->cert_file_path.empty()) {
      return absl::InvalidArgumentError("ca config: upstream_authority.disk needs cert_file_path");
    }
    if (config.upstream->key_file_path.empty()) {
      return absl::InvalidArgumentError("ca config: upstream_authority.disk needs key_file_path");
    }
  }
  return absl::OkStatus();
}

}  // namespace tessera::server::ca
