#include "server/ca_storage.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "absl/strings/str_cat.h"
#include "server/api/convert.h"
#include "spdlog/spdlog.h"
#include "spiffe/certificate.h"

namespace tessera::server {
namespace {

constexpr std::string_view kJournalName = "ca";

bool SameContent(const Bundle& a, const Bundle& b) {
  Bundle x = a;
  Bundle y = b;
  x.clear_sequence_number();
  y.clear_sequence_number();
  return x.SerializeAsString() == y.SerializeAsString();
}

// An appended X.509 authority stays while its certificate is valid; one that does not parse
// was validated when appended, so keep it rather than guess.
bool StillValid(const ::spire::api::types::X509Certificate& authority,
                std::chrono::system_clock::time_point now) {
  auto cert = spiffe::Certificate::FromDer(authority.asn1());
  return !cert.ok() || cert->NotAfter() > now;
}

}  // namespace

absl::StatusOr<std::optional<std::string>> DataStoreJournalStore::Load() {
  return datastore_.FetchCaJournal(kJournalName);
}

absl::Status DataStoreJournalStore::Save(std::string_view bytes) {
  return datastore_.SetCaJournal(kJournalName, bytes);
}

std::optional<Bundle> MergeOwnBundle(const ca::BundleContents& contents,
                                     const std::optional<Bundle>& stored,
                                     std::chrono::system_clock::time_point now) {
  JwtKeyExpiry expiry(contents.jwt_key_expiry.begin(), contents.jwt_key_expiry.end());
  Bundle merged = BundleToProto(contents.bundle, expiry);
  const uint64_t ca_sequence = merged.sequence_number();
  if (stored.has_value()) {
    std::set<std::string> ders;
    for (const auto& a : merged.x509_authorities()) ders.insert(a.asn1());
    for (const auto& a : stored->x509_authorities()) {
      if (!ders.contains(a.asn1()) && StillValid(a, now)) *merged.add_x509_authorities() = a;
    }
    std::set<std::string> kids;
    for (const auto& k : merged.jwt_authorities()) kids.insert(k.key_id());
    const int64_t now_s = std::chrono::system_clock::to_time_t(now);
    for (const auto& k : stored->jwt_authorities()) {
      if (!kids.contains(k.key_id()) && (k.expires_at() == 0 || k.expires_at() > now_s)) {
        *merged.add_jwt_authorities() = k;
      }
    }
    if (SameContent(merged, *stored)) return std::nullopt;
    merged.set_sequence_number(std::max(stored->sequence_number() + 1, ca_sequence));
  }
  return merged;
}

absl::Status DataStoreBundlePublisher::Publish(const ca::BundleContents& contents) {
  auto stored = datastore_.FetchBundle(contents.bundle.trust_domain());
  if (!stored.ok()) {
    return absl::Status(stored.status().code(),
                        absl::StrCat("publish bundle: ", stored.status().message()));
  }
  std::optional<Bundle> merged = MergeOwnBundle(contents, *stored, clock_.Now());
  if (!merged.has_value()) return absl::OkStatus();
  // A concurrent AppendBundle between the read and this write would be lost; rotation is rare
  // and appends rarer, and the next CA change re-merges whatever is stored then.
  auto written = datastore_.SetBundle(*merged);
  if (!written.ok()) {
    return absl::Status(written.status().code(),
                        absl::StrCat("publish bundle: ", written.status().message()));
  }
  spdlog::info("ca: published trust bundle sequence {} ({} X.509 authorities, {} JWT keys)",
               written->sequence_number(), written->x509_authorities_size(),
               written->jwt_authorities_size());
  if (on_change_) on_change_();
  return absl::OkStatus();
}

}  // namespace tessera::server
