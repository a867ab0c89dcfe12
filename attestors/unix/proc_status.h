// The credentials part of /proc/<pid>/status, parsed strictly: the file comes from the kernel but
// the attestor treats it as untrusted input (a fixture tree, a foreign /proc mount). Pure
// functions; safe for concurrent use.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::attestors::unix {

struct ProcCredentials {
  // The Uid and Gid lines: real, effective, saved set, filesystem (1 to 4 ids; Linux writes 4).
  std::vector<uint32_t> uids;
  std::vector<uint32_t> gids;
  // The Groups line: supplementary group ids, in the kernel's order; empty when the line is
  // empty or absent.
  std::vector<uint32_t> groups;

  // SPIRE's choice: the effective id when the line has one, else the only id there is.
  uint32_t EffectiveUid() const { return uids.size() > 1 ? uids[1] : uids[0]; }
  uint32_t EffectiveGid() const { return gids.size() > 1 ? gids[1] : gids[0]; }
};

// Parses the "Uid:", "Gid:" and "Groups:" lines of a status file and ignores every other line.
// Ids are unsigned decimal numbers below 2^32 separated by tabs or spaces. Errors, all
// InvalidArgument naming the line: a missing or repeated Uid or Gid line, an empty one or one
// with more than 4 ids, a repeated Groups line, anything that is not an id.
absl::StatusOr<ProcCredentials> ParseProcStatus(std::string_view text);

}  // namespace tessera::attestors::unix
