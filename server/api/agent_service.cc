// AgentService: the admin RPCs (list, get, count, delete, ban, join tokens) and what the whole
// service shares. Attestation and renewal are in agent_service_attest.cc.
#include "server/api/agent_service.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/api/convert.h"
#include "server/api/grpc_status.h"
#include "spdlog/spdlog.h"

namespace tessera::server {
namespace {

namespace types = ::spire::api::types;

constexpr char kCountAgents[] = "/spire.api.server.agent.v1.Agent/CountAgents";
constexpr char kListAgents[] = "/spire.api.server.agent.v1.Agent/ListAgents";
constexpr char kGetAgent[] = "/spire.api.server.agent.v1.Agent/GetAgent";
constexpr char kDeleteAgent[] = "/spire.api.server.agent.v1.Agent/DeleteAgent";
constexpr char kBanAgent[] = "/spire.api.server.agent.v1.Agent/BanAgent";
constexpr char kCreateJoinToken[] = "/spire.api.server.agent.v1.Agent/CreateJoinToken";

// SPIRE's "<context>: <cause>" for server-side failures.
absl::Status Internal(std::string_view context, const absl::Status& cause) {
  return absl::InternalError(absl::StrCat(AsAbsl(context), ": ", cause.message()));
}

absl::Status InvalidAgentId(absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("invalid agent ID: ", reason));
}

// The ID a request names, parsed with SPIRE's messages up to the namespace check.
absl::StatusOr<spiffe::SpiffeId> RequestId(bool present, const types::SPIFFEID& proto) {
  if (!present) return InvalidAgentId("request must specify SPIFFE ID");
  absl::StatusOr<spiffe::SpiffeId> id = IdFromProto(proto);
  if (!id.ok()) return InvalidAgentId(id.status().message());
  return id;
}

// An agent the admin RPCs act on: in our trust domain under /spire/agent/.
absl::StatusOr<spiffe::SpiffeId> AgentIdFromRequest(bool present, const types::SPIFFEID& proto,
                                                    const spiffe::TrustDomain& td) {
  ASSIGN_OR_RETURN(spiffe::SpiffeId id, RequestId(present, proto));
  if (absl::Status valid = ValidateAgentId(id, td); !valid.ok()) {
    return InvalidAgentId(valid.message());
  }
  return id;
}

// CreateJoinToken's agent_id: a workload ID of our trust domain.
absl::StatusOr<spiffe::SpiffeId> WorkloadIdFromRequest(const types::SPIFFEID& proto,
                                                       const spiffe::TrustDomain& td) {
  ASSIGN_OR_RETURN(spiffe::SpiffeId id, RequestId(true, proto));
  if (absl::Status valid = ValidateWorkloadId(id, td); !valid.ok()) {
    return InvalidAgentId(valid.message());
  }
  return id;
}

// Reads exactly `n` decimal digits at `pos`.
std::optional<int> Digits(std::string_view text, size_t& pos, size_t n) {
  if (pos + n > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = text[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += n;
  return value;
}

bool Literal(std::string_view text, size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

// A "+hhmm" (digits = 4) or "+hh" (digits = 2) zone offset, in seconds.
std::optional<int64_t> ZoneOffset(std::string_view text, size_t& pos, size_t digits) {
  if (pos >= text.size() || (text[pos] != '+' && text[pos] != '-')) return std::nullopt;
  int sign = text[pos] == '-' ? -1 : 1;
  ++pos;
  std::optional<int> hours = Digits(text, pos, 2);
  std::optional<int> minutes = digits == 4 ? Digits(text, pos, 2) : std::optional<int>(0);
  if (!hours || !minutes || *hours > 24 || *minutes > 59) return std::nullopt;
  return sign * (int64_t{*hours} * 3600 + int64_t{*minutes} * 60);
}

// by_expires_before in Go's layout "2006-01-02 15:04:05 -0700 -07" (a fractional second after
// the seconds is accepted, as Go does), as Unix seconds. Like Go, the later "-07" offset is the
// one that counts. Anything else is nullopt: SPIRE ignores an unparsable value.
std::optional<int64_t> ParseExpiresBefore(std::string_view text) {
  size_t pos = 0;
  std::optional<int> year = Digits(text, pos, 4);
  if (!year || !Literal(text, pos, '-')) return std::nullopt;
  std::optional<int> month = Digits(text, pos, 2);
  if (!month || !Literal(text, pos, '-')) return std::nullopt;
  std::optional<int> day = Digits(text, pos, 2);
  if (!day || !Literal(text, pos, ' ')) return std::nullopt;
  std::optional<int> hour = Digits(text, pos, 2);
  if (!hour || !Literal(text, pos, ':')) return std::nullopt;
  std::optional<int> minute = Digits(text, pos, 2);
  if (!minute || !Literal(text, pos, ':')) return std::nullopt;
  std::optional<int> second = Digits(text, pos, 2);
  if (!second) return std::nullopt;
  if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
    size_t start = ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == start) return std::nullopt;
  }
  if (!Literal(text, pos, ' ') || !ZoneOffset(text, pos, 4) || !Literal(text, pos, ' ')) {
    return std::nullopt;
  }
  std::optional<int64_t> offset = ZoneOffset(text, pos, 2);
  if (!offset || pos != text.size()) return std::nullopt;
  if (*month < 1 || *month > 12 || *hour > 23 || *minute > 59 || *second > 59) return std::nullopt;
  absl::CivilSecond civil(*year, *month, *day, *hour, *minute, *second);
  if (civil.day() != *day) return std::nullopt;  // normalized: no such day in that month
  return absl::ToUnixSeconds(absl::FromCivil(civil, absl::UTCTimeZone())) - *offset;
}

// CountAgentsRequest.Filter and ListAgentsRequest.Filter have the same fields.
template <typename ProtoFilter>
absl::StatusOr<NodeFilter> FilterFromProto(const ProtoFilter& in) {
  NodeFilter filter;
  if (!in.by_attestation_type().empty()) filter.by_attestation_type = in.by_attestation_type();
  if (in.has_by_selector_match()) {
    absl::StatusOr<spiffe::SelectorSet> selectors =
        SelectorsFromProto(in.by_selector_match().selectors());
    if (!selectors.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("failed to parse selectors: ", selectors.status().message()));
    }
    int match = in.by_selector_match().match();
    if (match < 0 || match > static_cast<int>(MatchBehavior::kAny)) {
      return absl::InvalidArgumentError(
          absl::StrCat("failed to parse selectors: unknown match behavior ", match));
    }
    filter.by_selector_match =
        SelectorMatch{*std::move(selectors), static_cast<MatchBehavior>(match)};
  }
  if (in.has_by_banned()) filter.by_banned = in.by_banned().value();
  if (in.has_by_can_reattest()) filter.by_can_reattest = in.by_can_reattest().value();
  if (!in.by_expires_before().empty()) {
    filter.by_expires_before = ParseExpiresBefore(in.by_expires_before());
  }
  return filter;
}

}  // namespace

