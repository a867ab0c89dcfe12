// SvidService's admin RPCs: MintX509SVID and MintJWTSVID, for any workload ID of our trust
// domain (SPIRE-API-FACTS §7), with SPIRE's checks in SPIRE's order and its messages.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/api/convert.h"
#include "server/api/grpc_status.h"
#include "server/api/svid_service.h"
#include "server/api/svid_service_internal.h"

namespace tessera::server {
namespace {

constexpr char kMintX509Svid[] = "/spire.api.server.svid.v1.SVID/MintX509SVID";
constexpr char kMintJwtSvid[] = "/spire.api.server.svid.v1.SVID/MintJWTSVID";

// How spiffe::SpiffeId::Parse starts its messages.
constexpr std::string_view kIdParsePrefix = "invalid SPIFFE ID: ";

// SPIRE refuses "*.example.org" beside "web.example.org": the certificate would name the same
// host twice, once through the wildcard.
absl::Status CheckWildcardOverlap(const std::vector<std::string>& names) {
  for (const std::string& wildcard : names) {
    if (!wildcard.starts_with("*.")) continue;
    std::string_view suffix = std::string_view(wildcard).substr(1);  // ".example.org"
    for (const std::string& name : names) {
      if (name.starts_with("*.") || name.size() <= suffix.size()) continue;
      std::string_view head = std::string_view(name).substr(0, name.size() - suffix.size());
      std::string_view tail = std::string_view(name).substr(head.size());
      if (head.find('.') == std::string_view::npos &&
          absl::EqualsIgnoreCase(AsAbsl(tail), AsAbsl(suffix))) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", name, "\" is covered by \"", wildcard, "\""));
      }
    }
  }
  return absl::OkStatus();
}

// "<context>: <why the ID does not parse>", without the parser's own "invalid SPIFFE ID: " (the
// context says so already).
absl::Status IdParseError(std::string_view context, const absl::Status& cause) {
  std::string_view why = AsStd(cause.message());
  if (why.starts_with(kIdParsePrefix)) why.remove_prefix(kIdParsePrefix.size());
  return absl::InvalidArgumentError(absl::StrCat(AsAbsl(context), ": ", AsAbsl(why)));
}

absl::StatusOr<types::X509SVID> MintX509Svid(const ServiceDeps& deps,
                                             const svidv1::MintX509SVIDRequest& request) {
  if (request.csr().empty()) return absl::InvalidArgumentError("missing CSR");
  ASSIGN_OR_RETURN(spiffe::ParsedCsr csr,
                   svid_internal::VerifyCsr(request.csr(), "failed to verify CSR signature"));
  const std::vector<std::string>& uris = csr.uri_sans;
  if (uris.empty()) return absl::InvalidArgumentError("CSR URI SAN is required");
  if (uris.size() > 1) return absl::InvalidArgumentError("only one URI SAN is expected");
  ASSIGN_OR_RETURN(spiffe::SpiffeId id, spiffe::SpiffeId::Parse(uris.front()),
                   IdParseError("CSR URI SAN is invalid", _));
  RETURN_IF_ERROR(Annotate(ValidateWorkloadId(id, deps.trust_domain), "CSR URI SAN is invalid"));
  for (const std::string& name : csr.dns_sans) {
    RETURN_IF_ERROR(Annotate(ValidateDnsName(name), "CSR DNS name is invalid"));
  }
  RETURN_IF_ERROR(
      Annotate(CheckWildcardOverlap(csr.dns_sans),
               "CSR DNS name contains a wildcard that covers another non-wildcard name"));
  if (request.ttl() < 0) return absl::InvalidArgumentError("ttl must not be negative");
  ASSIGN_OR_RETURN(spiffe::DistinguishedName subject, svid_internal::CsrSubject(request.csr()));
  // An empty subject leaves the CA's default (C=US, O=SPIRE), as SPIRE does.
  std::optional<spiffe::DistinguishedName> requested_subject;
  if (!subject.empty()) requested_subject = std::move(subject);
  absl::StatusOr<ca::SignedX509Svid> svid = deps.ca->SignX509Svid(
      csr.public_key, id, csr.dns_sans, std::chrono::seconds(request.ttl()), requested_subject);
  if (!svid.ok()) return svid_internal::SignFailure("failed to sign X509-SVID", svid.status());
  types::X509SVID out;
  svid_internal::X509SvidToProto(id, *svid, &out);
  return out;
}

absl::StatusOr<types::JWTSVID> MintJwtSvid(const ServiceDeps& deps,
                                           const svidv1::MintJWTSVIDRequest& request) {
  if (!request.has_id()) {
    return absl::InvalidArgumentError("invalid SPIFFE ID: request must specify SPIFFE ID");
  }
  ASSIGN_OR_RETURN(spiffe::SpiffeId id, IdFromProto(request.id()),
                   IdParseError("invalid SPIFFE ID", _));
  return svid_internal::MintJwtSvid(deps, id, request.audience(), request.ttl());
}

}  // namespace

grpc::Status SvidService::MintX509SVID(grpc::ServerContext* context,
                                       const svidv1::MintX509SVIDRequest* request,
                                       svidv1::MintX509SVIDResponse* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kMintX509Svid, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  absl::StatusOr<types::X509SVID> svid = MintX509Svid(deps_, *request);
  if (!svid.ok()) return ToGrpcStatus(svid.status());
  *response->mutable_svid() = *std::move(svid);
  return grpc::Status::OK;
}

grpc::Status SvidService::MintJWTSVID(grpc::ServerContext* context,
                                      const svidv1::MintJWTSVIDRequest* request,
                                      svidv1::MintJWTSVIDResponse* response) {
  if (auto caller = deps_.authorizer->Authorize(*context, kMintJwtSvid, Access::kAdmin);
      !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  absl::StatusOr<types::JWTSVID> svid = MintJwtSvid(deps_, *request);
  if (!svid.ok()) return ToGrpcStatus(svid.status());
  *response->mutable_svid() = *std::move(svid);
  return grpc::Status::OK;
}

}  // namespace tessera::server
