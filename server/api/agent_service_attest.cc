// AgentService: node attestation (AttestAgent), agent SVID renewal (RenewAgent) and PostStatus.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/text.h"
#include "grpcpp/alarm.h"
#include "server/api/agent_service.h"
#include "server/api/convert.h"
#include "server/api/grpc_status.h"
#include "spdlog/spdlog.h"
#include "spiffe/csr.h"

namespace tessera::server {
namespace {

namespace types = ::spire::api::types;
using attestors::NodeAttestationResult;
using attestors::NodeAttestationStep;

constexpr char kAttestAgent[] = "/spire.api.server.agent.v1.Agent/AttestAgent";
constexpr char kRenewAgent[] = "/spire.api.server.agent.v1.Agent/RenewAgent";
constexpr char kPostStatus[] = "/spire.api.server.agent.v1.Agent/PostStatus";

constexpr std::string_view kJoinTokenType = "join_token";
constexpr std::string_view kServerPath = "/spire/server";
constexpr size_t kMaxAgentVersionLength = 255;

absl::Status Internal(std::string_view context, const absl::Status& cause) {
  return absl::InternalError(absl::StrCat(AsAbsl(context), ": ", cause.message()));
}

// Cancels the call once `timeout` has passed, unless destroyed first. A synchronous handler
// blocked in Read() has no other way out when the client goes quiet.
class CallTimeout {
 public:
  CallTimeout(grpc::ServerContext* context, std::chrono::seconds timeout)
      : state_(std::make_shared<State>(context)) {
    alarm_.Set(std::chrono::system_clock::now() + timeout, [state = state_](bool fired) {
      if (!fired) return;  // cancelled: the handler finished in time
      absl::MutexLock lock(&state->mu);
      if (state->context != nullptr) state->context->TryCancel();
    });
  }
  ~CallTimeout() {
    {
      // The alarm may fire on another thread while we get here; after this it does nothing.
      absl::MutexLock lock(&state_->mu);
      state_->context = nullptr;
    }
    alarm_.Cancel();
  }
  CallTimeout(const CallTimeout&) = delete;
  CallTimeout& operator=(const CallTimeout&) = delete;

