// api fetch secrets: what Envoy would receive over SDS, fetched with the same FetchSecrets call
// (envoy.service.secret.v3) on the agent's socket, as the calling process. For operators checking
// an Envoy setup, and for end-to-end tests of the agent's SDS.
#include <sys/stat.h>

#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "agent/cli/command.h"
#include "common/files.h"
#include "common/status.h"
#include "envoy/extensions/transport_sockets/tls/v3/common.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config.pb.h"
#include "envoy/service/secret/v3/sds.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "spiffe/certificate.h"
#include "spiffe/x509_verify.h"

namespace tessera::agent::cli {
namespace {

namespace tls = envoy::extensions::transport_sockets::tls::v3;
namespace discovery = envoy::service::discovery::v3;

constexpr char kSecretTypeUrl[] =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

struct FetchSecretsFlags {
  std::vector<std::string> names;
  std::string node_id = "tessera-agent-cli";
  std::string write;
};

// A resource name as a file name: "spiffe://example.org/web" -> "spiffe___example.org_web".
std::string FileStem(std::string_view name) {
  std::string out;
  for (char c : name) {
    out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
  }
  return out;
}

// Trust domain -> PEM CAs of a validation context, whichever form it has.
std::vector<std::pair<std::string, std::string>> Authorities(
    const tls::CertificateValidationContext& context) {
  std::vector<std::pair<std::string, std::string>> out;
  if (context.has_trusted_ca()) out.emplace_back("", context.trusted_ca().inline_bytes());
  tls::SPIFFECertValidatorConfig spiffe;
  if (context.has_custom_validator_config() &&
      context.custom_validator_config().typed_config().UnpackTo(&spiffe)) {
    for (const auto& td : spiffe.trust_domains()) {
      out.emplace_back(td.name(), td.trust_bundle().inline_bytes());
    }
  }
  return out;
}

std::string Describe(const tls::Secret& secret) {
  std::string out = absl::StrCat("Secret \"", secret.name(), "\"\n");
  if (secret.has_tls_certificate()) {
    const tls::TlsCertificate& cert = secret.tls_certificate();
    absl::StatusOr<spiffe::X509Svid> svid = spiffe::ParseX509SvidPem(
        cert.certificate_chain().inline_bytes(), cert.private_key().inline_bytes());
    if (!svid.ok()) {
      absl::StrAppend(&out, "  tls_certificate: INVALID: ", svid.status().message(), "\n");
      return out;
    }
    absl::StrAppend(&out, "  tls_certificate: ", svid->id.str(), "\n",
                    "  expires:         ", FormatTime(svid->chain[0].NotAfter()),
                    "\n  chain length:    ", svid->chain.size(), "\n");
  } else if (secret.has_validation_context()) {
    const tls::CertificateValidationContext& context = secret.validation_context();
    absl::StrAppend(
        &out, "  validation_context: ",
        context.has_custom_validator_config() ? "SPIFFE certificate validator" : "trusted_ca",
        "\n");
    for (const auto& [td, pem] : Authorities(context)) {
      absl::StatusOr<std::vector<spiffe::Certificate>> cas = spiffe::ParsePemChain(pem);
      absl::StrAppend(&out, "    ", td.empty() ? "CAs" : td, ": ",
                      cas.ok() ? absl::StrCat(cas->size(), " CA certificate(s)")
                               : absl::StrCat("INVALID: ", cas.status().message()),
                      "\n");
    }
  }
  return out;
}

absl::Status WriteSecret(CommandEnv& env, const tls::Secret& secret,
                         const std::filesystem::path& dir) {
  auto write = [&](const std::string& file, std::string_view data, mode_t mode) {
    env.out() << "Writing " << (dir / file).string() << "\n";
    absl::Status s = WriteFileAtomically(dir / file, data, mode);
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat("cannot write ", s.message()));
    return absl::OkStatus();
  };
  const std::string stem = FileStem(secret.name());
  if (secret.has_tls_certificate()) {
    RETURN_IF_ERROR(
        write(stem + ".pem", secret.tls_certificate().certificate_chain().inline_bytes(), 0644));
    return write(stem + ".key", secret.tls_certificate().private_key().inline_bytes(), 0600);
  }
  for (const auto& [td, pem] : Authorities(secret.validation_context())) {
    RETURN_IF_ERROR(write(
        td.empty() ? stem + ".bundle.pem" : absl::StrCat(stem, ".", FileStem(td), ".bundle.pem"),
        pem, 0644));
  }
  return absl::OkStatus();
}

int FetchSecrets(CommandEnv& env, const FetchSecretsFlags& f) {
  // Resolves the socket and timeout like every other command.
  auto client = env.Connect();
  if (!client.ok()) return env.Fail(client.status());
  auto stub = envoy::service::secret::v3::SecretDiscoveryService::NewStub(
      grpc::CreateChannel(env.address().grpc_target, grpc::InsecureChannelCredentials()));
  discovery::DiscoveryRequest request;
  request.set_type_url(kSecretTypeUrl);
  request.mutable_node()->set_id(f.node_id);
  for (const std::string& name : f.names) request.add_resource_names(name);
  discovery::DiscoveryResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + env.timeout());
  grpc::Status status = stub->FetchSecrets(&context, request, &response);
  if (!status.ok()) {
    return env.CallFailed(
        "failed to fetch secrets",
        absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message()));
  }
  std::vector<tls::Secret> secrets;
  for (const auto& any : response.resources()) {
    if (!any.UnpackTo(&secrets.emplace_back())) {
      return env.Fail(absl::StrCat("the agent sent a resource of type ", any.type_url()));
    }
  }
  if (!f.write.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(f.write, ec);
    if (ec) return env.Fail(absl::StrCat("cannot create --write directory ", f.write));
    for (const tls::Secret& secret : secrets) {
      if (absl::Status s = WriteSecret(env, secret, f.write); !s.ok()) return env.Fail(s);
    }
    return 0;
  }
  if (env.json()) {
    // Private keys stay off the terminal: written only with --write (mode 0600).
    for (tls::Secret& secret : secrets) {
      if (secret.has_tls_certificate()) {
        secret.mutable_tls_certificate()->mutable_private_key()->set_inline_string("(omitted)");
      }
    }
    env.out() << "[";
    for (size_t i = 0; i < secrets.size(); ++i) {
      std::string json;
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;
      if (!google::protobuf::util::MessageToJsonString(secrets[i], &json, options).ok()) {
        return env.Fail("cannot render a secret as JSON");
      }
      env.out() << (i == 0 ? "" : ",") << json;
    }
    env.out() << "]\n";
    return 0;
  }
  for (const tls::Secret& secret : secrets) env.out() << Describe(secret);
  return 0;
}

}  // namespace

void RegisterSecretsCommand(CLI::App* fetch, Registrar& registrar) {
  auto* flags = registrar.Make<FetchSecretsFlags>();
  CLI::App* secrets = registrar.AddLeaf(
      fetch, "secrets", "fetch what Envoy would receive over SDS (FetchSecrets) for this process",
      [flags](CommandEnv& env) { return FetchSecrets(env, *flags); });
  secrets->add_option("--name", flags->names,
                      "a resource name: a SPIFFE ID, a trust domain ID, default, ROOTCA, ALL; "
                      "repeatable (none: everything)");
  secrets->add_option("--node-id", flags->node_id, "the node ID to present, as Envoy's node.id");
  secrets->add_option("--write", flags->write,
                      "directory to write NAME.pem and NAME.key (mode 0600) per certificate and "
                      "NAME[.TD].bundle.pem per validation context to");
}

}  // namespace tessera::agent::cli
