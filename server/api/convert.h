// Conversions between SPIRE's wire types (spire.api.types) and the server's records, with the
// validation SPIRE applies on the way in (SPIRE-API-FACTS §4, §10, §11). Messages follow SPIRE's
// wording where tools may match on it. Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/repeated_ptr_field.h"
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
// outside the reserved /spire namespace.
absl::Status ValidateWorkloadId(const spiffe::SpiffeId& id, const spiffe::TrustDomain& td);
// An agent ID: in `td` under /spire/agent/.
absl::Status ValidateAgentId(const spiffe::SpiffeId& id, const spiffe::TrustDomain& td);

// SPIRE's selector rules: non-empty list; each with a type without ':' and a value.
absl::StatusOr<spiffe::SelectorSet> SelectorsFromProto(
    const google::protobuf::RepeatedPtrField<types::Selector>& selectors);
void SelectorsToProto(const spiffe::SelectorSet& selectors,
                      google::protobuf::RepeatedPtrField<types::Selector>* out);

// An entry as a client sent it, validated for the server's trust domain. Errors are
// InvalidArgument "failed to convert entry: ...". Server-owned fields (revision_number,
// created_at) are copied but callers decide whether to honour them.
absl::StatusOr<Entry> EntryFromProto(const types::Entry& entry, const spiffe::TrustDomain& td);
// `mask` null: every field; otherwise the marked fields plus `id` (SPIRE's rule).
types::Entry EntryToProto(const Entry& entry, const types::EntryMask* mask = nullptr);

types::Agent NodeToProto(const AttestedNode& node, const types::AgentMask* mask = nullptr);

// The JWT key expiry that types.Bundle carries beside each key (unix seconds, 0 = never).
using JwtKeyExpiry = std::map<std::string, int64_t, std::less<>>;

// types.Bundle -> our bundle. Checks SPIRE's rules: certificates parse, JWT keys are PKIX with
// a non-empty key ID; `trust_domain` may be a name or "spiffe://<name>".
absl::StatusOr<spiffe::Bundle> BundleFromProto(const types::Bundle& bundle,
                                               JwtKeyExpiry* expiry = nullptr);
types::Bundle BundleToProto(const spiffe::Bundle& bundle, const JwtKeyExpiry& expiry = {});

}  // namespace tessera::server
