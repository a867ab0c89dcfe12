// x509 mint and jwt mint over /spire.api.server.svid.v1.SVID, and healthcheck.
#include <chrono>
#include <filesystem>
#include <ostream>
#include <string>
#include <system_error>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "server/cli/command.h"
#include "spiffe/base64.h"
#include "spiffe/certificate.h"
#include "spiffe/csr.h"
#include "spiffe/jwt_svid.h"
#include "spiffe/key.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"
#include "spire/api/server/svid/v1/svid.grpc.pb.h"

namespace tessera::server::cli {
namespace {

namespace bundlev1 = ::spire::api::server::bundle::v1;
namespace svidv1 = ::spire::api::server::svid::v1;

// A health check should answer quickly or not at all.
constexpr std::chrono::seconds kHealthTimeout{5};
// The server may cut a lifetime at its CA's expiry; smaller differences are clock granularity.
constexpr std::chrono::seconds kCapSlack{5};

struct MintFlags {
  std::string spiffe_id;
  std::string ttl;
  std::vector<std::string> dns_names;
  std::vector<std::string> audience;
  std::string write;
};

// PEM blocks of DER certificates, each element possibly holding several (as Go's
// ParseCertificates allows).
template <typename Range>
absl::StatusOr<std::string> DerToPem(const Range& ders) {
  std::string pem;
  for (const auto& der : ders) {
    ASSIGN_OR_RETURN(std::vector<spiffe::Certificate> certs, spiffe::ParseDerChain(der));
    pem += spiffe::ChainToPem(certs);
  }
  return pem;
}

void WarnIfCapped(CommandEnv& env, std::string_view what, int32_t ttl, int64_t expires_at) {
  if (ttl <= 0) return;
  auto now = std::chrono::system_clock::now();
  auto expiry = std::chrono::system_clock::from_time_t(static_cast<time_t>(expires_at));
  if (expiry - now + kCapSlack < std::chrono::seconds(ttl)) {
    env.err() << what << " lifetime was capped shorter than the requested ttl; expires "
              << absl::FormatTime(absl::RFC3339_sec, absl::FromUnixSeconds(expires_at),
                                  absl::UTCTimeZone())
              << "\n";
  }
}

int MintX509(CommandEnv& env, const MintFlags& f) {
  if (f.spiffe_id.empty()) return env.Fail("a SPIFFE ID is required");
  absl::StatusOr<spiffe::SpiffeId> id = ParseIdFlag("--spiffe-id", f.spiffe_id);
  if (!id.ok()) return env.Fail(id.status());
  int32_t ttl = 0;
  if (!f.ttl.empty()) {
    absl::StatusOr<int32_t> parsed = ParseTtlFlag("--ttl", f.ttl);
    if (!parsed.ok()) return env.Fail(parsed.status());
    ttl = *parsed;
  }
  // The key is made here and never leaves this process except into the output the operator
  // asked for.
  absl::StatusOr<spiffe::PrivateKey> key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256);
  if (!key.ok()) return env.Fail(absl::StrCat("cannot generate a key: ", key.status().message()));
  absl::StatusOr<std::string> csr = spiffe::CreateCsr(*key, *id, f.dns_names);
  if (!csr.ok()) return env.Fail(absl::StrCat("cannot create the CSR: ", csr.status().message()));

  svidv1::MintX509SVIDRequest request;
  request.set_csr(*csr);
  request.set_ttl(ttl);
  svidv1::MintX509SVIDResponse response;
  auto context = CommandEnv::NewContext();
  grpc::Status status =
      svidv1::SVID::NewStub(env.channel())->MintX509SVID(context.get(), request, &response);
  if (!status.ok()) return env.RpcFailed("failed to mint X509-SVID", status);
  if (response.svid().cert_chain().empty()) {
    return env.Fail("failed to mint X509-SVID: the server's response has no certificate chain");
  }
  types::Bundle bundle;
  auto bundle_context = CommandEnv::NewContext();
  status = bundlev1::Bundle::NewStub(env.channel())
               ->GetBundle(bundle_context.get(), bundlev1::GetBundleRequest(), &bundle);
  if (!status.ok()) return env.RpcFailed("failed to get bundle", status);
  if (bundle.x509_authorities().empty()) {
    return env.Fail("failed to get bundle: the server's bundle has no X.509 authorities");
  }
  WarnIfCapped(env, "X509-SVID", ttl, response.svid().expires_at());

