// AgentService attestation over real gRPC with TLS: join tokens end to end (attest, renew, the
// agent check on the SVIDs it issued), single use and expiry, the alias entry of
// CreateJoinToken, the challenge/response conversation of a fake node attestor and its errors,
// banned and deleted agents, malformed first messages, and the stream's bounds.
#include <chrono>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/agent_service_test_util.h"

namespace tessera::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kRenewDenied[] =
    "authorization denied for method /spire.api.server.agent.v1.Agent/RenewAgent: ";

std::vector<spiffe::Certificate> Authorities(const ca::CaManager& ca) {
  return ca.bundle()->bundle.x509_authorities();
}

TEST_F(AgentServiceTest, JoinTokenAttestationEndToEnd) {
  // An anonymous TLS client cannot make a token for itself.
  {
    agentv1::CreateJoinTokenRequest request;
    request.set_ttl(600);
    grpc::ClientContext ctx;
    types::JoinToken out;
    grpc::Status s = Stub(TlsChannel())->CreateJoinToken(WithDeadline(ctx), request, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(s.error_message(),
              "authorization denied for method /spire.api.server.agent.v1.Agent/CreateJoinToken");
  }

  const int64_t now = std::chrono::system_clock::to_time_t(clock_.Now());
  ASSERT_OK_AND_ASSIGN(types::JoinToken token, CreateToken(600));
  // A UUIDv4: 8-4-4-4-12 hex digits, version nibble 4.
  ASSERT_THAT(token.value(), SizeIs(36));
  EXPECT_EQ(token.value()[14], '4');
  EXPECT_NEAR(token.expires_at(), now + 600, 2);

  std::optional<AttestedAgent> agent = AttestAs("join_token", token.value());
  ASSERT_TRUE(agent.has_value());
  const std::string agent_id = absl::StrCat(kJoinTokenPrefix, token.value());
  EXPECT_FALSE(agent->result.reattestable());
  EXPECT_EQ(agent->result.svid().id().trust_domain(), "example.org");
  EXPECT_EQ(agent->result.svid().id().path(), "/spire/agent/join_token/" + token.value());
  // Under a self-signed CA the chain is just the leaf.
  ASSERT_THAT(agent->identity.chain, SizeIs(1));
  const spiffe::Certificate& leaf = agent->identity.chain[0];
  EXPECT_THAT(leaf.UriSans(), ElementsAre(agent_id));
  EXPECT_EQ(agent->result.svid().expires_at(),
            std::chrono::system_clock::to_time_t(leaf.NotAfter()));
  ASSERT_OK_AND_ASSIGN(
      spiffe::VerifiedX509Svid verified,
      spiffe::VerifyX509Svid(
          agent->identity.chain,
          [this](const spiffe::TrustDomain&) { return std::optional(Authorities(*ca_)); },
          std::chrono::system_clock::now()));
  EXPECT_EQ(verified.id.str(), agent_id);

  // The openssl CLI agrees.
  {
    std::ofstream(dir_ / "bundle.pem") << spiffe::ChainToPem(Authorities(*ca_));
    std::ofstream(dir_ / "agent.pem") << leaf.ToPem();
    auto result =
        spiffe::testing::RunCommand("openssl verify -CAfile " + (dir_ / "bundle.pem").string() +
                                    " " + (dir_ / "agent.pem").string());
    EXPECT_EQ(result.exit_code, 0) << result.output;
  }

  std::optional<AttestedNode> node = Node(agent_id);
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->attestation_type, "join_token");
  EXPECT_EQ(node->cert_serial, leaf.SerialDecimal());
  EXPECT_EQ(node->cert_not_after, agent->result.svid().expires_at());
  EXPECT_FALSE(node->can_reattest);
  EXPECT_TRUE(node->selectors.empty());
  EXPECT_EQ(node->new_cert_serial, "");
  EXPECT_EQ(index_->node_count(), 1u);

  // The SVID passes the agent check: RenewAgent works and stores the new SVID as pending.
  std::optional<spiffe::ClientIdentity> renewed;
  agentv1::RenewAgentResponse renew_response;
  grpc::Status s = Renew(agent->identity, &renewed, &renew_response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(renewed.has_value());
  ASSERT_THAT(renewed->chain, SizeIs(1));
  EXPECT_EQ(renew_response.svid().id().path(), "/spire/agent/join_token/" + token.value());
  EXPECT_THAT(renewed->chain[0].UriSans(), ElementsAre(agent_id));
  EXPECT_EQ(renew_response.svid().expires_at(),
            std::chrono::system_clock::to_time_t(renewed->chain[0].NotAfter()));
  const std::string renewed_serial = renewed->chain[0].SerialDecimal();
  EXPECT_NE(renewed_serial, leaf.SerialDecimal());
  node = Node(agent_id);
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->cert_serial, leaf.SerialDecimal());
  EXPECT_EQ(node->new_cert_serial, renewed_serial);
  EXPECT_EQ(node->new_cert_not_after, renew_response.svid().expires_at());

  // The renewed SVID works too, and its first use retires the old one.
  std::optional<spiffe::ClientIdentity> renewed_again;
  s = Renew(*renewed, &renewed_again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  node = Node(agent_id);
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->cert_serial, renewed_serial);
  EXPECT_EQ(node->new_cert_serial, renewed_again->chain[0].SerialDecimal());

  s = Renew(agent->identity);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("expected to have serial number"));
  EXPECT_EQ(ReasonOf(s), types::PermissionDeniedDetails::AGENT_NOT_ACTIVE);
}

