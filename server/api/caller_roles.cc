#include "server/api/caller_roles.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "server/api/grpc_status.h"
#include "spdlog/spdlog.h"

namespace tessera::server {
namespace {

using Reason = spire::api::types::PermissionDeniedDetails;

std::string Quoted(const spiffe::SpiffeId& id) { return absl::StrCat("\"", id.str(), "\""); }

}  // namespace

bool RegistryCallerRoles::AnyEntryWith(const spiffe::SpiffeId& id, bool Entry::*flag) const {
  EntryFilter filter;
  filter.by_spiffe_id = id;
  absl::StatusOr<Page<Entry>> entries = datastore_.ListEntries(filter, PageRequest{});
  if (!entries.ok()) {
    // Deny rather than guess; the operator sees why.
    spdlog::error("authorization: look up entries of {}: {}", id.str(),
                  std::string(entries.status().message()));
    return false;
  }
  for (const Entry& entry : entries->items) {
    if (entry.*flag) return true;
  }
  return false;
}

bool RegistryCallerRoles::IsAdminEntry(const spiffe::SpiffeId& id) const {
  return AnyEntryWith(id, &Entry::admin);
}

bool RegistryCallerRoles::IsDownstreamEntry(const spiffe::SpiffeId& id) const {
  return AnyEntryWith(id, &Entry::downstream);
}

absl::Status RegistryCallerRoles::CheckAgent(const spiffe::SpiffeId& id,
                                             const spiffe::Certificate& leaf,
                                             std::chrono::system_clock::time_point now) const {
  if (leaf.NotAfter() < now) {
    return PermissionDeniedWithReason(absl::StrCat("agent ", Quoted(id), " SVID is expired"),
                                      Reason::AGENT_EXPIRED);
  }
  ASSIGN_OR_RETURN(std::optional<AttestedNode> node, datastore_.FetchAttestedNode(id),
                   absl::InternalError(absl::StrCat("failed to fetch agent: ", _.message())));
  if (!node.has_value()) {
    return PermissionDeniedWithReason(absl::StrCat("agent ", Quoted(id), " is not attested"),
                                      Reason::AGENT_NOT_ATTESTED);
  }
  if (node->banned()) {
    return PermissionDeniedWithReason(absl::StrCat("agent ", Quoted(id), " is banned"),
                                      Reason::AGENT_BANNED);
  }
  std::string serial = leaf.SerialDecimal();
  if (serial == node->cert_serial) return absl::OkStatus();
  if (!node->new_cert_serial.empty() && serial == node->new_cert_serial) {
    // First use of the renewed SVID: it becomes the current one.
    AttestedNode promoted = *node;
    promoted.cert_serial = node->new_cert_serial;
    promoted.cert_not_after = node->new_cert_not_after;
    promoted.new_cert_serial.clear();
    promoted.new_cert_not_after = 0;
    NodeMask mask;
    mask.cert_serial = mask.cert_not_after = mask.new_cert_serial = mask.new_cert_not_after = true;
    absl::StatusOr<AttestedNode> updated = datastore_.UpdateAttestedNode(promoted, mask);
    if (!updated.ok()) {
      return absl::InternalError(
          absl::StrCat("failed to activate renewed agent SVID: ", updated.status().message()));
    }
    return absl::OkStatus();
  }
  return PermissionDeniedWithReason(
      absl::StrCat("agent ", Quoted(id), " expected to have serial number \"", node->cert_serial,
                   "\"; has \"", serial, "\""),
      Reason::AGENT_NOT_ACTIVE);
}

}  // namespace tessera::server
