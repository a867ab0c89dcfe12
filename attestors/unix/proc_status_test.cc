#include "attestors/unix/proc_status.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::attestors::unix {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using namespace std::string_literals;

// The shape of a real status file (Linux 6.1), trimmed.
constexpr char kStatus[] =
    "Name:\tnginx\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t4242\n"
    "Pid:\t4242\n"
    "PPid:\t1\n"
    "Uid:\t1000\t1100\t1200\t1300\n"
    "Gid:\t2000\t2100\t2200\t2300\n"
    "FDSize:\t64\n"
    "Groups:\t4 24 27 2000 \n"
    "NStgid:\t4242\n"
    "VmPeak:\t   10000 kB\n";

TEST(ParseProcStatusTest, ReadsRealLayout) {
  absl::StatusOr<ProcCredentials> creds = ParseProcStatus(kStatus);
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_THAT(creds->uids, ElementsAre(1000, 1100, 1200, 1300));
  EXPECT_THAT(creds->gids, ElementsAre(2000, 2100, 2200, 2300));
  EXPECT_THAT(creds->groups, ElementsAre(4, 24, 27, 2000));
  EXPECT_EQ(creds->EffectiveUid(), 1100u);
  EXPECT_EQ(creds->EffectiveGid(), 2100u);
}

TEST(ParseProcStatusTest, SingleIdIsBothRealAndEffective) {
  absl::StatusOr<ProcCredentials> creds = ParseProcStatus("Uid: 7\nGid: 8");
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ(creds->EffectiveUid(), 7u);
  EXPECT_EQ(creds->EffectiveGid(), 8u);
  EXPECT_THAT(creds->groups, IsEmpty());
}

TEST(ParseProcStatusTest, EmptyOrMissingGroupsLineMeansNone) {
  absl::StatusOr<ProcCredentials> creds = ParseProcStatus("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n");
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_THAT(creds->groups, IsEmpty());
  creds = ParseProcStatus("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n");
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_THAT(creds->groups, IsEmpty());
}

TEST(ParseProcStatusTest, AcceptsFullIdRange) {
  absl::StatusOr<ProcCredentials> creds =
      ParseProcStatus("Uid:\t4294967295\nGid:\t0\nGroups:\t4294967294\n");
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ(creds->EffectiveUid(), 4294967295u);
  EXPECT_THAT(creds->groups, ElementsAre(4294967294u));
}

TEST(ParseProcStatusTest, IgnoresLookalikeKeys) {
  // Keys match exactly: "uid", " Uid" and "Uidx" are other lines.
  absl::StatusOr<ProcCredentials> creds =
      ParseProcStatus("uid:\tx\n Uid:\ty\nUidx:\tz\nUid:\t5\nGid:\t6\nNoColonHere\n\n");
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ(creds->EffectiveUid(), 5u);
}

struct BadStatus {
  std::string text;
  std::string error;
};

class ParseProcStatusBadTest : public ::testing::TestWithParam<BadStatus> {};

TEST_P(ParseProcStatusBadTest, Rejects) {
  absl::StatusOr<ProcCredentials> creds = ParseProcStatus(GetParam().text);
  ASSERT_FALSE(creds.ok()) << "accepted: " << GetParam().text;
  EXPECT_EQ(creds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(creds.status().message()), HasSubstr(GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(
    Garbled, ParseProcStatusBadTest,
    ::testing::Values(
        BadStatus{"", "no Uid line"}, BadStatus{"Name:\tx\n", "no Uid line"},
        BadStatus{"Uid:\t1\n", "no Gid line"}, BadStatus{"Gid:\t1\n", "no Uid line"},
        BadStatus{"Uid:\t\nGid:\t1\n", "Uid line has no ids"},
        BadStatus{"Uid:\t1\nGid:\n", "Gid line has no ids"},
        BadStatus{"Uid:\t1 2 3 4 5\nGid:\t1\n", "Uid line has 5 ids (at most 4)"},
        BadStatus{"Uid:\tabc\nGid:\t1\n", "Uid line: invalid id \"abc\""},
        BadStatus{"Uid:\t-1\nGid:\t1\n", "Uid line: invalid id \"-1\""},
        BadStatus{"Uid:\t+1\nGid:\t1\n", "Uid line: invalid id \"+1\""},
        BadStatus{"Uid:\t0x10\nGid:\t1\n", "invalid id \"0x10\""},
        BadStatus{"Uid:\t1\nGid:\t4294967296\n", "Gid line: id \"4294967296\" is out"},
        BadStatus{"Uid:\t1\nGid:\t99999999999\n", "Gid line: invalid id"},
        BadStatus{"Uid:\t1\nGid:\t1\nGroups:\t1 two 3\n", "Groups line: invalid id \"two\""},
        BadStatus{"Uid:\t1\0\nGid:\t1\n"s, "Uid line: invalid id"},
        BadStatus{"Uid:\t1\r\nGid:\t1\n", "Uid line: invalid id \"1\\r\""},
        BadStatus{"Uid:\t1\nUid:\t0\nGid:\t1\n", "repeated Uid line"},
        BadStatus{"Uid:\t1\nGid:\t1\nGid:\t1\n", "repeated Gid line"},
        BadStatus{"Uid:\t1\nGid:\t1\nGroups:\nGroups:\t0\n", "repeated Groups line"}));

}  // namespace
}  // namespace tessera::attestors::unix