TEST_F(AgentServiceTest, JoinTokenIsSingleUse) {
  ASSERT_OK_AND_ASSIGN(types::JoinToken token, CreateToken(600, "once"));
  EXPECT_EQ(token.value(), "once");
  ASSERT_TRUE(AttestAs("join_token", "once").has_value());

  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  for (std::string_view t : {"once", "never-created"}) {
    AttestOutcome outcome = Attest(TlsChannel(), AttestRequest("join_token", std::string(t), key));
    EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << t;
    EXPECT_EQ(outcome.status.error_message(),
              "failed to attest: join token does not exist or has already been used");
    EXPECT_FALSE(outcome.result.has_value());
  }
  EXPECT_EQ(NodeCount(), 1);
}

TEST_F(AgentServiceTest, ExpiredJoinTokenIsRefusedAndSpent) {
  ASSERT_OK_AND_ASSIGN(types::JoinToken token, CreateToken(60, "short"));
  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();

  // Only the token check reads the fake clock; TLS runs on real time, so put it back at once.
  const auto real = clock_.Now();
  clock_.Advance(std::chrono::seconds(120));
  AttestOutcome outcome = Attest(TlsChannel(), AttestRequest("join_token", "short", key));
  clock_.Set(real);
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(outcome.status.error_message(), "join token expired");
  EXPECT_EQ(NodeCount(), 0);

  // The failed attempt used the token up.
  outcome = Attest(TlsChannel(), AttestRequest("join_token", "short", key));
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(outcome.status.error_message(),
            "failed to attest: join token does not exist or has already been used");
  EXPECT_EQ(NodeCount(), 0);
}

TEST_F(AgentServiceTest, JoinTokenAgentIdBecomesAnEntryUnderTheTokenAgent) {
  ASSERT_OK_AND_ASSIGN(types::JoinToken token,
                       CreateToken(600, "tok-alias", ProtoId("example.org", "/host/web")));
  const std::string parent = absl::StrCat(kJoinTokenPrefix, "tok-alias");
  EntryFilter filter;
  filter.by_parent_id = Id(parent);
  ASSERT_OK_AND_ASSIGN(Page<Entry> entries, store_->ListEntries(filter, {}));
  ASSERT_THAT(entries.items, SizeIs(1));
  const Entry& entry = entries.items[0];
  EXPECT_EQ(entry.spiffe_id.str(), "spiffe://example.org/host/web");
  EXPECT_EQ(entry.parent_id.str(), parent);
  EXPECT_EQ(entry.selectors, Selectors({"spiffe_id:" + parent}));

  // Once the agent attests with the token, the entry is authorized for it.
  ASSERT_TRUE(AttestAs("join_token", "tok-alias").has_value());
  auto authorized = index_->AuthorizedEntries(Id(parent));
  ASSERT_THAT(authorized, SizeIs(1));
  EXPECT_EQ(authorized[0]->id, entry.id);
}

