// Strict JSON for untrusted SPIFFE documents (bundles, JWT headers and claims).
//
// nlohmann::json alone accepts duplicate object members (last one wins) and any nesting depth;
// copying or printing a deeply nested value recurses and can exhaust the stack. These helpers
// bound size and depth, reject duplicate members, and never throw. Thread-safe (stateless).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace tessera::spiffe {

// Parses one JSON document. Fails with InvalidArgument on malformed JSON, on input longer than
// `max_bytes`, on arrays/objects nested deeper than `max_depth` (the top-level value is depth 1),
// and on an object with two members of the same name.
absl::StatusOr<nlohmann::json> ParseStrictJson(std::string_view text, size_t max_bytes,
                                               int max_depth);

// Compact serialization; InvalidArgument when a string is not valid UTF-8 (nlohmann would
// throw).
absl::StatusOr<std::string> DumpJson(const nlohmann::json& value);

}  // namespace tessera::spiffe