void AgentService::Notify(EntryIndex::AffectedAgents agents,
                          const std::optional<spiffe::SpiffeId>& agent) const {
  if (agent.has_value()) {
    auto it = std::lower_bound(agents.begin(), agents.end(), *agent);
    if (it == agents.end() || *it != *agent) agents.insert(it, *agent);
  }
  if (deps_.notifier != nullptr && !agents.empty()) deps_.notifier->EntriesChanged(agents);
}

grpc::Status AgentService::CountAgents(grpc::ServerContext* context,
                                       const agentv1::CountAgentsRequest* request,
                                       agentv1::CountAgentsResponse* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kCountAgents, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  absl::StatusOr<NodeFilter> filter = FilterFromProto(request->filter());
  if (!filter.ok()) return ToGrpcStatus(filter.status());
  absl::StatusOr<int64_t> count = deps_.datastore->CountAttestedNodes(*filter);
  if (!count.ok()) return ToGrpcStatus(Internal("failed to count agents", count.status()));
  response->set_count(static_cast<int32_t>(*count));
  return grpc::Status::OK;
}

grpc::Status AgentService::ListAgents(grpc::ServerContext* context,
                                      const agentv1::ListAgentsRequest* request,
                                      agentv1::ListAgentsResponse* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kListAgents, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  absl::StatusOr<NodeFilter> filter = FilterFromProto(request->filter());
  if (!filter.ok()) return ToGrpcStatus(filter.status());
  // As SPIRE: a page size of 0 or less lists everything and ignores the token.
  PageRequest page_request;
  if (request->page_size() > 0) {
    page_request = PageRequest{.page_size = request->page_size(), .token = request->page_token()};
  }
  absl::StatusOr<Page<AttestedNode>> page =
      deps_.datastore->ListAttestedNodes(*filter, page_request);
  if (!page.ok()) {
    // A garbage page token is the client's fault; anything else is ours.
    if (absl::IsInvalidArgument(page.status())) {
      return ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrCat("failed to list agents: ", page.status().message())));
    }
    return ToGrpcStatus(Internal("failed to list agents", page.status()));
  }
  const types::AgentMask* mask = request->has_output_mask() ? &request->output_mask() : nullptr;
  for (const AttestedNode& node : page->items) *response->add_agents() = NodeToProto(node, mask);
  response->set_next_page_token(page->next_token);
  return grpc::Status::OK;
}

