#include "common/units.h"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "common/text.h"

namespace tessera {
namespace {

struct Unit {
  std::string_view name;
  uint64_t factor;
};

constexpr int64_t kNanosPerSecond = 1'000'000'000;

constexpr Unit kDurationUnits[] = {
    {"ns", 1},
    {"us", 1'000},
    {"\xC2\xB5s", 1'000},  // µs with MICRO SIGN
    {"\xCE\xBCs", 1'000},  // µs with GREEK SMALL LETTER MU
    {"ms", 1'000'000},
    {"s", kNanosPerSecond},
    {"m", 60 * kNanosPerSecond},
    {"h", 3600 * kNanosPerSecond},
    {"d", 86400 * kNanosPerSecond},
};
constexpr std::string_view kDurationUnitList = "use ns, us, ms, s, m, h or d";

constexpr Unit kSizeUnits[] = {
    {"", 1},
    {"B", 1},
    {"KB", 1'000},
    {"kB", 1'000},
    {"MB", 1'000'000},
    {"GB", 1'000'000'000},
    {"TB", 1'000'000'000'000},
    {"PB", 1'000'000'000'000'000},
    {"KiB", uint64_t{1} << 10},
    {"MiB", uint64_t{1} << 20},
    {"GiB", uint64_t{1} << 30},
    {"TiB", uint64_t{1} << 40},
    {"PiB", uint64_t{1} << 50},
};
constexpr std::string_view kSizeUnitList = "use B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

const Unit* FindUnit(std::string_view name, const Unit* begin, const Unit* end) {
  for (const Unit* u = begin; u != end; ++u) {
    if (u->name == name) return u;
  }
  return nullptr;
}

absl::Status DurationError(std::string_view text, std::string_view reason) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid duration ", Quoted(text), ": ", AsAbsl(reason)));
}

absl::Status SizeError(std::string_view text, std::string_view reason) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid size ", Quoted(text), ": ", AsAbsl(reason)));
}

}  // namespace

absl::StatusOr<std::chrono::nanoseconds> ParseDuration(std::string_view text) {
  if (text.empty()) return DurationError(text, "empty string");
  if (text == "0") return std::chrono::nanoseconds(0);
  if (text[0] == '-') return DurationError(text, "negative durations are not allowed");

  constexpr unsigned __int128 kMax = std::numeric_limits<int64_t>::max();
  const std::string too_large = "too large (the maximum is about 292 years)";
  unsigned __int128 total = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t i = 0;
    unsigned __int128 whole = 0;
    for (; i < rest.size() && IsDigit(rest[i]); ++i) {
      whole = whole * 10 + static_cast<unsigned>(rest[i] - '0');
      if (whole > kMax) return DurationError(text, too_large);
    }
    if (i == 0) return DurationError(text, absl::StrCat("expected a number at ", Quoted(rest)));

    // Digits past the 18th cannot change the result by a whole nanosecond, even in days.
    uint64_t frac = 0;
    uint64_t frac_scale = 1;
    if (i < rest.size() && rest[i] == '.') {
      const size_t start = ++i;
      for (; i < rest.size() && IsDigit(rest[i]); ++i) {
        if (i - start < 18) {
          frac = frac * 10 + static_cast<uint64_t>(rest[i] - '0');
          frac_scale *= 10;
        }
      }
      if (i == start) return DurationError(text, "expected digits after the decimal point");
    }
    const std::string_view number = rest.substr(0, i);

    const size_t unit_start = i;
    while (i < rest.size() && !IsDigit(rest[i]) && rest[i] != '.') ++i;
    const std::string_view unit_name = rest.substr(unit_start, i - unit_start);
    if (unit_name.empty()) {
      return DurationError(text, absl::StrCat("missing unit after ", AsAbsl(number), " (",
                                              AsAbsl(kDurationUnitList), ")"));
    }
    const Unit* unit = FindUnit(unit_name, std::begin(kDurationUnits), std::end(kDurationUnits));
    if (unit == nullptr) {
      return DurationError(text, absl::StrCat("unknown unit ", Quoted(unit_name), " (",
                                              AsAbsl(kDurationUnitList), ")"));
    }
    total +=
        whole * unit->factor + static_cast<unsigned __int128>(frac) * unit->factor / frac_scale;
    if (total > kMax) return DurationError(text, too_large);
    rest.remove_prefix(i);
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(total));
}

std::string FormatDuration(std::chrono::nanoseconds d) {
  if (d.count() == 0) return "0s";
  std::string out;
  // Negating through uint64_t keeps INT64_MIN well-defined.
  uint64_t left = static_cast<uint64_t>(d.count());
  if (d.count() < 0) {
    out.push_back('-');
    left = ~left + 1;
  }
  static constexpr Unit kTerms[] = {
      {"d", 86400 * kNanosPerSecond},
      {"h", 3600 * kNanosPerSecond},
      {"m", 60 * kNanosPerSecond},
      {"s", kNanosPerSecond},
      {"ms", 1'000'000},
      {"us", 1'000},
      {"ns", 1},
  };
  for (const Unit& term : kTerms) {
    if (left >= term.factor) {
      absl::StrAppend(&out, left / term.factor, AsAbsl(term.name));
      left %= term.factor;
    }
  }
  return out;
}

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  if (text.empty()) return SizeError(text, "empty string");
  if (text[0] == '-') return SizeError(text, "negative sizes are not allowed");
  const std::string too_large = "too large (the maximum is 2^64-1 bytes)";

  size_t i = 0;
  uint64_t value = 0;
  for (; i < text.size() && IsDigit(text[i]); ++i) {
    if (__builtin_mul_overflow(value, uint64_t{10}, &value) ||
        __builtin_add_overflow(value, static_cast<uint64_t>(text[i] - '0'), &value)) {
      return SizeError(text, too_large);
    }
  }
  if (i == 0) return SizeError(text, "expected a number of bytes");
  std::string_view unit_name = text.substr(i);
  if (!unit_name.empty() && unit_name[0] == ' ') {
    unit_name.remove_prefix(1);
    if (unit_name.empty()) return SizeError(text, "expected a unit after the space");
  }
  const Unit* unit = FindUnit(unit_name, std::begin(kSizeUnits), std::end(kSizeUnits));
  if (unit == nullptr) {
    return SizeError(
        text, absl::StrCat("unknown unit ", Quoted(unit_name), " (", AsAbsl(kSizeUnitList), ")"));
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(value, unit->factor, &bytes)) return SizeError(text, too_large);
  return bytes;
}

}  // namespace tessera
