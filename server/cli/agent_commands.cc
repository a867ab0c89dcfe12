// agent list|show|evict|ban|count and token generate over /spire.api.server.agent.v1.Agent.
#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "server/cli/command.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"

namespace tessera::server::cli {
namespace {

namespace agentv1 = ::spire::api::server::agent::v1;

// ListAgents page size, as spire-server uses.
constexpr int kPageSize = 1000;
// Join tokens live ten minutes unless told otherwise (spire-server's default).
constexpr char kDefaultTokenTtl[] = "600";

struct AgentFlags {
  std::string spiffe_id;
  std::vector<std::string> selectors;
  std::string match = "superset";
  std::string attestation_type;
  bool banned = false;
  CLI::Option* banned_opt = nullptr;
  std::string ttl = kDefaultTokenTtl;
};

// ListAgentsRequest::Filter and CountAgentsRequest::Filter have the same fields.
template <typename Filter>
absl::Status BuildFilter(const AgentFlags& f, Filter* filter) {
  if (!f.selectors.empty()) {
    types::SelectorMatch* match = filter->mutable_by_selector_match();
    RETURN_IF_ERROR(ParseSelectorFlags("--selector", f.selectors, match->mutable_selectors()));
    match->set_match(
        static_cast<types::SelectorMatch::MatchBehavior>(MatchBehaviorFromFlag(f.match)));
  }
  if (!f.attestation_type.empty()) filter->set_by_attestation_type(f.attestation_type);
  if (f.banned_opt != nullptr && f.banned_opt->count() > 0) {
    filter->mutable_by_banned()->set_value(f.banned);
  }
  return absl::OkStatus();
}

void PrintAgent(const types::Agent& agent, std::ostream& out, bool with_selectors) {
  out << "SPIFFE ID         : " << IdString(agent.id()) << "\n";
  out << "Attestation type  : " << agent.attestation_type() << "\n";
  out << "Expiration time   : " << FormatUnixTime(agent.x509svid_expires_at()) << "\n";
  // A banned agent has no serial number.
  if (agent.banned()) {
    out << "Banned            : true\n";
  } else {
    out << "Serial number     : " << agent.x509svid_serial_number() << "\n";
  }
  out << "Can re-attest     : " << (agent.can_reattest() ? "true" : "false") << "\n";
  if (with_selectors) {
    for (const types::Selector& s : agent.selectors()) {
      out << "Selectors         : " << s.type() << ":" << s.value() << "\n";
    }
  }
  out << "\n";
}

// The agent named by --spiffe-id, checked before any RPC.
absl::StatusOr<types::SPIFFEID> AgentIdFlag(const AgentFlags& f) {
  if (f.spiffe_id.empty()) return absl::InvalidArgumentError("a SPIFFE ID is required");
  ASSIGN_OR_RETURN(spiffe::SpiffeId id, ParseIdFlag("--spiffe-id", f.spiffe_id));
  return IdProto(id);
}

int List(CommandEnv& env, const AgentFlags& f) {
  agentv1::ListAgentsRequest request;
  if (absl::Status s = BuildFilter(f, request.mutable_filter()); !s.ok()) {
    return env.Fail(s);
  }
  request.set_page_size(kPageSize);
  auto stub = agentv1::Agent::NewStub(env.channel());
  agentv1::ListAgentsResponse all;
  do {
    agentv1::ListAgentsResponse page;
    auto context = CommandEnv::NewContext();
    grpc::Status status = stub->ListAgents(context.get(), request, &page);
    if (!status.ok()) return env.RpcFailed("failed to list agents", status);
    for (types::Agent& agent : *page.mutable_agents()) *all.add_agents() = std::move(agent);
    if (!page.next_page_token().empty() && page.next_page_token() == request.page_token()) {
      return env.Fail("failed to list agents: the server repeated its page token");
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  if (env.json()) return env.PrintJson(all);
  if (all.agents_size() == 0) {
    env.out() << "No attested agents found\n";
    return 0;
  }
  env.out() << "Found " << Plural(all.agents_size(), "attested agent", "attested agents")
            << ":\n\n";
  for (const types::Agent& agent : all.agents()) PrintAgent(agent, env.out(), false);
  return 0;
}

int Show(CommandEnv& env, const AgentFlags& f) {
  absl::StatusOr<types::SPIFFEID> id = AgentIdFlag(f);
  if (!id.ok()) return env.Fail(id.status());
  agentv1::GetAgentRequest request;
  *request.mutable_id() = *id;
  types::Agent agent;
  auto context = CommandEnv::NewContext();
  grpc::Status status =
      agentv1::Agent::NewStub(env.channel())->GetAgent(context.get(), request, &agent);
  if (!status.ok()) return env.RpcFailed("failed to get agent", status);
  if (env.json()) return env.PrintJson(agent);
  env.out() << "Found an attested agent given its SPIFFE ID\n\n";
  PrintAgent(agent, env.out(), true);
  return 0;
}

int Evict(CommandEnv& env, const AgentFlags& f) {
  absl::StatusOr<types::SPIFFEID> id = AgentIdFlag(f);
  if (!id.ok()) return env.Fail(id.status());
  agentv1::DeleteAgentRequest request;
  *request.mutable_id() = *id;
  google::protobuf::Empty response;
  auto context = CommandEnv::NewContext();
  grpc::Status status =
      agentv1::Agent::NewStub(env.channel())->DeleteAgent(context.get(), request, &response);
  if (!status.ok()) return env.RpcFailed("failed to evict agent", status);
  if (env.json()) return env.PrintJson(response);
  env.out() << "Agent evicted successfully\n";
  return 0;
}

int Ban(CommandEnv& env, const AgentFlags& f) {
  absl::StatusOr<types::SPIFFEID> id = AgentIdFlag(f);
  if (!id.ok()) return env.Fail(id.status());
  agentv1::BanAgentRequest request;
  *request.mutable_id() = *id;
  google::protobuf::Empty response;
  auto context = CommandEnv::NewContext();
  grpc::Status status =
      agentv1::Agent::NewStub(env.channel())->BanAgent(context.get(), request, &response);
  if (!status.ok()) return env.RpcFailed("failed to ban agent", status);
  if (env.json()) return env.PrintJson(response);
  env.out() << "Agent banned successfully\n";
  return 0;
}

int Count(CommandEnv& env, const AgentFlags& f) {
  agentv1::CountAgentsRequest request;
  if (absl::Status s = BuildFilter(f, request.mutable_filter()); !s.ok()) {
    return env.Fail(s);
  }
  agentv1::CountAgentsResponse response;
  auto context = CommandEnv::NewContext();
  grpc::Status status =
      agentv1::Agent::NewStub(env.channel())->CountAgents(context.get(), request, &response);
  if (!status.ok()) return env.RpcFailed("failed to count agents", status);
  if (env.json()) return env.PrintJson(response);
  env.out() << Plural(response.count(), "attested agent", "attested agents") << "\n";
  return 0;
}

int GenerateToken(CommandEnv& env, const AgentFlags& f) {
  agentv1::CreateJoinTokenRequest request;
  absl::StatusOr<int32_t> ttl = ParseTtlFlag("--ttl", f.ttl);
  if (!ttl.ok()) return env.Fail(ttl.status());
  if (*ttl < 1) return env.Fail("--ttl must be at least one second");
  request.set_ttl(*ttl);
  if (!f.spiffe_id.empty()) {
    // The server registers this ID as an entry parented to the agent that uses the token.
    absl::StatusOr<spiffe::SpiffeId> id = ParseIdFlag("--spiffe-id", f.spiffe_id);
    if (!id.ok()) return env.Fail(id.status());
    *request.mutable_agent_id() = IdProto(*id);
  }
  types::JoinToken token;
  auto context = CommandEnv::NewContext();
  grpc::Status status =
      agentv1::Agent::NewStub(env.channel())->CreateJoinToken(context.get(), request, &token);
  if (!status.ok()) return env.RpcFailed("failed to generate token", status);
  if (env.json()) return env.PrintJson(token);
  env.out() << "Token: " << token.value() << "\n";
  return 0;
}

void AddFilterFlags(CLI::App* app, AgentFlags* f) {
  app->add_option("--selector", f->selectors, "a type:value node selector to match; repeatable")
      ->allow_extra_args(false);
  app->add_option("--match", f->match, "how --selector matches: exact, subset, superset, any")
      ->check(CLI::IsMember({"exact", "subset", "superset", "any"}))
      ->capture_default_str();
  app->add_option("--attestation-type", f->attestation_type,
                  "only agents attested this way (join_token, x509pop, ...)");
  f->banned_opt = app->add_flag("--banned", f->banned,
                                "only banned agents (--banned=false: only agents not banned)");
}

CLI::App* AddIdLeaf(Registrar& registrar, CLI::App* parent, const std::string& name,
                    const std::string& description, int (*run)(CommandEnv&, const AgentFlags&)) {
  auto* f = registrar.Make<AgentFlags>();
  CLI::App* app = registrar.AddLeaf(parent, name, description,
                                    [f, run](CommandEnv& env) { return run(env, *f); });
  app->add_option("--spiffe-id", f->spiffe_id, "the agent's SPIFFE ID");
  return app;
}

}  // namespace

void RegisterAgentCommands(CLI::App& app, Registrar& registrar) {
  CLI::App* agent = app.add_subcommand("agent", "manage attested agents");
  agent->require_subcommand(1);

  auto* list = registrar.Make<AgentFlags>();
  AddFilterFlags(registrar.AddLeaf(agent, "list", "list attested agents",
                                   [list](CommandEnv& env) { return List(env, *list); }),
                 list);
  AddIdLeaf(registrar, agent, "show", "show an attested agent", Show);
  AddIdLeaf(registrar, agent, "evict",
            "delete an agent's record: it must attest again (this also lifts a ban)", Evict);
  AddIdLeaf(registrar, agent, "ban", "ban an agent until it is evicted", Ban);
  auto* count = registrar.Make<AgentFlags>();
  AddFilterFlags(registrar.AddLeaf(agent, "count", "count attested agents",
                                   [count](CommandEnv& env) { return Count(env, *count); }),
                 count);

  CLI::App* token = app.add_subcommand("token", "manage join tokens");
  token->require_subcommand(1);
  auto* generate = registrar.Make<AgentFlags>();
  CLI::App* generate_app =
      registrar.AddLeaf(token, "generate", "generate a join token for one agent attestation",
                        [generate](CommandEnv& env) { return GenerateToken(env, *generate); });
  generate_app->add_option(
      "--spiffe-id", generate->spiffe_id,
      "also register this SPIFFE ID for the agent that uses the token (optional)");
  generate_app
      ->add_option("--ttl", generate->ttl, "how long the token is valid: a duration or seconds")
      ->capture_default_str();
}

}  // namespace tessera::server::cli