TEST_F(AgentServiceTest, FakeAttestorChallengeAndResponse) {
  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  AttestOutcome outcome = Attest(TlsChannel(), AttestRequest("fake", "node-7", key), Sign);
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.error_message();
  EXPECT_THAT(outcome.challenges, ElementsAre("nonce:7"));
  ASSERT_TRUE(outcome.result.has_value());
  EXPECT_TRUE(outcome.result->reattestable());
  EXPECT_EQ(outcome.result->svid().id().path(), "/spire/agent/fake/7");

  std::optional<AttestedNode> node = Node("spiffe://example.org/spire/agent/fake/7");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->attestation_type, "fake");
  EXPECT_TRUE(node->can_reattest);
  EXPECT_EQ(node->selectors, Selectors({"fake:node:7", "fake:zone:z1"}));
  EXPECT_EQ(node->cert_serial, ChainOf(outcome.result->svid())[0].SerialDecimal());

  // A reattestable agent must not renew.
  grpc::Status s = Renew({key, ChainOf(outcome.result->svid())});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), "agent must reattest instead of renew");
  EXPECT_EQ(ReasonOf(s), types::PermissionDeniedDetails::AGENT_MUST_REATTEST);
}

TEST_F(AgentServiceTest, WrongChallengeResponseIsRefusedWithThePluginPrefix) {
  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  AttestOutcome outcome =
      Attest(TlsChannel(), AttestRequest("fake", "node-7", key),
             [](const std::string&) { return std::optional<std::string>("forged"); });
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(outcome.status.error_message(),
            "nodeattestor(fake): challenge response verification failed");
  EXPECT_EQ(NodeCount(), 0);

  outcome = Attest(TlsChannel(), AttestRequest("fake", "malformed", key));
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(outcome.status.error_message(), "nodeattestor(fake): failed to unmarshal data: bad");

  outcome = Attest(TlsChannel(), AttestRequest("fake", "nothing", key));
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(outcome.status.error_message(), HasSubstr("nodeattestor(fake): "));
  EXPECT_EQ(NodeCount(), 0);
}

TEST_F(AgentServiceTest, UnknownAttestorType) {
  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  AttestOutcome outcome = Attest(TlsChannel(), AttestRequest("aws_iid", "{}", key));
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(outcome.status.error_message(),
            "error getting node attestor: could not find node attestor type \"aws_iid\"");
  EXPECT_EQ(attestor_.begun(), 0);
}

TEST_F(AgentServiceTest, AttestorMayNotMintTheServerIdOrAForeignId) {
  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  AttestOutcome outcome = Attest(TlsChannel(), AttestRequest("fake", "server", key));
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(outcome.status.error_message(), "agent ID cannot collide with the server ID");

  outcome = Attest(TlsChannel(), AttestRequest("fake", "foreign", key));
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(outcome.status.error_message(),
            "invalid agent ID: \"spiffe://other.org/spire/agent/fake/x\" is not a member of trust "
            "domain \"example.org\"");
  EXPECT_EQ(NodeCount(), 0);
}

TEST_F(AgentServiceTest, ChallengeRoundsAreBounded) {
  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  AttestOutcome outcome =
      Attest(TlsChannel(), AttestRequest("fake", "loop", key),
             [](const std::string&) { return std::optional<std::string>("x"); });
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(outcome.status.error_message(), "nodeattestor(fake): too many challenges");
  EXPECT_THAT(outcome.challenges, SizeIs(5));
}

TEST_F(AgentServiceTest, AgentHangingUpMidConversationLeavesNothing) {
  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  AttestOutcome outcome = Attest(TlsChannel(), AttestRequest("fake", "node-3", key),
                                 [](const std::string&) { return std::nullopt; });
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(outcome.status.error_message(), "failed to receive challenge response from agent");
  EXPECT_THAT(outcome.challenges, ElementsAre("nonce:3"));
  EXPECT_EQ(NodeCount(), 0);
}

TEST_F(AgentServiceTest, ReattestationReplacesTheSvidAndVoidsAPendingRenewal) {
  std::optional<AttestedAgent> first = AttestAs("fake", "node-9");
  ASSERT_TRUE(first.has_value());
  const std::string id = "spiffe://example.org/spire/agent/fake/9";
  AttestedNode pending = *Node(id);
  pending.new_cert_serial = "999";
  pending.new_cert_not_after = 1;
  NodeMask mask;
  mask.new_cert_serial = mask.new_cert_not_after = true;
  ASSERT_TRUE(store_->UpdateAttestedNode(pending, mask).ok());

  std::optional<AttestedAgent> second = AttestAs("fake", "node-9");
  ASSERT_TRUE(second.has_value());
  std::optional<AttestedNode> node = Node(id);
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->cert_serial, second->identity.chain[0].SerialDecimal());
  EXPECT_NE(node->cert_serial, first->identity.chain[0].SerialDecimal());
  EXPECT_EQ(node->new_cert_serial, "");
  EXPECT_EQ(node->new_cert_not_after, 0);
  EXPECT_EQ(node->attestation_type, "fake");
  EXPECT_EQ(NodeCount(), 1);
}

