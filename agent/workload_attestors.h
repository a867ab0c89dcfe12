// The workload attestors this agent build has, listed by hand (no static registration: static
// linking silently drops self-registering plugins). Each configured [workload_attestor.<name>]
// table becomes one attestor; the agent runs all of them for every Workload API caller.
// Stateless; safe to call from any thread.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/config.h"
#include "attestors/workload_attestor.h"

namespace tessera::agent {

// One attestor per configured table, in a fixed order (unix first).
absl::StatusOr<std::vector<std::shared_ptr<attestors::WorkloadAttestor>>> NewWorkloadAttestors(
    const AgentConfig& config);

}  // namespace tessera::agent
