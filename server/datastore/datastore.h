// DataStore: the server's persistent registry — registration entries, attested nodes, join
// tokens, trust bundles (own and federated) and the CA journal. SqliteDataStore implements it
// today; a PostgreSQL implementation will satisfy the same contract for HA deployments.
//
// Contract every implementation keeps:
// - Safe for concurrent use from any thread.
// - Every call is atomic: a multi-row change (an entry and its selectors, a bundle deletion that
//   also deletes or rewrites entries, a join token taken) commits entirely or not at all, even
//   across a crash. Reads see committed state only, and one call's reads are consistent with
//   each other (one snapshot).
// - Nothing is cached between calls; several servers may share one database (PostgreSQL), so
//   TakeJoinToken must stay single-use across them (delete ... returning, not read-then-delete
//   without a lock) and revision bumps must be atomic increments.
// - Page tokens are opaque and stable under concurrent writes: a row present during the whole
//   listing is returned exactly once, a row inserted meanwhile at most once; a garbage token is
//   InvalidArgument.
//
// Errors: storage failures read "datastore: <operation>: ..." with a code from the backend
// (constraint → AlreadyExists/FailedPrecondition, busy → Unavailable, corruption → DataLoss).
// Errors a client causes carry the text SPIRE's datastore uses, so the API layer can prefix its
// own "failed to create entry: " and match SPIRE byte for byte:
//   InvalidArgument "datastore-validation: invalid registration entry: ..."
//   Internal        "unable to find federated bundle \"spiffe://<td>\"" (SPIRE's code, too)
//   AlreadyExists   "similar entry already exists"
// The server updates its in-memory indexes itself after each successful write; the store has no
// change feed.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/datastore/types.h"
#include "spiffe/id.h"
#include "spiffe/selector.h"
#include "spire/api/types/bundle.pb.h"

namespace tessera::server {

// How a filter's set R compares with a record's set C (SPIRE's MatchBehavior, same values).
enum class MatchBehavior {
  kExact = 0,     // C = R
  kSubset = 1,    // C is a non-empty subset of R
  kSuperset = 2,  // C ⊇ R
  kAny = 3,       // C ∩ R ≠ ∅
};

struct SelectorMatch {
  spiffe::SelectorSet selectors;  // must not be empty
  MatchBehavior match = MatchBehavior::kExact;
};

struct FederatesWithMatch {
  std::vector<spiffe::TrustDomain> trust_domains;  // must not be empty; duplicates are ignored
  MatchBehavior match = MatchBehavior::kExact;
};

// All set conditions must hold (AND); an empty filter matches everything.
struct EntryFilter {
  std::optional<spiffe::SpiffeId> by_spiffe_id;
  std::optional<spiffe::SpiffeId> by_parent_id;
  std::optional<SelectorMatch> by_selectors;
  std::optional<FederatesWithMatch> by_federates_with;
  std::optional<std::string> by_hint;
  std::optional<bool> by_downstream;
};

struct NodeFilter {
  std::optional<std::string> by_attestation_type;
  std::optional<SelectorMatch> by_selector_match;  // against the node selectors
  std::optional<bool> by_banned;
  std::optional<bool> by_can_reattest;
  std::optional<int64_t> by_expires_before;  // cert_not_after < this (Unix seconds)
};

// page_size 0 returns everything after `token` and an empty next token. Otherwise at most
// page_size records, and next_token is non-empty after every non-empty page: a listing ends on
// the first empty page, as SPIRE's does.
struct PageRequest {
  int32_t page_size = 0;
  std::string token;  // "" starts from the beginning
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_token;
};

// Which fields UpdateEntry copies from its argument. id identifies the entry; revision_number
// and created_at are the store's to manage.
struct EntryMask {
  bool spiffe_id = false;
  bool parent_id = false;
  bool selectors = false;
  bool x509_svid_ttl = false;
  bool jwt_svid_ttl = false;
  bool dns_names = false;
  bool federates_with = false;
  bool admin = false;
  bool downstream = false;
  bool store_svid = false;
  bool hint = false;
  bool expires_at = false;
  // Both of jwt_svid_include_jti and disable_x509_svid_prefetch, as SPIRE's one mask bit for
  // Entry.additional_attributes.
  bool additional_attributes = false;

