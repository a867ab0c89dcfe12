// Output of tessera-bench: the machine description every report carries, aligned tables, the
// JSON report, and number formatting shared by the scenarios.
//
// Stateless functions; safe to call from any thread.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

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

// "1234.5" style helpers for table cells.
std::string FormatFixed(double value, int decimals);
// Kibibytes as "12.3 MiB".
std::string FormatMiB(int64_t kib);

}  // namespace tessera::bench