  absl::StatusOr<std::string> svid_pem = DerToPem(response.svid().cert_chain());
  if (!svid_pem.ok()) {
    return env.Fail(
        absl::StrCat("malformed X509-SVID from the server: ", svid_pem.status().message()));
  }
  std::vector<std::string> root_ders;
  for (const types::X509Certificate& cert : bundle.x509_authorities()) {
    root_ders.push_back(cert.asn1());
  }
  absl::StatusOr<std::string> bundle_pem = DerToPem(root_ders);
  if (!bundle_pem.ok()) {
    return env.Fail(
        absl::StrCat("malformed bundle from the server: ", bundle_pem.status().message()));
  }

  if (f.write.empty()) {
    if (env.json()) {
      absl::StatusOr<std::string> key_der = key->ToPkcs8Der();
      if (!key_der.ok()) return env.Fail("cannot encode the private key");
      nlohmann::json out = {{"x509_svid", nlohmann::json::array()},
                            {"private_key", spiffe::Base64Encode(*key_der)},
                            {"root_cas", nlohmann::json::array()}};
      for (const std::string& der : response.svid().cert_chain()) {
        out["x509_svid"].push_back(spiffe::Base64Encode(der));
      }
      for (const std::string& der : root_ders) out["root_cas"].push_back(spiffe::Base64Encode(der));
      env.out() << out.dump() << "\n";
      return 0;
    }
    absl::StatusOr<std::string> key_pem = key->ToPkcs8Pem();
    if (!key_pem.ok()) return env.Fail("cannot encode the private key");
    env.out() << "X509-SVID:\n"
              << *svid_pem << "\nPrivate key:\n"
              << *key_pem << "\nRoot CAs:\n"
              << *bundle_pem << "\n";
    return 0;
  }

  const std::filesystem::path dir(f.write);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return env.Fail(
        absl::StrCat("cannot create --write directory ", dir.string(), ": ", ec.message()));
  absl::StatusOr<std::string> key_pem = key->ToPkcs8Pem();
  if (!key_pem.ok()) return env.Fail("cannot encode the private key");
  const std::filesystem::path svid_path = dir / "svid.pem";
  const std::filesystem::path key_path = dir / "key.pem";
  const std::filesystem::path bundle_path = dir / "bundle.pem";
  if (absl::Status s = WriteFileAtomically(svid_path, *svid_pem, 0644); !s.ok()) {
    return env.Fail(absl::StrCat("cannot write the X509-SVID: ", s.message()));
  }
  env.out() << "X509-SVID written to " << svid_path.string() << "\n";
  if (absl::Status s = WriteFileAtomically(key_path, *key_pem, 0600); !s.ok()) {
    return env.Fail(absl::StrCat("cannot write the private key: ", s.message()));
  }
  env.out() << "Private key written to " << key_path.string() << "\n";
  if (absl::Status s = WriteFileAtomically(bundle_path, *bundle_pem, 0644); !s.ok()) {
    return env.Fail(absl::StrCat("cannot write the bundle: ", s.message()));
  }
  env.out() << "Root CAs written to " << bundle_path.string() << "\n";
  return 0;
}

int MintJwt(CommandEnv& env, const MintFlags& f) {
  if (f.spiffe_id.empty()) return env.Fail("a SPIFFE ID is required");
  if (f.audience.empty()) return env.Fail("at least one audience must be specified");
  absl::StatusOr<spiffe::SpiffeId> id = ParseIdFlag("--spiffe-id", f.spiffe_id);
  if (!id.ok()) return env.Fail(id.status());
  for (const std::string& audience : f.audience) {
    if (audience.empty()) return env.Fail("--audience must not be empty");
  }
  int32_t ttl = 0;
  if (!f.ttl.empty()) {
    absl::StatusOr<int32_t> parsed = ParseTtlFlag("--ttl", f.ttl);
    if (!parsed.ok()) return env.Fail(parsed.status());
    ttl = *parsed;
  }
  svidv1::MintJWTSVIDRequest request;
  *request.mutable_id() = IdProto(*id);
  for (const std::string& audience : f.audience) request.add_audience(audience);
  request.set_ttl(ttl);
  svidv1::MintJWTSVIDResponse response;
  auto context = CommandEnv::NewContext();
  grpc::Status status =
      svidv1::SVID::NewStub(env.channel())->MintJWTSVID(context.get(), request, &response);
  if (!status.ok()) return env.RpcFailed("failed to mint JWT-SVID", status);
  const std::string& token = response.svid().token();
  if (token.empty()) return env.Fail("failed to mint JWT-SVID: the server's response has no token");
  WarnIfCapped(env, "JWT-SVID", ttl, response.svid().expires_at());
  if (!f.write.empty()) {
    if (absl::Status s = WriteFileAtomically(f.write, token, 0600); !s.ok()) {
      return env.Fail(absl::StrCat("cannot write the JWT-SVID: ", s.message()));
    }
    env.out() << "JWT-SVID written to " << f.write << "\n";
    return 0;
  }
  if (env.json()) return env.PrintJson(response);
  env.out() << token << "\n";
  return 0;
}

int HealthCheck(CommandEnv& env) {
  // As spire-server does: the server is healthy when it serves its bundle, which it does only
  // once its CA is ready.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kHealthTimeout);
  types::Bundle bundle;
  grpc::Status status = bundlev1::Bundle::NewStub(env.channel())
                            ->GetBundle(&context, bundlev1::GetBundleRequest(), &bundle);
  if (!status.ok()) return env.RpcFailed("server is unhealthy: unable to fetch bundle", status);
  if (env.json()) {
    env.out() << R"({"healthy":true})"
              << "\n";
  } else {
    env.out() << "Server is healthy.\n";
  }
  return 0;
}

}  // namespace

