// AgentService request checks that need no registry: CreateJoinToken's refusals (nothing
// written), RenewAgent's and PostStatus's checks, and who may call the agent RPCs.
#include <functional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/agent_service_test_util.h"

namespace tessera::server::testing {
namespace {

using ::testing::StartsWith;

constexpr char kMethodPrefix[] = "/spire.api.server.agent.v1.Agent/";

TEST_F(AgentServiceTest, AgentMethodsRefuseAnonymousAndLocalCallers) {
  agentv1::RenewAgentRequest renew;
  renew.mutable_params()->set_csr("x");
  agentv1::PostStatusRequest post;
  post.set_agent_version("1.0");
  {
    grpc::ClientContext ctx;
    agentv1::RenewAgentResponse out;
    grpc::Status s = Stub(TlsChannel())->RenewAgent(WithDeadline(ctx), renew, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(s.error_message(), "caller does not have an X509-SVID");
  }
  {
    grpc::ClientContext ctx;
    agentv1::PostStatusResponse out;
    grpc::Status s = Stub(TlsChannel())->PostStatus(WithDeadline(ctx), post, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  // The admin socket is not an agent.
  {
    grpc::ClientContext ctx;
    agentv1::RenewAgentResponse out;
    grpc::Status s = Stub(AdminChannel())->RenewAgent(WithDeadline(ctx), renew, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(s.error_message(),
              absl::StrCat("authorization denied for method ", kMethodPrefix, "RenewAgent"));
  }
}

TEST_F(AgentServiceTest, CreateJoinTokenRefusals) {
  struct Case {
    int ttl;
    std::string token;
    std::optional<types::SPIFFEID> agent_id;
    grpc::StatusCode code;
    std::string message;  // the whole message, or its prefix when it ends with ": "
  };
  const std::vector<Case> cases = {
      {0, "t1", std::nullopt, grpc::StatusCode::INVALID_ARGUMENT,
       "ttl is required, you must provide one"},
      {-5, "t1", std::nullopt, grpc::StatusCode::INVALID_ARGUMENT,
       "ttl is required, you must provide one"},
      {60, "t1", ProtoId("example.org", "/spire/x"), grpc::StatusCode::INVALID_ARGUMENT,
       "invalid agent ID: \"spiffe://example.org/spire/x\" is not a workload in trust domain "
       "\"example.org\"; path is in the reserved namespace"},
      {60, "t1", ProtoId("example.org", ""), grpc::StatusCode::INVALID_ARGUMENT,
       "invalid agent ID: \"spiffe://example.org\" is not a workload in trust domain "
       "\"example.org\"; path is empty"},
      {60, "t1", ProtoId("other.org", "/w"), grpc::StatusCode::INVALID_ARGUMENT,
       "invalid agent ID: \"spiffe://other.org/w\" is not a member of trust domain "
       "\"example.org\""},
      {60, "t1", ProtoId("bad td", "/w"), grpc::StatusCode::INVALID_ARGUMENT, "invalid agent ID: "},
      {60, "t1", ProtoId("example.org", "/w/../x"), grpc::StatusCode::INVALID_ARGUMENT,
       "invalid agent ID: "},
      {60, "a/b", std::nullopt, grpc::StatusCode::INVALID_ARGUMENT, "invalid token: "},
      {60, "..", std::nullopt, grpc::StatusCode::INVALID_ARGUMENT, "invalid token: "},
  };
  for (const Case& c : cases) {
    absl::StatusOr<types::JoinToken> token = CreateToken(c.ttl, c.token, c.agent_id);
    EXPECT_EQ(static_cast<int>(token.status().code()), static_cast<int>(c.code)) << c.message;
    std::string message(token.status().message());
    if (c.message.ends_with(": ")) {
      EXPECT_THAT(message, StartsWith(c.message));
    } else {
      EXPECT_EQ(message, c.message);
    }
    // Nothing was written.
    EXPECT_TRUE(absl::IsNotFound(store_->TakeJoinToken(c.token).status())) << c.message;
  }
  auto entries = store_->CountEntries({});
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(*entries, 0);

  // A token that exists already.
  ASSERT_TRUE(CreateToken(60, "dup").ok());
  absl::StatusOr<types::JoinToken> dup = CreateToken(60, "dup", ProtoId("example.org", "/w"));
  EXPECT_TRUE(absl::IsAlreadyExists(dup.status())) << dup.status();
  EXPECT_THAT(std::string(dup.status().message()), StartsWith("failed to create token: "));
  EXPECT_EQ(*store_->CountEntries({}), 0);
}

TEST_F(AgentServiceTest, RenewAgentRequestChecks) {
  const std::string id = "spiffe://example.org/spire/agent/x/renew";
  spiffe::ClientIdentity agent = AddAgent(id);
  struct Case {
    std::function<void(agentv1::RenewAgentRequest*)> set;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](auto*) {}, "params cannot be nil"},
      {[](auto* r) { r->mutable_params(); }, "missing CSR"},
      {[](auto* r) { r->mutable_params()->set_csr("junk"); }, "failed to parse CSR: "},
  };
  for (const Case& c : cases) {
    agentv1::RenewAgentRequest request;
    c.set(&request);
    grpc::ClientContext ctx;
    agentv1::RenewAgentResponse out;
    grpc::Status s = Stub(TlsChannel(agent))->RenewAgent(WithDeadline(ctx), request, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    if (c.message.ends_with(": ")) {
      EXPECT_THAT(s.error_message(), StartsWith(c.message));
    } else {
      EXPECT_EQ(s.error_message(), c.message);
    }
  }
  EXPECT_EQ(Node(id)->new_cert_serial, "");
}

TEST_F(AgentServiceTest, PostStatusRecordsTheAgentVersion) {
  const std::string id = "spiffe://example.org/spire/agent/x/status";
  spiffe::ClientIdentity agent = AddAgent(id);
  auto post = [&](std::string version) {
    agentv1::PostStatusRequest request;
    request.set_agent_version(std::move(version));
    request.set_current_bundle_serial(3);
    grpc::ClientContext ctx;
    agentv1::PostStatusResponse out;
    return Stub(TlsChannel(agent))->PostStatus(WithDeadline(ctx), request, &out);
  };
  grpc::Status s = post("1.9.6");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Node(id)->agent_version, "1.9.6");
  agentv1::GetAgentRequest get;
  *get.mutable_id() = ProtoId("example.org", "/spire/agent/x/status");
  grpc::ClientContext ctx;
  types::Agent out;
  ASSERT_TRUE(Stub(AdminChannel())->GetAgent(WithDeadline(ctx), get, &out).ok());
  EXPECT_EQ(out.agent_version(), "1.9.6");

  EXPECT_TRUE(post("").ok());  // nothing to record
  EXPECT_EQ(Node(id)->agent_version, "1.9.6");

  s = post(std::string(256, 'v'));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "agent version is too long (max 255 characters)");
  EXPECT_EQ(Node(id)->agent_version, "1.9.6");
}

}  // namespace
}  // namespace tessera::server::testing