  static EntryMask All() {
    return {true, true, true, true, true, true, true, true, true, true, true, true, true};
  }
};

// Which fields UpdateAttestedNode copies; id identifies the node.
struct NodeMask {
  bool attestation_type = false;
  bool cert_serial = false;
  bool cert_not_after = false;
  bool new_cert_serial = false;
  bool new_cert_not_after = false;
  bool can_reattest = false;
  bool agent_version = false;
  bool selectors = false;  // replaces the node selectors, as SetNodeSelectors does

  static NodeMask All() { return {true, true, true, true, true, true, true, true}; }
};

struct CreateEntryResult {
  Entry entry;   // as stored: the new entry, or the similar one that already existed
  bool created;  // false: a similar entry existed and nothing was written
};

// BatchDeleteFederatedBundleRequest.Mode, same values.
enum class BundleDeleteMode {
  kRestrict = 0,    // FailedPrecondition when an entry federates with the trust domain
  kDelete = 1,      // also delete those entries
  kDissociate = 2,  // remove the trust domain from their federates_with (revision bumped)
};

struct DeleteBundleResult {
  // kDelete: the deleted entries as they were; kDissociate: the entries as now stored.
  std::vector<Entry> affected_entries;
};

using Bundle = ::spire::api::types::Bundle;
using BundleMask = ::spire::api::types::BundleMask;

class DataStore {
 public:
  virtual ~DataStore() = default;

  // --- Registration entries ---

  // Stores `entry`, or returns the stored entry with the same spiffe_id, parent_id and selector
  // set (created=false, nothing written). An empty id becomes a UUIDv4; revision_number is set
  // to 0 and created_at to now. Validation (InvalidArgument "datastore-validation: ..."): id of
  // at most 255 of [A-Za-z0-9._-], non-empty selectors, TTLs ≥ 0, one selector type when
  // store_svid. Every federates_with trust domain needs a stored bundle (Internal, see above).
  // An id already in use is AlreadyExists.
  virtual absl::StatusOr<CreateEntryResult> CreateOrReturnEntry(const Entry& entry) = 0;
  // CreateOrReturnEntry for each of `entries`, in order, in one transaction: one disk sync for
  // the batch instead of one per entry. Each entry succeeds or fails on its own, exactly as if
  // created one after another (a later entry similar to an earlier one gets the earlier one back
  // with created=false). When the batch cannot be committed nothing is written and every result
  // that was not already an error is that error.
  virtual std::vector<absl::StatusOr<CreateEntryResult>> CreateOrReturnEntries(
      std::span<const Entry> entries) = 0;
  // CreateOrReturnEntry, with a similar entry reported as AlreadyExists
  // "similar entry already exists"; the status then carries the existing entry's id as the
  // payload kSimilarEntryIdPayload (use SimilarEntryId()). Prefer CreateOrReturnEntry where the
  // existing entry itself is needed: it has no window between the check and the read.
  absl::StatusOr<Entry> CreateEntry(const Entry& entry);
  virtual absl::StatusOr<std::optional<Entry>> FetchEntry(std::string_view id) = 0;
  // Copies the fields in `mask` from `entry` onto the stored entry with entry.id, validates the
  // result as CreateOrReturnEntry does and bumps revision_number by one (even for an empty
  // mask). NotFound when there is no such entry. Returns the entry as stored.
  virtual absl::StatusOr<Entry> UpdateEntry(const Entry& entry, const EntryMask& mask) = 0;
  // Returns the deleted entry; NotFound when there is none.
  virtual absl::StatusOr<Entry> DeleteEntry(std::string_view id) = 0;
  // Entries in creation order.
  virtual absl::StatusOr<Page<Entry>> ListEntries(const EntryFilter& filter,
                                                  const PageRequest& page) = 0;
  virtual absl::StatusOr<int64_t> CountEntries(const EntryFilter& filter) = 0;
  // Every entry, in creation order, in one consistent read: for building the in-memory
  // authorized-entry index at start-up.
  virtual absl::StatusOr<std::vector<Entry>> ListAllEntries() = 0;

  // --- Attested nodes ---

