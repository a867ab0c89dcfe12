// Durations ("1h30m", "250ms", "2d") and byte sizes ("512", "10KB", "5MiB") as operators write
// them in config files and flags. Pure functions; safe for concurrent use.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace tessera {

// Parses a sequence of <number><unit> terms, summed: "1h30m", "90s", "1.5h", "250ms". Units are
// ns, us (or µs), ms, s, m, h and d (24h). The number may have a decimal fraction (truncated to
// whole nanoseconds). A bare "0" is accepted; otherwise every number needs a unit. Negative
// values, signs, spaces, upper-case units and totals beyond what std::chrono::nanoseconds holds
// (about 292 years) are errors: InvalidArgument `invalid duration "<text>": <reason>`.
absl::StatusOr<std::chrono::nanoseconds> ParseDuration(std::string_view text);

// The shortest spelling ParseDuration reads back to `d`: "1d2h3m4s5ms6us7ns" with zero terms
// left out, "0s" for zero, a leading '-' when negative.
std::string FormatDuration(std::chrono::nanoseconds d);

// Parses a non-negative integer count of bytes with an optional unit, optionally separated by
// one space: "512", "512B", "10KB" (10 * 1000), "10KiB" (10 * 1024), "5 MiB". Units are B, KB,
// MB, GB, TB, PB (powers of 1000; "kB" is accepted too) and KiB, MiB, GiB, TiB, PiB (powers of
// 1024). Errors, InvalidArgument `invalid size "<text>": <reason>`, for anything else and for
// values above 2^64-1.
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);

}  // namespace tessera
