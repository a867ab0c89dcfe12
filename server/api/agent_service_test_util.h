// Test-only helpers for the AgentService tests: a scripted fake node attestor, a fixture that
// serves AgentService over the shared ServiceTest harness, and client-side helpers for the
// AttestAgent conversation, join tokens and PermissionDeniedDetails. One fixture per test; the
// fake attestor is safe for concurrent use (its conversations are not, like real ones).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "attestors/node_attestor.h"
#include "gmock/gmock.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/api/agent_service.h"
#include "server/api/service_test_util.h"
#include "spiffe/csr.h"
#include "spiffe/x509_test_util.h"
#include "spiffe/x509_verify.h"
#include "spire/api/types/permissiondenieddetails.pb.h"

namespace tessera::server::testing {

namespace types = ::spire::api::types;

// Attestation type "fake". What a conversation does depends on the payload:
//   "node-<x>"   challenge "nonce:<x>"; the response must be "signed:nonce:<x>"; then agent
//                .../spire/agent/fake/<x>, selectors fake:node:<x> and fake:zone:z1, reattestable
//   "direct-<x>" no challenge: agent .../spire/agent/fake/<x>, selector fake:node:<x>
//   "server"     agent spiffe://example.org/spire/server
//   "foreign"    agent spiffe://other.org/spire/agent/fake/x
//   "malformed"  InvalidArgument "failed to unmarshal data: bad"
//   "loop"       a challenge after every message, forever
//   "nothing"    a step with neither challenge nor result
class FakeAttestor final : public attestors::ServerNodeAttestor {
 public:
  std::string_view type() const override { return "fake"; }
  std::unique_ptr<attestors::ServerNodeAttestation> Begin(
      const spiffe::TrustDomain& trust_domain) const override {
    ++begun_;
    return std::make_unique<Conversation>(trust_domain);
  }
  int begun() const { return begun_; }

 private:
  class Conversation final : public attestors::ServerNodeAttestation {
   public:
    explicit Conversation(spiffe::TrustDomain td) : td_(std::move(td)) {}

    absl::StatusOr<attestors::NodeAttestationStep> Next(std::string_view bytes) override {
      std::string input(bytes);
      if (!payload_.has_value()) {
        payload_ = input;
        if (input.starts_with("node-")) return Challenge("nonce:" + input.substr(5));
        if (input.starts_with("direct-")) {
          return Result("/spire/agent/fake/" + input.substr(7), {"fake:node:" + input.substr(7)},
                        false);
        }
        if (input == "server") return Result("/spire/server", {}, false);
        if (input == "foreign") {
          return attestors::NodeAttestationStep{
              .challenge = std::nullopt,
              .result = attestors::NodeAttestationResult{
                  .agent_id = *spiffe::SpiffeId::Parse("spiffe://other.org/spire/agent/fake/x"),
                  .selectors = {},
                  .can_reattest = false}};
        }
        if (input == "malformed") {
          return absl::InvalidArgumentError("failed to unmarshal data: bad");
        }
        if (input == "loop") return Challenge("again");
        if (input == "nothing") return attestors::NodeAttestationStep{};
        return absl::InternalError("fake attestor: unscripted payload");
      }
      if (*payload_ == "loop") return Challenge("again");
      std::string name = payload_->substr(5);
      if (input != "signed:nonce:" + name) {
        return absl::PermissionDeniedError("challenge response verification failed");
      }
      return Result("/spire/agent/fake/" + name, {"fake:node:" + name, "fake:zone:z1"}, true);
    }

   private:
    static attestors::NodeAttestationStep Challenge(std::string challenge) {
      return attestors::NodeAttestationStep{.challenge = std::move(challenge),
                                            .result = std::nullopt};
    }
    attestors::NodeAttestationStep Result(const std::string& path,
                                          std::vector<std::string> selectors, bool reattest) {
      return attestors::NodeAttestationStep{.challenge = std::nullopt,
                                            .result = attestors::NodeAttestationResult{
                                                .agent_id = *spiffe::SpiffeId::FromPath(td_, path),
                                                .selectors = *spiffe::SelectorSet::Parse(selectors),
                                                .can_reattest = reattest}};
    }

    spiffe::TrustDomain td_;
    std::optional<std::string> payload_;
  };

  mutable std::atomic<int> begun_{0};
};

inline types::SPIFFEID ProtoId(std::string td, std::string path) {
  types::SPIFFEID id;
  id.set_trust_domain(std::move(td));
  id.set_path(std::move(path));
  return id;
}

// What the client saw of one AttestAgent stream.
struct AttestOutcome {
  grpc::Status status;
  std::vector<std::string> challenges;
  std::optional<agentv1::AttestAgentResponse::Result> result;
};

// Answers a challenge; nullopt hangs up (WritesDone) instead.
using ChallengeResponder = std::function<std::optional<std::string>(const std::string&)>;

// The reason carried by a PERMISSION_DENIED's grpc-status-details-bin, or nullopt.
inline std::optional<types::PermissionDeniedDetails::Reason> ReasonOf(const grpc::Status& status) {
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details()) || details.details_size() != 1) {
    return std::nullopt;
  }
  types::PermissionDeniedDetails reason;
  if (!details.details(0).UnpackTo(&reason)) return std::nullopt;
  return reason.reason();
}

