#include "agent/node_attestation.h"

#include <functional>
#include <memory>
#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "spiffe/csr.h"
#include "spiffe/grpc_tls.h"
#include "spiffe/x509_verify.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"

namespace tessera::agent {
namespace {

namespace agentv1 = ::spire::api::server::agent::v1;
namespace bundlev1 = ::spire::api::server::bundle::v1;
namespace types = ::spire::api::types;

// Bounds what a misbehaving server can make us do.
constexpr int kMaxChallenges = 8;

using Responder = std::function<absl::StatusOr<std::string>(std::string_view challenge)>;

absl::Status FromGrpc(const grpc::Status& status, std::string_view what) {
  return StatusFromGrpc(status, what);
}

// insecure_bootstrap: the chain is not verified (there is nothing to verify it against yet), so
// this check of the leaf's URI SAN is all that stands between the agent and any TLS server.
// Runs on gRPC's handshake threads; only compares strings.
class UriSanOnlyVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit UriSanOnlyVerifier(spiffe::SpiffeId expected) : expected_(std::move(expected)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    std::vector<std::string> uris;
    for (const grpc::string_ref& uri : request->uri_names())
      uris.emplace_back(uri.data(), uri.size());
    absl::Status status = spiffe::CheckPeerUriSans(uris, expected_);
    *sync_status = status.ok() ? grpc::Status::OK
                               : grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                              std::string(status.message()));
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  const spiffe::SpiffeId expected_;
};

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> InsecureBootstrapCredentials(
    const spiffe::SpiffeId& server_id) {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_verify_server_certs(false);
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<UriSanOnlyVerifier>(server_id));
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::experimental::TlsCredentials(options);
  if (creds == nullptr)
    return absl::InternalError("insecure bootstrap: gRPC refused the TLS options");
  return creds;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(
    const ServerConnection& server, const std::optional<spiffe::ClientIdentity>& identity) {
  ASSIGN_OR_RETURN(auto server_id,
                   spiffe::SpiffeId::FromPath(server.trust_domain, "/spire/server"));
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (server.insecure_bootstrap) {
    if (identity.has_value()) {
      return absl::InvalidArgumentError("insecure bootstrap applies to attestation only");
    }
    ASSIGN_OR_RETURN(creds, InsecureBootstrapCredentials(server_id));
  } else {
    ASSIGN_OR_RETURN(creds,
                     spiffe::SpiffeTlsChannelCredentials(server.bundle, server_id, identity));
  }
  grpc::ChannelArguments args;
  // Our own subchannel: never share a TLS session made with another identity.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(server.target, creds, args);
}

void SetDeadline(grpc::ClientContext& ctx, const ServerConnection& server) {
  ctx.set_deadline(std::chrono::system_clock::now() + server.timeout);
}

absl::StatusOr<std::vector<spiffe::Certificate>> DerChain(
    const google::protobuf::RepeatedPtrField<std::string>& ders, std::string_view what) {
  if (ders.empty()) return absl::InternalError(absl::StrCat(AsAbsl(what), ": empty chain"));
  std::vector<spiffe::Certificate> chain;
  for (const std::string& der : ders) {
    auto cert = spiffe::Certificate::FromDer(der);
    if (!cert.ok()) {
      return absl::InternalError(
          absl::StrCat(AsAbsl(what), ": bad certificate: ", cert.status().message()));
    }
    chain.push_back(*std::move(cert));
  }
  return chain;
}

// GetBundle's X.509 authorities: the bundle the agent trusts from now on.
absl::StatusOr<std::vector<spiffe::Certificate>> FetchBundle(
    const std::shared_ptr<grpc::Channel>& channel, const ServerConnection& server) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, server);
  types::Bundle bundle;
  grpc::Status status = bundlev1::Bundle::NewStub(channel)->GetBundle(&ctx, {}, &bundle);
  if (!status.ok()) return FromGrpc(status, "get bundle");
  std::vector<spiffe::Certificate> roots;
  for (const auto& authority : bundle.x509_authorities()) {
    auto cert = spiffe::Certificate::FromDer(authority.asn1());
    if (!cert.ok()) {
      return absl::InternalError(
          absl::StrCat("get bundle: bad X.509 authority: ", cert.status().message()));
    }
    roots.push_back(*std::move(cert));
  }
  if (roots.empty()) return absl::InternalError("get bundle: no X.509 authorities");
  return roots;
}

// The SVID we were given, checked against the bundle we will trust: a server that hands out a
// certificate its own bundle does not vouch for is refused now, not at the first sync.
absl::StatusOr<AgentState> Finish(const spiffe::PrivateKey& key,
                                  std::vector<spiffe::Certificate> chain,
                                  std::vector<spiffe::Certificate> bundle, bool reattestable) {
  std::string chain_der = spiffe::ChainToDer(chain);
  ASSIGN_OR_RETURN(std::string key_der, key.ToPkcs8Der());
  ASSIGN_OR_RETURN(spiffe::X509Svid svid, spiffe::ParseX509Svid(chain_der, key_der));
  auto verified = spiffe::VerifyX509Svid(
      svid.chain,
      [&](const spiffe::TrustDomain&) -> std::optional<std::vector<spiffe::Certificate>> {
        return bundle;
      },
      std::chrono::system_clock::now());
  if (!verified.ok()) {
    return absl::InternalError(absl::StrCat(
        "agent SVID does not verify against the server's bundle: ", verified.status().message()));
  }
  return AgentState{
      .svid = std::move(svid), .bundle = std::move(bundle), .reattestable = reattestable};
}

