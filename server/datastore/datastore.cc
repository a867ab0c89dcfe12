#include "server/datastore/datastore.h"

#include <openssl/rand.h>

#include <array>
#include <cstdio>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "common/status.h"
#include "common/strings.h"

namespace tessera::server {

absl::StatusOr<Entry> DataStore::CreateEntry(const Entry& entry) {
  ASSIGN_OR_RETURN(CreateEntryResult result, CreateOrReturnEntry(entry));
  if (result.created) return std::move(result.entry);
  absl::Status status = absl::AlreadyExistsError("similar entry already exists");
  status.SetPayload(AsAbsl(kSimilarEntryIdPayload), absl::Cord(result.entry.id));
  return status;
}

std::optional<std::string> SimilarEntryId(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kAlreadyExists) return std::nullopt;
  absl::optional<absl::Cord> payload = status.GetPayload(AsAbsl(kSimilarEntryIdPayload));
  if (!payload.has_value()) return std::nullopt;
  return std::string(*payload);
}

absl::Status ValidateEntryId(std::string_view id) {
  if (id.size() > 255) {
    return absl::InvalidArgumentError(
        "datastore-validation: invalid registration entry: entry ID too long");
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          "datastore-validation: invalid registration entry: entry ID contains invalid "
          "characters");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> NewUuidV4() {
  std::array<unsigned char, 16> b{};
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) {
    return absl::InternalError("datastore: generate uuid: RAND_bytes failed");
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  char text[37];
  std::snprintf(text, sizeof(text),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return std::string(text, 36);
}

}  // namespace tessera::server
