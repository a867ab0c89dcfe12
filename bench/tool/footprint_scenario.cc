// Scenario `footprint`: memory of the real tessera-server and tessera-agent processes, started as
// an operator would (tests/e2e/lib.sh): a server config, the bundle from `tessera-server bundle
// show`, a join token from `tessera-server token generate`, then `tessera-agent run`.
//
// Measured: VmRSS (/proc/<pid>/status) and PSS (/proc/<pid>/smaps_rollup) of each, once the agent
// is idle after its first sync, then with N cached X509-SVIDs for each N of --svids: entries for
// the agent's node whose selectors no local process has (unix:uid:<100000+i>), so the agent mints
// and holds their SVIDs without serving them. Optionally the server alone with --entries entries
// (the rest parented to nodes that do not exist).
//
// When a state is reached: the agent's first sync is its READY=1 on NOTIFY_SOCKET (sent after
// the cache has synced); N SVIDs are held once the agent's "agent: minted <k> X509-SVIDs" log
// lines (one per successful batch) add up to N. Then RSS is sampled every 200 ms until it stays
// within 2% over --settle seconds (or 30 s pass: "stable" says no) and the last sample is taken.
#include <algorithm>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/tool/admin_client.h"
#include "bench/tool/deployment.h"
#include "bench/tool/process.h"
#include "bench/tool/report.h"
#include "bench/tool/scenario.h"
#include "common/status.h"

