#include "common/logging.h"

#include <fcntl.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::logging {
namespace {

using ::testing::ElementsAre;
using ::testing::MatchesRegex;

std::vector<nlohmann::json> ParseLines(const std::string& text) {
  std::vector<nlohmann::json> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << "not a JSON object: " << line;
    out.push_back(std::move(j));
  }
  return out;
}

TEST(LoggingTest, ParsesLevels) {
  EXPECT_EQ(*ParseLevel("trace"), Level::kTrace);
  EXPECT_EQ(*ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("INFO"), Level::kInfo);
  EXPECT_EQ(*ParseLevel("warn"), Level::kWarn);
  EXPECT_EQ(*ParseLevel("Warning"), Level::kWarn);
  EXPECT_EQ(*ParseLevel("error"), Level::kError);
  const absl::StatusOr<Level> bad = ParseLevel("verbose");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(bad.status().message()),
            R"(unknown log level "verbose" (use trace, debug, info, warn or error))");
  EXPECT_FALSE(ParseLevel("").ok());
  EXPECT_EQ(LevelName(Level::kWarn), "warn");
  EXPECT_EQ(LevelName(Level::kError), "error");
}

TEST(LoggingTest, ParsesFormats) {
  EXPECT_EQ(*ParseFormat("auto"), Format::kAuto);
  EXPECT_EQ(*ParseFormat("text"), Format::kText);
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  EXPECT_EQ(*ParseFormat("journald"), Format::kJournald);
  const absl::StatusOr<Format> bad = ParseFormat("xml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(std::string(bad.status().message()),
            R"(unknown log format "xml" (use auto, text, json or journald))");
}

TEST(JsonFormatterTest, FormatsOneExactLine) {
  const auto time = std::chrono::system_clock::from_time_t(1'894'604'400) +
                    std::chrono::milliseconds(123);  // 2030-01-14T07:00:00.123Z
  spdlog::details::log_msg msg(time, spdlog::source_loc{"/src/agent/workload.cc", 42, "Fetch"},
                               "tessera-agent", spdlog::level::warn, "fetch \"x\"\n");
  spdlog::memory_buf_t buffer;
  NewJsonFormatter()->format(msg, buffer);
  EXPECT_EQ(std::string(buffer.data(), buffer.size()),
            R"({"time":"2030-01-14T07:00:00.123Z","level":"warn","logger":"tessera-agent",)"
            R"("msg":"fetch \"x\"\n","src":"workload.cc:42"})"
            "\n");

  // No logger name, no source location: those fields are left out.
  spdlog::details::log_msg bare(time, spdlog::source_loc{}, "", spdlog::level::err, "boom");
  buffer.clear();
  NewJsonFormatter()->clone()->format(bare, buffer);
  EXPECT_EQ(std::string(buffer.data(), buffer.size()),
            R"({"time":"2030-01-14T07:00:00.123Z","level":"error","msg":"boom"})"
            "\n");
}

TEST(JsonFormatterTest, EveryLineIsValidJsonWhateverTheMessage) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_formatter(NewJsonFormatter());
  spdlog::logger logger("tessera-test", sink);
  logger.set_level(spdlog::level::trace);

  const std::vector<std::string> messages = {
      "plain",
      "quotes \" and backslash \\ and braces {}",
      "multi\nline\r\nmessage\twith tab",
      std::string("control \x01\x02\x1b[31m and NUL \0 inside", 32),
      "invalid utf-8 \xFF\xFE and truncated \xE2\x82",
      "valid utf-8 caf\xC3\xA9 \xF0\x9F\x94\x91",
  };
  for (const std::string& m : messages) logger.info("{}", m);
  logger.trace("t");
  logger.debug("d");
  logger.warn("w");
  logger.error("e");
  logger.critical("c");
  SPDLOG_LOGGER_INFO(&logger, "with source");

  const std::vector<nlohmann::json> lines = ParseLines(out.str());
  ASSERT_EQ(lines.size(), messages.size() + 6) << out.str();
  for (size_t i = 0; i < messages.size(); ++i) {
    EXPECT_EQ(lines[i]["level"], "info");
    EXPECT_EQ(lines[i]["logger"], "tessera-test");
    EXPECT_THAT(
        lines[i]["time"].get<std::string>(),
        MatchesRegex(R"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)"));
    EXPECT_FALSE(lines[i].contains("src"));
  }
  // Text that was valid UTF-8 comes back byte for byte.
  EXPECT_EQ(lines[0]["msg"], messages[0]);
  EXPECT_EQ(lines[1]["msg"], messages[1]);
  EXPECT_EQ(lines[2]["msg"], messages[2]);
  EXPECT_EQ(lines[3]["msg"], messages[3]);
  EXPECT_EQ(lines[4]["msg"],
            "invalid utf-8 \xEF\xBF\xBD\xEF\xBF\xBD and truncated \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(lines[5]["msg"], messages[5]);

  std::vector<std::string> levels;
  for (size_t i = messages.size(); i < lines.size(); ++i) levels.push_back(lines[i]["level"]);
  EXPECT_THAT(levels, ElementsAre("trace", "debug", "warn", "error", "critical", "info"));
  EXPECT_THAT(lines.back()["src"].get<std::string>(), MatchesRegex(R"(logging_test\.cc:[0-9]+)"));
}

