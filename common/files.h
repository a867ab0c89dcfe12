// Crash-safe file writing for keys, certificates and other state the daemons keep on disk.
// Stateless functions; safe for concurrent use on different paths.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera {

// Writes `contents` to `path` through a temporary file in the same directory (created with
// `mode` and O_EXCL, so never readable by others even for a moment), fsyncs it, renames it over
// `path` and fsyncs the directory: after a crash `path` holds the old or the new contents, never
// a mix.
absl::Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents,
                                 mode_t mode);

// Creates `dir` with mode 0700 if missing (not its parents). An existing directory with looser
// permissions is tightened to 0700; a non-directory (or a symlink) at `dir` is an error.
absl::Status MakePrivateDirectory(const std::filesystem::path& dir);

// fsync on a directory: makes a rename or file creation inside it durable.
absl::Status FsyncDirectory(const std::filesystem::path& dir);

// Reads a whole regular file of at most `max_bytes`.
absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path,
                                             size_t max_bytes = 16 << 20);

}  // namespace tessera
