#include "spiffe/strict_json.h"

#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace tessera::spiffe {
namespace {

// Thrown from the parser callback to stop parsing at the first violation; never escapes
// ParseStrictJson.
struct Violation {
  std::string message;
};

// nlohmann prefixes every message with "[json.exception.<kind>.<id>] ".
std::string_view StripExceptionPrefix(std::string_view what) {
  if (!what.empty() && what.front() == '[') {
    size_t end = what.find("] ");
    if (end != std::string_view::npos) return what.substr(end + 2);
  }
  return what;
}

}  // namespace

absl::StatusOr<nlohmann::json> ParseStrictJson(std::string_view text, size_t max_bytes,
                                               int max_depth) {
  if (text.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON: document is larger than ", max_bytes, " bytes"));
  }
  // One set of member names per object being parsed, innermost last.
  std::vector<std::set<std::string>> members;
  auto callback = [&](int depth, nlohmann::json::parse_event_t event,
                      nlohmann::json& parsed) -> bool {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        // `depth` counts the containers around this one.
        if (depth + 1 > max_depth) {
          throw Violation{absl::StrCat("invalid JSON: nesting is deeper than ", max_depth)};
        }
        if (event == Event::object_start) members.emplace_back();
        break;
      case Event::object_end:
        if (!members.empty()) members.pop_back();
        break;
      case Event::key:
        if (!members.empty() && parsed.is_string()) {
          const auto& name = parsed.get_ref<const std::string&>();
          if (!members.back().insert(name).second) {
            throw Violation{absl::StrCat("invalid JSON: duplicate member \"", name, "\"")};
          }
        }
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
  } catch (const Violation& v) {
    return absl::InvalidArgumentError(v.message);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON: ", AsAbsl(StripExceptionPrefix(e.what()))));
  } catch (const std::exception& e) {
    // Allocation failure and the like: not the caller's fault.
    return absl::InternalError(absl::StrCat("parse JSON: ", e.what()));
  }
}

absl::StatusOr<std::string> DumpJson(const nlohmann::json& value) {
  try {
    return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("serialize JSON: ", AsAbsl(StripExceptionPrefix(e.what()))));
  }
}

}  // namespace tessera::spiffe