TEST(ResolveAutoFormatTest, JournalStreamMustMatchTheDescriptor) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  struct stat st {};
  ASSERT_EQ(::fstat(write_end.get(), &st), 0);
  const std::string match = absl::StrCat(st.st_dev, ":", st.st_ino);

  EXPECT_EQ(ResolveAutoFormat(match.c_str(), write_end.get()), Format::kJournald);
  EXPECT_EQ(ResolveAutoFormat(nullptr, write_end.get()), Format::kJson);
  EXPECT_EQ(ResolveAutoFormat("", write_end.get()), Format::kJson);
  EXPECT_EQ(ResolveAutoFormat(absl::StrCat(st.st_dev, ":", st.st_ino + 1).c_str(), write_end.get()),
            Format::kJson);
  EXPECT_EQ(ResolveAutoFormat(absl::StrCat(st.st_dev + 1, ":", st.st_ino).c_str(), write_end.get()),
            Format::kJson);
  EXPECT_EQ(ResolveAutoFormat((match + ":1").c_str(), write_end.get()), Format::kJson);
  EXPECT_EQ(ResolveAutoFormat("garbage", write_end.get()), Format::kJson);
  // A closed descriptor is neither the journal nor a terminal.
  EXPECT_EQ(ResolveAutoFormat(match.c_str(), -1), Format::kJson);
}

TEST(ResolveAutoFormatTest, TerminalMeansText) {
  UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) GTEST_SKIP() << "no pseudo-terminals here";
  ASSERT_EQ(::grantpt(master.get()), 0);
  ASSERT_EQ(::unlockpt(master.get()), 0);
  char name[128];
  ASSERT_EQ(::ptsname_r(master.get(), name, sizeof(name)), 0);
  UniqueFd terminal(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(terminal.valid());
  EXPECT_EQ(ResolveAutoFormat(nullptr, terminal.get()), Format::kText);
}

TEST(NewLoggerTest, AppliesLevelAndName) {
  for (const char* format : {"text", "json", "journald"}) {
    absl::StatusOr<std::shared_ptr<spdlog::logger>> logger =
        NewLogger({.level = "debug", .format = format, .program = "tessera-x"});
    ASSERT_TRUE(logger.ok()) << format << ": " << logger.status();
    EXPECT_EQ((*logger)->level(), spdlog::level::debug);
    EXPECT_EQ((*logger)->name(), "tessera-x");
    EXPECT_EQ((*logger)->sinks().size(), 1u);
  }
}

// Points fd 2 at a pipe for the lifetime of the object.
class CapturedStderr {
 public:
  CapturedStderr() {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    read_end_.Reset(fds[0]);
    std::fflush(stderr);
    saved_.Reset(::dup(STDERR_FILENO));
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[1]);
  }
  ~CapturedStderr() { Restore(); }

  // Restores stderr and returns what was written to it.
  std::string Finish() {
    Restore();
    std::string out;
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(read_end_.get(), buffer, sizeof(buffer))) > 0) {
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  void Restore() {
    if (!saved_) return;
    std::fflush(stderr);
    ::dup2(saved_.get(), STDERR_FILENO);
    saved_.Reset();
  }
  UniqueFd read_end_;
  UniqueFd saved_;
};

TEST(InitTest, InstallsJsonLoggerOnStderr) {
  auto previous = spdlog::default_logger();
  CapturedStderr captured;
  ASSERT_TRUE(Init({.level = "warn", .format = "json", .program = "tessera-init-test"}).ok());
  spdlog::info("below the level");
  spdlog::warn("shown \"{}\"", "quoted");
  spdlog::error("line1\nline2");
  const std::string out = captured.Finish();
  spdlog::set_default_logger(previous);

  const std::vector<nlohmann::json> lines = ParseLines(out);
  ASSERT_EQ(lines.size(), 2u) << out;
  EXPECT_EQ(lines[0]["level"], "warn");
  EXPECT_EQ(lines[0]["msg"], "shown \"quoted\"");
  EXPECT_EQ(lines[0]["logger"], "tessera-init-test");
  EXPECT_EQ(lines[1]["level"], "error");
  EXPECT_EQ(lines[1]["msg"], "line1\nline2");
}

TEST(InitTest, BadOptionsChangeNothing) {
  auto before = spdlog::default_logger();
  const absl::Status bad_level = Init({.level = "loud", .format = "json", .program = "x"});
  EXPECT_EQ(bad_level.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(bad_level.message()),
            R"(unknown log level "loud" (use trace, debug, info, warn or error))");
  const absl::Status bad_format = Init({.level = "info", .format = "xml", .program = "x"});
  EXPECT_EQ(bad_format.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spdlog::default_logger(), before);
}

}  // namespace
}  // namespace tessera::logging