class AgentServiceTest : public ServiceTest {
 protected:
  static constexpr char kJoinTokenPrefix[] = "spiffe://example.org/spire/agent/join_token/";

  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    service_ = std::make_unique<AgentService>(deps(), Options());
    StartServer({service_.get()});
  }

  // The service's options; tests of other settings override this.
  virtual AgentServiceOptions Options() {
    AgentServiceOptions options;
    options.join_token_enabled = true;
    options.node_attestors.emplace("fake", &attestor_);
    return options;
  }

  static grpc::ClientContext* WithDeadline(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return &ctx;
  }

  std::unique_ptr<agentv1::Agent::Stub> Stub(const std::shared_ptr<grpc::Channel>& channel) {
    return agentv1::Agent::NewStub(channel);
  }

  // A CSR for `key` as SPIRE's agent sends it (its URI SAN is ignored by the server).
  std::string Csr(const spiffe::PrivateKey& key) {
    auto csr = spiffe::CreateCsr(key, *spiffe::SpiffeId::Parse("spiffe://example.org/ignored"));
    EXPECT_TRUE(csr.ok()) << csr.status();
    return csr.value_or("");
  }

  agentv1::AttestAgentRequest AttestRequest(std::string type, std::string payload,
                                            const spiffe::PrivateKey& key) {
    agentv1::AttestAgentRequest request;
    request.mutable_params()->mutable_data()->set_type(std::move(type));
    request.mutable_params()->mutable_data()->set_payload(std::move(payload));
    request.mutable_params()->mutable_params()->set_csr(Csr(key));
    return request;
  }

  AttestOutcome Attest(const std::shared_ptr<grpc::Channel>& channel,
                       const agentv1::AttestAgentRequest& first,
                       const ChallengeResponder& respond = nullptr) {
    grpc::ClientContext ctx;
    auto stream = Stub(channel)->AttestAgent(WithDeadline(ctx));
    AttestOutcome out;
    if (stream->Write(first)) {
      agentv1::AttestAgentResponse response;
      while (stream->Read(&response)) {
        if (response.has_result()) {
          out.result = response.result();
          break;
        }
        out.challenges.push_back(response.challenge());
        std::optional<std::string> answer =
            respond ? respond(response.challenge()) : std::optional<std::string>();
        if (!answer.has_value()) break;
        agentv1::AttestAgentRequest reply;
        reply.set_challenge_response(*answer);
        if (!stream->Write(reply)) break;
      }
    }
    stream->WritesDone();
    out.status = stream->Finish();
    return out;
  }

  // The fake attestor's honest agent.
  static std::optional<std::string> Sign(const std::string& challenge) {
    return "signed:" + challenge;
  }

  // CreateJoinToken over the admin socket.
  absl::StatusOr<types::JoinToken> CreateToken(int ttl, std::string token = "",
                                               std::optional<types::SPIFFEID> agent_id = {}) {
    agentv1::CreateJoinTokenRequest request;
    request.set_ttl(ttl);
    request.set_token(std::move(token));
    if (agent_id.has_value()) *request.mutable_agent_id() = *agent_id;
    grpc::ClientContext ctx;
    types::JoinToken out;
    grpc::Status status = Stub(AdminChannel())->CreateJoinToken(WithDeadline(ctx), request, &out);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return out;
  }

  // An agent that attested: its key, the SVID the server returned and what else it said.
  struct AttestedAgent {
    spiffe::ClientIdentity identity;
    agentv1::AttestAgentResponse::Result result;
  };

  // Attests with `type`/`payload` (answering the fake's challenges honestly) on an anonymous
  // TLS channel; nullopt (and a test failure) when the server refused.
  std::optional<AttestedAgent> AttestAs(std::string type, std::string payload) {
    spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
    AttestOutcome outcome =
        Attest(TlsChannel(), AttestRequest(std::move(type), std::move(payload), key), Sign);
    EXPECT_TRUE(outcome.status.ok()) << outcome.status.error_message();
    if (!outcome.status.ok() || !outcome.result.has_value()) return std::nullopt;
    return AttestedAgent{.identity = {key, ChainOf(outcome.result->svid())},
                         .result = *outcome.result};
  }

  static std::vector<spiffe::Certificate> ChainOf(const types::X509SVID& svid) {
    std::vector<spiffe::Certificate> chain;
    for (const std::string& der : svid.cert_chain()) {
      auto cert = spiffe::Certificate::FromDer(der);
      EXPECT_TRUE(cert.ok()) << cert.status();
      if (cert.ok()) chain.push_back(*cert);
    }
    return chain;
  }

  // RenewAgent with a fresh key; the new identity on success.
  grpc::Status Renew(const spiffe::ClientIdentity& identity,
                     std::optional<spiffe::ClientIdentity>* renewed = nullptr,
                     agentv1::RenewAgentResponse* response_out = nullptr) {
    spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
    agentv1::RenewAgentRequest request;
    request.mutable_params()->set_csr(Csr(key));
    grpc::ClientContext ctx;
    agentv1::RenewAgentResponse response;
    grpc::Status status =
        Stub(TlsChannel(identity))->RenewAgent(WithDeadline(ctx), request, &response);
    if (status.ok() && renewed != nullptr) {
      *renewed = spiffe::ClientIdentity{key, ChainOf(response.svid())};
    }
    if (response_out != nullptr) *response_out = response;
    return status;
  }

  std::optional<AttestedNode> Node(std::string_view id) {
    auto node = store_->FetchAttestedNode(Id(id));
    EXPECT_TRUE(node.ok()) << node.status();
    return node.value_or(std::nullopt);
  }

  int64_t NodeCount() {
    auto count = store_->CountAttestedNodes({});
    EXPECT_TRUE(count.ok()) << count.status();
    return count.value_or(-1);
  }

  FakeAttestor attestor_;
  std::unique_ptr<AgentService> service_;
};

}  // namespace tessera::server::testing
