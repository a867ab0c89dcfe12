// Node attestation: how an agent proves which node it runs on, as two halves of one protocol.
// The agent half produces the attestation payload and answers challenges; the server half
// checks them and concludes with the agent's SPIFFE ID and node selectors. The bytes exchanged
// are exactly those SPIRE's plugins exchange (SPIRE-API-FACTS §5), so either half works against
// SPIRE's other half. join_token is not here: its server half is the datastore's token table, so
// the server's Agent service handles it inline, as SPIRE does.
//
// Thread-safety: attestors are immutable after construction and safe for concurrent use; an
// attestation (one conversation) belongs to one AttestAgent stream and is not thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "spiffe/id.h"
#include "spiffe/selector.h"

namespace tessera::attestors {

// What the server half concluded.
struct NodeAttestationResult {
  spiffe::SpiffeId agent_id;
  spiffe::SelectorSet selectors;
  bool can_reattest = false;
};

// One step of a conversation: a challenge to send to the agent, or the result. Exactly one is
// set.
struct NodeAttestationStep {
  std::optional<std::string> challenge;
  std::optional<NodeAttestationResult> result;
};

// One attestation conversation on the server.
class ServerNodeAttestation {
 public:
  virtual ~ServerNodeAttestation() = default;
  // Called first with the agent's payload, then with the response to each challenge. Errors
  // carry the code the server returns (INVALID_ARGUMENT for malformed data, PERMISSION_DENIED for
  // failed verification, ...) and SPIRE's message without the "nodeattestor(<type>): " prefix,
  // which the service adds.
  virtual absl::StatusOr<NodeAttestationStep> Next(std::string_view bytes) = 0;
};

// The server half of one attestor type.
class ServerNodeAttestor {
 public:
  virtual ~ServerNodeAttestor() = default;
  // The attestation data type the agent sends ("x509pop").
  virtual std::string_view type() const = 0;
  // A new conversation for an agent of `trust_domain`.
  virtual std::unique_ptr<ServerNodeAttestation> Begin(
      const spiffe::TrustDomain& trust_domain) const = 0;
};

// The agent half of one attestor type. One attestation at a time per object.
class AgentNodeAttestor {
 public:
  virtual ~AgentNodeAttestor() = default;
  virtual std::string_view type() const = 0;
  // The attestation payload for a new attestation (re-read from disk each time, so rotated
  // node certificates are picked up).
  virtual absl::StatusOr<std::string> Payload() = 0;
  // The response to a challenge of the attestation Payload() started.
  virtual absl::StatusOr<std::string> RespondToChallenge(std::string_view challenge) = 0;
};

}  // namespace tessera::attestors
