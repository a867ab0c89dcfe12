// api fetch x509|jwt|bundles and api validate jwt: one-shot Workload API calls.
#include <chrono>
#include <filesystem>
#include <ostream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "agent/cli/command.h"
#include "common/files.h"
#include "common/status.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"
#include "spiffe/base64.h"
#include "spiffe/bundle_json.h"
#include "spiffe/certificate.h"

namespace tessera::agent::cli {
namespace {

struct FetchX509Flags {
  std::string write;
  bool silent = false;
};

struct FetchJwtFlags {
  std::vector<std::string> audience;
  std::string spiffe_id;
};

struct ValidateJwtFlags {
  std::string audience;
  std::string svid;
};

// spire-agent's file layout: per SVID n, svid.<n>.pem (chain), svid.<n>.key (PKCS#8, private),
// bundle.<n>.pem (its trust domain's CAs) and federated_bundle.<n>.<k>.pem for the k-th other
// trust domain in trust-domain order.
absl::Status WriteX509Context(CommandEnv& env, const spiffe::X509Context& context,
                              const std::filesystem::path& dir, bool quiet) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create --write directory ", dir.string(), ": ", ec.message()));
  }
  auto write = [&](const std::filesystem::path& path, std::string_view what, std::string_view data,
                   mode_t mode) -> absl::Status {
    if (!quiet) env.out() << what << " to file " << path.string() << ".\n";
    absl::Status s = WriteFileAtomically(path, data, mode);
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat("cannot write ", s.message()));
    return absl::OkStatus();
  };
  for (size_t n = 0; n < context.svids.size(); ++n) {
    const spiffe::X509Svid& svid = context.svids[n].svid;
    const spiffe::TrustDomain own_td = svid.id.trust_domain();
    const spiffe::Bundle* own = context.bundles.Find(own_td);
    if (own == nullptr) {
      return absl::InternalError(
          absl::StrCat("the agent sent no bundle for ", own_td.IdString(), " (SVID #", n, ")"));
    }
    absl::StatusOr<std::string> key = svid.key.ToPkcs8Pem();
    if (!key.ok()) return absl::InternalError("cannot encode the private key");
    RETURN_IF_ERROR(write(dir / absl::StrCat("svid.", n, ".pem"), absl::StrCat("Writing SVID #", n),
                          spiffe::ChainToPem(svid.chain), 0644));
    RETURN_IF_ERROR(write(dir / absl::StrCat("svid.", n, ".key"), absl::StrCat("Writing key #", n),
                          *key, 0600));
    RETURN_IF_ERROR(write(dir / absl::StrCat("bundle.", n, ".pem"),
                          absl::StrCat("Writing bundle #", n), spiffe::X509AuthoritiesToPem(*own),
                          0644));
    size_t k = 0;
    for (const auto& [td, bundle] : context.bundles) {
      if (td == own_td) continue;
      RETURN_IF_ERROR(
          write(dir / absl::StrCat("federated_bundle.", n, ".", k, ".pem"),
                absl::StrCat("Writing federated bundle #", k, " for trust domain ", td.IdString()),
                spiffe::X509AuthoritiesToPem(bundle), 0644));
      ++k;
    }
  }
  return absl::OkStatus();
}

int FetchX509(CommandEnv& env, const FetchX509Flags& f) {
  auto client = env.Connect();
  if (!client.ok()) return env.Fail(client.status());
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<spiffe::X509Context> context = (*client)->FetchX509Context();
  auto elapsed = std::chrono::steady_clock::now() - start;
  if (!context.ok()) return env.CallFailed("failed to fetch X509-SVIDs", context.status());
  if (absl::Status s = VerifyX509Context(*context); !s.ok()) return env.Fail(s);

  if (env.json()) {
    if (!f.write.empty()) {
      // Progress lines would break the JSON document on stdout.
      if (absl::Status s = WriteX509Context(env, *context, f.write, /*quiet=*/true); !s.ok()) {
        return env.Fail(s);
      }
    }
    if (!f.silent) env.out() << X509ContextToJson(*context).dump() << "\n";
    return 0;
  }
  if (!f.silent) env.out() << FormatX509Context(*context, elapsed);
  if (!f.write.empty()) {
    if (absl::Status s = WriteX509Context(env, *context, f.write, f.silent); !s.ok()) {
      return env.Fail(s);
    }
  }
  return 0;
}

