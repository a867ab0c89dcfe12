// bundle show|list|set|delete|count over /spire.api.server.bundle.v1.Bundle.
#include <iterator>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "server/api/convert.h"
#include "server/cli/command.h"
#include "spiffe/bundle.h"
#include "spiffe/bundle_json.h"
#include "spiffe/certificate.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"

namespace tessera::server::cli {
namespace {

namespace bundlev1 = ::spire::api::server::bundle::v1;

constexpr int kPageSize = 200;
// A bundle file holds a few certificates and keys; anything near this is not one.
constexpr size_t kMaxBundleFileBytes = 4 << 20;

struct BundleFlags {
  std::string format = "pem";
  std::string id;
  std::string path = "-";
  std::string mode = "restrict";
};

// Prints one bundle as PEM certificates or as a SPIFFE bundle document (indented like
// spire-server's).
absl::Status PrintBundle(const types::Bundle& proto, const std::string& format, std::ostream& out) {
  ASSIGN_OR_RETURN(
      spiffe::Bundle bundle, BundleFromProto(proto),
      Annotate(_, absl::StrCat("malformed bundle \"", proto.trust_domain(), "\" from the server")));
  if (format == "pem") {
    out << spiffe::X509AuthoritiesToPem(bundle);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(nlohmann::json doc, spiffe::SpiffeBundleToJsonValue(bundle));
  out << doc.dump(4) << "\n";
  return absl::OkStatus();
}

void PrintHeader(const std::string& trust_domain, std::ostream& out) {
  out << "****************************************\n"
      << "* " << trust_domain << "\n"
      << "****************************************\n";
}

int Show(CommandEnv& env, const BundleFlags& f) {
  types::Bundle bundle;
  auto context = CommandEnv::NewContext();
  grpc::Status status = bundlev1::Bundle::NewStub(env.channel())
                            ->GetBundle(context.get(), bundlev1::GetBundleRequest(), &bundle);
  if (!status.ok()) return env.RpcFailed("failed to get bundle", status);
  if (env.json()) return env.PrintJson(bundle);
  if (absl::Status s = PrintBundle(bundle, f.format, env.out()); !s.ok()) {
    return env.Fail(s);
  }
  return 0;
}

int List(CommandEnv& env, const BundleFlags& f) {
  auto stub = bundlev1::Bundle::NewStub(env.channel());
  if (!f.id.empty()) {
    absl::StatusOr<spiffe::TrustDomain> td = ParseTrustDomainFlag("--id", f.id);
    if (!td.ok()) return env.Fail(td.status());
    bundlev1::GetFederatedBundleRequest request;
    request.set_trust_domain(td->name());
    types::Bundle bundle;
    auto context = CommandEnv::NewContext();
    grpc::Status status = stub->GetFederatedBundle(context.get(), request, &bundle);
    if (!status.ok()) {
      return env.RpcFailed(absl::StrCat("failed to get federated bundle \"", td->name(), "\""),
                           status);
    }
    if (env.json()) return env.PrintJson(bundle);
    if (absl::Status s = PrintBundle(bundle, f.format, env.out()); !s.ok()) {
      return env.Fail(s);
    }
    return 0;
  }
  bundlev1::ListFederatedBundlesResponse all;
  bundlev1::ListFederatedBundlesRequest request;
  request.set_page_size(kPageSize);
  do {
    bundlev1::ListFederatedBundlesResponse page;
    auto context = CommandEnv::NewContext();
    grpc::Status status = stub->ListFederatedBundles(context.get(), request, &page);
    if (!status.ok()) return env.RpcFailed("failed to list federated bundles", status);
    for (types::Bundle& bundle : *page.mutable_bundles()) *all.add_bundles() = std::move(bundle);
    if (!page.next_page_token().empty() && page.next_page_token() == request.page_token()) {
      return env.Fail("failed to list federated bundles: the server repeated its page token");
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  if (env.json()) return env.PrintJson(all);
  // Render everything first: a malformed bundle should not leave half a listing behind.
  std::ostringstream text;
  for (int i = 0; i < all.bundles_size(); ++i) {
    if (i > 0) text << "\n";
    PrintHeader(all.bundles(i).trust_domain(), text);
    if (absl::Status s = PrintBundle(all.bundles(i), f.format, text); !s.ok()) {
      return env.Fail(s);
    }
  }
  env.out() << text.str();
  return 0;
}

absl::StatusOr<std::string> ReadInput(CommandEnv& env, const std::string& path) {
  if (path != "-") {
    absl::StatusOr<std::string> data = ReadFileToString(path, kMaxBundleFileBytes);
    if (!data.ok()) return Annotate(data.status(), "--path");
    return data;
  }
  std::string data;
  char buffer[4096];
  while (env.in().read(buffer, sizeof(buffer)) || env.in().gcount() > 0) {
    data.append(buffer, static_cast<size_t>(env.in().gcount()));
    if (data.size() > kMaxBundleFileBytes) {
      return absl::InvalidArgumentError("standard input is too large for a bundle");
    }
  }
  return data;
}

int Set(CommandEnv& env, const BundleFlags& f) {
  if (f.id.empty()) return env.Fail("id is required");
  absl::StatusOr<spiffe::TrustDomain> td = ParseTrustDomainFlag("--id", f.id);
  if (!td.ok()) return env.Fail(td.status());
  absl::StatusOr<std::string> data = ReadInput(env, f.path);
  if (!data.ok()) return env.Fail(data.status());
  absl::StatusOr<spiffe::Bundle> bundle = f.format == "pem" ? spiffe::BundleFromX509Pem(*td, *data)
                                                            : spiffe::ParseSpiffeBundle(*td, *data);
  if (!bundle.ok()) {
    return env.Fail(absl::StrCat("cannot read the bundle (", f.format,
                                 " format): ", bundle.status().message()));
  }
  bundlev1::BatchSetFederatedBundleRequest request;
  *request.add_bundle() = BundleToProto(*bundle);
  bundlev1::BatchSetFederatedBundleResponse response;
  auto context = CommandEnv::NewContext();
  grpc::Status status = bundlev1::Bundle::NewStub(env.channel())
                            ->BatchSetFederatedBundle(context.get(), request, &response);
  if (!status.ok()) return env.RpcFailed("failed to set federated bundle", status);
  if (response.results_size() != 1) {
    return env.Fail("failed to set federated bundle: the server answered with no result");
  }
  if (env.json()) env.PrintJson(response);
  if (response.results(0).status().code() != 0) {
    return env.ItemFailed("failed to set federated bundle", response.results(0).status());
  }
  if (!env.json()) env.out() << "bundle set.\n";
  return 0;
}

int Delete(CommandEnv& env, const BundleFlags& f) {
  if (f.id.empty()) return env.Fail("id is required");
  absl::StatusOr<spiffe::TrustDomain> td = ParseTrustDomainFlag("--id", f.id);
  if (!td.ok()) return env.Fail(td.status());
  bundlev1::BatchDeleteFederatedBundleRequest request;
  request.add_trust_domains(td->name());
  if (f.mode == "delete") {
    request.set_mode(bundlev1::BatchDeleteFederatedBundleRequest::DELETE);
  } else if (f.mode == "dissociate") {
    request.set_mode(bundlev1::BatchDeleteFederatedBundleRequest::DISSOCIATE);
  } else {
    request.set_mode(bundlev1::BatchDeleteFederatedBundleRequest::RESTRICT);
  }
  bundlev1::BatchDeleteFederatedBundleResponse response;
  auto context = CommandEnv::NewContext();
  grpc::Status status = bundlev1::Bundle::NewStub(env.channel())
                            ->BatchDeleteFederatedBundle(context.get(), request, &response);
  if (!status.ok()) return env.RpcFailed("failed to delete federated bundle", status);
  if (response.results_size() != 1) {
    return env.Fail("failed to delete federated bundle: the server answered with no result");
  }
  if (env.json()) env.PrintJson(response);
  if (response.results(0).status().code() != 0) {
    return env.ItemFailed(absl::StrCat("failed to delete federated bundle \"", td->name(), "\""),
                          response.results(0).status());
  }
  if (!env.json()) env.out() << "bundle deleted.\n";
  return 0;
}

int Count(CommandEnv& env) {
  bundlev1::CountBundlesResponse response;
  auto context = CommandEnv::NewContext();
  grpc::Status status =
      bundlev1::Bundle::NewStub(env.channel())
          ->CountBundles(context.get(), bundlev1::CountBundlesRequest(), &response);
  if (!status.ok()) return env.RpcFailed("failed to count bundles", status);
  if (env.json()) return env.PrintJson(response);
  env.out() << Plural(response.count(), "bundle", "bundles") << "\n";
  return 0;
}

void AddFormat(CLI::App* app, BundleFlags* f) {
  app->add_option("--format", f->format, "pem or spiffe (SPIFFE bundle JSON)")
      ->check(CLI::IsMember({"pem", "spiffe"}))
      ->capture_default_str();
}

}  // namespace

void RegisterBundleCommands(CLI::App& app, Registrar& registrar) {
  CLI::App* bundle = app.add_subcommand("bundle", "show the trust bundle, manage federated ones");
  bundle->require_subcommand(1);

  auto* show = registrar.Make<BundleFlags>();
  AddFormat(registrar.AddLeaf(bundle, "show", "print the server's trust bundle",
                              [show](CommandEnv& env) { return Show(env, *show); }),
            show);

  auto* list = registrar.Make<BundleFlags>();
  CLI::App* list_app = registrar.AddLeaf(bundle, "list", "print federated bundles",
                                         [list](CommandEnv& env) { return List(env, *list); });
  list_app->add_option("--id", list->id, "only the bundle of this trust domain");
  AddFormat(list_app, list);

  auto* set = registrar.Make<BundleFlags>();
  CLI::App* set_app = registrar.AddLeaf(bundle, "set", "create or replace a federated bundle",
                                        [set](CommandEnv& env) { return Set(env, *set); });
  set_app->add_option("--id", set->id, "the trust domain of the bundle");
  set_app->add_option("--path", set->path, "file to read the bundle from; - for standard input")
      ->capture_default_str();
  AddFormat(set_app, set);

  auto* del = registrar.Make<BundleFlags>();
  CLI::App* delete_app = registrar.AddLeaf(bundle, "delete", "delete a federated bundle",
                                           [del](CommandEnv& env) { return Delete(env, *del); });
  delete_app->add_option("--id", del->id, "the trust domain of the bundle");
  delete_app
      ->add_option("--mode", del->mode,
                   "restrict (refuse while entries federate with it), delete (those entries "
                   "too) or dissociate (remove it from them)")
      ->check(CLI::IsMember({"restrict", "delete", "dissociate"}))
      ->capture_default_str();

  registrar.AddLeaf(bundle, "count", "count bundles (the server's own included)",
                    [](CommandEnv& env) { return Count(env); });
}

}  // namespace tessera::server::cli