  // Stores `node` and replaces its node selectors with node.selectors. AlreadyExists when a node
  // with that id exists.
  virtual absl::StatusOr<AttestedNode> CreateAttestedNode(const AttestedNode& node) = 0;
  // The node with its selectors, or nullopt.
  virtual absl::StatusOr<std::optional<AttestedNode>> FetchAttestedNode(
      const spiffe::SpiffeId& id) = 0;
  // Copies the masked fields; NotFound when there is no such node. Returns the node as stored.
  virtual absl::StatusOr<AttestedNode> UpdateAttestedNode(const AttestedNode& node,
                                                          const NodeMask& mask) = 0;
  // Deletes the node and its selectors (lifting a ban); returns it. NotFound when there is none.
  virtual absl::StatusOr<AttestedNode> DeleteAttestedNode(const spiffe::SpiffeId& id) = 0;
  virtual absl::StatusOr<Page<AttestedNode>> ListAttestedNodes(const NodeFilter& filter,
                                                               const PageRequest& page) = 0;
  virtual absl::StatusOr<int64_t> CountAttestedNodes(const NodeFilter& filter) = 0;
  // Replaces the node selectors of `id`. Allowed before the node record exists (attestation
  // stores the selectors, then the node); they are loaded with the node from then on.
  virtual absl::Status SetNodeSelectors(const spiffe::SpiffeId& id,
                                        const spiffe::SelectorSet& selectors) = 0;
  virtual absl::StatusOr<spiffe::SelectorSet> FetchNodeSelectors(const spiffe::SpiffeId& id) = 0;
  // Every node with its selectors, in one consistent read (for the authorized-entry index).
  virtual absl::StatusOr<std::vector<AttestedNode>> ListAllNodes() = 0;

  // --- Join tokens ---

  // AlreadyExists when the token exists.
  virtual absl::Status CreateJoinToken(const JoinToken& token) = 0;
  // Deletes the token and returns it, in one step: it is used up whether or not the caller then
  // accepts it (expired). NotFound when absent or already taken.
  virtual absl::StatusOr<JoinToken> TakeJoinToken(std::string_view token) = 0;
  // Deletes tokens with expires_at < expires_before; returns how many.
  virtual absl::StatusOr<int64_t> PruneJoinTokens(int64_t expires_before) = 0;

  // --- Bundles (the server's own and federated ones, keyed by trust domain) ---
  // bundle.trust_domain is a trust-domain name or "spiffe://<name>"; it is stored, and returned,
  // as the name. InvalidArgument when it is neither.

  // AlreadyExists ("datastore: create bundle: bundle already exists").
  virtual absl::StatusOr<Bundle> CreateBundle(const Bundle& bundle) = 0;
  virtual absl::StatusOr<std::optional<Bundle>> FetchBundle(const spiffe::TrustDomain& td) = 0;
  // Copies the masked fields; NotFound ("...: bundle not found") when there is none.
  virtual absl::StatusOr<Bundle> UpdateBundle(const Bundle& bundle, const BundleMask& mask) = 0;
  // Creates or replaces.
  virtual absl::StatusOr<Bundle> SetBundle(const Bundle& bundle) = 0;
  // Adds the X.509 authorities (same DER) and JWT keys (same key_id and public key) of `bundle`
  // that the stored bundle lacks, bumping sequence_number by one when anything was added; creates
  // the bundle when there is none. Returns the bundle as stored.
  virtual absl::StatusOr<Bundle> AppendBundle(const Bundle& bundle) = 0;
  // NotFound ("...: bundle not found"); see BundleDeleteMode for entries that federate with `td`.
  virtual absl::StatusOr<DeleteBundleResult> DeleteBundle(const spiffe::TrustDomain& td,
                                                          BundleDeleteMode mode) = 0;
  // Bundles in creation order.
  virtual absl::StatusOr<Page<Bundle>> ListBundles(const PageRequest& page) = 0;
  virtual absl::StatusOr<int64_t> CountBundles() = 0;

  // --- CA journal: opaque bytes the CA manager owns, by name ---

  virtual absl::Status SetCaJournal(std::string_view name, std::string_view data) = 0;
  virtual absl::StatusOr<std::optional<std::string>> FetchCaJournal(std::string_view name) = 0;
};

// The payload type URL under which CreateEntry's AlreadyExists status carries the similar
// entry's id.
inline constexpr std::string_view kSimilarEntryIdPayload =
    "type.tessera.dev/tessera.server.SimilarEntryId";

// The similar entry's id carried by CreateEntry's AlreadyExists status, if any.
std::optional<std::string> SimilarEntryId(const absl::Status& status);

// The data store's entry-id rule: up to 255 of [A-Za-z0-9._-] (empty is allowed: the store
// assigns one). Exposed for the API layer's own checks.
absl::Status ValidateEntryId(std::string_view id);

// A random (version 4) UUID in its canonical lower-case form, from OpenSSL's CSPRNG.
absl::StatusOr<std::string> NewUuidV4();

}  // namespace tessera::server
