#include "attestors/unix/proc_status.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/text.h"

namespace tessera::attestors::unix {
namespace {

// Linux writes real, effective, saved and filesystem ids.
constexpr size_t kMaxIdsPerLine = 4;

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

absl::StatusOr<uint32_t> ParseId(std::string_view text) {
  // Digits only: no sign, no "0x"; 10 digits at most so the sum below cannot overflow.
  if (text.empty() || text.size() > 10) {
    return absl::InvalidArgumentError(absl::StrCat("invalid id ", Quoted(text)));
  }
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError(absl::StrCat("invalid id ", Quoted(text)));
    }
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("id ", Quoted(text), " is out of range"));
  }
  return static_cast<uint32_t>(value);
}

absl::StatusOr<std::vector<uint32_t>> ParseIds(std::string_view text) {
  std::vector<uint32_t> ids;
  size_t i = 0;
  while (true) {
    while (i < text.size() && IsBlank(text[i])) ++i;
    if (i == text.size()) break;
    size_t end = i;
    while (end < text.size() && !IsBlank(text[end])) ++end;
    ASSIGN_OR_RETURN(uint32_t id, ParseId(text.substr(i, end - i)));
    ids.push_back(id);
    i = end;
  }
  return ids;
}

// The value of a credentials line, checked for count; `key` is "Uid" or "Gid".
absl::StatusOr<std::vector<uint32_t>> ParseCredentialLine(std::string_view key,
                                                          std::string_view value) {
  ASSIGN_OR_RETURN(std::vector<uint32_t> ids, ParseIds(value),
                   Annotate(_, absl::StrCat(AsAbsl(key), " line")));
  if (ids.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(key), " line has no ids"));
  }
  if (ids.size() > kMaxIdsPerLine) {
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(key), " line has ", ids.size(), " ids (at most 4)"));
  }
  return ids;
}

}  // namespace

absl::StatusOr<ProcCredentials> ParseProcStatus(std::string_view text) {
  std::optional<std::vector<uint32_t>> uids;
  std::optional<std::vector<uint32_t>> gids;
  std::optional<std::vector<uint32_t>> groups;
  while (!text.empty()) {
    size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);

    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    // The process name (the Name line, set by the process itself) comes first and the kernel
    // escapes newlines in it, so a forged "Uid:" line could only appear as a repeat: an error.
    if (key == "Uid" || key == "Gid") {
      std::optional<std::vector<uint32_t>>& slot = key == "Uid" ? uids : gids;
      if (slot.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat("repeated ", AsAbsl(key), " line"));
      }
      ASSIGN_OR_RETURN(slot, ParseCredentialLine(key, value));
    } else if (key == "Groups") {
      if (groups.has_value()) return absl::InvalidArgumentError("repeated Groups line");
      ASSIGN_OR_RETURN(groups, ParseIds(value), Annotate(_, "Groups line"));
    }
  }
  if (!uids.has_value()) return absl::InvalidArgumentError("no Uid line");
  if (!gids.has_value()) return absl::InvalidArgumentError("no Gid line");
  ProcCredentials creds;
  creds.uids = *std::move(uids);
  creds.gids = *std::move(gids);
  if (groups.has_value()) creds.groups = *std::move(groups);
  return creds;
}

}  // namespace tessera::attestors::unix
