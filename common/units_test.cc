#include "common/units.h"

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

struct DurationCase {
  std::string text;
  nanoseconds want;
};

void PrintTo(const DurationCase& c, std::ostream* os) { *os << '"' << c.text << '"'; }

class DurationValidTest : public ::testing::TestWithParam<DurationCase> {};

TEST_P(DurationValidTest, Parses) {
  absl::StatusOr<nanoseconds> got = ParseDuration(GetParam().text);
  ASSERT_TRUE(got.ok()) << GetParam().text << ": " << got.status();
  EXPECT_EQ(got->count(), GetParam().want.count()) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    Units, DurationValidTest,
    ::testing::Values(
        DurationCase{"0", nanoseconds(0)}, DurationCase{"0s", nanoseconds(0)},
        DurationCase{"1h", hours(1)}, DurationCase{"90s", seconds(90)},
        DurationCase{"5m", minutes(5)}, DurationCase{"1h30m", minutes(90)},
        DurationCase{"250ms", milliseconds(250)}, DurationCase{"2d", hours(48)},
        DurationCase{"1d12h", hours(36)}, DurationCase{"1.5h", minutes(90)},
        DurationCase{"0.5s", milliseconds(500)}, DurationCase{"10us", microseconds(10)},
        DurationCase{"10\xC2\xB5s", microseconds(10)},
        DurationCase{"10\xCE\xBCs", microseconds(10)}, DurationCase{"7ns", nanoseconds(7)},
        DurationCase{"1.0000000001s", nanoseconds(1'000'000'000)},
        DurationCase{"0.123456789123456789123s", nanoseconds(123'456'789)},
        DurationCase{"1m1m", minutes(2)}, DurationCase{"007s", seconds(7)},
        DurationCase{"9223372036854775807ns", nanoseconds(std::numeric_limits<int64_t>::max())},
        DurationCase{"106751d23h47m16.854775807s",
                     nanoseconds(std::numeric_limits<int64_t>::max())}));

struct BadCase {
  std::string text;
  std::string message;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << '"' << c.text << '"'; }

class DurationInvalidTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(DurationInvalidTest, FailsWithExactMessage) {
  absl::StatusOr<nanoseconds> got = ParseDuration(GetParam().text);
  ASSERT_FALSE(got.ok()) << GetParam().text << " parsed as " << got->count();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(got.status().message()), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Units, DurationInvalidTest,
    ::testing::Values(
        BadCase{"", R"(invalid duration "": empty string)"},
        BadCase{"-5m", R"(invalid duration "-5m": negative durations are not allowed)"},
        BadCase{"+5m", R"(invalid duration "+5m": expected a number at "+5m")"},
        BadCase{"24",
                R"(invalid duration "24": missing unit after 24 (use ns, us, ms, s, m, h or d))"},
        BadCase{"1h30",
                R"(invalid duration "1h30": missing unit after 30 (use ns, us, ms, s, m, h or d))"},
        BadCase{
            "24hours",
            R"(invalid duration "24hours": unknown unit "hours" (use ns, us, ms, s, m, h or d))"},
        BadCase{"1H", R"(invalid duration "1H": unknown unit "H" (use ns, us, ms, s, m, h or d))"},
        BadCase{"1w", R"(invalid duration "1w": unknown unit "w" (use ns, us, ms, s, m, h or d))"},
        BadCase{"1h 30m",
                R"(invalid duration "1h 30m": unknown unit "h " (use ns, us, ms, s, m, h or d))"},
        BadCase{" 1h", R"(invalid duration " 1h": expected a number at " 1h")"},
        BadCase{"h", R"(invalid duration "h": expected a number at "h")"},
        BadCase{".5h", R"(invalid duration ".5h": expected a number at ".5h")"},
        BadCase{"1.h", R"(invalid duration "1.h": expected digits after the decimal point)"},
        BadCase{"1e3s",
                R"(invalid duration "1e3s": unknown unit "e" (use ns, us, ms, s, m, h or d))"},
        BadCase{
            "9223372036854775808ns",
            R"(invalid duration "9223372036854775808ns": too large (the maximum is about 292 years))"},
        BadCase{"106752d",
                R"(invalid duration "106752d": too large (the maximum is about 292 years))"},
        BadCase{
            "106751d23h47m16.854775808s",
            R"(invalid duration "106751d23h47m16.854775808s": too large (the maximum is about 292 years))"},
        BadCase{
            "99999999999999999999999h",
            R"(invalid duration "99999999999999999999999h": too large (the maximum is about 292 years))"},
        BadCase{"1h\n",
                R"(invalid duration "1h\n": unknown unit "h\n" (use ns, us, ms, s, m, h or d))"}));

TEST(FormatDurationTest, Spellings) {
  EXPECT_EQ(FormatDuration(nanoseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(minutes(90)), "1h30m");
  EXPECT_EQ(FormatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(FormatDuration(hours(48)), "2d");
  EXPECT_EQ(FormatDuration(hours(25) + seconds(1) + nanoseconds(5)), "1d1h1s5ns");
  EXPECT_EQ(FormatDuration(-seconds(90)), "-1m30s");
  EXPECT_EQ(FormatDuration(nanoseconds(std::numeric_limits<int64_t>::max())),
            "106751d23h47m16s854ms775us807ns");
  EXPECT_EQ(FormatDuration(nanoseconds(std::numeric_limits<int64_t>::min())),
            "-106751d23h47m16s854ms775us808ns");
}

TEST(FormatDurationTest, RoundTripsThroughParse) {
  for (int64_t n : {int64_t{1}, int64_t{999}, int64_t{1'000'001}, int64_t{86'400'000'000'001},
                    int64_t{123'456'789'012'345}, std::numeric_limits<int64_t>::max()}) {
    absl::StatusOr<nanoseconds> back = ParseDuration(FormatDuration(nanoseconds(n)));
    ASSERT_TRUE(back.ok()) << n << ": " << back.status();
    EXPECT_EQ(back->count(), n);
  }
}

struct SizeCase {
  std::string text;
  uint64_t want;
};

void PrintTo(const SizeCase& c, std::ostream* os) { *os << '"' << c.text << '"'; }

class ByteSizeValidTest : public ::testing::TestWithParam<SizeCase> {};

TEST_P(ByteSizeValidTest, Parses) {
  absl::StatusOr<uint64_t> got = ParseByteSize(GetParam().text);
  ASSERT_TRUE(got.ok()) << GetParam().text << ": " << got.status();
  EXPECT_EQ(*got, GetParam().want) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    Units, ByteSizeValidTest,
    ::testing::Values(SizeCase{"0", 0}, SizeCase{"512", 512}, SizeCase{"512B", 512},
                      SizeCase{"10KB", 10'000}, SizeCase{"10kB", 10'000}, SizeCase{"10KiB", 10'240},
                      SizeCase{"5MB", 5'000'000}, SizeCase{"5MiB", uint64_t{5} << 20},
                      SizeCase{"5 MiB", uint64_t{5} << 20}, SizeCase{"1GiB", uint64_t{1} << 30},
                      SizeCase{"2GB", 2'000'000'000}, SizeCase{"3TiB", uint64_t{3} << 40},
                      SizeCase{"1PB", 1'000'000'000'000'000},
                      SizeCase{"16383PiB", uint64_t{16383} << 50},
                      SizeCase{"18446744073709551615", std::numeric_limits<uint64_t>::max()}));

class ByteSizeInvalidTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ByteSizeInvalidTest, FailsWithExactMessage) {
  absl::StatusOr<uint64_t> got = ParseByteSize(GetParam().text);
  ASSERT_FALSE(got.ok()) << GetParam().text << " parsed as " << *got;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(got.status().message()), GetParam().message);
}

constexpr char kSizeUnits[] = "(use B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB)";

INSTANTIATE_TEST_SUITE_P(
    Units, ByteSizeInvalidTest,
    ::testing::Values(
        BadCase{"", R"(invalid size "": empty string)"},
        BadCase{"-1", R"(invalid size "-1": negative sizes are not allowed)"},
        BadCase{"MiB", R"(invalid size "MiB": expected a number of bytes)"},
        BadCase{" 5", R"(invalid size " 5": expected a number of bytes)"},
        BadCase{"5 ", R"(invalid size "5 ": expected a unit after the space)"},
        BadCase{"5  MiB",
                std::string(R"(invalid size "5  MiB": unknown unit " MiB" )") + kSizeUnits},
        BadCase{"10XB", std::string(R"(invalid size "10XB": unknown unit "XB" )") + kSizeUnits},
        BadCase{"10mib", std::string(R"(invalid size "10mib": unknown unit "mib" )") + kSizeUnits},
        BadCase{"10K", std::string(R"(invalid size "10K": unknown unit "K" )") + kSizeUnits},
        BadCase{"1.5GiB",
                std::string(R"(invalid size "1.5GiB": unknown unit ".5GiB" )") + kSizeUnits},
        BadCase{"18446744073709551616",
                R"(invalid size "18446744073709551616": too large (the maximum is 2^64-1 bytes))"},
        BadCase{"16384PiB", R"(invalid size "16384PiB": too large (the maximum is 2^64-1 bytes))"},
        BadCase{"20000000TB",
                R"(invalid size "20000000TB": too large (the maximum is 2^64-1 bytes))"}));

}  // namespace
}  // namespace tessera
