// Conversions between SPIRE's wire types (spire.api.types) and the server's records, with the
// validation SPIRE applies on the way in (SPIRE-API-FACTS §4, §10, §11). Messages follow SPIRE's
// wording where tools may match on it. Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "server/datastore/datastore.h"
#include "server/datastore/types.h"
#include "spiffe/bundle.h"
#include "spiffe/id.h"
#include "spiffe/selector.h"
#include "spire/api/types/agent.pb.h"
#include "spire/api/types/bundle.pb.h"
#include "spire/api/types/entry.pb.h"
#include "spire/api/types/selector.pb.h"
#include "spire/api/types/spiffeid.pb.h"

namespace tessera::server {

namespace types = ::spire::api::types;

// SPIFFEID{trust_domain: "example.org", path: "/a"} <-> spiffe://example.org/a, strictly.
absl::StatusOr<spiffe::SpiffeId> IdFromProto(const types::SPIFFEID& id);
types::SPIFFEID IdToProto(const spiffe::SpiffeId& id);

// A workload ID (entry spiffe_id, minted SVIDs, join-token agent_id): in `td`, with a path,
// outside the reserved /spire namespace. SPIRE's messages: `"<id>" is not a member of trust
// domain "<td>"`, `"<id>" is not a workload in trust domain "<td>"; path is empty` and
// `...; path is in the reserved namespace`.
absl::Status ValidateWorkloadId(const spiffe::SpiffeId& id, const spiffe::TrustDomain& td);
// An agent ID: in `td` under /spire/agent/. SPIRE's messages, as for workloads, with "is not an
// agent" and `path is empty` / `path is not in the agent namespace`.
absl::Status ValidateAgentId(const spiffe::SpiffeId& id, const spiffe::TrustDomain& td);

// A DNS name an X509-SVID may carry: dot-separated labels of ASCII letters, digits and hyphens,
// each 1..63 bytes and neither starting nor ending with '-', at most 253 bytes in all, with an
// optional leading "*." wildcard label. The InvalidArgument message is the reason alone (it
// quotes the name); callers add their context, as SPIRE does ("invalid DNS name: ...").
absl::Status ValidateDnsName(std::string_view name);

// SPIRE's selector rules: non-empty list; each with a type without ':' and a value. The messages
// are SPIRE's ("selector list is empty", "missing selector type", "selector type contains ':'",
// "missing selector value"); our library's further limits (length, control characters, UTF-8)
// are worded in the same style.
absl::StatusOr<spiffe::SelectorSet> SelectorsFromProto(
    const google::protobuf::RepeatedPtrField<types::Selector>& selectors);
void SelectorsToProto(const spiffe::SelectorSet& selectors,
                      google::protobuf::RepeatedPtrField<types::Selector>* out);

// An entry as a client sent it, validated for the server's trust domain. Errors are
// InvalidArgument "failed to convert entry: ...". Server-owned fields (revision_number,
// created_at) are copied but callers decide whether to honour them.
absl::StatusOr<Entry> EntryFromProto(const types::Entry& entry, const spiffe::TrustDomain& td);
// `mask` null: every field; otherwise the marked fields plus `id` (SPIRE's rule). A masked-in
// additional_attributes is always present, even when both of its flags are false.
types::Entry EntryToProto(const Entry& entry, const types::EntryMask* mask = nullptr);
// The datastore fields an update input mask selects; null means every field (SPIRE's rule for a
// missing input_mask). revision_number and created_at are the store's and never selected.
EntryMask EntryMaskFromProto(const types::EntryMask* mask);

types::Agent NodeToProto(const AttestedNode& node, const types::AgentMask* mask = nullptr);

// The JWT key expiry that types.Bundle carries beside each key (unix seconds, 0 = never).
using JwtKeyExpiry = std::map<std::string, int64_t, std::less<>>;

// types.Bundle -> our bundle. Checks SPIRE's rules, with its messages: every X.509 authority
// parses ("unable to parse X.509 authority: ..."), then every JWT key is PKIX with a non-empty
// key ID ("unable to parse JWT authority: ...", "...: missing key ID"); `trust_domain` may be a
// name or "spiffe://<name>".
absl::StatusOr<spiffe::Bundle> BundleFromProto(const types::Bundle& bundle,
                                               JwtKeyExpiry* expiry = nullptr);
types::Bundle BundleToProto(const spiffe::Bundle& bundle, const JwtKeyExpiry& expiry = {});

}  // namespace tessera::server
