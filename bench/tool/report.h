// Output of tessera-bench: the machine description every report carries, aligned tables, the
// JSON report, and number formatting shared by the scenarios.
//
// Stateless functions; safe to call from any thread.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "bench/tool/scenario.h"
#include "nlohmann/json.hpp"

namespace tessera::bench {

// nproc, CPU model (/proc/cpuinfo), kernel (uname), load average (/proc/loadavg), OpenSSL
// version, this tool's build type, time. Read when called: call it at the start of a run.
nlohmann::json DescribeMachine();

// The table with every column as wide as its widest cell; numbers right-aligned, text
// left-aligned. Notes follow, one per line.
void PrintTable(const Table& table, std::ostream& out);

// {"scenario", "machine", "parameters", "results"} written to `path` ("-": stdout).
absl::Status WriteJsonReport(std::string_view scenario, const nlohmann::json& machine,
                             const ScenarioOutput& output, const std::string& path);

// The value at quantile `p` (0..1] of `values` by the nearest-rank method (p = 1: the maximum);
// 0 when empty.
double Percentile(std::vector<double> values, double p);

// A latency distribution in milliseconds.
struct LatencySummary {
  size_t count = 0;
  double p50 = 0;
  double p99 = 0;
  double p999 = 0;
  double max = 0;
  // {"count", "p50_ms", "p99_ms", "p99_9_ms", "max_ms"}
  nlohmann::json ToJson() const;
};
LatencySummary SummarizeLatencies(std::vector<double> ms);

// "1234.5" style helpers for table cells.
std::string FormatFixed(double value, int decimals);
// Kibibytes as "12.3 MiB".
std::string FormatMiB(int64_t kib);

}  // namespace tessera::bench
