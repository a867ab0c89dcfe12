#include "agent/workload_attestors.h"

#include <cstdint>
#include <limits>

#include "attestors/unix/unix.h"
#include "common/status.h"

namespace tessera::agent {

absl::StatusOr<std::vector<std::shared_ptr<attestors::WorkloadAttestor>>> NewWorkloadAttestors(
    const AgentConfig& config) {
  std::vector<std::shared_ptr<attestors::WorkloadAttestor>> out;
  if (config.unix_attestor.has_value()) {
    attestors::unix::Config unix_config;
    unix_config.discover_workload_path = config.unix_attestor->discover_workload_path;
    unix_config.workload_size_limit = static_cast<int64_t>(
        std::min<uint64_t>(config.unix_attestor->workload_size_limit,
                           static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
    ASSIGN_OR_RETURN(std::unique_ptr<attestors::WorkloadAttestor> unix_attestor,
                     attestors::unix::NewAttestor(unix_config));
    out.push_back(std::move(unix_attestor));
  }
  if (out.empty()) {
    return absl::InvalidArgumentError("no workload attestor configured");
  }
  return out;
}

}  // namespace tessera::agent
