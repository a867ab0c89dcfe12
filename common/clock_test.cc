#include "common/clock.h"

#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace tessera {
namespace {

using std::chrono::system_clock;

TEST(FakeClockTest, StartsAtAFixedTimeAndOnlyMovesWhenTold) {
  FakeClock clock;
  EXPECT_EQ(clock.Now(), system_clock::from_time_t(1'800'000'000));
  EXPECT_EQ(clock.Now(), clock.Now());

  clock.Advance(std::chrono::hours(1));
  EXPECT_EQ(clock.Now(), system_clock::from_time_t(1'800'003'600));
  clock.Advance(std::chrono::nanoseconds(1500));
  EXPECT_EQ(clock.Now() - system_clock::from_time_t(1'800'003'600),
            std::chrono::duration_cast<system_clock::duration>(std::chrono::nanoseconds(1500)));

  const auto t = system_clock::from_time_t(1'000);
  clock.Set(t);
  EXPECT_EQ(clock.Now(), t);

  FakeClock custom(t);
  EXPECT_EQ(custom.Now(), t);
}

TEST(FakeClockTest, WorksThroughTheInterface) {
  FakeClock fake;
  const Clock& clock = fake;
  const auto before = clock.Now();
  fake.Advance(std::chrono::seconds(30));
  EXPECT_EQ(clock.Now() - before, std::chrono::seconds(30));
}

TEST(FakeClockTest, ConcurrentAdvancesAreNotLost) {
  FakeClock clock;
  const auto start = clock.Now();
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 1000; ++j) {
        clock.Advance(std::chrono::seconds(1));
        (void)clock.Now();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(clock.Now() - start, std::chrono::seconds(4000));
}

TEST(RealClockTest, FollowsTheSystemClock) {
  const auto before = system_clock::now();
  const auto now = RealClock::Get().Now();
  const auto after = system_clock::now();
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
  EXPECT_EQ(&RealClock::Get(), &RealClock::Get());
}

}  // namespace
}  // namespace tessera
