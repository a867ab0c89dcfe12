#include "spiffe/selector.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/text.h"

namespace tessera::spiffe {
namespace {

absl::Status SelectorError(std::string_view text, std::string_view reason) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid selector ", Quoted(text, 128), ": ", AsAbsl(reason)));
}

bool HasControlCharacter(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

// Checks one part ("type" or "value"); `text` is the whole selector, for the message.
absl::Status ValidatePart(std::string_view part, std::string_view what, size_t max_length,
                          std::string_view text) {
  if (part.empty()) return SelectorError(text, absl::StrCat("missing selector ", AsAbsl(what)));
  if (part.size() > max_length) {
    return SelectorError(
        text, absl::StrCat("selector ", AsAbsl(what), " is longer than ", max_length, " bytes"));
  }
  if (HasControlCharacter(part)) {
    return SelectorError(text,
                         absl::StrCat("selector ", AsAbsl(what), " contains a control character"));
  }
  if (!IsValidUtf8(part)) {
    return SelectorError(text, absl::StrCat("selector ", AsAbsl(what), " is not valid UTF-8"));
  }
  return absl::OkStatus();
}

absl::Status Validate(std::string_view type, std::string_view value, std::string_view text) {
  RETURN_IF_ERROR(ValidatePart(type, "type", kMaxSelectorTypeLength, text));
  return ValidatePart(value, "value", kMaxSelectorValueLength, text);
}

}  // namespace

absl::StatusOr<Selector> Selector::Parse(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return SelectorError(text, "expected \"type:value\"");
  RETURN_IF_ERROR(Validate(text.substr(0, colon), text.substr(colon + 1), text));
  return Selector(std::string(text), colon);
}

absl::StatusOr<Selector> Selector::Create(std::string_view type, std::string_view value) {
  std::string text = absl::StrCat(AsAbsl(type), ":", AsAbsl(value));
  if (type.find(':') != std::string_view::npos) {
    return SelectorError(text, "selector type contains ':'");
  }
  RETURN_IF_ERROR(Validate(type, value, text));
  return Selector(std::move(text), type.size());
}

SelectorSet::SelectorSet(std::vector<Selector> selectors) : selectors_(std::move(selectors)) {
  std::sort(selectors_.begin(), selectors_.end());
  selectors_.erase(std::unique(selectors_.begin(), selectors_.end()), selectors_.end());
}

absl::StatusOr<SelectorSet> SelectorSet::Parse(std::span<const std::string> texts) {
  std::vector<Selector> selectors;
  selectors.reserve(texts.size());
  for (const std::string& text : texts) {
    ASSIGN_OR_RETURN(Selector selector, Selector::Parse(text));
    selectors.push_back(std::move(selector));
  }
  return SelectorSet(std::move(selectors));
}

absl::StatusOr<SelectorSet> SelectorSet::Parse(std::initializer_list<std::string_view> texts) {
  std::vector<Selector> selectors;
  selectors.reserve(texts.size());
  for (std::string_view text : texts) {
    ASSIGN_OR_RETURN(Selector selector, Selector::Parse(text));
    selectors.push_back(std::move(selector));
  }
  return SelectorSet(std::move(selectors));
}

bool SelectorSet::IsSubsetOf(const SelectorSet& workload) const {
  if (selectors_.empty() || selectors_.size() > workload.selectors_.size()) return false;
  // std::includes walks both sorted ranges once.
  return std::includes(workload.selectors_.begin(), workload.selectors_.end(), selectors_.begin(),
                       selectors_.end());
}

bool SelectorSet::Intersects(const SelectorSet& other) const {
  auto a = selectors_.begin();
  auto b = other.selectors_.begin();
  while (a != selectors_.end() && b != other.selectors_.end()) {
    if (*a < *b) {
      ++a;
    } else if (*b < *a) {
      ++b;
    } else {
      return true;
    }
  }
  return false;
}

bool SelectorSet::Contains(const Selector& selector) const {
  return std::binary_search(selectors_.begin(), selectors_.end(), selector);
}

void SelectorSet::Merge(const SelectorSet& other) {
  std::vector<Selector> merged;
  merged.reserve(selectors_.size() + other.selectors_.size());
  std::set_union(selectors_.begin(), selectors_.end(), other.selectors_.begin(),
                 other.selectors_.end(), std::back_inserter(merged));
  selectors_ = std::move(merged);
}

std::vector<std::string> SelectorSet::Strings() const {
  std::vector<std::string> out;
  out.reserve(selectors_.size());
  for (const Selector& s : selectors_) out.push_back(s.ToString());
  return out;
}

std::string SelectorSet::ToString() const {
  std::string out = "[";
  for (const Selector& s : selectors_) {
    if (out.size() > 1) out.push_back(' ');
    out.append(s.ToString());
  }
  out.push_back(']');
  return out;
}

}  // namespace tessera::spiffe
