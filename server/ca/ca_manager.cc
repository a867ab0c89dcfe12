#include "server/ca/ca_manager.h"

#include <openssl/rand.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "common/strings.h"
#include "spdlog/spdlog.h"
#include "spiffe/base64.h"

namespace tessera::server::ca {
namespace {

constexpr std::string_view kX509KeyPrefix = "x509-ca";
constexpr std::string_view kJwtKeyPrefix = "jwt-key";
// The next authority becomes current at 5/6 of the current one's life, but never earlier than
// this before the current one expires (a long-lived CA need not hand over weeks in advance).
constexpr std::chrono::hours kMaxActivationLead(24 * 7);
// 24 random bytes: a 32-character base64url "kid".
constexpr size_t kKidBytes = 24;

std::string FormatTime(TimePoint t) {
  return absl::FormatTime(absl::RFC3339_sec, absl::FromChrono(t), absl::UTCTimeZone());
}

int64_t ToUnix(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

TimePoint NotAfterOf(const X509CaRecord& r) { return r.not_after(); }
TimePoint NotAfterOf(const JwtKeyRecord& r) { return r.not_after; }

std::string Describe(const X509CaRecord& r) {
  return absl::StrCat("X.509 CA ", r.ca_cert.SerialHex(), " (key \"", r.key_id, "\", valid until ",
                      FormatTime(r.not_after()), ")");
}
std::string Describe(const JwtKeyRecord& r) {
  return absl::StrCat("JWT key \"", r.kid, "\" (key \"", r.key_id, "\", valid until ",
                      FormatTime(r.not_after), ")");
}

TimePoint PrepareAt(TimePoint issued_at, TimePoint not_after) {
  return issued_at + (not_after - issued_at) / 2;
}

TimePoint ActivateAt(TimePoint issued_at, TimePoint not_after) {
  auto lead = (not_after - issued_at) / 6;
  return not_after - std::min<TimePoint::duration>(lead, kMaxActivationLead);
}

// The A/B key slot not used by the current authority: keys are overwritten only once nothing
// signs with them any more.
std::string NextKeyId(std::string_view prefix, const std::string* current_key_id) {
  std::string a = absl::StrCat(AsAbsl(prefix), "-a");
  if (current_key_id != nullptr && *current_key_id == a) return absl::StrCat(AsAbsl(prefix), "-b");
  return a;
}

absl::StatusOr<std::string> RandomKid() {
  unsigned char bytes[kKidBytes];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return absl::InternalError("ca: random kid");
  return spiffe::Base64UrlEncode(std::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

// One kind of authority's slots: drop expired ones, fill an empty current slot, prepare the
// next at half life, activate it at five sixths.
template <typename Slot, typename PrepareFn>
absl::Status RotateSlots(std::string_view kind, TimePoint now, bool publish_pending,
                         std::optional<Slot>& current, std::optional<Slot>& next, PrepareFn prepare,
                         bool* changed) {
  if (current.has_value() && NotAfterOf(current->record) <= now) {
    spdlog::warn("ca: current {} has expired", Describe(current->record));
    current.reset();
    *changed = true;
  }
  if (next.has_value() && NotAfterOf(next->record) <= now) {
    spdlog::warn("ca: next {} has expired before use", Describe(next->record));
    next.reset();
    *changed = true;
  }
  if (!current.has_value() && next.has_value()) {
    current = std::exchange(next, std::nullopt);
    *changed = true;
    spdlog::info("ca: activated {}", Describe(current->record));
  }
  if (!current.has_value()) {
    ASSIGN_OR_RETURN(Slot slot, prepare(now), Annotate(_, absl::StrCat("ca: new ", AsAbsl(kind))));
    current = std::move(slot);
    *changed = true;
    spdlog::info("ca: activated new {}", Describe(current->record));
  }
  const auto& cur = current->record;
  bool prepared_now = false;
  if (!next.has_value() && now >= PrepareAt(cur.issued_at, NotAfterOf(cur))) {
    ASSIGN_OR_RETURN(Slot slot, prepare(now),
                     Annotate(_, absl::StrCat("ca: prepare next ", AsAbsl(kind))));
    next = std::move(slot);
    *changed = true;
    prepared_now = true;
    spdlog::info("ca: prepared next {}", Describe(next->record));
  }
  if (next.has_value() && now >= ActivateAt(cur.issued_at, NotAfterOf(cur))) {
    // Verifiers must learn the new authority before it signs anything: wait for one tick after
    // preparing it, and for the bundle holding it to have been published.
    if (prepared_now) return absl::OkStatus();
    if (publish_pending) {
      spdlog::warn("ca: not activating {} yet: the bundle holding it is not published",
                   Describe(next->record));
      return absl::OkStatus();
    }
    spdlog::info("ca: retiring {}", Describe(current->record));
    current = std::exchange(next, std::nullopt);
    *changed = true;
    spdlog::info("ca: activated {}", Describe(current->record));
  }
  return absl::OkStatus();
}

}  // namespace

bool ShouldRenew(const SignedX509Svid& svid, TimePoint now) {
  return now >= PrepareAt(svid.issued_at, svid.expires_at);
}

CaManager::CaManager(CaConfig config, CaManagerDeps deps)
    : config_(std::move(config)),
      clock_(*deps.clock),
      key_manager_(*deps.key_manager),
      journal_store_(*deps.journal_store),
      publisher_(deps.publisher),
      upstream_(deps.upstream) {}

// ---- initialization ----

absl::Status CaManager::Initialize() {
  absl::MutexLock lock(&rotate_mu_);
  TimePoint now = clock_.Now();
  initialized_ = false;
  current_x509_.reset();
  next_x509_.reset();
  current_jwt_.reset();
  next_jwt_.reset();
  published_x509_.clear();
  published_jwt_.clear();
  sequence_ = 0;
  ASSIGN_OR_RETURN(std::optional<std::string> bytes, journal_store_.Load(),
                   Annotate(_, "ca: load journal"));
  if (bytes.has_value()) {
    absl::StatusOr<Journal> journal = DecodeJournal(*bytes);
    if (journal.ok()) {
      Restore(*journal);
    } else {
      spdlog::error("ca: cannot use the CA journal ({}); starting over with a new CA and bundle",
                    std::string(journal.status().message()));
    }
  } else {
    spdlog::info("ca: no CA journal yet; creating the trust domain's first CA");
  }
  // What was restored is what verifiers already hold, so it counts as published for the
  // activation rule; it is published again below for the server's own records.
  publish_pending_ = false;
  Changes changes;
  absl::Status rotated = RotateLocked(now, &changes);
  if (!current_x509_.has_value() || !current_jwt_.has_value()) {
    if (rotated.ok()) rotated = absl::InternalError("no authority was made");
    return Annotate(rotated, "ca: no usable authority");
  }
  if (!rotated.ok()) spdlog::error("{}", std::string(rotated.message()));
  changes.slots = true;  // build the first snapshots even when nothing changed
  Commit(changes);
  publish_pending_ = true;
  initialized_ = true;
  (void)Flush();  // failures are logged and retried by Tick
  spdlog::info("ca: serving trust domain {} with {} and {}; bundle sequence {}",
               config_.trust_domain.name(), Describe(current_x509_->record),
               Describe(current_jwt_->record), sequence_);
  return absl::OkStatus();
}

void CaManager::Restore(const Journal& journal) {
  if (journal.trust_domain != config_.trust_domain.name()) {
    spdlog::warn("ca: the CA journal belongs to trust domain \"{}\", not \"{}\"; starting over",
                 journal.trust_domain, config_.trust_domain.name());
    return;
  }
  sequence_ = journal.bundle_sequence;
  published_x509_ = journal.x509_authorities;
  published_jwt_ = journal.jwt_keys;
  if (journal.current_x509.has_value()) {
    current_x509_ = RestoreX509(*journal.current_x509, "current");
  }
  if (journal.next_x509.has_value()) next_x509_ = RestoreX509(*journal.next_x509, "next");
  if (journal.current_jwt.has_value()) current_jwt_ = RestoreJwt(*journal.current_jwt, "current");
  if (journal.next_jwt.has_value()) next_jwt_ = RestoreJwt(*journal.next_jwt, "next");
  // Both slots on one key can only come from a damaged journal; keep the current one.
  if (current_x509_ && next_x509_ && current_x509_->record.key_id == next_x509_->record.key_id) {
    next_x509_.reset();
  }
  if (current_jwt_ && next_jwt_ && current_jwt_->record.key_id == next_jwt_->record.key_id) {
    next_jwt_.reset();
  }
  spdlog::info("ca: loaded the CA journal (bundle sequence {}, {} X.509 and {} JWT authorities)",
               sequence_, published_x509_.size(), published_jwt_.size());
}

std::optional<CaManager::X509Slot> CaManager::RestoreX509(const X509CaRecord& record,
                                                          std::string_view slot) {
  absl::StatusOr<spiffe::PrivateKey> key = key_manager_.GetKey(record.key_id);
  std::string problem;
  if (!key.ok()) {
    problem = std::string(key.status().message());
  } else if (!key->public_key().Equals(record.ca_cert.public_key())) {
    problem = "the stored key does not match the CA certificate";
  } else if (!record.ca_cert.IsCa() ||
             record.ca_cert.UriSans() !=
                 std::vector<std::string>{config_.trust_domain.IdString()}) {
    problem = "the certificate is not a CA of this trust domain";
  } else if (!record.chain_tail.empty() && record.chain_tail.front() != record.ca_cert) {
    problem = "its chain does not start with its certificate";
  }
  if (!problem.empty()) {
    spdlog::error("ca: cannot reuse the {} {}: {}; it will be replaced", slot, Describe(record),
                  problem);
    return std::nullopt;
  }
  return X509Slot{record, *std::move(key)};
}

std::optional<CaManager::JwtSlot> CaManager::RestoreJwt(const JwtKeyRecord& record,
                                                        std::string_view slot) {
  absl::StatusOr<spiffe::PrivateKey> key = key_manager_.GetKey(record.key_id);
  std::string problem;
  if (!key.ok()) {
    problem = std::string(key.status().message());
  } else if (!key->public_key().Equals(record.public_key)) {
    problem = "the stored key does not match the journal";
  }
  if (!problem.empty()) {
    spdlog::error("ca: cannot reuse the {} {}: {}; it will be replaced", slot, Describe(record),
                  problem);
    return std::nullopt;
  }
  return JwtSlot{record, *std::move(key)};
}

// ---- rotation ----

absl::StatusOr<bool> CaManager::Rotate(TimePoint now) {
  absl::MutexLock lock(&rotate_mu_);
  if (!initialized_) return absl::FailedPreconditionError("ca: not initialized");
  Changes changes;
  absl::Status rotated = RotateLocked(now, &changes);
  Commit(changes);
  absl::Status flushed = Flush();
  RETURN_IF_ERROR(rotated);
  RETURN_IF_ERROR(flushed);
  return changes.slots || changes.bundle;
}

absl::Status CaManager::RotateLocked(TimePoint now, Changes* changes) {
  // Whole seconds: certificates and the journal cannot hold more, and a restart must see the
  // same times.
  now = std::chrono::floor<std::chrono::seconds>(now);
  absl::Status x509 = RotateX509(now, changes);
  absl::Status jwt = RotateJwt(now, changes);
  Prune(now, changes);
  return x509.ok() ? jwt : x509;
}

absl::Status CaManager::RotateX509(TimePoint now, Changes* changes) {
  return RotateSlots(
      "X.509 CA", now, publish_pending_, current_x509_, next_x509_,
      [&](TimePoint t) ABSL_NO_THREAD_SAFETY_ANALYSIS { return PrepareX509(t, changes); },
      &changes->slots);
}

absl::Status CaManager::RotateJwt(TimePoint now, Changes* changes) {
  return RotateSlots(
      "JWT key", now, publish_pending_, current_jwt_, next_jwt_,
      [&](TimePoint t) ABSL_NO_THREAD_SAFETY_ANALYSIS { return PrepareJwt(t, changes); },
      &changes->slots);
}

absl::StatusOr<CaManager::X509Slot> CaManager::PrepareX509(TimePoint now, Changes* changes) {
  std::string key_id =
      NextKeyId(kX509KeyPrefix, current_x509_ ? &current_x509_->record.key_id : nullptr);
  ASSIGN_OR_RETURN(spiffe::PrivateKey key, key_manager_.GenerateKey(key_id, config_.key_type));
  spiffe::CaTemplate tmpl{.public_key = key.public_key(),
                          .trust_domain = config_.trust_domain,
                          .subject = config_.ca_subject,
                          .not_before = now - spiffe::kBackdate,
                          .not_after = now + config_.ca_ttl,
                          .max_path_len = std::nullopt};
  std::vector<spiffe::Certificate> chain_tail;
  std::vector<spiffe::Certificate> roots;
  if (upstream_ != nullptr) {
    ASSIGN_OR_RETURN(UpstreamSignedCa signed_ca, upstream_->SignIntermediate(tmpl));
    chain_tail = std::move(signed_ca.chain);
    roots = std::move(signed_ca.roots);
  } else {
    ASSIGN_OR_RETURN(spiffe::Certificate ca, spiffe::SignSelfSignedCa(tmpl, key),
                     Annotate(_, "sign CA certificate"));
    roots.push_back(std::move(ca));
  }
  spiffe::Certificate ca_cert = upstream_ != nullptr ? chain_tail.front() : roots.front();
  X509CaRecord record{std::move(key_id), ca_cert, std::move(chain_tail), now};
  for (const spiffe::Certificate& root : roots) {
    // Everything the new CA signs ends by its expiry; the root must stay published until then.
    TimePoint expires_at = std::min(root.NotAfter(), record.not_after());
    auto it = std::find_if(published_x509_.begin(), published_x509_.end(),
                           [&](const PublishedX509Authority& a) { return a.cert == root; });
    if (it == published_x509_.end()) {
      published_x509_.push_back({root, expires_at});
      changes->bundle = true;
    } else if (it->expires_at < expires_at) {
      it->expires_at = expires_at;
      changes->journal = true;
    }
  }
  return X509Slot{std::move(record), std::move(key)};
}

absl::StatusOr<CaManager::JwtSlot> CaManager::PrepareJwt(TimePoint now, Changes* changes) {
  std::string key_id =
      NextKeyId(kJwtKeyPrefix, current_jwt_ ? &current_jwt_->record.key_id : nullptr);
  ASSIGN_OR_RETURN(spiffe::PrivateKey key,
                   key_manager_.GenerateKey(key_id, config_.EffectiveJwtKeyType()));
  ASSIGN_OR_RETURN(std::string kid, RandomKid());
  JwtKeyRecord record{std::move(key_id), std::move(kid), key.public_key(), now,
                      now + config_.EffectiveJwtKeyTtl()};
  published_jwt_.push_back({record.kid, record.public_key, record.not_after});
  changes->bundle = true;
  return JwtSlot{std::move(record), std::move(key)};
}

void CaManager::Prune(TimePoint now, Changes* changes) {
  size_t x509 = std::erase_if(published_x509_, [&](const PublishedX509Authority& a) {
    if (a.expires_at > now) return false;
    spdlog::info("ca: removing expired X.509 authority {} from the bundle", a.cert.SerialHex());
    return true;
  });
  size_t jwt = std::erase_if(published_jwt_, [&](const PublishedJwtKey& k) {
    if (k.expires_at > now) return false;
    spdlog::info("ca: removing expired JWT key \"{}\" from the bundle", k.kid);
    return true;
  });
  if (x509 + jwt > 0) changes->bundle = true;
}

void CaManager::Commit(const Changes& changes) {
  if (changes.bundle) {
    ++sequence_;
    publish_pending_ = true;
  }
  if (changes.slots || changes.bundle || changes.journal) journal_dirty_ = true;
  if (!changes.slots && !changes.bundle) return;
  auto x509 = current_x509_ ? std::make_shared<const X509Slot>(*current_x509_) : nullptr;
  auto jwt = current_jwt_ ? std::make_shared<const JwtSlot>(*current_jwt_) : nullptr;
  auto bundle = std::make_shared<const BundleContents>(BuildBundle());
  absl::MutexLock lock(&mu_);
  // A slot is only ever empty here when its authority expired and no successor could be made:
  // signers keep the expired one, so that they report the expiry rather than a missing CA.
  if (x509 != nullptr) active_x509_ = std::move(x509);
  if (jwt != nullptr) active_jwt_ = std::move(jwt);
  bundle_ = std::move(bundle);
}

absl::Status CaManager::Flush() {
  absl::Status result;
  if (journal_dirty_) {
    absl::StatusOr<std::string> bytes = EncodeJournal(ToJournal());
    absl::Status saved = bytes.ok() ? journal_store_.Save(*bytes) : bytes.status();
    if (saved.ok()) {
      journal_dirty_ = false;
    } else {
      result = Annotate(saved, "ca: save journal");
      spdlog::error("{}; will retry", std::string(result.message()));
    }
  }
  if (publish_pending_) {
    std::shared_ptr<const BundleContents> bundle = this->bundle();
    absl::Status published = publisher_ == nullptr || bundle == nullptr
                                 ? absl::OkStatus()
                                 : publisher_->Publish(*bundle);
    if (published.ok()) {
      publish_pending_ = false;
    } else {
      published = Annotate(published, "ca: publish bundle");
      spdlog::error("{}; will retry", std::string(published.message()));
      if (result.ok()) result = published;
    }
  }
  return result;
}

Journal CaManager::ToJournal() const {
  Journal j;
  j.trust_domain = config_.trust_domain.name();
  j.bundle_sequence = sequence_;
  if (current_x509_) j.current_x509 = current_x509_->record;
  if (next_x509_) j.next_x509 = next_x509_->record;
  if (current_jwt_) j.current_jwt = current_jwt_->record;
  if (next_jwt_) j.next_jwt = next_jwt_->record;
  j.x509_authorities = published_x509_;
  j.jwt_keys = published_jwt_;
  return j;
}

BundleContents CaManager::BuildBundle() const {
  BundleContents out{spiffe::Bundle(config_.trust_domain), {}};
  for (const PublishedX509Authority& a : published_x509_) out.bundle.AddX509Authority(a.cert);
  for (const PublishedJwtKey& k : published_jwt_) {
    if (absl::Status s = out.bundle.AddJwtAuthority(k.kid, k.public_key); !s.ok()) {
      spdlog::error("ca: JWT key \"{}\" left out of the bundle: {}", k.kid,
                    std::string(s.message()));
      continue;
    }
    out.jwt_key_expiry[k.kid] = ToUnix(k.expires_at);
  }
  out.bundle.set_sequence_number(sequence_);
  return out;
}

std::shared_ptr<const BundleContents> CaManager::bundle() const {
  absl::MutexLock lock(&mu_);
  return bundle_;
}

CaStatus CaManager::GetStatus() const {
  absl::MutexLock lock(&rotate_mu_);
  CaStatus status;
  if (current_x509_) status.current_x509_ca = current_x509_->record.ca_cert;
  if (next_x509_) status.next_x509_ca = next_x509_->record.ca_cert;
  if (current_jwt_) status.current_jwt_kid = current_jwt_->record.kid;
  if (next_jwt_) status.next_jwt_kid = next_jwt_->record.kid;
  status.bundle_sequence = sequence_;
  return status;
}

}  // namespace tessera::server::ca
