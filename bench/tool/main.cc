// tessera-bench: end-to-end benchmarks of Tessera on this machine (issue 7, bench/README.md).
// `tessera-bench --help` lists the scenarios, `tessera-bench <scenario> --help` their flags. Each
// run prints a table and writes a JSON report; nothing here judges a time.
//
// SIGINT and SIGTERM set a flag the scenarios poll, so they stop their processes and remove their
// temporary directories before exiting; a second signal ends the tool at once (child processes
// still die with it: they are started with PR_SET_PDEATHSIG).
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "bench/tool/report.h"
#include "bench/tool/scenario.h"
#include "spdlog/spdlog.h"

namespace tessera::bench {
namespace {

// The only global: a signal handler can reach nothing else.
std::atomic<bool> g_interrupted{false};

void OnSignal(int signal) {
  if (g_interrupted.exchange(true)) {
    ::signal(signal, SIG_DFL);
    ::raise(signal);
  }
}

void InstallSignalHandlers() {
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

struct Command {
  Scenario* scenario = nullptr;
  CLI::App* app = nullptr;
  CommonOptions common;
  std::string json_path;
};

int RunCommand(Command& command) {
  const std::string name(command.scenario->name());
  if (command.json_path.empty()) command.json_path = "bench-" + name + ".json";
  spdlog::set_level(command.common.verbose ? spdlog::level::info : spdlog::level::warn);
  const nlohmann::json machine = DescribeMachine();
  std::cerr << "tessera-bench " << name << (command.common.quick ? " (quick)" : "") << ": "
            << machine["nproc"] << " CPUs, " << machine["cpu_model"].get<std::string>() << ", load "
            << machine["load_average_at_start"].dump() << "\n";
  absl::StatusOr<ScenarioOutput> output = command.scenario->Run(command.common);
  if (!output.ok()) {
    std::cerr << "tessera-bench " << name << ": " << output.status().message() << "\n";
    return Interrupted() ? 130 : 1;
  }
  // With the JSON on stdout, the table goes to stderr so stdout stays one JSON document.
  PrintTable(output->table, command.json_path == "-" ? std::cerr : std::cout);
  if (absl::Status s = WriteJsonReport(name, machine, *output, command.json_path); !s.ok()) {
    std::cerr << "tessera-bench " << name << ": " << s.message() << "\n";
    return 1;
  }
  if (command.json_path != "-") std::cerr << "wrote " << command.json_path << "\n";
  return 0;
}

int Main(int argc, char** argv) {
  InstallSignalHandlers();
  std::vector<std::unique_ptr<Scenario>> scenarios = AllScenarios();
  CLI::App app(
      "tessera-bench: end-to-end benchmarks of tessera-server and tessera-agent on this machine.\n"
      "Each scenario prints a table and writes a JSON report (bench/README.md).");
  app.require_subcommand(1);
  std::vector<Command> commands(scenarios.size());
  for (size_t i = 0; i < scenarios.size(); ++i) {
    Command& command = commands[i];
    command.scenario = scenarios[i].get();
    command.app = app.add_subcommand(std::string(command.scenario->name()),
                                     std::string(command.scenario->description()));
    command.app->add_option("--json", command.json_path,
                            "write the JSON report to FILE ('-': stdout; default: "
                            "bench-<scenario>.json in the current directory)");
    command.app->add_flag("--quick", command.common.quick,
                          "small sizes and short durations (a smoke test, not a measurement)");
    command.app->add_flag("--verbose", command.common.verbose, "log at info level");
    command.scenario->AddFlags(*command.app);
  }
  CLI11_PARSE(app, argc, argv);
  for (Command& command : commands) {
    if (command.app->parsed()) return RunCommand(command);
  }
  return 1;
}

}  // namespace

bool Interrupted() { return g_interrupted.load(); }

absl::Status CheckInterrupted() {
  return Interrupted() ? absl::CancelledError("interrupted") : absl::OkStatus();
}

bool SleepUnlessInterrupted(std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (!Interrupted()) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::milliseconds::zero()) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(20)));
  }
  return false;
}

}  // namespace tessera::bench

int main(int argc, char** argv) { return tessera::bench::Main(argc, argv); }