 private:
  struct State {
    explicit State(grpc::ServerContext* c) : context(c) {}
    absl::Mutex mu;
    grpc::ServerContext* context ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<State> state_;
  grpc::Alarm alarm_;
};

// SPIRE's checks of the first message, in SPIRE's order.
absl::Status ValidateParams(const agentv1::AttestAgentRequest& request) {
  std::string_view problem;
  if (!request.has_params()) {
    problem = "missing params";
  } else if (!request.params().has_data()) {
    problem = "missing attestation data";
  } else if (!request.params().has_params()) {
    problem = "missing X509-SVID parameters";
  } else if (request.params().params().csr().empty()) {
    problem = "missing CSR";
  } else if (request.params().data().type().empty()) {
    problem = "missing attestation data type";
  } else if (request.params().data().payload().empty()) {
    problem = "missing attestation data payload";
  } else {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("malformed param: ", AsAbsl(problem)));
}

void SvidToProto(const spiffe::SpiffeId& id, const ca::SignedX509Svid& svid, types::X509SVID* out) {
  *out->mutable_id() = IdToProto(id);
  for (const spiffe::Certificate& cert : svid.chain) out->add_cert_chain(cert.ToDer());
  out->set_expires_at(std::chrono::system_clock::to_time_t(svid.expires_at));
}

}  // namespace

grpc::Status AgentService::AttestAgent(grpc::ServerContext* context, Stream* stream) {
  if (auto caller = deps_.authorizer->Authorize(*context, kAttestAgent, Access::kAny);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  CallTimeout timeout(context, options_.attestation_timeout);
  absl::StatusOr<agentv1::AttestAgentResponse> response = Attest(*stream);
  if (!response.ok()) {
    spdlog::warn("agent attestation from {} failed: {}", context->peer(),
                 std::string(response.status().message()));
    return ToGrpcStatus(response.status());
  }
  if (!stream->Write(*response)) {
    return ToGrpcStatus(absl::InternalError("failed to send response over stream"));
  }
  return grpc::Status::OK;
}

absl::StatusOr<agentv1::AttestAgentResponse> AgentService::Attest(Stream& stream) const {
  agentv1::AttestAgentRequest request;
  if (!stream.Read(&request)) {
    return absl::InvalidArgumentError("failed to receive request from stream");
  }
  RETURN_IF_ERROR(ValidateParams(request));
  const agentv1::AttestAgentRequest::Params& params = request.params();
  const std::string& type = params.data().type();

  absl::StatusOr<NodeAttestationResult> result =
      type == kJoinTokenType && options_.join_token_enabled
          ? AttestJoinToken(params.data().payload())
          : AttestWithAttestor(stream, params);
  if (!result.ok()) return result.status();
  const spiffe::SpiffeId& agent_id = result->agent_id;

  // SPIRE compares the path only; an attestor must never mint the server's identity.
  if (agent_id.path() == kServerPath) {
    return absl::InternalError("agent ID cannot collide with the server ID");
  }
  if (!agent_id.MemberOf(deps_.trust_domain)) {
    return absl::InternalError(absl::StrCat("invalid agent ID: \"", agent_id.str(),
                                            "\" is not a member of trust domain \"",
                                            deps_.trust_domain.name(), "\""));
  }
  if (!agent_id.path().starts_with(absl::StrCat("/spire/agent/", type, "/"))) {
    // SPIRE tolerates this (existing deployments depend on it) and only warns.
    spdlog::warn("node attestor {} produced agent ID {} outside /spire/agent/{}/", type,
                 agent_id.str(), type);
  }

  ASSIGN_OR_RETURN(std::optional<AttestedNode> existing,
                   deps_.datastore->FetchAttestedNode(agent_id),
                   Internal("failed to fetch agent", _));
  if (existing.has_value() && existing->banned()) {
    return absl::PermissionDeniedError("failed to attest: agent is banned");
  }
  ASSIGN_OR_RETURN(ca::SignedX509Svid svid, SignAgentSvid(agent_id, params.params().csr()));
  RETURN_IF_ERROR(StoreAttestedNode(existing, type, *result, svid));
  spdlog::info("agent attested: {} ({}), SVID serial {}", agent_id.str(), type,
               svid.chain.front().SerialDecimal());

  agentv1::AttestAgentResponse response;
  SvidToProto(agent_id, svid, response.mutable_result()->mutable_svid());
  response.mutable_result()->set_reattestable(result->can_reattest);
  return response;
}

absl::StatusOr<NodeAttestationResult> AgentService::AttestJoinToken(std::string_view token) const {
  // Taking the token deletes it before its expiry is judged: a token is spent by any attempt.
  absl::StatusOr<JoinToken> taken = deps_.datastore->TakeJoinToken(token);
  if (absl::IsNotFound(taken.status())) {
    return absl::InvalidArgumentError(
        "failed to attest: join token does not exist or has already been used");
  }
  if (!taken.ok()) return Internal("failed to fetch join token", taken.status());
  if (std::chrono::system_clock::from_time_t(taken->expires_at) < deps_.clock->Now()) {
    return absl::InvalidArgumentError("join token expired");
  }
  ASSIGN_OR_RETURN(
      spiffe::SpiffeId agent_id,
      spiffe::SpiffeId::FromSegments(deps_.trust_domain, {"spire", "agent", "join_token", token}),
      Internal("failed to create join token ID", _));
  return NodeAttestationResult{
      .agent_id = std::move(agent_id), .selectors = {}, .can_reattest = false};
}

absl::StatusOr<NodeAttestationResult> AgentService::AttestWithAttestor(
    Stream& stream, const agentv1::AttestAgentRequest::Params& params) const {
  const std::string& type = params.data().type();
  auto it = options_.node_attestors.find(type);
  if (it == options_.node_attestors.end() || it->second == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "error getting node attestor: could not find node attestor type ", tessera::Quoted(type)));
  }
  const std::string prefix = absl::StrCat("nodeattestor(", type, "): ");
  std::unique_ptr<attestors::ServerNodeAttestation> conversation =
      it->second->Begin(deps_.trust_domain);
  if (conversation == nullptr) {
    return absl::InternalError(absl::StrCat(prefix, "failed to begin attestation"));
  }
  std::string input = params.data().payload();
  int challenges = 0;
  while (true) {
    absl::StatusOr<NodeAttestationStep> step = conversation->Next(input);
    if (!step.ok()) {
      // The attestor's code is kept; its message gets SPIRE's plugin prefix.
      return absl::Status(step.status().code(), absl::StrCat(prefix, step.status().message()));
    }
    if (step->result.has_value()) return *std::move(step->result);
    if (!step->challenge.has_value()) {
      return absl::InternalError(
          absl::StrCat(prefix, "attestor returned neither a challenge nor a result"));
    }
    if (++challenges > options_.max_challenges) {
      return absl::InternalError(absl::StrCat(prefix, "too many challenges"));
    }
    agentv1::AttestAgentResponse challenge;
    challenge.set_challenge(*std::move(step->challenge));
    if (!stream.Write(challenge)) {
      return absl::InternalError("failed to send challenge to agent");
    }
    agentv1::AttestAgentRequest reply;
    if (!stream.Read(&reply)) {
      return absl::InternalError("failed to receive challenge response from agent");
    }
    // As SPIRE: whatever else the agent sent counts as an empty response.
    input = reply.challenge_response();
  }
}

absl::Status AgentService::StoreAttestedNode(const std::optional<AttestedNode>& existing,
                                             std::string_view attestation_type,
                                             const NodeAttestationResult& result,
                                             const ca::SignedX509Svid& svid) const {
  const std::string serial = svid.chain.front().SerialDecimal();
  const int64_t not_after = std::chrono::system_clock::to_time_t(svid.expires_at);
  bool update = existing.has_value();
  if (!update) {
    AttestedNode node{.id = result.agent_id,
                      .attestation_type = std::string(attestation_type),
                      .cert_serial = serial,
                      .cert_not_after = not_after,
                      .new_cert_serial = "",
                      .new_cert_not_after = 0,
                      .can_reattest = result.can_reattest,
                      .agent_version = "",
                      .selectors = result.selectors};
    absl::StatusOr<AttestedNode> created = deps_.datastore->CreateAttestedNode(node);
    // Another attestation of the same agent got there first: take over its record.
    update = absl::IsAlreadyExists(created.status());
    if (!created.ok() && !update) {
      return Internal("failed to create attested agent", created.status());
    }
  }
  if (update) {
    // A fresh attestation replaces the SVID in use and voids any pending renewal.
    AttestedNode node{.id = result.agent_id,
                      .attestation_type = "",
                      .cert_serial = serial,
                      .cert_not_after = not_after,
                      .new_cert_serial = "",
                      .new_cert_not_after = 0,
                      .can_reattest = result.can_reattest,
                      .agent_version = "",
                      .selectors = result.selectors};
    NodeMask mask;
    mask.cert_serial = mask.cert_not_after = true;
    mask.new_cert_serial = mask.new_cert_not_after = true;
    mask.can_reattest = mask.selectors = true;
    absl::StatusOr<AttestedNode> updated = deps_.datastore->UpdateAttestedNode(node, mask);
    if (!updated.ok()) return Internal("failed to update attested agent", updated.status());
  }
  Notify(deps_.index->UpsertNode(result.agent_id, result.selectors));
  return absl::OkStatus();
}

absl::StatusOr<ca::SignedX509Svid> AgentService::SignAgentSvid(const spiffe::SpiffeId& agent_id,
                                                               std::string_view csr) const {
  // Only the public key is used; the agent's identity comes from attestation.
  absl::StatusOr<spiffe::ParsedCsr> parsed = spiffe::ParseCsr(csr);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("failed to parse CSR: ", parsed.status().message()));
  }
  absl::StatusOr<ca::SignedX509Svid> svid =
      deps_.ca->SignAgentSvid(parsed->public_key, agent_id, options_.agent_ttl);
  if (!svid.ok()) return Internal("failed to sign X509 SVID", svid.status());
  return svid;
}

