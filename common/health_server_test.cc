// HealthServer over real HTTP on 127.0.0.1: status codes and bodies follow the checks as they
// change, unknown paths are 404, an occupied port is a clear error, and destruction stops it.
#include "common/health_server.h"

#include <atomic>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

using ::testing::HasSubstr;

TEST(HealthServerTest, AnswersFromTheChecks) {
  std::atomic<bool> ready = false;
  auto server = HealthServer::Start(
      HealthOptions{
          .bind_address = "127.0.0.1", .port = 0, .live_path = "/live", .ready_path = "/ready"},
      [] { return absl::OkStatus(); },
      [&] { return ready ? absl::OkStatus() : absl::UnavailableError("ca not initialized"); });
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  httplib::Client client("127.0.0.1", (*server)->port());

  auto live = client.Get("/live");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  EXPECT_EQ(nlohmann::json::parse(live->body)["status"], "ok");

  auto not_ready = client.Get("/ready");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  auto body = nlohmann::json::parse(not_ready->body);
  EXPECT_EQ(body["status"], "unavailable");
  EXPECT_EQ(body["reason"], "ca not initialized");

  ready = true;
  auto now_ready = client.Get("/ready");
  ASSERT_TRUE(now_ready);
  EXPECT_EQ(now_ready->status, 200);

  auto other = client.Get("/metrics");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
}

TEST(HealthServerTest, OccupiedPortIsAClearError) {
  auto ok = [] { return absl::OkStatus(); };
  auto first = HealthServer::Start(HealthOptions{.port = 0}, ok, ok);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = HealthServer::Start(HealthOptions{.port = (*first)->port()}, ok, ok);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("cannot listen on 127.0.0.1:" + std::to_string((*first)->port())));
}

TEST(HealthServerTest, StopsWhenDestroyed) {
  auto ok = [] { return absl::OkStatus(); };
  auto server = HealthServer::Start(HealthOptions{.port = 0}, ok, ok);
  ASSERT_TRUE(server.ok());
  uint16_t port = (*server)->port();
  server->reset();
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1, 0);
  EXPECT_FALSE(client.Get("/live"));
}

}  // namespace
}  // namespace tessera