int FetchJwt(CommandEnv& env, const FetchJwtFlags& f) {
  std::vector<std::string> audience;
  for (const std::string& a : f.audience) {
    if (!a.empty()) audience.push_back(a);
  }
  if (audience.empty()) return env.Fail("at least one --audience is required");
  std::optional<spiffe::SpiffeId> id;
  if (!f.spiffe_id.empty()) {
    absl::StatusOr<spiffe::SpiffeId> parsed = spiffe::SpiffeId::Parse(f.spiffe_id);
    if (!parsed.ok()) {
      return env.Fail(
          absl::StrCat("--spiffe-id \"", f.spiffe_id, "\": ", parsed.status().message()));
    }
    id = *parsed;
  }
  auto client = env.Connect();
  if (!client.ok()) return env.Fail(client.status());
  // Bundles first, as spire-agent does: a caller with no identity learns it either way.
  absl::StatusOr<spiffe::BundleSet> bundles = (*client)->FetchJwtBundles();
  if (!bundles.ok()) return env.CallFailed("failed to fetch JWT bundles", bundles.status());
  absl::StatusOr<std::vector<spiffe::WorkloadJwtSvid>> svids =
      (*client)->FetchJwtSvids(audience, id);
  if (!svids.ok()) return env.CallFailed("failed to fetch JWT-SVIDs", svids.status());

  // Render everything first, so that an encoding failure leaves no partial output behind.
  std::vector<std::pair<std::string, std::string>> jwks;
  for (const auto& [td, bundle] : *bundles) {
    absl::StatusOr<std::string> doc = spiffe::JwtBundleToJwks(bundle);
    if (!doc.ok()) {
      return env.Fail(absl::StrCat("cannot encode the JWT bundle of ", td.IdString(), ": ",
                                   doc.status().message()));
    }
    jwks.emplace_back(td.IdString(), *std::move(doc));
  }
  if (env.json()) {
    // spire-agent's form: [JWTSVIDResponse, JWTBundlesResponse] (bundles are bytes: base64).
    nlohmann::json svid_list = nlohmann::json::array();
    for (const spiffe::WorkloadJwtSvid& svid : *svids) {
      svid_list.push_back(
          {{"spiffe_id", svid.svid.subject.str()}, {"svid", svid.svid.token}, {"hint", svid.hint}});
    }
    nlohmann::json bundle_map = nlohmann::json::object();
    for (const auto& [td, doc] : jwks) bundle_map[td] = spiffe::Base64Encode(doc);
    nlohmann::json out = nlohmann::json::array(
        {nlohmann::json{{"svids", std::move(svid_list)}}, nlohmann::json{{"bundles", bundle_map}}});
    env.out() << out.dump() << "\n";
    return 0;
  }
  std::ostringstream text;
  for (const spiffe::WorkloadJwtSvid& svid : *svids) {
    text << "token(" << svid.svid.subject.str() << "):\n\t" << svid.svid.token << "\n";
  }
  for (const auto& [td, doc] : jwks) text << "bundle(" << td << "):\n\t" << doc << "\n";
  env.out() << text.str();
  return 0;
}

int FetchBundles(CommandEnv& env) {
  auto client = env.Connect();
  if (!client.ok()) return env.Fail(client.status());
  absl::StatusOr<spiffe::BundleSet> bundles = (*client)->FetchX509Bundles();
  if (!bundles.ok()) return env.CallFailed("failed to fetch X.509 bundles", bundles.status());
  if (env.json()) {
    // The X509BundlesResponse shape.
    nlohmann::json map = nlohmann::json::object();
    for (const auto& [td, bundle] : *bundles) {
      map[td.IdString()] = spiffe::Base64Encode(spiffe::X509AuthoritiesToDer(bundle));
    }
    env.out() << nlohmann::json{{"crl", nlohmann::json::array()}, {"bundles", map}}.dump() << "\n";
    return 0;
  }
  // spire-server's `bundle list` layout: a banner per trust domain, then its CAs as PEM.
  bool first = true;
  for (const auto& [td, bundle] : *bundles) {
    if (!first) env.out() << "\n";
    first = false;
    env.out() << "****************************************\n"
              << "* " << td.IdString() << "\n"
              << "****************************************\n"
              << spiffe::X509AuthoritiesToPem(bundle);
  }
  return 0;
}