TEST_F(AgentServiceTest, MalformedFirstMessage) {
  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  const agentv1::AttestAgentRequest good = AttestRequest("join_token", "tok", key);
  struct Case {
    std::function<void(agentv1::AttestAgentRequest&)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](auto& r) { r.set_challenge_response("x"); }, "malformed param: missing params"},
      {[](auto& r) { r.mutable_params()->clear_data(); },
       "malformed param: missing attestation data"},
      {[](auto& r) { r.mutable_params()->clear_params(); },
       "malformed param: missing X509-SVID parameters"},
      {[](auto& r) { r.mutable_params()->mutable_params()->clear_csr(); },
       "malformed param: missing CSR"},
      {[](auto& r) { r.mutable_params()->mutable_data()->clear_type(); },
       "malformed param: missing attestation data type"},
      {[](auto& r) { r.mutable_params()->mutable_data()->clear_payload(); },
       "malformed param: missing attestation data payload"},
  };
  ASSERT_OK_AND_ASSIGN(types::JoinToken token, CreateToken(600, "tok"));
  for (const Case& c : cases) {
    agentv1::AttestAgentRequest request = good;
    c.mutate(request);
    AttestOutcome outcome = Attest(TlsChannel(), request);
    EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_EQ(outcome.status.error_message(), c.message);
  }
  // None of them touched the token.
  ASSERT_TRUE(AttestAs("join_token", "tok").has_value());
}

TEST_F(AgentServiceTest, StreamClosedBeforeAnyMessage) {
  grpc::ClientContext ctx;
  auto stream = Stub(TlsChannel())->AttestAgent(WithDeadline(ctx));
  stream->WritesDone();
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "failed to receive request from stream");
}

TEST_F(AgentServiceTest, UnparsableCsrIsRefusedAfterTheTokenIsSpent) {
  ASSERT_OK_AND_ASSIGN(types::JoinToken token, CreateToken(600, "csr-test"));
  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  agentv1::AttestAgentRequest request = AttestRequest("join_token", "csr-test", key);
  request.mutable_params()->mutable_params()->set_csr("not a csr");
  AttestOutcome outcome = Attest(TlsChannel(), request);
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(outcome.status.error_message(), ::testing::StartsWith("failed to parse CSR: "));
  EXPECT_EQ(NodeCount(), 0);
  EXPECT_TRUE(absl::IsNotFound(store_->TakeJoinToken("csr-test").status()));
}

TEST_F(AgentServiceTest, BannedAgentCannotRenewNorAttestUntilDeleted) {
  ASSERT_OK_AND_ASSIGN(types::JoinToken token, CreateToken(600, "ban-me"));
  std::optional<AttestedAgent> agent = AttestAs("join_token", "ban-me");
  ASSERT_TRUE(agent.has_value());
  const std::string id = absl::StrCat(kJoinTokenPrefix, "ban-me");
  notifier_.Clear();

  {
    agentv1::BanAgentRequest request;
    *request.mutable_id() = ProtoId("example.org", "/spire/agent/join_token/ban-me");
    grpc::ClientContext ctx;
    google::protobuf::Empty out;
    grpc::Status s = Stub(AdminChannel())->BanAgent(WithDeadline(ctx), request, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_THAT(notifier_.agents(), ElementsAre(id));
  EXPECT_TRUE(Node(id)->banned());

  grpc::Status s = Renew(agent->identity);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), absl::StrCat(kRenewDenied, "agent \"", id, "\" is banned"));
  EXPECT_EQ(ReasonOf(s), types::PermissionDeniedDetails::AGENT_BANNED);

  ASSERT_TRUE(CreateToken(600, "ban-me").ok());
  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  AttestOutcome outcome = Attest(TlsChannel(), AttestRequest("join_token", "ban-me", key));
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(outcome.status.error_message(), "failed to attest: agent is banned");
  EXPECT_FALSE(ReasonOf(outcome.status).has_value());
  EXPECT_TRUE(Node(id)->banned());

  // Deleting the record lifts the ban.
  {
    agentv1::DeleteAgentRequest request;
    *request.mutable_id() = ProtoId("example.org", "/spire/agent/join_token/ban-me");
    grpc::ClientContext ctx;
    google::protobuf::Empty out;
    grpc::Status deleted = Stub(AdminChannel())->DeleteAgent(WithDeadline(ctx), request, &out);
    ASSERT_TRUE(deleted.ok()) << deleted.error_message();
  }
  ASSERT_TRUE(CreateToken(600, "ban-me").ok());
  EXPECT_TRUE(AttestAs("join_token", "ban-me").has_value());
  EXPECT_FALSE(Node(id)->banned());
}