void RegisterSvidCommands(CLI::App& app, Registrar& registrar) {
  CLI::App* x509 = app.add_subcommand("x509", "X509-SVIDs");
  x509->require_subcommand(1);
  auto* x509_flags = registrar.Make<MintFlags>();
  CLI::App* x509_mint = registrar.AddLeaf(
      x509, "mint", "mint an X509-SVID for any workload ID (the key is generated here)",
      [x509_flags](CommandEnv& env) { return MintX509(env, *x509_flags); });
  x509_mint->add_option("--spiffe-id", x509_flags->spiffe_id, "SPIFFE ID of the X509-SVID");
  x509_mint->add_option("--ttl", x509_flags->ttl,
                        "lifetime: a duration or seconds (default: the server's)");
  x509_mint->add_option("--dns", x509_flags->dns_names, "a DNS name for the SVID; repeatable")
      ->allow_extra_args(false);
  x509_mint->add_option("--write", x509_flags->write,
                        "directory to write svid.pem, key.pem and bundle.pem to");

  CLI::App* jwt = app.add_subcommand("jwt", "JWT-SVIDs");
  jwt->require_subcommand(1);
  auto* jwt_flags = registrar.Make<MintFlags>();
  CLI::App* jwt_mint =
      registrar.AddLeaf(jwt, "mint", "mint a JWT-SVID for any workload ID",
                        [jwt_flags](CommandEnv& env) { return MintJwt(env, *jwt_flags); });
  jwt_mint->add_option("--spiffe-id", jwt_flags->spiffe_id, "SPIFFE ID of the JWT-SVID");
  jwt_mint->add_option("--audience", jwt_flags->audience, "an audience; repeatable")
      ->allow_extra_args(false);
  jwt_mint->add_option("--ttl", jwt_flags->ttl,
                       "lifetime: a duration or seconds (default: the server's)");
  jwt_mint->add_option("--write", jwt_flags->write, "file to write the token to (mode 0600)");

  registrar.AddLeaf(&app, "healthcheck", "check that the server answers on its admin socket",
                    [](CommandEnv& env) { return HealthCheck(env); });
}

}  // namespace tessera::server::cli