namespace tessera::bench {
namespace {

constexpr int64_t kAgentIdleTargetKib = 15 * 1024;
constexpr int64_t kAgent1000TargetKib = 40 * 1024;

struct Sample {
  Memory memory;
  bool stable = false;
};

// Samples every 200 ms until the RSS of the last `settle` window varies by at most 2%.
absl::StatusOr<Sample> Settle(ChildProcess& process, std::chrono::milliseconds settle) {
  const size_t window = std::max<size_t>(2, settle.count() / 200 + 1);
  std::vector<int64_t> rss;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  Sample sample;
  while (true) {
    if (!process.Running()) return absl::AbortedError("process exited while being measured");
    ASSIGN_OR_RETURN(sample.memory, ReadMemory(process.pid()));
    rss.push_back(sample.memory.rss_kib);
    if (rss.size() >= window) {
      auto [lo, hi] = std::minmax_element(rss.end() - window, rss.end());
      if (*hi - *lo <= *hi / 50) {
        sample.stable = true;
        return sample;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) return sample;
    if (!SleepUnlessInterrupted(std::chrono::milliseconds(200))) return CheckInterrupted();
  }
}

class FootprintScenario final : public Scenario {
 public:
  std::string_view name() const override { return "footprint"; }
  std::string_view description() const override {
    return "RSS and PSS of real tessera-agent (idle, 100 and 1,000 SVIDs) and tessera-server";
  }

  void AddFlags(CLI::App& app) override {
    AddDaemonBinaryFlags(app, binaries_);
    app.add_option("--svids", svids_, "cached SVID counts to measure the agent at (ascending)")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--entries", entries_,
                   "then grow the server to this many entries (others' nodes) and measure it "
                   "again; 0: skip")
        ->capture_default_str();
    app.add_option("--settle", settle_seconds_, "seconds RSS must stay within 2% before a reading")
        ->capture_default_str();
  }

  absl::StatusOr<ScenarioOutput> Run(const CommonOptions& common) override {
    std::vector<int64_t> svids = svids_;
    int64_t entries = entries_;
    double settle_seconds = settle_seconds_;
    if (common.quick) {
      svids = {10, 50};
      entries = 0;
      settle_seconds = 0.5;
    }
    if (!std::is_sorted(svids.begin(), svids.end()) || (!svids.empty() && svids.front() <= 0)) {
      return absl::InvalidArgumentError("--svids: positive counts in ascending order");
    }
    const auto settle = std::chrono::milliseconds(static_cast<int64_t>(settle_seconds * 1000));
    out_ = ScenarioOutput();
    out_.parameters = {{"server_bin", binaries_.server},
                       {"agent_bin", binaries_.agent},
                       {"svids", svids},
                       {"entries", entries},
                       {"settle_seconds", settle_seconds}};
    out_.table.columns = {"process", "state",  "SVIDs",   "entries", "RSS MiB",
                          "PSS MiB", "target", "verdict", "stable"};

    ASSIGN_OR_RETURN(Deployment deployment, StartDeployment("tessera-bench-footprint", binaries_));
    std::unique_ptr<AgentDaemon>& agent_daemon = deployment.agent;
    std::unique_ptr<ServerDaemon>& server_daemon = deployment.server;
    ChildProcess& server = server_daemon->process();
    ChildProcess& agent = agent_daemon->process();
    const std::filesystem::path admin = server_daemon->admin_socket();

    int64_t held_entries = 1;  // the node alias `token generate --spiffe-id` created
    RETURN_IF_ERROR(Measure(agent, "agent", "idle after first sync", 0, held_entries, settle));
    RETURN_IF_ERROR(Measure(server, "server", "serving the agent", 0, held_entries, settle));
    int64_t created = 0;
    for (int64_t n : svids) {
      std::vector<EntrySpec> specs;
      for (; created < n; ++created) {
        specs.push_back({.spiffe_id = absl::StrCat("spiffe://example.org/bench/w", created),
                         .parent_id = kBenchNodeId,
                         .selectors = {absl::StrCat("unix:uid:", 100000 + created)}});
      }
      RETURN_IF_ERROR(CreateEntries(admin, specs).status());
      held_entries += static_cast<int64_t>(specs.size());
      RETURN_IF_ERROR(agent_daemon->WaitMinted(
          n, std::chrono::seconds(60) + n * std::chrono::milliseconds(50)));
      const std::string state = absl::StrCat(n, " SVIDs cached");
      RETURN_IF_ERROR(Measure(agent, "agent", state, n, held_entries, settle));
      RETURN_IF_ERROR(Measure(server, "server", "serving the agent", n, held_entries, settle));
    }
    if (entries > held_entries) {
      std::vector<EntrySpec> specs;
      for (int64_t i = held_entries; i < entries; ++i) {
        // 100 entries per absent node, like a fleet's worth of other agents.
        specs.push_back(
            {.spiffe_id = absl::StrCat("spiffe://example.org/bench/other/w", i),
             .parent_id = absl::StrCat("spiffe://example.org/bench/other-node-", i / 100),
             .selectors = {absl::StrCat("unix:uid:", 100000 + i)}});
      }
      std::cerr << "footprint: creating " << specs.size() << " more entries\n";
      RETURN_IF_ERROR(CreateEntries(admin, specs).status());
      held_entries = entries;
      RETURN_IF_ERROR(
          Measure(server, "server", "holding the entries", created, held_entries, settle));
    }
    // A daemon that does not exit cleanly on SIGTERM is worth knowing about, not a failure here.
    const int agent_exit = agent.Stop();
    const int server_exit = server.Stop();
    out_.parameters["agent_exit_status"] = agent_exit;
    out_.parameters["server_exit_status"] = server_exit;
    out_.table.notes = {
        "MiB = 1,048,576 bytes; targets (issue 7): agent < 15 MiB idle, < 40 MiB with 1,000 SVIDs "
        "(RSS)",
        "stable: RSS varied <= 2% over the settle window before the reading"};
    if (agent_exit != 0 || server_exit != 0) {
      out_.table.notes.push_back(
          absl::StrCat("exit status on SIGTERM: agent ", agent_exit, ", server ", server_exit));
    }
    if (TESSERA_BENCH_SANITIZE) {
      out_.table.notes.push_back("sanitizer build: memory is inflated, verdicts mean nothing");
    }
    return std::move(out_);
  }

 private:
  absl::Status Measure(ChildProcess& process, const std::string& who, const std::string& state,
                       int64_t svids, int64_t entries, std::chrono::milliseconds settle) {
    ASSIGN_OR_RETURN(Sample sample, Settle(process, settle),
                     Annotate(_, absl::StrCat("measure ", who)));
    int64_t target = 0;
    if (who == "agent" && svids == 0) target = kAgentIdleTargetKib;
    if (who == "agent" && svids == 1000) target = kAgent1000TargetKib;
    const bool met = sample.memory.rss_kib < target;
    out_.table.rows.push_back({who, state, std::to_string(svids), std::to_string(entries),
                               FormatMiB(sample.memory.rss_kib), FormatMiB(sample.memory.pss_kib),
                               target > 0 ? absl::StrCat("< ", target / 1024, " MiB") : "",
                               target > 0 ? (met ? "met" : "MISSED") : "",
                               sample.stable ? "yes" : "no"});
    out_.results.push_back({{"process", who},
                            {"state", state},
                            {"svids", svids},
                            {"entries", entries},
                            {"rss_kib", sample.memory.rss_kib},
                            {"pss_kib", sample.memory.pss_kib},
                            {"stable", sample.stable},
                            {"target_rss_kib", target > 0 ? nlohmann::json(target) : nullptr},
                            {"target_met", target > 0 ? nlohmann::json(met) : nullptr}});
    return absl::OkStatus();
  }

  DaemonBinaries binaries_;
  std::vector<int64_t> svids_ = {100, 1000};
  int64_t entries_ = 0;
  double settle_seconds_ = 2;
  ScenarioOutput out_;
};

}  // namespace

std::unique_ptr<Scenario> NewFootprintScenario() { return std::make_unique<FootprintScenario>(); }

}  // namespace tessera::bench
