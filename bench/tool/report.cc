// Machine description, tables and the JSON report of tessera-bench.
#include "bench/tool/report.h"

#include <openssl/crypto.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace tessera::bench {
namespace {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    // x86: "model name"; some arm64 kernels only give "Hardware" or nothing at all.
    if (line.rfind("model name", 0) == 0 || line.rfind("Hardware", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      }
    }
  }
  return "unknown";
}

nlohmann::json LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double one = 0, five = 0, fifteen = 0;
  if (!(in >> one >> five >> fifteen)) return nullptr;
  return nlohmann::json::array({one, five, fifteen});
}

// A number as the scenarios format them: digits with an optional sign, point or separators.
bool LooksNumeric(const std::string& cell) {
  bool digit = false;
  for (char c : cell) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digit = true;
    } else if (c != '-' && c != '.' && c != ',') {
      return false;
    }
  }
  return digit;
}

}  // namespace

nlohmann::json DescribeMachine() {
  nlohmann::json machine;
  machine["nproc"] = sysconf(_SC_NPROCESSORS_ONLN);
  machine["cpu_model"] = CpuModel();
  struct utsname uts {};
  if (uname(&uts) == 0) {
    machine["kernel"] = absl::StrCat(uts.sysname, " ", uts.release, " ", uts.machine);
  }
  machine["load_average_at_start"] = LoadAverage();
  machine["openssl"] = OpenSSL_version(OPENSSL_VERSION);
  machine["build_type"] = TESSERA_BENCH_BUILD_TYPE;
  machine["sanitizers"] = TESSERA_BENCH_SANITIZE != 0;
  machine["time"] = absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone());
  return machine;
}

void PrintTable(const Table& table, std::ostream& out) {
  std::vector<size_t> widths(table.columns.size(), 0);
  for (size_t i = 0; i < table.columns.size(); ++i) widths[i] = table.columns[i].size();
  for (const auto& row : table.rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& row, bool header) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      const std::string pad(widths[i] - std::min(widths[i], cell.size()), ' ');
      if (i > 0) line += "  ";
      line += (!header && LooksNumeric(cell)) ? pad + cell : cell + pad;
    }
    out << std::string(absl::StripTrailingAsciiWhitespace(line)) << "\n";
  };
  print_row(table.columns, /*header=*/true);
  std::vector<std::string> rule;
  for (size_t w : widths) rule.push_back(std::string(w, '-'));
  print_row(rule, /*header=*/true);
  for (const auto& row : table.rows) print_row(row, /*header=*/false);
  for (const std::string& note : table.notes) out << note << "\n";
  out.flush();
}

absl::Status WriteJsonReport(std::string_view scenario, const nlohmann::json& machine,
                             const ScenarioOutput& output, const std::string& path) {
  nlohmann::json report;
  report["scenario"] = scenario;
  report["machine"] = machine;
  report["parameters"] = output.parameters;
  report["results"] = output.results;
  const std::string text = report.dump(2) + "\n";
  if (path == "-") {
    std::cout << text << std::flush;
    return std::cout ? absl::OkStatus() : absl::InternalError("write JSON report to stdout");
  }
  std::ofstream file(path, std::ios::trunc);
  file << text;
  file.close();
  if (!file) return absl::InternalError(absl::StrCat("write JSON report ", path));
  return absl::OkStatus();
}

std::string FormatFixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  return buf;
}

std::string FormatMiB(int64_t kib) { return FormatFixed(static_cast<double>(kib) / 1024.0, 1); }

namespace {

// Nearest rank in sorted, non-empty values.
double AtQuantile(const std::vector<double>& sorted, double p) {
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return AtQuantile(values, p);
}

nlohmann::json LatencySummary::ToJson() const {
  return {{"count", count}, {"p50_ms", p50}, {"p99_ms", p99}, {"p99_9_ms", p999}, {"max_ms", max}};
}

LatencySummary SummarizeLatencies(std::vector<double> ms) {
  LatencySummary out;
  out.count = ms.size();
  if (ms.empty()) return out;
  std::sort(ms.begin(), ms.end());
  out.p50 = AtQuantile(ms, 0.5);
  out.p99 = AtQuantile(ms, 0.99);
  out.p999 = AtQuantile(ms, 0.999);
  out.max = ms.back();
  return out;
}

}  // namespace tessera::bench
