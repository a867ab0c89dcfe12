// The server's records: registration entries, attested nodes, join tokens. Plain value types
// shared by the datastore, the authorized-entry index and the API services; not synchronized
// (hold them by value or behind an immutable snapshot). Times are Unix seconds, as SPIRE's API
// carries them; 0 means "not set" (no expiry, default TTL).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "spiffe/id.h"
#include "spiffe/selector.h"

namespace tessera::server {

// A registration entry: "workloads under `parent_id` matching `selectors` are `spiffe_id`".
struct Entry {
  // Up to 255 bytes of [A-Za-z0-9._-]; a UUIDv4 when the creator gives none.
  std::string id;
  spiffe::SpiffeId spiffe_id;
  // An agent ID, another entry's spiffe_id, or spiffe://<td>/spire/server for a node alias.
  spiffe::SpiffeId parent_id;
  // Never empty for a stored entry.
  spiffe::SelectorSet selectors;
  int32_t x509_svid_ttl = 0;  // seconds; 0: the server default
  int32_t jwt_svid_ttl = 0;   // seconds; 0: the server default
  std::vector<std::string> dns_names;
  std::vector<spiffe::TrustDomain> federates_with;
  bool admin = false;
  bool downstream = false;
  bool store_svid = false;
  std::string hint;
  int64_t expires_at = 0;  // the entry itself stops applying then; 0: never
  // Starts at 0 and grows by one on every update; agents use it to see stale cache entries.
  int64_t revision_number = 0;
  int64_t created_at = 0;
  // SPIRE's Entry.AdditionalAttributes. jwt_svid_include_jti: every JWT-SVID minted for the entry
  // carries a unique "jti" claim, so relying parties can spot a replayed token.
  // disable_x509_svid_prefetch: agents get the entry's X509-SVID when a workload first asks for
  // it instead of ahead of time, which saves signing for entries that rarely run on a node.
  bool jwt_svid_include_jti = false;
  bool disable_x509_svid_prefetch = false;

  friend bool operator==(const Entry&, const Entry&) = default;
};

// An agent that passed node attestation.
struct AttestedNode {
  spiffe::SpiffeId id;
  std::string attestation_type;  // the node attestor's name: "join_token", "x509pop", ...
  // Serial (decimal, as SPIRE stores it) and expiry of the agent SVID in use. An empty serial
  // means the agent is banned.
  std::string cert_serial;
  int64_t cert_not_after = 0;
  // Set by RenewAgent; promoted to the current serial on the new SVID's first use.
  std::string new_cert_serial;
  int64_t new_cert_not_after = 0;
  bool can_reattest = false;
  std::string agent_version;
  // From the last attestation; node-alias entries match against these.
  spiffe::SelectorSet selectors;

  bool banned() const { return cert_serial.empty(); }
  friend bool operator==(const AttestedNode&, const AttestedNode&) = default;
};

// A single-use join token.
struct JoinToken {
  std::string token;
  int64_t expires_at = 0;

  friend bool operator==(const JoinToken&, const JoinToken&) = default;
};

}  // namespace tessera::server