grpc::Status AgentService::GetAgent(grpc::ServerContext* context,
                                    const agentv1::GetAgentRequest* request,
                                    types::Agent* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kGetAgent, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  absl::StatusOr<spiffe::SpiffeId> id =
      AgentIdFromRequest(request->has_id(), request->id(), deps_.trust_domain);
  if (!id.ok()) return ToGrpcStatus(id.status());
  absl::StatusOr<std::optional<AttestedNode>> node = deps_.datastore->FetchAttestedNode(*id);
  if (!node.ok()) return ToGrpcStatus(Internal("failed to fetch agent", node.status()));
  if (!node->has_value()) return ToGrpcStatus(absl::NotFoundError("agent not found"));
  *response = NodeToProto(**node, request->has_output_mask() ? &request->output_mask() : nullptr);
  return grpc::Status::OK;
}

grpc::Status AgentService::DeleteAgent(grpc::ServerContext* context,
                                       const agentv1::DeleteAgentRequest* request,
                                       ::google::protobuf::Empty* /*response*/) {
  if (auto caller = deps_.authorizer->Authorize(*context, kDeleteAgent, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  absl::StatusOr<spiffe::SpiffeId> id =
      AgentIdFromRequest(request->has_id(), request->id(), deps_.trust_domain);
  if (!id.ok()) return ToGrpcStatus(id.status());
  absl::StatusOr<AttestedNode> deleted = deps_.datastore->DeleteAttestedNode(*id);
  if (absl::IsNotFound(deleted.status())) {
    return ToGrpcStatus(absl::NotFoundError("agent not found"));
  }
  if (!deleted.ok()) return ToGrpcStatus(Internal("failed to remove agent", deleted.status()));
  spdlog::info("agent deleted: {}", id->str());
  Notify(deps_.index->RemoveNode(*id), *id);
  if (deps_.notifier != nullptr) deps_.notifier->AgentRemoved(*id);
  return grpc::Status::OK;
}

grpc::Status AgentService::BanAgent(grpc::ServerContext* context,
                                    const agentv1::BanAgentRequest* request,
                                    ::google::protobuf::Empty* /*response*/) {
  if (auto caller = deps_.authorizer->Authorize(*context, kBanAgent, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  absl::StatusOr<spiffe::SpiffeId> id =
      AgentIdFromRequest(request->has_id(), request->id(), deps_.trust_domain);
  if (!id.ok()) return ToGrpcStatus(id.status());
  // Banned means "no current serial": neither the SVID in use nor a renewed one passes the
  // agent check any more, and attestation refuses the ID until the node is deleted.
  AttestedNode banned{.id = *id};
  NodeMask mask;
  mask.cert_serial = true;
  mask.new_cert_serial = true;
  absl::StatusOr<AttestedNode> updated = deps_.datastore->UpdateAttestedNode(banned, mask);
  if (absl::IsNotFound(updated.status())) {
    return ToGrpcStatus(absl::NotFoundError("agent not found"));
  }
  if (!updated.ok()) return ToGrpcStatus(Internal("failed to ban agent", updated.status()));
  spdlog::info("agent banned: {}", id->str());
  Notify({}, *id);
  if (deps_.notifier != nullptr) deps_.notifier->AgentRemoved(*id);
  return grpc::Status::OK;
}

grpc::Status AgentService::CreateJoinToken(grpc::ServerContext* context,
                                           const agentv1::CreateJoinTokenRequest* request,
                                           types::JoinToken* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kCreateJoinToken, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  if (request->ttl() < 1) {
    return ToGrpcStatus(absl::InvalidArgumentError("ttl is required, you must provide one"));
  }
  // Checked before anything is written, so a bad agent_id leaves no token behind.
  std::optional<spiffe::SpiffeId> agent_id;
  if (request->has_agent_id()) {
    absl::StatusOr<spiffe::SpiffeId> id =
        WorkloadIdFromRequest(request->agent_id(), deps_.trust_domain);
    if (!id.ok()) return ToGrpcStatus(id.status());
    agent_id = *std::move(id);
  }
  std::string token = request->token();
  if (token.empty()) {
    absl::StatusOr<std::string> uuid = NewUuidV4();
    if (!uuid.ok()) return ToGrpcStatus(Internal("failed to generate token UUID", uuid.status()));
    token = *std::move(uuid);
  }
  // The token becomes a path segment of the agent's ID; SPIRE would store a token no agent
  // could ever use, we refuse it up front.
  absl::StatusOr<spiffe::SpiffeId> token_agent_id =
      spiffe::SpiffeId::FromSegments(deps_.trust_domain, {"spire", "agent", "join_token", token});
  if (!token_agent_id.ok()) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("invalid token: ", token_agent_id.status().message())));
  }
  const int64_t expires_at = std::chrono::system_clock::to_time_t(
      deps_.clock->Now() + std::chrono::seconds(request->ttl()));
  absl::Status created = deps_.datastore->CreateJoinToken(JoinToken{token, expires_at});
  if (absl::IsAlreadyExists(created)) {
    return ToGrpcStatus(
        absl::AlreadyExistsError(absl::StrCat("failed to create token: ", created.message())));
  }
  if (!created.ok()) return ToGrpcStatus(Internal("failed to create token", created));
  if (agent_id.has_value()) {
    if (absl::Status entry = CreateJoinTokenEntry(*token_agent_id, *agent_id); !entry.ok()) {
      // Nothing half-done stays behind: without its entry the token is not what was asked for.
      if (absl::StatusOr<JoinToken> taken = deps_.datastore->TakeJoinToken(token); !taken.ok()) {
        spdlog::error("create join token: remove token after failed entry: {}",
                      std::string(taken.status().message()));
      }
      return ToGrpcStatus(Internal("failed to create join token registration entry", entry));
    }
  }
  response->set_value(token);
  response->set_expires_at(expires_at);
  return grpc::Status::OK;
}

absl::Status AgentService::CreateJoinTokenEntry(const spiffe::SpiffeId& token_agent_id,
                                                const spiffe::SpiffeId& agent_id) const {
  ASSIGN_OR_RETURN(spiffe::Selector selector,
                   spiffe::Selector::Create("spiffe_id", token_agent_id.str()));
  Entry entry{.id = "",
              .spiffe_id = agent_id,
              .parent_id = token_agent_id,
              .selectors = spiffe::SelectorSet({std::move(selector)})};
  ASSIGN_OR_RETURN(CreateEntryResult created, deps_.datastore->CreateOrReturnEntry(entry));
  if (created.created) Notify(deps_.index->Upsert(created.entry));
  return absl::OkStatus();
}

}  // namespace tessera::server
