// AgentService: SPIRE's /spire.api.server.agent.v1.Agent service (SPIRE-API-FACTS §3-§6):
//   - AttestAgent (open to anyone): node attestation over a bidirectional stream — join_token
//     inline against the datastore's token table, any other type through the configured
//     attestors::ServerNodeAttestor's challenge/response conversation — ending in an agent SVID
//     and the node record the agent check (§3) relies on;
//   - RenewAgent and PostStatus (an active agent over mTLS);
//   - ListAgents, GetAgent, CountAgents, DeleteAgent, BanAgent and CreateJoinToken (admin).
// Codes and messages are SPIRE's. Every successful write of nodes or entries is applied to the
// authorized-entry index and the affected agents are announced to the notifier.
//
// AttestAgent uses the synchronous API and holds a gRPC thread for the conversation, so each
// stream is bounded: at most `max_challenges` challenges and `attestation_timeout` in all, after
// which the call is cancelled.
//
// Thread-safe: immutable after construction; the ServiceDeps collaborators and the attestors are
// safe for concurrent use and outlive the service (one attestation conversation belongs to one
// stream).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "attestors/node_attestor.h"
#include "grpcpp/server_context.h"
#include "server/api/service_deps.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"

namespace tessera::server {

namespace agentv1 = ::spire::api::server::agent::v1;

struct AgentServiceOptions {
  // [node_attestor.join_token] is configured: "join_token" attestation is served inline.
  // Otherwise that type is unknown like any unconfigured one.
  bool join_token_enabled = false;
  // The server halves of the configured node attestors, keyed by attestation data type. Not
  // owned; each must outlive the service.
  std::map<std::string, const attestors::ServerNodeAttestor*, std::less<>> node_attestors;
  // TTL of agent SVIDs; 0 means the CA's default (agent_ttl, else default_x509_svid_ttl).
  std::chrono::seconds agent_ttl{0};
  // Bounds on one AttestAgent stream (Tessera's; SPIRE relies on rate limiting instead).
  std::chrono::seconds attestation_timeout{30};
  int max_challenges = 5;
};

class AgentService final : public agentv1::Agent::Service {
 public:
  AgentService(const ServiceDeps& deps, AgentServiceOptions options)
      : deps_(deps), options_(std::move(options)) {}

  AgentService(const AgentService&) = delete;
  AgentService& operator=(const AgentService&) = delete;

  grpc::Status CountAgents(grpc::ServerContext* context, const agentv1::CountAgentsRequest* request,
                           agentv1::CountAgentsResponse* response) override;
  grpc::Status ListAgents(grpc::ServerContext* context, const agentv1::ListAgentsRequest* request,
                          agentv1::ListAgentsResponse* response) override;
  grpc::Status GetAgent(grpc::ServerContext* context, const agentv1::GetAgentRequest* request,
                        ::spire::api::types::Agent* response) override;
  grpc::Status DeleteAgent(grpc::ServerContext* context, const agentv1::DeleteAgentRequest* request,
                           ::google::protobuf::Empty* response) override;
  grpc::Status BanAgent(grpc::ServerContext* context, const agentv1::BanAgentRequest* request,
                        ::google::protobuf::Empty* response) override;
  grpc::Status AttestAgent(grpc::ServerContext* context,
                           grpc::ServerReaderWriter<agentv1::AttestAgentResponse,
                                                    agentv1::AttestAgentRequest>* stream) override;
  grpc::Status RenewAgent(grpc::ServerContext* context, const agentv1::RenewAgentRequest* request,
                          agentv1::RenewAgentResponse* response) override;
  grpc::Status CreateJoinToken(grpc::ServerContext* context,
                               const agentv1::CreateJoinTokenRequest* request,
                               ::spire::api::types::JoinToken* response) override;
  grpc::Status PostStatus(grpc::ServerContext* context, const agentv1::PostStatusRequest* request,
                          agentv1::PostStatusResponse* response) override;

 private:
  using Stream =
      grpc::ServerReaderWriter<agentv1::AttestAgentResponse, agentv1::AttestAgentRequest>;

  // The whole attestation after authorization: the result to send, or the error to end with.
  absl::StatusOr<agentv1::AttestAgentResponse> Attest(Stream& stream) const;
  // join_token: the token is used up whether or not it is still valid.
  absl::StatusOr<attestors::NodeAttestationResult> AttestJoinToken(std::string_view token) const;
  // Any other type: the attestor's conversation, relaying its challenges over `stream`.
  absl::StatusOr<attestors::NodeAttestationResult> AttestWithAttestor(
      Stream& stream, const agentv1::AttestAgentRequest::Params& params) const;
  // Stores the node (created, or updated with the new SVID) and announces it.
  absl::Status StoreAttestedNode(const std::optional<AttestedNode>& existing,
                                 std::string_view attestation_type,
                                 const attestors::NodeAttestationResult& result,
                                 const ca::SignedX509Svid& svid) const;
  // An agent SVID for the CSR's public key (the CSR's own identity fields are ignored).
  absl::StatusOr<ca::SignedX509Svid> SignAgentSvid(const spiffe::SpiffeId& agent_id,
                                                   std::string_view csr) const;
  // The alias entry CreateJoinToken makes for its agent_id.
  absl::Status CreateJoinTokenEntry(const spiffe::SpiffeId& token_agent_id,
                                    const spiffe::SpiffeId& agent_id) const;

  // After every successful write. `agent` (when set) is announced too: a deleted or banned
  // agent must learn at once that its authorization is gone.
  void Notify(EntryIndex::AffectedAgents agents,
              const std::optional<spiffe::SpiffeId>& agent = std::nullopt) const;

  // Immutable after construction.
  const ServiceDeps deps_;
  const AgentServiceOptions options_;
};

}  // namespace tessera::server
