// entry create|update|delete|show|count over /spire.api.server.entry.v1.Entry.
#include <algorithm>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/cli/command.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"

namespace tessera::server::cli {
namespace {

namespace entryv1 = ::spire::api::server::entry::v1;

// ListEntries page size, as spire-server uses.
constexpr int kPageSize = 500;

// The flags of create and update (and the filters of show and count, which use a subset).
struct EntryFlags {
  std::string entry_id;
  std::string spiffe_id;
  std::string parent_id;
  std::vector<std::string> selectors;
  std::string x509_svid_ttl;
  std::string jwt_svid_ttl;
  std::vector<std::string> dns_names;
  std::vector<std::string> federates_with;
  bool node = false;
  bool admin = false;
  bool downstream = false;
  std::string hint;
  std::string expires_at;
  bool jwt_svid_include_jti = false;
  bool disable_x509_svid_prefetch = false;
  std::string match = "superset";
  std::string match_federates_with = "superset";
  // Whether a flag was given at all: update changes only those, and `--admin=false` is a value.
  CLI::Option* admin_opt = nullptr;
  CLI::Option* downstream_opt = nullptr;
  CLI::Option* hint_opt = nullptr;
  CLI::Option* jti_opt = nullptr;
  CLI::Option* prefetch_opt = nullptr;
};

bool Given(const CLI::Option* opt) { return opt != nullptr && opt->count() > 0; }

// The entry the flags describe; `mask` marks every field that was given. The two additional
// attributes travel as one field: a flag not given is false here (see Update).
absl::Status BuildEntry(const EntryFlags& f, types::Entry* entry, types::EntryMask* mask) {
  entry->set_id(f.entry_id);
  std::optional<spiffe::SpiffeId> spiffe_id;
  if (!f.spiffe_id.empty()) {
    ASSIGN_OR_RETURN(spiffe_id, ParseIdFlag("--spiffe-id", f.spiffe_id));
    *entry->mutable_spiffe_id() = IdProto(*spiffe_id);
    mask->set_spiffe_id(true);
  }
  if (f.node) {
    if (!spiffe_id.has_value()) return absl::InvalidArgumentError("--node needs --spiffe-id");
    // A node alias: parented to the server of the entry's own trust domain.
    ASSIGN_OR_RETURN(spiffe::SpiffeId server,
                     spiffe::SpiffeId::FromPath(spiffe_id->trust_domain(), "/spire/server"));
    *entry->mutable_parent_id() = IdProto(server);
    mask->set_parent_id(true);
  } else if (!f.parent_id.empty()) {
    ASSIGN_OR_RETURN(spiffe::SpiffeId parent, ParseIdFlag("--parent-id", f.parent_id));
    *entry->mutable_parent_id() = IdProto(parent);
    mask->set_parent_id(true);
  }
  if (!f.selectors.empty()) {
    RETURN_IF_ERROR(ParseSelectorFlags("--selector", f.selectors, entry->mutable_selectors()));
    mask->set_selectors(true);
  }
  if (!f.x509_svid_ttl.empty()) {
    ASSIGN_OR_RETURN(int32_t ttl, ParseTtlFlag("--x509-svid-ttl", f.x509_svid_ttl));
    entry->set_x509_svid_ttl(ttl);
    mask->set_x509_svid_ttl(true);
  }
  if (!f.jwt_svid_ttl.empty()) {
    ASSIGN_OR_RETURN(int32_t ttl, ParseTtlFlag("--jwt-svid-ttl", f.jwt_svid_ttl));
    entry->set_jwt_svid_ttl(ttl);
    mask->set_jwt_svid_ttl(true);
  }
  if (!f.dns_names.empty()) {
    for (const std::string& name : f.dns_names) entry->add_dns_names(name);
    mask->set_dns_names(true);
  }
  if (!f.federates_with.empty()) {
    for (const std::string& text : f.federates_with) {
      ASSIGN_OR_RETURN(spiffe::TrustDomain td, ParseTrustDomainFlag("--federates-with", text));
      entry->add_federates_with(td.name());
    }
    mask->set_federates_with(true);
  }
  if (Given(f.admin_opt)) {
    entry->set_admin(f.admin);
    mask->set_admin(true);
  }
  if (Given(f.downstream_opt)) {
    entry->set_downstream(f.downstream);
    mask->set_downstream(true);
  }
  if (Given(f.hint_opt)) {
    entry->set_hint(f.hint);
    mask->set_hint(true);
  }
  if (!f.expires_at.empty()) {
    ASSIGN_OR_RETURN(int64_t expires_at, ParseTimeFlag("--expires-at", f.expires_at));
    entry->set_expires_at(expires_at);
    mask->set_expires_at(true);
  }
  if (Given(f.jti_opt) || Given(f.prefetch_opt)) {
    types::Entry::AdditionalAttributes* attributes = entry->mutable_additional_attributes();
    if (Given(f.jti_opt)) attributes->set_jwt_svid_include_jti(f.jwt_svid_include_jti);
    if (Given(f.prefetch_opt)) {
      attributes->set_disable_x509_svid_prefetch(f.disable_x509_svid_prefetch);
    }
    mask->set_additional_attributes(true);
  }
  return absl::OkStatus();
}

void PrintEntry(const types::Entry& e, std::ostream& out) {
  out << "Entry ID         : " << (e.id().empty() ? "(none)" : e.id()) << "\n";
  out << "SPIFFE ID        : " << IdString(e.spiffe_id()) << "\n";
  out << "Parent ID        : " << IdString(e.parent_id()) << "\n";
  out << "Revision         : " << e.revision_number() << "\n";
  if (e.downstream()) out << "Downstream       : true\n";
  if (e.x509_svid_ttl() == 0) {
    out << "X509-SVID TTL    : default\n";
  } else {
    out << "X509-SVID TTL    : " << e.x509_svid_ttl() << "\n";
  }
  if (e.jwt_svid_ttl() == 0) {
    out << "JWT-SVID TTL     : default\n";
  } else {
    out << "JWT-SVID TTL     : " << e.jwt_svid_ttl() << "\n";
  }
  if (e.expires_at() != 0) out << "Expiration time  : " << FormatUnixTime(e.expires_at()) << "\n";
  for (const types::Selector& s : e.selectors()) {
    out << "Selector         : " << s.type() << ":" << s.value() << "\n";
  }
  for (const std::string& td : e.federates_with()) out << "FederatesWith    : " << td << "\n";
  for (const std::string& name : e.dns_names()) out << "DNS name         : " << name << "\n";
  if (e.admin()) out << "Admin            : true\n";
  if (e.store_svid()) out << "StoreSvid        : true\n";
  if (!e.hint().empty()) out << "Hint             : " << e.hint() << "\n";
  if (e.additional_attributes().jwt_svid_include_jti()) out << "JWT-SVID JTI     : true\n";
  if (e.additional_attributes().disable_x509_svid_prefetch()) {
    out << "No X509 prefetch : true\n";
  }
  out << "\n";
}

// The filter of show and count; ListEntriesRequest::Filter and CountEntriesRequest::Filter have
// the same fields.
template <typename Filter>
absl::Status BuildFilter(const EntryFlags& f, Filter* filter) {
  if (!f.spiffe_id.empty()) {
    ASSIGN_OR_RETURN(spiffe::SpiffeId id, ParseIdFlag("--spiffe-id", f.spiffe_id));
    *filter->mutable_by_spiffe_id() = IdProto(id);
  }
  if (!f.parent_id.empty()) {
    ASSIGN_OR_RETURN(spiffe::SpiffeId id, ParseIdFlag("--parent-id", f.parent_id));
    *filter->mutable_by_parent_id() = IdProto(id);
  }
  if (!f.selectors.empty()) {
    types::SelectorMatch* match = filter->mutable_by_selectors();
    RETURN_IF_ERROR(ParseSelectorFlags("--selector", f.selectors, match->mutable_selectors()));
    match->set_match(
        static_cast<types::SelectorMatch::MatchBehavior>(MatchBehaviorFromFlag(f.match)));
  }
  if (!f.federates_with.empty()) {
    types::FederatesWithMatch* match = filter->mutable_by_federates_with();
    for (const std::string& text : f.federates_with) {
      ASSIGN_OR_RETURN(spiffe::TrustDomain td, ParseTrustDomainFlag("--federates-with", text));
      match->add_trust_domains(td.name());
    }
    match->set_match(static_cast<types::FederatesWithMatch::MatchBehavior>(
        MatchBehaviorFromFlag(f.match_federates_with)));
  }
  if (Given(f.hint_opt)) filter->mutable_by_hint()->set_value(f.hint);
  if (Given(f.downstream_opt)) filter->mutable_by_downstream()->set_value(f.downstream);
  return absl::OkStatus();
}

int Create(CommandEnv& env, const EntryFlags& f) {
  if (f.selectors.empty()) return env.Fail("at least one selector is required");
  if (f.node && !f.federates_with.empty()) return env.Fail("node entries can not federate");
  if (f.node && !f.parent_id.empty()) {
    return env.Fail("the --node flag can't be combined with --parent-id");
  }
  if (f.parent_id.empty() && !f.node) {
    return env.Fail("a parent ID is required if the --node flag is not set");
  }
  if (f.spiffe_id.empty()) return env.Fail("a SPIFFE ID is required");
  entryv1::BatchCreateEntryRequest request;
  types::EntryMask unused;
  if (absl::Status s = BuildEntry(f, request.add_entries(), &unused); !s.ok()) {
    return env.Fail(s);
  }
  entryv1::BatchCreateEntryResponse response;
  auto context = CommandEnv::NewContext();
  grpc::Status status =
      entryv1::Entry::NewStub(env.channel())->BatchCreateEntry(context.get(), request, &response);
  if (!status.ok()) return env.RpcFailed("failed to create entry", status);
  if (response.results_size() != 1) {
    return env.Fail("failed to create entry: the server answered with no result");
  }
  const auto& result = response.results(0);
  if (env.json()) env.PrintJson(response);
  if (result.status().code() != 0) return env.ItemFailed("failed to create entry", result.status());
  if (!env.json()) PrintEntry(result.entry(), env.out());
  return 0;
}

int Update(CommandEnv& env, const EntryFlags& f) {
  if (f.entry_id.empty()) return env.Fail("an entry ID is required");
  if (f.node && !f.parent_id.empty()) {
    return env.Fail("the --node flag can't be combined with --parent-id");
  }
  if (f.node && f.spiffe_id.empty()) {
    return env.Fail("the --node flag needs --spiffe-id (its trust domain names the server)");
  }
  if (f.node && !f.federates_with.empty()) return env.Fail("node entries can not federate");
  entryv1::BatchUpdateEntryRequest request;
  if (absl::Status s = BuildEntry(f, request.add_entries(), request.mutable_input_mask());
      !s.ok()) {
    return env.Fail(s);
  }
  if (request.input_mask().ByteSizeLong() == 0) {
    return env.Fail("nothing to update: give at least one field to change");
  }
  auto stub = entryv1::Entry::NewStub(env.channel());
  if (Given(f.jti_opt) != Given(f.prefetch_opt)) {
    // SPIRE's input mask has one bit for both additional attributes: to change one, send the
    // other as it is stored. (An update racing this read could undo that other flag's change.)
    entryv1::GetEntryRequest get;
    get.set_id(f.entry_id);
    get.mutable_output_mask()->set_additional_attributes(true);
    types::Entry current;
    auto context = CommandEnv::NewContext();
    grpc::Status status = stub->GetEntry(context.get(), get, &current);
    if (!status.ok()) {
      return env.RpcFailed(absl::StrCat("failed to fetch entry \"", f.entry_id, "\""), status);
    }
    types::Entry::AdditionalAttributes* attributes =
        request.mutable_entries(0)->mutable_additional_attributes();
    if (!Given(f.jti_opt)) {
      attributes->set_jwt_svid_include_jti(current.additional_attributes().jwt_svid_include_jti());
    }
    if (!Given(f.prefetch_opt)) {
      attributes->set_disable_x509_svid_prefetch(
          current.additional_attributes().disable_x509_svid_prefetch());
    }
  }
  entryv1::BatchUpdateEntryResponse response;
  auto context = CommandEnv::NewContext();
  grpc::Status status = stub->BatchUpdateEntry(context.get(), request, &response);
  if (!status.ok()) return env.RpcFailed("failed to update entry", status);
  if (response.results_size() != 1) {
    return env.Fail("failed to update entry: the server answered with no result");
  }
  const auto& result = response.results(0);
  if (env.json()) env.PrintJson(response);
  if (result.status().code() != 0) return env.ItemFailed("failed to update entry", result.status());
  if (!env.json()) PrintEntry(result.entry(), env.out());
  return 0;
}

int Delete(CommandEnv& env, const EntryFlags& f) {
  if (f.entry_id.empty()) return env.Fail("an entry ID is required");
  entryv1::BatchDeleteEntryRequest request;
  request.add_ids(f.entry_id);
  entryv1::BatchDeleteEntryResponse response;
  auto context = CommandEnv::NewContext();
  grpc::Status status =
      entryv1::Entry::NewStub(env.channel())->BatchDeleteEntry(context.get(), request, &response);
  if (!status.ok()) return env.RpcFailed("failed to delete entry", status);
  if (response.results_size() != 1) {
    return env.Fail("failed to delete entry: the server answered with no result");
  }
  if (env.json()) env.PrintJson(response);
  if (response.results(0).status().code() != 0) {
    return env.ItemFailed("failed to delete entry", response.results(0).status());
  }
  if (!env.json()) env.out() << "Deleted entry with ID: " << f.entry_id << "\n";
  return 0;
}

int Show(CommandEnv& env, const EntryFlags& f) {
  entryv1::ListEntriesResponse all;
  auto stub = entryv1::Entry::NewStub(env.channel());
  if (!f.entry_id.empty()) {
    if (!f.spiffe_id.empty() || !f.parent_id.empty() || !f.selectors.empty() ||
        !f.federates_with.empty() || Given(f.hint_opt) || Given(f.downstream_opt)) {
      return env.Fail("the --entry-id flag can't be combined with other filters");
    }
    entryv1::GetEntryRequest request;
    request.set_id(f.entry_id);
    auto context = CommandEnv::NewContext();
    grpc::Status status = stub->GetEntry(context.get(), request, all.add_entries());
    if (!status.ok()) {
      return env.RpcFailed(absl::StrCat("failed to fetch entry \"", f.entry_id, "\""), status);
    }
  } else {
    entryv1::ListEntriesRequest request;
    if (absl::Status s = BuildFilter(f, request.mutable_filter()); !s.ok()) {
      return env.Fail(s);
    }
    request.set_page_size(kPageSize);
    do {
      entryv1::ListEntriesResponse page;
      auto context = CommandEnv::NewContext();
      grpc::Status status = stub->ListEntries(context.get(), request, &page);
      if (!status.ok()) return env.RpcFailed("failed to list entries", status);
      for (types::Entry& entry : *page.mutable_entries()) *all.add_entries() = std::move(entry);
      // A server that repeats its token would make this loop forever.
      if (!page.next_page_token().empty() && page.next_page_token() == request.page_token()) {
        return env.Fail("failed to list entries: the server repeated its page token");
      }
      request.set_page_token(page.next_page_token());
    } while (!request.page_token().empty());
  }
  auto key = [](const types::Entry& e) {
    return std::make_tuple(IdString(e.spiffe_id()), IdString(e.parent_id()), e.id());
  };
  std::sort(all.mutable_entries()->begin(), all.mutable_entries()->end(),
            [&](const types::Entry& a, const types::Entry& b) { return key(a) < key(b); });
  if (env.json()) return env.PrintJson(all);
  env.out() << "Found " << Plural(all.entries_size(), "entry", "entries") << "\n";
  for (const types::Entry& entry : all.entries()) PrintEntry(entry, env.out());
  return 0;
}

int Count(CommandEnv& env, const EntryFlags& f) {
  entryv1::CountEntriesRequest request;
  if (absl::Status s = BuildFilter(f, request.mutable_filter()); !s.ok()) {
    return env.Fail(s);
  }
  entryv1::CountEntriesResponse response;
  auto context = CommandEnv::NewContext();
  grpc::Status status =
      entryv1::Entry::NewStub(env.channel())->CountEntries(context.get(), request, &response);
  if (!status.ok()) return env.RpcFailed("failed to count entries", status);
  if (env.json()) return env.PrintJson(response);
  env.out() << Plural(response.count(), "registration entry", "registration entries") << "\n";
  return 0;
}

// One value per occurrence: `--selector a --selector b`.
CLI::Option* Repeated(CLI::App* app, const std::string& name, std::vector<std::string>& values,
                      const std::string& description) {
  return app->add_option(name, values, description)->allow_extra_args(false);
}

// The fields of an entry, for create and update.
void AddEntryFields(CLI::App* app, EntryFlags* f) {
  app->add_option("--entry-id", f->entry_id, "the entry's ID");
  app->add_option("--spiffe-id", f->spiffe_id, "the SPIFFE ID the entry grants");
  app->add_option("--parent-id", f->parent_id, "the SPIFFE ID of the entry's parent");
  Repeated(app, "--selector", f->selectors, "a type:value selector; repeatable");
  app->add_option("--x509-svid-ttl", f->x509_svid_ttl,
                  "lifetime of X509-SVIDs, as a duration (1h) or seconds");
  app->add_option("--jwt-svid-ttl", f->jwt_svid_ttl,
                  "lifetime of JWT-SVIDs, as a duration (5m) or seconds");
  Repeated(app, "--dns", f->dns_names, "a DNS name for the X509-SVIDs; repeatable");
  Repeated(app, "--federates-with", f->federates_with,
           "a trust domain whose bundle the workload receives; repeatable");
  app->add_flag("--node", f->node,
                "a node alias: parent is spiffe://<td>/spire/server, matched by agents' selectors");
  f->admin_opt = app->add_flag("--admin", f->admin, "grant the SPIFFE ID admin access");
  f->downstream_opt =
      app->add_flag("--downstream", f->downstream, "the entry is for a downstream server");
  f->hint_opt = app->add_option("--hint", f->hint, "a hint for workloads with several SVIDs");
  app->add_option("--expires-at", f->expires_at,
                  "when the entry stops applying: Unix seconds or RFC 3339");
  f->jti_opt = app->add_flag("--jwt-svid-include-jti", f->jwt_svid_include_jti,
                             "JWT-SVIDs for the entry carry a unique jti claim");
  f->prefetch_opt =
      app->add_flag("--disable-x509-svid-prefetch", f->disable_x509_svid_prefetch,
                    "agents get the entry's X509-SVID only when a workload first asks for it");
}

// The filters of show and count.
void AddFilterFlags(CLI::App* app, EntryFlags* f) {
  app->add_option("--spiffe-id", f->spiffe_id, "only entries with this SPIFFE ID");
  app->add_option("--parent-id", f->parent_id, "only entries with this parent ID");
  Repeated(app, "--selector", f->selectors, "a type:value selector to match; repeatable");
  app->add_option("--match", f->match, "how --selector matches: exact, subset, superset, any")
      ->check(CLI::IsMember({"exact", "subset", "superset", "any"}))
      ->capture_default_str();
  Repeated(app, "--federates-with", f->federates_with, "a trust domain to match; repeatable");
  app->add_option("--match-federates-with", f->match_federates_with,
                  "how --federates-with matches: exact, subset, superset, any")
      ->check(CLI::IsMember({"exact", "subset", "superset", "any"}))
      ->capture_default_str();
  f->hint_opt = app->add_option("--hint", f->hint, "only entries with this hint");
  f->downstream_opt = app->add_flag("--downstream", f->downstream,
                                    "only downstream entries (--downstream=false: only others)");
}

}  // namespace

void RegisterEntryCommands(CLI::App& app, Registrar& registrar) {
  CLI::App* entry = app.add_subcommand("entry", "manage registration entries");
  entry->require_subcommand(1);

  auto* create = registrar.Make<EntryFlags>();
  AddEntryFields(registrar.AddLeaf(entry, "create", "create a registration entry",
                                   [create](CommandEnv& env) { return Create(env, *create); }),
                 create);

  auto* update = registrar.Make<EntryFlags>();
  AddEntryFields(
      registrar.AddLeaf(entry, "update", "change the given fields of a registration entry",
                        [update](CommandEnv& env) { return Update(env, *update); }),
      update);

  auto* del = registrar.Make<EntryFlags>();
  registrar
      .AddLeaf(entry, "delete", "delete a registration entry",
               [del](CommandEnv& env) { return Delete(env, *del); })
      ->add_option("--entry-id", del->entry_id, "the entry's ID");

  auto* show = registrar.Make<EntryFlags>();
  CLI::App* show_app = registrar.AddLeaf(entry, "show", "show registration entries",
                                         [show](CommandEnv& env) { return Show(env, *show); });
  show_app->add_option("--entry-id", show->entry_id, "only the entry with this ID");
  AddFilterFlags(show_app, show);

  auto* count = registrar.Make<EntryFlags>();
  AddFilterFlags(registrar.AddLeaf(entry, "count", "count registration entries",
                                   [count](CommandEnv& env) { return Count(env, *count); }),
                 count);
}

}  // namespace tessera::server::cli