int ValidateJwt(CommandEnv& env, const ValidateJwtFlags& f) {
  if (f.audience.empty()) return env.Fail("--audience is required");
  if (f.svid.empty()) return env.Fail("--svid is required");
  auto client = env.Connect();
  if (!client.ok()) return env.Fail(client.status());
  absl::StatusOr<spiffe::ValidatedJwtSvid> result = (*client)->ValidateJwtSvid(f.svid, f.audience);
  if (!result.ok()) {
    // The agent answers InvalidArgument, with its reason, for a token it rejects.
    if (result.status().code() == absl::StatusCode::kInvalidArgument) {
      return env.Fail(absl::StrCat("SVID is not valid: ", AsAbsl(AgentMessage(result.status()))));
    }
    return env.CallFailed("unable to validate JWT-SVID", result.status());
  }
  if (env.json()) {
    env.out()
        << nlohmann::json{{"spiffe_id", result->spiffe_id.str()}, {"claims", result->claims}}.dump()
        << "\n";
    return 0;
  }
  env.out() << "SVID is valid.\n"
            << "SPIFFE ID : " << result->spiffe_id.str() << "\n"
            << "Claims    : " << result->claims.dump() << "\n";
  return 0;
}

}  // namespace

void RegisterFetchCommands(CLI::App& api, Registrar& registrar) {
  CLI::App* fetch = api.add_subcommand("fetch", "fetch SVIDs and bundles from the Workload API");
  fetch->require_subcommand(1);

  auto* x509_flags = registrar.Make<FetchX509Flags>();
  CLI::App* x509 =
      registrar.AddLeaf(fetch, "x509", "fetch this workload's X509-SVIDs and the X.509 bundles",
                        [x509_flags](CommandEnv& env) { return FetchX509(env, *x509_flags); });
  x509->add_option("--write", x509_flags->write,
                   "directory to write svid.N.pem, svid.N.key (mode 0600), bundle.N.pem and "
                   "federated_bundle.N.K.pem to");
  x509->add_flag("--silent", x509_flags->silent, "print nothing on success");

  auto* jwt_flags = registrar.Make<FetchJwtFlags>();
  CLI::App* jwt =
      registrar.AddLeaf(fetch, "jwt", "fetch JWT-SVIDs for an audience, and the JWT bundles",
                        [jwt_flags](CommandEnv& env) { return FetchJwt(env, *jwt_flags); });
  jwt->add_option("--audience", jwt_flags->audience, "an audience; repeatable, or comma-separated")
      ->delimiter(',')
      ->allow_extra_args(false);
  jwt->add_option("--spiffe-id", jwt_flags->spiffe_id,
                  "only this identity's JWT-SVID (default: one per identity)");

  registrar.AddLeaf(fetch, "bundles", "fetch the X.509 bundles of every trusted trust domain",
                    [](CommandEnv& env) { return FetchBundles(env); });
  RegisterSecretsCommand(fetch, registrar);

  CLI::App* validate = api.add_subcommand("validate", "have the agent validate an SVID");
  validate->require_subcommand(1);
  auto* validate_flags = registrar.Make<ValidateJwtFlags>();
  CLI::App* validate_jwt = registrar.AddLeaf(
      validate, "jwt", "validate a JWT-SVID for an audience (exit 1 when it is not valid)",
      [validate_flags](CommandEnv& env) { return ValidateJwt(env, *validate_flags); });
  validate_jwt->add_option("--audience", validate_flags->audience, "the audience expected");
  validate_jwt->add_option("--svid", validate_flags->svid, "the JWT-SVID (compact JWS)");
}

}  // namespace tessera::agent::cli
