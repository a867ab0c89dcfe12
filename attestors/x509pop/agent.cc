// The agent half of x509pop: the node certificate chain as the payload, and a signature over both
// nonces as the answer to the server's challenge.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "attestors/x509pop/pop.h"
#include "attestors/x509pop/wire.h"
#include "attestors/x509pop/x509pop.h"
#include "common/files.h"
#include "common/status.h"
#include "spiffe/certificate.h"
#include "spiffe/key.h"

namespace tessera::attestors::x509pop {
namespace {

struct NodeCredentials {
  std::vector<spiffe::Certificate> chain;  // leaf first
  spiffe::PrivateKey key;
};

absl::StatusOr<std::vector<spiffe::Certificate>> LoadCertificates(const std::string& path,
                                                                  std::string_view what) {
  std::string context = absl::StrCat("x509pop: load ", AsAbsl(what), " ", path);
  ASSIGN_OR_RETURN(std::string pem, ReadFileToString(path), Annotate(_, context));
  ASSIGN_OR_RETURN(std::vector<spiffe::Certificate> certs, spiffe::ParsePemChain(pem),
                   Annotate(_, context));
  return certs;
}

absl::StatusOr<NodeCredentials> Load(const AgentConfig& config) {
  ASSIGN_OR_RETURN(std::vector<spiffe::Certificate> chain,
                   LoadCertificates(config.certificate_path, "certificate"));
  std::string key_context = absl::StrCat("x509pop: load private key ", config.private_key_path);
  ASSIGN_OR_RETURN(std::string key_pem, ReadFileToString(config.private_key_path),
                   Annotate(_, key_context));
  ASSIGN_OR_RETURN(spiffe::PrivateKey key, spiffe::PrivateKey::FromPem(key_pem),
                   Annotate(_, key_context));
  if (!key.public_key().Equals(chain[0].public_key())) {
    return absl::InvalidArgumentError(
        absl::StrCat("x509pop: the private key in ", config.private_key_path,
                     " does not match the certificate in ", config.certificate_path));
  }
  if (!config.intermediates_path.empty()) {
    ASSIGN_OR_RETURN(std::vector<spiffe::Certificate> more,
                     LoadCertificates(config.intermediates_path, "intermediates"));
    chain.insert(chain.end(), more.begin(), more.end());
  }
  return NodeCredentials{.chain = std::move(chain), .key = std::move(key)};
}

class Agent final : public AgentNodeAttestor {
 public:
  explicit Agent(AgentConfig config) : config_(std::move(config)) {}

  std::string_view type() const override { return kPluginName; }

  absl::StatusOr<std::string> Payload() override {
    key_.reset();
    ASSIGN_OR_RETURN(NodeCredentials creds, Load(config_));
    AttestationData data;
    for (const spiffe::Certificate& cert : creds.chain) data.certificates.push_back(cert.ToDer());
    // The key that matches the certificate just sent, even if the files change before the
    // challenge arrives.
    key_ = std::move(creds.key);
    return EncodeAttestationData(data);
  }

  absl::StatusOr<std::string> RespondToChallenge(std::string_view challenge) override {
    if (!key_.has_value()) {
      return absl::FailedPreconditionError("x509pop: no attestation in progress");
    }
    ASSIGN_OR_RETURN(Challenge decoded, DecodeChallenge(challenge),
                     Annotate(_, "x509pop: unable to unmarshal challenge"));
    ASSIGN_OR_RETURN(Response response, CalculateResponse(*key_, decoded),
                     Annotate(_, "x509pop: failed to calculate challenge response"));
    return EncodeResponse(response);
  }

 private:
  const AgentConfig config_;
  std::optional<spiffe::PrivateKey> key_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AgentNodeAttestor>> NewAgentAttestor(const AgentConfig& config) {
  if (config.certificate_path.empty()) {
    return absl::InvalidArgumentError("x509pop: certificate_path is required");
  }
  if (config.private_key_path.empty()) {
    return absl::InvalidArgumentError("x509pop: private_key_path is required");
  }
  RETURN_IF_ERROR(Load(config).status());
  return std::make_unique<Agent>(config);
}

}  // namespace tessera::attestors::x509pop