TEST_F(AgentServiceTest, DeletedAgentsOldSvidIsRefused) {
  ASSERT_OK_AND_ASSIGN(types::JoinToken token, CreateToken(600, "gone"));
  std::optional<AttestedAgent> agent = AttestAs("join_token", "gone");
  ASSERT_TRUE(agent.has_value());
  ASSERT_TRUE(Renew(agent->identity).ok());
  const std::string id = absl::StrCat(kJoinTokenPrefix, "gone");
  notifier_.Clear();

  agentv1::DeleteAgentRequest request;
  *request.mutable_id() = ProtoId("example.org", "/spire/agent/join_token/gone");
  grpc::ClientContext ctx;
  google::protobuf::Empty out;
  grpc::Status s = Stub(AdminChannel())->DeleteAgent(WithDeadline(ctx), request, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(notifier_.agents(), ElementsAre(id));
  EXPECT_EQ(index_->node_count(), 0u);
  EXPECT_FALSE(Node(id).has_value());

  s = Renew(agent->identity);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), absl::StrCat(kRenewDenied, "agent \"", id, "\" is not attested"));
  EXPECT_EQ(ReasonOf(s), types::PermissionDeniedDetails::AGENT_NOT_ATTESTED);
}

// join_token off, a short stream budget, two challenges at most and a custom agent TTL.
class AgentServiceOptionsTest : public AgentServiceTest {
 protected:
  AgentServiceOptions Options() override {
    AgentServiceOptions options;
    options.join_token_enabled = false;
    options.node_attestors.emplace("fake", &attestor_);
    options.agent_ttl = std::chrono::seconds(120);
    options.attestation_timeout = std::chrono::seconds(1);
    options.max_challenges = 2;
    return options;
  }
};

TEST_F(AgentServiceOptionsTest, JoinTokenIsAnUnknownTypeWhenDisabled) {
  ASSERT_OK_AND_ASSIGN(types::JoinToken token, CreateToken(600, "unused"));
  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  AttestOutcome outcome = Attest(TlsChannel(), AttestRequest("join_token", "unused", key));
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(outcome.status.error_message(),
            "error getting node attestor: could not find node attestor type \"join_token\"");
  // The token was not consumed.
  EXPECT_TRUE(store_->TakeJoinToken("unused").ok());
}

TEST_F(AgentServiceOptionsTest, AgentTtlAndChallengeLimitApply) {
  std::optional<AttestedAgent> agent = AttestAs("fake", "direct-a");
  ASSERT_TRUE(agent.has_value());
  const int64_t now = std::chrono::system_clock::to_time_t(clock_.Now());
  EXPECT_NEAR(agent->result.svid().expires_at(), now + 120, 2);
  EXPECT_FALSE(agent->result.reattestable());
  EXPECT_EQ(Node("spiffe://example.org/spire/agent/fake/a")->selectors, Selectors({"fake:node:a"}));

  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  AttestOutcome outcome =
      Attest(TlsChannel(), AttestRequest("fake", "loop", key),
             [](const std::string&) { return std::optional<std::string>("x"); });
  EXPECT_EQ(outcome.status.error_message(), "nodeattestor(fake): too many challenges");
  EXPECT_THAT(outcome.challenges, SizeIs(2));
}

TEST_F(AgentServiceOptionsTest, SilentAgentIsCutOffAfterTheTimeout) {
  spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  grpc::ClientContext ctx;
  auto stream = Stub(TlsChannel())->AttestAgent(WithDeadline(ctx));
  ASSERT_TRUE(stream->Write(AttestRequest("fake", "node-1", key)));
  agentv1::AttestAgentResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.challenge(), "nonce:1");
  // No answer: the server gives up after its one-second budget, well before our deadline.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(stream->Read(&response));
  grpc::Status s = stream->Finish();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED) << s.error_message();
  EXPECT_EQ(NodeCount(), 0);
}

}  // namespace
}  // namespace tessera::server::testing
