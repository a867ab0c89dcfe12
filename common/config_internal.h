// Internal to common/config*.cc: the state one ConfigDocument::Read call accumulates, shared by
// the getters (config.cc) and the final unknown-key check (config_document.cc). Not thread-safe:
// it lives on the stack of one Read call.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/config.h"

namespace tessera::config_internal {

// What one ConfigDocument::Read call has seen so far.
struct ReadState {
  struct Error {
    Location at;
    std::string text;
  };

  std::string_view source;
  std::vector<Error> errors;
  // Values some getter looked at (and so are known keys).
  absl::flat_hash_set<const toml::node*> read;
  // Tables opened as a ConfigTable: their own keys are checked for unknown ones.
  absl::flat_hash_set<const toml::table*> entered;
  // Keys asked for per table, present or not, to suggest the intended spelling of unknown keys.
  absl::flat_hash_map<const toml::table*, std::vector<std::string>> requested;
};

Location LocationOfNode(const toml::node& node);

// `path` + "." + `key`, with `key` quoted when it is not a bare TOML key ("a.\"b.c\"").
std::string JoinPath(std::string_view path, std::string_view key);

}  // namespace tessera::config_internal
