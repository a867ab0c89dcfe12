// Process logging setup over spdlog. Code logs through spdlog's default logger
// (spdlog::info("k8s: list pods: {}", status)); Init, called once by each main() before any
// thread starts, decides where those lines go:
//
//   journald  under systemd (JOURNAL_STREAM names our stderr): native journal entries with
//             PRIORITY and SYSLOG_IDENTIFIER=<program>, so `journalctl -p warning` works
//   text      stderr is a terminal: "2030-01-15T08:00:00.123+01:00 info message", colored
//   json      otherwise (containers, pipes): one JSON object per line on stderr,
//             {"time":"2030-01-15T07:00:00.123Z","level":"info","logger":"tessera-agent",
//              "msg":"...","src":"file.cc:42"}, always valid JSON whatever the message holds
//
// State: the only process-wide state is spdlog's own registry, which holds the default logger
// Init installs (spdlog's registry is internally synchronized, so logging from any thread is
// safe). Init itself is not meant to race with logging; call it before starting threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace spdlog {
class formatter;
class logger;
}  // namespace spdlog

namespace tessera::logging {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError };
enum class Format { kAuto, kText, kJson, kJournald };

struct LogOptions {
  // trace, debug, info, warn (or warning), error; case-insensitive.
  std::string level = "info";
  // auto, text, json or journald.
  std::string format = "auto";
  // Logger name, JSON "logger" field and journald SYSLOG_IDENTIFIER ("tessera-agent").
  std::string program = "tessera";
};

absl::StatusOr<Level> ParseLevel(std::string_view text);
absl::StatusOr<Format> ParseFormat(std::string_view text);
std::string_view LevelName(Level level);

// What Format::kAuto means for a process whose log output goes to `fd` (stderr) with the
// JOURNAL_STREAM variable `journal_stream` (null when unset): kJournald when it is "<dev>:<ino>"
// of `fd` (systemd sets it for services whose output goes to the journal, and a child that
// redirected stderr no longer matches), else kText when `fd` is a terminal, else kJson.
Format ResolveAutoFormat(const char* journal_stream, int fd);

// Builds a logger as Init would (format auto resolved against stderr and the environment),
// without installing it. For tests and tools that want their own logger.
absl::StatusOr<std::shared_ptr<spdlog::logger>> NewLogger(const LogOptions& options);

// Validates `options`, builds the logger and makes it spdlog's default logger. On error nothing
// changes.
absl::Status Init(const LogOptions& options);

// The JSON-lines formatter used by format "json": fields time (RFC 3339, UTC, milliseconds),
// level (trace, debug, info, warn, error, critical), logger (the logger's name, when set), msg,
// and src ("file.cc:42", when the call site is known, as with SPDLOG_INFO).
std::unique_ptr<spdlog::formatter> NewJsonFormatter();

}  // namespace tessera::logging