absl::StatusOr<AgentState> Attest(const ServerConnection& server, std::string type,
                                  std::string payload, const Responder& respond) {
  ASSIGN_OR_RETURN(spiffe::PrivateKey key, spiffe::PrivateKey::Generate(server.key_type));
  // The CSR's URI SAN is ignored by the server (it names the agent); SPIRE sends none, ours
  // carries the server's trust domain ID to keep one CSR builder.
  ASSIGN_OR_RETURN(std::string csr, spiffe::CreateCsr(key, server.trust_domain.Id()));
  ASSIGN_OR_RETURN(auto channel, Dial(server, std::nullopt));

  grpc::ClientContext ctx;
  SetDeadline(ctx, server);
  auto stream = agentv1::Agent::NewStub(channel)->AttestAgent(&ctx);
  agentv1::AttestAgentRequest first;
  first.mutable_params()->mutable_data()->set_type(std::move(type));
  first.mutable_params()->mutable_data()->set_payload(std::move(payload));
  first.mutable_params()->mutable_params()->set_csr(std::move(csr));
  stream->Write(first);
  agentv1::AttestAgentResponse response;
  std::optional<agentv1::AttestAgentResponse::Result> result;
  absl::Status local_error;
  for (int round = 0; stream->Read(&response);) {
    if (response.has_result()) {
      result = response.result();
      break;
    }
    if (!respond || ++round > kMaxChallenges) {
      local_error = absl::InternalError("server issued unexpected challenge");
      break;
    }
    absl::StatusOr<std::string> answer = respond(response.challenge());
    if (!answer.ok()) {
      local_error = answer.status();
      break;
    }
    agentv1::AttestAgentRequest reply;
    reply.set_challenge_response(*std::move(answer));
    if (!stream->Write(reply)) break;
  }
  if (!local_error.ok()) ctx.TryCancel();
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  RETURN_IF_ERROR(local_error);
  if (!status.ok()) return FromGrpc(status, "attest agent");
  if (!result.has_value()) return absl::InternalError("attest agent: stream ended without result");
  ASSIGN_OR_RETURN(auto chain, DerChain(result->svid().cert_chain(), "attest agent"));
  ASSIGN_OR_RETURN(auto bundle, FetchBundle(channel, server));
  return Finish(key, std::move(chain), std::move(bundle), result->reattestable());
}

}  // namespace

absl::Status StatusFromGrpc(const grpc::Status& status, std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()),
                   absl::StrCat(AsAbsl(what), ": ", status.error_message()));
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const google::protobuf::Any& any : details.details()) {
      out.SetPayload(any.type_url(), absl::Cord(any.value()));
    }
  }
  return out;
}

spire::api::types::PermissionDeniedDetails::Reason AgentDeniedReason(const absl::Status& status) {
  using Details = spire::api::types::PermissionDeniedDetails;
  if (status.code() != absl::StatusCode::kPermissionDenied) return Details::UNKNOWN;
  auto payload = status.GetPayload(kPermissionDeniedDetailsUrl);
  Details details;
  if (!payload.has_value() || !details.ParseFromString(std::string(*payload))) {
    return Details::UNKNOWN;
  }
  return details.reason();
}

absl::StatusOr<AgentState> AttestWithJoinToken(const ServerConnection& server,
                                               std::string_view token) {
  if (token.empty()) return absl::InvalidArgumentError("join token is empty");
  return Attest(server, "join_token", std::string(token), nullptr);
}

absl::StatusOr<AgentState> AttestWithAttestor(const ServerConnection& server,
                                              attestors::AgentNodeAttestor& attestor) {
  ASSIGN_OR_RETURN(std::string payload, attestor.Payload());
  return Attest(server, std::string(attestor.type()), std::move(payload),
                [&](std::string_view challenge) { return attestor.RespondToChallenge(challenge); });
}

absl::StatusOr<AgentState> RenewAgentSvid(const ServerConnection& server,
                                          const AgentState& current) {
  if (server.insecure_bootstrap) {
    return absl::InvalidArgumentError(
        "renew agent: insecure bootstrap applies to attestation only");
  }
  ASSIGN_OR_RETURN(spiffe::PrivateKey key, spiffe::PrivateKey::Generate(server.key_type));
  ASSIGN_OR_RETURN(std::string csr, spiffe::CreateCsr(key, server.trust_domain.Id()));
  ASSIGN_OR_RETURN(auto channel,
                   Dial(server, spiffe::ClientIdentity{current.svid.key, current.svid.chain}));
  grpc::ClientContext ctx;
  SetDeadline(ctx, server);
  agentv1::RenewAgentRequest request;
  request.mutable_params()->set_csr(std::move(csr));
  agentv1::RenewAgentResponse response;
  grpc::Status status = agentv1::Agent::NewStub(channel)->RenewAgent(&ctx, request, &response);
  if (!status.ok()) return FromGrpc(status, "renew agent");
  ASSIGN_OR_RETURN(auto chain, DerChain(response.svid().cert_chain(), "renew agent"));
  ASSIGN_OR_RETURN(auto bundle, FetchBundle(channel, server));
  return Finish(key, std::move(chain), std::move(bundle), current.reattestable);
}

}  // namespace tessera::agent
