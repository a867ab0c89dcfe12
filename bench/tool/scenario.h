// The scenario interface of tessera-bench: each scenario is one file that implements Scenario and
// is added to the list in scenarios.cc (explicit registration, no static initializers). main.cc
// gives each one a subcommand with the common flags, runs it, prints its table and writes its
// JSON report (report.h).
//
// Not thread-safe: the tool runs one scenario on the main thread. Interrupted() is the one piece
// of shared state: set by the SIGINT/SIGTERM handler, read by every wait loop, so that a scenario
// returns (and its destructors stop processes and remove temporary directories) on Ctrl-C.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace CLI {
class App;
}  // namespace CLI

namespace tessera::bench {

// Flags every scenario accepts.
struct CommonOptions {
  // Small sizes and short durations: checks the scenario works (CTest smoke test), measures
  // nothing worth keeping.
  bool quick = false;
  // Log the in-process server's and the tool's own messages at info level instead of warn.
  bool verbose = false;
};

// A table printed with aligned columns: a header row and rows of the same width.
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  // Lines printed under the table (what a column means, why a verdict is n/a).
  std::vector<std::string> notes;
};

// What a scenario produced. `parameters` and `results` go to the JSON report as they are;
// `table` is for people.
struct ScenarioOutput {
  nlohmann::json parameters = nlohmann::json::object();
  nlohmann::json results = nlohmann::json::array();
  Table table;
};

class Scenario {
 public:
  virtual ~Scenario() = default;

  virtual std::string_view name() const = 0;
  // One line for `tessera-bench --help`.
  virtual std::string_view description() const = 0;
  // Adds the scenario's own flags to its subcommand; the storage lives in the scenario.
  virtual void AddFlags(CLI::App& app) = 0;
  // Runs the scenario once. An error means the scenario could not measure (a process did not
  // start, an RPC failed, a result was wrong); a missed target is not an error.
  virtual absl::StatusOr<ScenarioOutput> Run(const CommonOptions& common) = 0;
};

// Every scenario, in the order `--help` lists them (scenarios.cc).
std::vector<std::unique_ptr<Scenario>> AllScenarios();

std::unique_ptr<Scenario> NewSignScenario();
std::unique_ptr<Scenario> NewWorkloadScenario();
std::unique_ptr<Scenario> NewStreamsScenario();
std::unique_ptr<Scenario> NewPropagationScenario();
std::unique_ptr<Scenario> NewScaleScenario();
std::unique_ptr<Scenario> NewFootprintScenario();

// True once SIGINT or SIGTERM arrived.
bool Interrupted();
// Cancelled("interrupted") once Interrupted(), OK before.
absl::Status CheckInterrupted();
// Sleeps `duration` in short steps; returns early (false) when interrupted.
bool SleepUnlessInterrupted(std::chrono::milliseconds duration);

}  // namespace tessera::bench