grpc::Status AgentService::RenewAgent(grpc::ServerContext* context,
                                      const agentv1::RenewAgentRequest* request,
                                      agentv1::RenewAgentResponse* response) {
  absl::StatusOr<Caller> caller =
      deps_.authorizer->Authorize(*context, kRenewAgent, Access::kAgent);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (!caller->id.has_value()) {
    return ToGrpcStatus(absl::InternalError("caller ID missing from request context"));
  }
  const spiffe::SpiffeId& agent_id = *caller->id;
  absl::StatusOr<std::optional<AttestedNode>> node = deps_.datastore->FetchAttestedNode(agent_id);
  if (!node.ok()) return ToGrpcStatus(Internal("failed to fetch agent", node.status()));
  if (!node->has_value()) return ToGrpcStatus(absl::NotFoundError("agent not found"));
  if ((*node)->can_reattest) {
    return ToGrpcStatus(
        PermissionDeniedWithReason("agent must reattest instead of renew",
                                   types::PermissionDeniedDetails::AGENT_MUST_REATTEST));
  }
  if (!request->has_params()) {
    return ToGrpcStatus(absl::InvalidArgumentError("params cannot be nil"));
  }
  if (request->params().csr().empty()) {
    return ToGrpcStatus(absl::InvalidArgumentError("missing CSR"));
  }
  absl::StatusOr<ca::SignedX509Svid> svid = SignAgentSvid(agent_id, request->params().csr());
  if (!svid.ok()) return ToGrpcStatus(svid.status());

  // The current SVID keeps working until the new one is first used (the agent check promotes
  // it then), so an agent that never receives this answer is not locked out.
  AttestedNode renewed = **node;
  renewed.new_cert_serial = svid->chain.front().SerialDecimal();
  renewed.new_cert_not_after = std::chrono::system_clock::to_time_t(svid->expires_at);
  NodeMask mask;
  mask.new_cert_serial = mask.new_cert_not_after = true;
  absl::StatusOr<AttestedNode> updated = deps_.datastore->UpdateAttestedNode(renewed, mask);
  if (absl::IsNotFound(updated.status())) {
    return ToGrpcStatus(absl::NotFoundError("agent not found"));
  }
  if (!updated.ok()) return ToGrpcStatus(Internal("failed to update agent", updated.status()));
  SvidToProto(agent_id, *svid, response->mutable_svid());
  return grpc::Status::OK;
}

grpc::Status AgentService::PostStatus(grpc::ServerContext* context,
                                      const agentv1::PostStatusRequest* request,
                                      agentv1::PostStatusResponse* /*response*/) {
  absl::StatusOr<Caller> caller =
      deps_.authorizer->Authorize(*context, kPostStatus, Access::kAgent);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (!caller->id.has_value()) {
    return ToGrpcStatus(absl::InternalError("caller ID missing from request context"));
  }
  const std::string& version = request->agent_version();
  if (version.empty()) return grpc::Status::OK;
  if (version.size() > kMaxAgentVersionLength) {
    return ToGrpcStatus(
        absl::InvalidArgumentError("agent version is too long (max 255 characters)"));
  }
  AttestedNode node{.id = *caller->id};
  node.agent_version = version;
  NodeMask mask;
  mask.agent_version = true;
  absl::StatusOr<AttestedNode> updated = deps_.datastore->UpdateAttestedNode(node, mask);
  if (absl::IsNotFound(updated.status())) {
    return ToGrpcStatus(absl::NotFoundError("agent not found"));
  }
  if (!updated.ok()) return ToGrpcStatus(Internal("failed to update agent", updated.status()));
  return grpc::Status::OK;
}

}  // namespace tessera::server
