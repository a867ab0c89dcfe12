#include "server/api/authorizer.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace tessera::server {

bool Authorizer::IsAdmin(const Caller& caller) const {
  if (!caller.id.has_value()) return false;
  return std::find(admin_ids_.begin(), admin_ids_.end(), *caller.id) != admin_ids_.end() ||
         roles_.IsAdminEntry(*caller.id);
}

absl::StatusOr<Caller> Authorizer::Authorize(const grpc::ServerContextBase& context,
                                             std::string_view method, Access access) const {
  auto now = clock_.Now();
  ASSIGN_OR_RETURN(Caller caller, IdentifyCaller(context, bundles_, now));
  if (access == Access::kAny) return caller;

  bool admin_method = access == Access::kAdmin || access == Access::kAdminOrAgent;
  if (admin_method && (caller.local || IsAdmin(caller))) return caller;
  if (access == Access::kDownstream && caller.id.has_value() &&
      roles_.IsDownstreamEntry(*caller.id)) {
    return caller;
  }
  absl::Status agent_denied;
  if ((access == Access::kAgent || access == Access::kAdminOrAgent) && !caller.local) {
    if (!caller.id.has_value()) {
      return absl::PermissionDeniedError("caller does not have an X509-SVID");
    }
    agent_denied = roles_.CheckAgent(*caller.id, caller.chain.front(), now);
    if (agent_denied.ok()) return caller;
  }
  absl::Status denied =
      absl::PermissionDeniedError(absl::StrCat("authorization denied for method ", AsAbsl(method)));
  if (!agent_denied.ok()) {
    // Keep the agent check's reason (SPIRE's agents act on it) and say it in the message.
    denied = absl::PermissionDeniedError(absl::StrCat(
        "authorization denied for method ", AsAbsl(method), ": ", agent_denied.message()));
    agent_denied.ForEachPayload(
        [&](absl::string_view url, const absl::Cord& payload) { denied.SetPayload(url, payload); });
  }
  return denied;
}

}  // namespace tessera::server
