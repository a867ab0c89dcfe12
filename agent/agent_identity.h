// The agent's own identity as the rest of the agent sees it: the current agent SVID (and key)
// with the trust bundle it was verified against. The attestation manager owns it (attests,
// persists, renews at half-life, re-attests); the server client borrows it for every mTLS call.
//
// Thread-safety: implementations are safe to call from any thread.
#pragma once

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "agent/state_store.h"

namespace tessera::agent {

class AgentIdentitySource {
 public:
  virtual ~AgentIdentitySource() = default;

  // The current agent SVID and bundle; nullptr before the first attestation and after the agent
  // lost its identity (evicted, banned, expired without a way to re-attest).
  virtual std::shared_ptr<const AgentState> CurrentAgentState() const = 0;

  // Called with each new state (renewal, re-attestation, a bundle refresh) on the manager's
  // thread; the server client rebuilds its channel on it. Register before the manager starts.
  virtual void OnAgentStateChange(std::function<void(std::shared_ptr<const AgentState>)> fn) = 0;

  // Tells the manager the server refused the current agent SVID on an mTLS call (PERMISSION_DENIED
  // or UNAUTHENTICATED from an agent RPC, or a handshake failure after the SVID's expiry): it
  // decides whether to renew, re-attest, or report that an operator must act.
  virtual void ReportRejected(const absl::Status& status) = 0;
};

}  // namespace tessera::agent
