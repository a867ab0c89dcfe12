#include "common/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "tessera-files-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static mode_t Mode(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }

  fs::path dir_;
};

TEST_F(FilesTest, WriteFileAtomicallyCreatesAndReplacesWithMode) {
  fs::path p = dir_ / "key.pem";
  ASSERT_TRUE(WriteFileAtomically(p, "first", 0600).ok());
  EXPECT_EQ(*ReadFileToString(p), "first");
  EXPECT_EQ(Mode(p), 0600u);
  ASSERT_TRUE(WriteFileAtomically(p, "second, longer", 0644).ok());
  EXPECT_EQ(*ReadFileToString(p), "second, longer");
  EXPECT_EQ(Mode(p), 0644u);
  // No temporary file is left behind.
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1u);
}

TEST_F(FilesTest, WriteFileAtomicallyIgnoresUmask) {
  mode_t old = ::umask(0);
  ASSERT_TRUE(WriteFileAtomically(dir_ / "a", "x", 0600).ok());
  ::umask(old);
  EXPECT_EQ(Mode(dir_ / "a"), 0600u);
}

TEST_F(FilesTest, WriteFileAtomicallyFailsCleanlyInMissingDirectory) {
  absl::Status s = WriteFileAtomically(dir_ / "missing" / "f", "x", 0600);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("missing/f"));
}

TEST_F(FilesTest, MakePrivateDirectoryCreatesAndTightens) {
  fs::path d = dir_ / "state";
  ASSERT_TRUE(MakePrivateDirectory(d).ok());
  EXPECT_EQ(Mode(d), 0700u);
  ASSERT_EQ(::chmod(d.c_str(), 0755), 0);
  ASSERT_TRUE(MakePrivateDirectory(d).ok());
  EXPECT_EQ(Mode(d), 0700u);
}

TEST_F(FilesTest, MakePrivateDirectoryRefusesFilesAndSymlinks) {
  std::ofstream(dir_ / "file") << "x";
  EXPECT_EQ(MakePrivateDirectory(dir_ / "file").code(), absl::StatusCode::kFailedPrecondition);
  fs::create_directory(dir_ / "real");
  fs::create_directory_symlink(dir_ / "real", dir_ / "link");
  EXPECT_EQ(MakePrivateDirectory(dir_ / "link").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(FilesTest, ReadFileToStringLimitsAndErrors) {
  std::ofstream(dir_ / "big") << std::string(100, 'x');
  EXPECT_EQ(ReadFileToString(dir_ / "big", 100)->size(), 100u);
  EXPECT_EQ(ReadFileToString(dir_ / "big", 99).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadFileToString(dir_ / "none").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadFileToString(dir_).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera
