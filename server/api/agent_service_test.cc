// AgentService admin RPCs over real gRPC: who may call them, ListAgents / CountAgents
// filters and paging, GetAgent / DeleteAgent / BanAgent with SPIRE's ID messages, over a seeded
// registry of five agents.
#include <functional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/agent_service_test_util.h"

namespace tessera::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kMethodPrefix[] = "/spire.api.server.agent.v1.Agent/";

class AgentAdminTest : public AgentServiceTest {
 protected:
  void SetUp() override {
    AgentServiceTest::SetUp();
    if (HasFatalFailure()) return;
    Seed("/spire/agent/join_token/a", "join_token", "1", 2'000'000'000, {}, false);
    Seed("/spire/agent/x509pop/b", "x509pop", "2", 1'900'000'000, {"x509pop:ca:1", "x509pop:cn:b"},
         true);
    Seed("/spire/agent/x509pop/c", "x509pop", "", 1'700'000'000, {"x509pop:ca:1"}, true);
    Seed("/spire/agent/x509pop/d", "x509pop", "4", 1'950'000'000, {"x509pop:ca:2"}, true);
    // Between 2030-01-01T00:00:00Z (1893456000) and an hour later.
    Seed("/spire/agent/k8s_psat/e", "k8s_psat", "5", 1'893'457'000, {"k8s_psat:cluster:c1"}, false);
  }

  void Seed(std::string path, std::string type, std::string serial, int64_t not_after,
            std::vector<std::string> selectors, bool can_reattest) {
    AttestedNode node = MakeNode("spiffe://example.org" + path, serial);
    node.attestation_type = type;
    node.cert_not_after = not_after;
    node.can_reattest = can_reattest;
    node.selectors = *spiffe::SelectorSet::Parse(selectors);
    ASSERT_TRUE(store_->CreateAttestedNode(node).ok());
    index_->UpsertNode(node.id, node.selectors);
  }

  grpc::Status Count(const agentv1::CountAgentsRequest& request, int* count) {
    grpc::ClientContext ctx;
    agentv1::CountAgentsResponse response;
    grpc::Status s = Stub(AdminChannel())->CountAgents(WithDeadline(ctx), request, &response);
    *count = s.ok() ? response.count() : -1;
    return s;
  }

  // CountAgents and ListAgents (all pages, size 2) with the same filter must agree; returns the
  // listed paths.
  std::vector<std::string> Filtered(
      const std::function<void(agentv1::ListAgentsRequest::Filter*)>& set) {
    agentv1::ListAgentsRequest list;
    set(list.mutable_filter());
    agentv1::CountAgentsRequest count;
    count.mutable_filter()->ParseFromString(list.filter().SerializeAsString());
    std::vector<std::string> paths;
    for (const types::Agent& agent : ListAll(list, 2)) paths.push_back(agent.id().path());
    int n = 0;
    grpc::Status s = Count(count, &n);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(n, static_cast<int>(paths.size()));
    return paths;
  }

  std::vector<types::Agent> ListAll(agentv1::ListAgentsRequest request, int page_size) {
    request.set_page_size(page_size);
    std::vector<types::Agent> out;
    for (int pages = 0; pages < 20; ++pages) {
      grpc::ClientContext ctx;
      agentv1::ListAgentsResponse response;
      grpc::Status s = Stub(AdminChannel())->ListAgents(WithDeadline(ctx), request, &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      out.insert(out.end(), response.agents().begin(), response.agents().end());
      if (response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
    return out;
  }

  grpc::Status Get(const std::optional<types::SPIFFEID>& id, types::Agent* out,
                   const types::AgentMask* mask = nullptr) {
    agentv1::GetAgentRequest request;
    if (id.has_value()) *request.mutable_id() = *id;
    if (mask != nullptr) *request.mutable_output_mask() = *mask;
    grpc::ClientContext ctx;
    return Stub(AdminChannel())->GetAgent(WithDeadline(ctx), request, out);
  }
  grpc::Status Delete(const std::optional<types::SPIFFEID>& id) {
    agentv1::DeleteAgentRequest request;
    if (id.has_value()) *request.mutable_id() = *id;
    grpc::ClientContext ctx;
    google::protobuf::Empty out;
    return Stub(AdminChannel())->DeleteAgent(WithDeadline(ctx), request, &out);
  }
  grpc::Status Ban(const std::optional<types::SPIFFEID>& id) {
    agentv1::BanAgentRequest request;
    if (id.has_value()) *request.mutable_id() = *id;
    grpc::ClientContext ctx;
    google::protobuf::Empty out;
    return Stub(AdminChannel())->BanAgent(WithDeadline(ctx), request, &out);
  }
};

TEST_F(AgentAdminTest, AdminMethodsRefuseAgentsAndAnonymousCallers) {
  auto agent = AddAgent("spiffe://example.org/spire/agent/x/1");
  for (const auto& channel : {TlsChannel(agent), TlsChannel()}) {
    auto stub = Stub(channel);
    std::vector<std::pair<std::string, grpc::Status>> calls;
    {
      grpc::ClientContext ctx;
      agentv1::CountAgentsResponse out;
      calls.emplace_back("CountAgents", stub->CountAgents(WithDeadline(ctx), {}, &out));
    }
    {
      grpc::ClientContext ctx;
      agentv1::ListAgentsResponse out;
      calls.emplace_back("ListAgents", stub->ListAgents(WithDeadline(ctx), {}, &out));
    }
    {
      grpc::ClientContext ctx;
      types::Agent out;
      agentv1::GetAgentRequest request;
      *request.mutable_id() = ProtoId("example.org", "/spire/agent/x/1");
      calls.emplace_back("GetAgent", stub->GetAgent(WithDeadline(ctx), request, &out));
    }
    {
      grpc::ClientContext ctx;
      google::protobuf::Empty out;
      agentv1::DeleteAgentRequest request;
      *request.mutable_id() = ProtoId("example.org", "/spire/agent/x/1");
      calls.emplace_back("DeleteAgent", stub->DeleteAgent(WithDeadline(ctx), request, &out));
    }
    {
      grpc::ClientContext ctx;
      google::protobuf::Empty out;
      agentv1::BanAgentRequest request;
      *request.mutable_id() = ProtoId("example.org", "/spire/agent/x/1");
      calls.emplace_back("BanAgent", stub->BanAgent(WithDeadline(ctx), request, &out));
    }
    {
      grpc::ClientContext ctx;
      types::JoinToken out;
      agentv1::CreateJoinTokenRequest request;
      request.set_ttl(60);
      request.set_token("sneaky");
      calls.emplace_back("CreateJoinToken",
                         stub->CreateJoinToken(WithDeadline(ctx), request, &out));
    }
    for (const auto& [method, status] : calls) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method;
      EXPECT_EQ(status.error_message(),
                absl::StrCat("authorization denied for method ", kMethodPrefix, method));
    }
  }
  EXPECT_FALSE(Node("spiffe://example.org/spire/agent/x/1")->banned());
  EXPECT_TRUE(absl::IsNotFound(store_->TakeJoinToken("sneaky").status()));
}

TEST_F(AgentAdminTest, CountAndListFilters) {
  EXPECT_THAT(Filtered([](auto*) {}), SizeIs(5));
  EXPECT_THAT(
      Filtered([](auto* f) { f->set_by_attestation_type("x509pop"); }),
      ElementsAre("/spire/agent/x509pop/b", "/spire/agent/x509pop/c", "/spire/agent/x509pop/d"));
  EXPECT_THAT(Filtered([](auto* f) { f->mutable_by_banned()->set_value(true); }),
              ElementsAre("/spire/agent/x509pop/c"));
  EXPECT_THAT(Filtered([](auto* f) { f->mutable_by_banned()->set_value(false); }), SizeIs(4));
  EXPECT_THAT(Filtered([](auto* f) { f->mutable_by_can_reattest()->set_value(false); }),
              ElementsAre("/spire/agent/join_token/a", "/spire/agent/k8s_psat/e"));
  EXPECT_THAT(Filtered([](auto* f) {
                f->set_by_attestation_type("x509pop");
                f->mutable_by_banned()->set_value(false);
                f->mutable_by_can_reattest()->set_value(true);
              }),
              ElementsAre("/spire/agent/x509pop/b", "/spire/agent/x509pop/d"));
}

TEST_F(AgentAdminTest, SelectorMatchFilter) {
  auto by = [&](types::SelectorMatch::MatchBehavior match, std::vector<std::string> selectors) {
    return Filtered([&](auto* f) {
      f->mutable_by_selector_match()->set_match(match);
      for (const std::string& text : selectors) {
        auto* s = f->mutable_by_selector_match()->add_selectors();
        s->set_type(text.substr(0, text.find(':')));
        s->set_value(text.substr(text.find(':') + 1));
      }
    });
  };
  EXPECT_THAT(by(types::SelectorMatch::MATCH_EXACT, {"x509pop:ca:1"}),
              ElementsAre("/spire/agent/x509pop/c"));
  EXPECT_THAT(by(types::SelectorMatch::MATCH_SUPERSET, {"x509pop:ca:1"}),
              ElementsAre("/spire/agent/x509pop/b", "/spire/agent/x509pop/c"));
  EXPECT_THAT(by(types::SelectorMatch::MATCH_ANY, {"x509pop:ca:2", "k8s_psat:cluster:c1"}),
              ElementsAre("/spire/agent/x509pop/d", "/spire/agent/k8s_psat/e"));
  EXPECT_THAT(
      by(types::SelectorMatch::MATCH_SUBSET, {"x509pop:ca:1", "x509pop:cn:b", "x509pop:ca:2"}),
      ElementsAre("/spire/agent/x509pop/b", "/spire/agent/x509pop/c", "/spire/agent/x509pop/d"));
}

TEST_F(AgentAdminTest, ExpiresBeforeUsesGosLayoutAndIgnoresGarbage) {
  auto before = [&](std::string text) {
    return Filtered([&](auto* f) { f->set_by_expires_before(text); });
  };
  EXPECT_THAT(before("2030-01-01 00:00:00 +0000 +00"), ElementsAre("/spire/agent/x509pop/c"));
  // An hour west of UTC is an hour later; Go takes the second offset when they differ.
  EXPECT_THAT(before("2030-01-01 00:00:00 -0100 -01"),
              ElementsAre("/spire/agent/x509pop/c", "/spire/agent/k8s_psat/e"));
  EXPECT_THAT(before("2030-01-01 00:00:00 +0000 -01"), SizeIs(2));
  EXPECT_THAT(before("2030-01-01 00:00:00.999 +0000 +00"), SizeIs(1));
  EXPECT_THAT(
      before("2031-01-01 00:00:00 +0000 +00"),
      ElementsAre("/spire/agent/x509pop/b", "/spire/agent/x509pop/c", "/spire/agent/k8s_psat/e"));
  for (const char* garbage : {"tomorrow", "2030-02-30 00:00:00 +0000 +00",
                              "2030-01-01 00:00:00 +0000", "2030-01-01T00:00:00Z",
                              "2030-01-01 24:00:00 +0000 +00", "2030-01-01 00:00:00 +0000 +00 "}) {
    EXPECT_THAT(before(garbage), SizeIs(5)) << garbage;
  }
}

TEST_F(AgentAdminTest, BadSelectorFilterIsRefused) {
  struct Case {
    std::function<void(types::SelectorMatch*)> set;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](auto*) {}, "failed to parse selectors: selector list is empty"},
      {[](auto* m) { m->add_selectors()->set_value("v"); }, "missing selector type"},
      {[](auto* m) {
         auto* s = m->add_selectors();
         s->set_type("a:b");
         s->set_value("v");
       },
       "selector type contains ':'"},
      {[](auto* m) { m->add_selectors()->set_type("t"); }, "missing selector value"},
      {[](auto* m) {
         auto* s = m->add_selectors();
         s->set_type("t");
         s->set_value("v");
         m->set_match(static_cast<types::SelectorMatch::MatchBehavior>(7));
       },
       "failed to parse selectors: unknown match behavior 7"},
  };
  for (const Case& c : cases) {
    agentv1::ListAgentsRequest list;
    c.set(list.mutable_filter()->mutable_by_selector_match());
    grpc::ClientContext ctx;
    agentv1::ListAgentsResponse out;
    grpc::Status s = Stub(AdminChannel())->ListAgents(WithDeadline(ctx), list, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_THAT(s.error_message(), StartsWith("failed to parse selectors: "));
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));

    agentv1::CountAgentsRequest count;
    c.set(count.mutable_filter()->mutable_by_selector_match());
    int n = 0;
    s = Count(count, &n);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  }
}

TEST_F(AgentAdminTest, ListPagingAndMask) {
  // Pages of two end on an empty page, as SPIRE's do.
  agentv1::ListAgentsRequest request;
  request.set_page_size(2);
  std::vector<int> sizes;
  std::vector<std::string> paths;
  for (int i = 0; i < 10; ++i) {
    grpc::ClientContext ctx;
    agentv1::ListAgentsResponse response;
    grpc::Status s = Stub(AdminChannel())->ListAgents(WithDeadline(ctx), request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    sizes.push_back(response.agents_size());
    for (const auto& agent : response.agents()) paths.push_back(agent.id().path());
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  EXPECT_THAT(sizes, ElementsAre(2, 2, 1, 0));
  EXPECT_THAT(paths, ElementsAre("/spire/agent/join_token/a", "/spire/agent/x509pop/b",
                                 "/spire/agent/x509pop/c", "/spire/agent/x509pop/d",
                                 "/spire/agent/k8s_psat/e"));

  // Page size 0 or less: everything, no token (a stale token is ignored then).
  for (int page_size : {0, -1}) {
    agentv1::ListAgentsRequest all;
    all.set_page_size(page_size);
    all.set_page_token("whatever");
    grpc::ClientContext ctx;
    agentv1::ListAgentsResponse response;
    grpc::Status s = Stub(AdminChannel())->ListAgents(WithDeadline(ctx), all, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.agents_size(), 5);
    EXPECT_EQ(response.next_page_token(), "");
  }

  {
    agentv1::ListAgentsRequest bad;
    bad.set_page_size(2);
    bad.set_page_token("not-a-token");
    grpc::ClientContext ctx;
    agentv1::ListAgentsResponse response;
    grpc::Status s = Stub(AdminChannel())->ListAgents(WithDeadline(ctx), bad, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), StartsWith("failed to list agents: "));
  }

  // A mask keeps the id and the marked fields.
  agentv1::ListAgentsRequest masked;
  masked.mutable_output_mask()->set_attestation_type(true);
  masked.mutable_filter()->set_by_attestation_type("x509pop");
  std::vector<types::Agent> agents = ListAll(masked, 0);
  ASSERT_THAT(agents, SizeIs(3));
  EXPECT_EQ(agents[0].id().path(), "/spire/agent/x509pop/b");
  EXPECT_EQ(agents[0].attestation_type(), "x509pop");
  EXPECT_EQ(agents[0].x509svid_serial_number(), "");
  EXPECT_EQ(agents[0].x509svid_expires_at(), 0);
  EXPECT_THAT(agents[0].selectors(), IsEmpty());
  EXPECT_FALSE(agents[0].can_reattest());
  EXPECT_FALSE(agents[1].banned());  // c is banned, but the mask hides it

  // Without a mask, everything.
  agents = ListAll(agentv1::ListAgentsRequest(), 0);
  ASSERT_THAT(agents, SizeIs(5));
  EXPECT_EQ(agents[2].id().path(), "/spire/agent/x509pop/c");
  EXPECT_TRUE(agents[2].banned());
  EXPECT_EQ(agents[1].x509svid_serial_number(), "2");
  EXPECT_EQ(agents[1].x509svid_expires_at(), 1'900'000'000);
  EXPECT_THAT(agents[1].selectors(), SizeIs(2));
}

TEST_F(AgentAdminTest, GetAgent) {
  types::Agent agent;
  grpc::Status s = Get(ProtoId("example.org", "/spire/agent/x509pop/b"), &agent);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(agent.id().trust_domain(), "example.org");
  EXPECT_EQ(agent.id().path(), "/spire/agent/x509pop/b");
  EXPECT_EQ(agent.attestation_type(), "x509pop");
  EXPECT_EQ(agent.x509svid_serial_number(), "2");
  EXPECT_EQ(agent.x509svid_expires_at(), 1'900'000'000);
  ASSERT_THAT(agent.selectors(), SizeIs(2));
  EXPECT_EQ(agent.selectors(0).type(), "x509pop");
  EXPECT_EQ(agent.selectors(0).value(), "ca:1");
  EXPECT_FALSE(agent.banned());
  EXPECT_TRUE(agent.can_reattest());

  types::AgentMask mask;
  mask.set_banned(true);
  s = Get(ProtoId("example.org", "/spire/agent/x509pop/c"), &agent, &mask);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(agent.id().path(), "/spire/agent/x509pop/c");
  EXPECT_TRUE(agent.banned());
  EXPECT_EQ(agent.attestation_type(), "");
  EXPECT_THAT(agent.selectors(), IsEmpty());

  s = Get(ProtoId("example.org", "/spire/agent/x509pop/404"), &agent);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "agent not found");
}

TEST_F(AgentAdminTest, AgentIdsMustBeAgentsOfTheTrustDomain) {
  struct Case {
    std::optional<types::SPIFFEID> id;
    std::string message;  // the whole message, or its prefix when it ends with ": "
  };
  const std::vector<Case> cases = {
      {std::nullopt, "invalid agent ID: request must specify SPIFFE ID"},
      {ProtoId("example.org", "/workload"),
       "invalid agent ID: \"spiffe://example.org/workload\" is not an agent in trust domain "
       "\"example.org\"; path is not in the agent namespace"},
      {ProtoId("example.org", "/spire/agent"),
       "invalid agent ID: \"spiffe://example.org/spire/agent\" is not an agent in trust domain "
       "\"example.org\"; path is not in the agent namespace"},
      {ProtoId("example.org", ""),
       "invalid agent ID: \"spiffe://example.org\" is not an agent in trust domain "
       "\"example.org\"; path is empty"},
      {ProtoId("other.org", "/spire/agent/x509pop/b"),
       "invalid agent ID: \"spiffe://other.org/spire/agent/x509pop/b\" is not a member of trust "
       "domain \"example.org\""},
      {ProtoId("", "/spire/agent/x509pop/b"), "invalid agent ID: "},
      {ProtoId("Example.org", "/spire/agent/x509pop/b"), "invalid agent ID: "},
      {ProtoId("example.org", "spire/agent/x509pop/b"), "invalid agent ID: "},
      {ProtoId("example.org", "/spire/agent/x509pop/b/"), "invalid agent ID: "},
  };
  for (const Case& c : cases) {
    types::Agent agent;
    std::vector<std::pair<std::string, grpc::Status>> results = {
        {"get", Get(c.id, &agent)}, {"delete", Delete(c.id)}, {"ban", Ban(c.id)}};
    for (const auto& [what, s] : results) {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << what << " " << c.message;
      if (c.message.ends_with(": ")) {
        EXPECT_THAT(s.error_message(), StartsWith(c.message)) << what;
        EXPECT_GT(s.error_message().size(), c.message.size()) << what;
      } else {
        EXPECT_EQ(s.error_message(), c.message) << what;
      }
    }
  }
  EXPECT_EQ(NodeCount(), 5);
  EXPECT_FALSE(Node("spiffe://example.org/spire/agent/x509pop/b")->banned());
}

TEST_F(AgentAdminTest, DeleteAndBan) {
  notifier_.Clear();
  grpc::Status s = Ban(ProtoId("example.org", "/spire/agent/x509pop/b"));
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::optional<AttestedNode> node = Node("spiffe://example.org/spire/agent/x509pop/b");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->cert_serial, "");
  EXPECT_EQ(node->new_cert_serial, "");
  EXPECT_EQ(node->cert_not_after, 1'900'000'000);  // only the serials change
  EXPECT_EQ(node->selectors, Selectors({"x509pop:ca:1", "x509pop:cn:b"}));
  EXPECT_THAT(notifier_.agents(), ElementsAre("spiffe://example.org/spire/agent/x509pop/b"));
  EXPECT_THAT(notifier_.removed(), ElementsAre("spiffe://example.org/spire/agent/x509pop/b"));

  s = Delete(ProtoId("example.org", "/spire/agent/x509pop/d"));
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(Node("spiffe://example.org/spire/agent/x509pop/d").has_value());
  EXPECT_EQ(NodeCount(), 4);
  EXPECT_EQ(index_->node_count(), 4u);
  EXPECT_THAT(notifier_.agents(), ElementsAre("spiffe://example.org/spire/agent/x509pop/b",
                                              "spiffe://example.org/spire/agent/x509pop/d"));
  EXPECT_THAT(notifier_.removed(), ElementsAre("spiffe://example.org/spire/agent/x509pop/b",
                                               "spiffe://example.org/spire/agent/x509pop/d"));

  for (const auto& status : {Delete(ProtoId("example.org", "/spire/agent/x509pop/d")),
                             Ban(ProtoId("example.org", "/spire/agent/x509pop/404"))}) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(status.error_message(), "agent not found");
  }
  EXPECT_EQ(notifier_.removed().size(), 2u);  // nothing announced for agents that were not there
}

}  // namespace
}  // namespace tessera::server::testing
