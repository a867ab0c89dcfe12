// Admin calls over the server's Unix socket (entry.v1 BatchCreateEntry and
// BatchDeleteEntry, agent.v1 CreateJoinToken, bundle.v1 AppendBundle).
#include "bench/tool/admin_client.h"

#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "grpcpp/grpcpp.h"
#include "spiffe/id.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"

namespace tessera::bench {
namespace {

namespace agentv1 = ::spire::api::server::agent::v1;
namespace bundlev1 = ::spire::api::server::bundle::v1;
namespace entryv1 = ::spire::api::server::entry::v1;
namespace types = ::spire::api::types;

constexpr std::chrono::seconds kRpcTimeout{60};

std::shared_ptr<grpc::Channel> AdminChannel(const std::filesystem::path& socket) {
  return grpc::CreateChannel("unix:" + socket.string(), grpc::InsecureChannelCredentials());
}

void SetDeadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
}

absl::Status FromGrpc(const grpc::Status& status, std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(std::string(what), ": ", status.error_message()));
}

absl::StatusOr<types::SPIFFEID> IdProto(const std::string& text) {
  ASSIGN_OR_RETURN(spiffe::SpiffeId id, spiffe::SpiffeId::Parse(text),
                   Annotate(_, absl::StrCat("bad SPIFFE ID \"", text, "\"")));
  types::SPIFFEID proto;
  proto.set_trust_domain(id.trust_domain().name());
  proto.set_path(std::string(id.path()));
  return proto;
}

}  // namespace

absl::StatusOr<std::string> CreateJoinToken(const std::filesystem::path& admin_socket,
                                            int ttl_seconds, const std::string& agent_alias) {
  agentv1::CreateJoinTokenRequest req;
  req.set_ttl(ttl_seconds);
  if (!agent_alias.empty()) {
    ASSIGN_OR_RETURN(*req.mutable_agent_id(), IdProto(agent_alias));
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  types::JoinToken resp;
  RETURN_IF_ERROR(FromGrpc(
      agentv1::Agent::NewStub(AdminChannel(admin_socket))->CreateJoinToken(&ctx, req, &resp),
      "create join token"));
  if (resp.value().empty()) return absl::InternalError("create join token: empty token");
  return resp.value();
}

absl::StatusOr<std::vector<std::string>> CreateEntries(const std::filesystem::path& admin_socket,
                                                       const std::vector<EntrySpec>& entries,
                                                       size_t batch) {
  auto stub = entryv1::Entry::NewStub(AdminChannel(admin_socket));
  std::vector<std::string> ids;
  ids.reserve(entries.size());
  for (size_t start = 0; start < entries.size(); start += batch) {
    const size_t end = std::min(entries.size(), start + batch);
    entryv1::BatchCreateEntryRequest req;
    for (size_t i = start; i < end; ++i) {
      types::Entry* e = req.add_entries();
      ASSIGN_OR_RETURN(*e->mutable_spiffe_id(), IdProto(entries[i].spiffe_id));
      ASSIGN_OR_RETURN(*e->mutable_parent_id(), IdProto(entries[i].parent_id));
      for (const std::string& text : entries[i].selectors) {
        const auto colon = text.find(':');
        if (colon == std::string::npos) {
          return absl::InvalidArgumentError(absl::StrCat("bad selector \"", text, "\""));
        }
        types::Selector* sel = e->add_selectors();
        sel->set_type(text.substr(0, colon));
        sel->set_value(text.substr(colon + 1));
      }
    }
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    entryv1::BatchCreateEntryResponse resp;
    RETURN_IF_ERROR(FromGrpc(stub->BatchCreateEntry(&ctx, req, &resp), "create entries"));
    if (resp.results_size() != static_cast<int>(end - start)) {
      return absl::InternalError(absl::StrCat("create entries: ", resp.results_size(),
                                              " results for ", end - start, " entries"));
    }
    for (const auto& result : resp.results()) {
      if (result.status().code() != 0) {
        return absl::InternalError(absl::StrCat("create entry ", result.entry().spiffe_id().path(),
                                                ": ", result.status().message()));
      }
      ids.push_back(result.entry().id());
    }
  }
  return ids;
}

absl::Status DeleteEntries(const std::filesystem::path& admin_socket,
                           const std::vector<std::string>& entry_ids) {
  entryv1::BatchDeleteEntryRequest req;
  for (const std::string& id : entry_ids) req.add_ids(id);
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  entryv1::BatchDeleteEntryResponse resp;
  RETURN_IF_ERROR(FromGrpc(
      entryv1::Entry::NewStub(AdminChannel(admin_socket))->BatchDeleteEntry(&ctx, req, &resp),
      "delete entries"));
  if (resp.results_size() != req.ids_size()) {
    return absl::InternalError(absl::StrCat("delete entries: ", resp.results_size(),
                                            " results for ", req.ids_size(), " entries"));
  }
  for (const auto& result : resp.results()) {
    if (result.status().code() != 0) {
      return absl::InternalError(
          absl::StrCat("delete entry ", result.id(), ": ", result.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::Status AppendX509Authority(const std::filesystem::path& admin_socket,
                                 const std::string& certificate_der) {
  bundlev1::AppendBundleRequest req;
  req.add_x509_authorities()->set_asn1(certificate_der);
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  types::Bundle resp;
  return FromGrpc(
      bundlev1::Bundle::NewStub(AdminChannel(admin_socket))->AppendBundle(&ctx, req, &resp),
      "append bundle");
}

}  // namespace tessera::bench
