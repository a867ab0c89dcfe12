#include "common/unique_fd.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <utility>

#include "gtest/gtest.h"

namespace tessera {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }
bool IsClosed(int fd) { return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF; }

int OpenDevNull() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

TEST(UniqueFdTest, DefaultIsInvalid) {
  UniqueFd fd;
  EXPECT_FALSE(fd.valid());
  EXPECT_FALSE(fd);
  EXPECT_EQ(fd.get(), -1);
}

TEST(UniqueFdTest, ClosesOnDestruction) {
  const int raw = OpenDevNull();
  ASSERT_GE(raw, 0);
  {
    UniqueFd fd(raw);
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(fd.get(), raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_TRUE(IsClosed(raw));
}

TEST(UniqueFdTest, MoveTransfersOwnership) {
  const int raw = OpenDevNull();
  ASSERT_GE(raw, 0);
  UniqueFd a(raw);
  UniqueFd b(std::move(a));
  // The moved-from state is part of UniqueFd's contract.
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_EQ(b.get(), raw);
  EXPECT_TRUE(IsOpen(raw));

  // Move-assigning over an owner closes what it held.
  const int other = OpenDevNull();
  ASSERT_GE(other, 0);
  UniqueFd c(other);
  c = std::move(b);
  EXPECT_TRUE(IsClosed(other));
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(IsOpen(raw));

  // Self-move keeps the descriptor.
  UniqueFd& alias = c;
  c = std::move(alias);
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(IsOpen(raw));

  c = UniqueFd();
  EXPECT_TRUE(IsClosed(raw));
}

TEST(UniqueFdTest, ReleaseGivesUpOwnershipWithoutClosing) {
  const int raw = OpenDevNull();
  ASSERT_GE(raw, 0);
  {
    UniqueFd fd(raw);
    EXPECT_EQ(fd.Release(), raw);
    EXPECT_FALSE(fd.valid());
  }
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
}

TEST(UniqueFdTest, ResetClosesTheOldDescriptor) {
  const int first = OpenDevNull();
  const int second = OpenDevNull();
  ASSERT_GE(first, 0);
  ASSERT_GE(second, 0);
  UniqueFd fd(first);
  fd.Reset(second);
  EXPECT_TRUE(IsClosed(first));
  EXPECT_EQ(fd.get(), second);
  // Resetting to the descriptor already held must not close it.
  fd.Reset(second);
  EXPECT_TRUE(IsOpen(second));
  fd.Reset();
  EXPECT_TRUE(IsClosed(second));
  EXPECT_FALSE(fd.valid());
}

}  // namespace
}  // namespace tessera
