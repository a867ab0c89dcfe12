#include "common/logging.h"

#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/text.h"

namespace tessera::logging {
namespace {

std::string_view ToStd(spdlog::string_view_t s) { return {s.data(), s.size()}; }

spdlog::level::level_enum ToSpdlog(Level level) {
  switch (level) {
    case Level::kTrace:
      return spdlog::level::trace;
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::string_view JsonLevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

// "2030-01-15T07:00:00.123Z".
void AppendRfc3339Millis(std::chrono::system_clock::time_point t, std::string* out) {
  const auto since_epoch = t.time_since_epoch();
  const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  const std::time_t tt = static_cast<std::time_t>(seconds.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buffer[40];
  const int n = std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(millis.count()));
  if (n > 0) out->append(buffer, std::min(static_cast<size_t>(n), sizeof(buffer) - 1));
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line;
    line.reserve(96 + msg.payload.size());
    line.append("{\"time\":\"");
    AppendRfc3339Millis(msg.time, &line);
    line.append("\",\"level\":\"");
    line.append(JsonLevelName(msg.level));
    line.push_back('"');
    if (msg.logger_name.size() > 0) {
      line.append(",\"logger\":");
      AppendJsonString(ToStd(msg.logger_name), &line);
    }
    line.append(",\"msg\":");
    AppendJsonString(ToStd(msg.payload), &line);
    if (!msg.source.empty()) {
      std::string_view file = msg.source.filename;
      if (const size_t slash = file.rfind('/'); slash != std::string_view::npos) {
        file.remove_prefix(slash + 1);
      }
      line.append(",\"src\":");
      AppendJsonString(absl::StrCat(AsAbsl(file), ":", msg.source.line), &line);
    }
    line.append("}\n");
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

absl::StatusOr<Level> ParseLevel(std::string_view text) {
  const std::string lower = absl::AsciiStrToLower(AsAbsl(text));
  if (lower == "trace") return Level::kTrace;
  if (lower == "debug") return Level::kDebug;
  if (lower == "info") return Level::kInfo;
  if (lower == "warn" || lower == "warning") return Level::kWarn;
  if (lower == "error") return Level::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level ", Quoted(text), " (use trace, debug, info, warn or error)"));
}

absl::StatusOr<Format> ParseFormat(std::string_view text) {
  if (text == "auto") return Format::kAuto;
  if (text == "text") return Format::kText;
  if (text == "json") return Format::kJson;
  if (text == "journald") return Format::kJournald;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log format ", Quoted(text), " (use auto, text, json or journald)"));
}

std::string_view LevelName(Level level) { return JsonLevelName(ToSpdlog(level)); }

Format ResolveAutoFormat(const char* journal_stream, int fd) {
  struct stat st {};
  const bool have_stat = ::fstat(fd, &st) == 0;
  if (journal_stream != nullptr && have_stat) {
    const std::vector<absl::string_view> parts = absl::StrSplit(journal_stream, ':');
    uint64_t dev = 0;
    uint64_t ino = 0;
    if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &dev) && absl::SimpleAtoi(parts[1], &ino) &&
        dev == static_cast<uint64_t>(st.st_dev) && ino == static_cast<uint64_t>(st.st_ino)) {
      return Format::kJournald;
    }
  }
  if (::isatty(fd) == 1) return Format::kText;
  return Format::kJson;
}

std::unique_ptr<spdlog::formatter> NewJsonFormatter() { return std::make_unique<JsonFormatter>(); }

absl::StatusOr<std::shared_ptr<spdlog::logger>> NewLogger(const LogOptions& options) {
  ASSIGN_OR_RETURN(const Level level, ParseLevel(options.level));
  ASSIGN_OR_RETURN(Format format, ParseFormat(options.format));
  if (format == Format::kAuto) {
    // Loggers are built at startup, before threads that could call setenv exist.
    format = ResolveAutoFormat(std::getenv("JOURNAL_STREAM"),  // NOLINT(concurrency-mt-unsafe)
                               STDERR_FILENO);
  }

  spdlog::sink_ptr sink;
  switch (format) {
    case Format::kJournald:
      // The journal stamps time, priority and identifier itself: send the bare message.
      sink = std::make_shared<spdlog::sinks::systemd_sink_mt>(options.program,
                                                              /*enable_formatting=*/false);
      break;
    case Format::kText:
      sink =
          std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>(spdlog::color_mode::automatic);
      sink->set_formatter(
          std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v"));
      break;
    case Format::kJson:
    case Format::kAuto:
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
      sink->set_formatter(NewJsonFormatter());
      break;
  }
  auto logger = std::make_shared<spdlog::logger>(options.program, std::move(sink));
  logger->set_level(ToSpdlog(level));
  return logger;
}

absl::Status Init(const LogOptions& options) {
  ASSIGN_OR_RETURN(std::shared_ptr<spdlog::logger> logger, NewLogger(options));
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

}  // namespace tessera::logging
