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
#include <sys/stat.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/tool/admin_client.h"
#include "bench/tool/process.h"
#include "bench/tool/report.h"
#include "bench/tool/scenario.h"
#include "common/status.h"

namespace tessera::bench {
namespace {

constexpr char kNodeId[] = "spiffe://example.org/bench/node";
constexpr int64_t kAgentIdleTargetKib = 15 * 1024;
constexpr int64_t kAgent1000TargetKib = 40 * 1024;

absl::Status WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  return out ? absl::OkStatus() : absl::InternalError(absl::StrCat("write ", path.string()));
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Sum of the agent's "agent: minted <k> X509-SVIDs" log lines.
int64_t MintedSoFar(const std::filesystem::path& log) {
  static const std::regex kMinted("agent: minted ([0-9]+) X509-SVIDs");
  const std::string text = ReadFile(log);
  int64_t total = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kMinted);
       it != std::sregex_iterator(); ++it) {
    total += std::stoll((*it)[1].str());
  }
  return total;
}

std::string Tail(const std::filesystem::path& log, size_t max_chars = 2000) {
  std::string text = ReadFile(log);
  return text.size() > max_chars ? text.substr(text.size() - max_chars) : text;
}

// "<daemon>: <status>; last lines of <log>: ..." (the log says why, or is empty when the binary
// could not even be executed).
absl::Status DaemonFailed(std::string_view daemon, const absl::Status& status,
                          const std::filesystem::path& log) {
  const std::string tail = Tail(log);
  return absl::Status(status.code(),
                      absl::StrCat(std::string(daemon), ": ", std::string(status.message()),
                                   tail.empty() ? "; its log is empty"
                                                : absl::StrCat("; end of its log:\n", tail)));
}

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
    const std::filesystem::path build = SelfDir().parent_path().parent_path();
    server_bin_ = (build / "server" / "tessera-server").string();
    agent_bin_ = (build / "agent" / "tessera-agent").string();
    app.add_option("--server-bin", server_bin_, "tessera-server binary")->capture_default_str();
    app.add_option("--agent-bin", agent_bin_, "tessera-agent binary")->capture_default_str();
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
    out_.parameters = {{"server_bin", server_bin_},
                       {"agent_bin", agent_bin_},
                       {"svids", svids},
                       {"entries", entries},
                       {"settle_seconds", settle_seconds}};
    out_.table.columns = {"process", "state",  "SVIDs",   "entries", "RSS MiB",
                          "PSS MiB", "target", "verdict", "stable"};

    // Declared in this order so that the agent stops first and the directory goes last.
    ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("tessera-bench-footprint"));
    const std::filesystem::path d = dir.path();
    const std::filesystem::path admin = d / "server-run" / "api.sock";
    ASSIGN_OR_RETURN(uint16_t port, FreePort());
    RETURN_IF_ERROR(WriteFile(d / "server.toml", absl::StrCat(R"(trust_domain = "example.org"
bind_address = "127.0.0.1"
bind_port = )",
                                                              port, R"(
socket_path = ")",
                                                              admin.string(), R"("
data_dir = ")",
                                                              (d / "server-data").string(), R"("
log_format = "json"
[node_attestor.join_token]
)")));
    ASSIGN_OR_RETURN(NotifySocket server_notify, NotifySocket::Create(d / "server-notify.sock"));
    ASSIGN_OR_RETURN(
        ChildProcess server,
        ChildProcess::Start({server_bin_, "run", "--config", (d / "server.toml")}, d / "server.log",
                            {"NOTIFY_SOCKET=" + server_notify.path().string()}));
    if (auto ready = server_notify.WaitReady(server, std::chrono::seconds(60)); !ready.ok()) {
      return DaemonFailed("tessera-server", ready.status(), d / "server.log");
    }
    ASSIGN_OR_RETURN(std::string bundle,
                     RunCapture({server_bin_, "bundle", "show", "--socket-path", admin}));
    RETURN_IF_ERROR(WriteFile(d / "bootstrap.pem", bundle));
    ASSIGN_OR_RETURN(std::string token_out,
                     RunCapture({server_bin_, "token", "generate", "--spiffe-id", kNodeId, "--ttl",
                                 "600", "--socket-path", admin}));
    std::smatch token;
    if (!std::regex_search(token_out, token, std::regex("Token: (\\S+)"))) {
      return absl::InternalError(absl::StrCat("no token in: ", token_out));
    }
    RETURN_IF_ERROR(
        WriteFile(d / "agent.toml", absl::StrCat(R"(trust_domain = "example.org"
server_address = "127.0.0.1:)",
                                                 port, R"("
socket_path = ")",
                                                 (d / "agent-run" / "api.sock").string(), R"("
data_dir = ")",
                                                 (d / "agent-data").string(), R"("
trust_bundle_path = ")",
                                                 (d / "bootstrap.pem").string(), R"("
log_format = "json"
sync_interval = "1h"
[node_attestor.join_token]
[workload_attestor.unix]
)")));
    ASSIGN_OR_RETURN(NotifySocket agent_notify, NotifySocket::Create(d / "agent-notify.sock"));
    ASSIGN_OR_RETURN(
        ChildProcess agent,
        ChildProcess::Start(
            {agent_bin_, "run", "--config", (d / "agent.toml"), "--join-token", token[1].str()},
            d / "agent.log", {"NOTIFY_SOCKET=" + agent_notify.path().string()}));
    // READY=1 follows the first sync, or gives up waiting for it ("server unreachable").
    absl::StatusOr<std::string> ready = agent_notify.WaitReady(agent, std::chrono::seconds(60));
    if (ready.ok() && ready->find("unreachable") != std::string::npos) {
      ready = absl::UnavailableError(absl::StrCat("not synced: ", *ready));
    }
    if (!ready.ok()) {
      return DaemonFailed("tessera-agent", ready.status(), d / "agent.log");
    }

    int64_t held_entries = 1;  // the node alias `token generate --spiffe-id` created
    RETURN_IF_ERROR(Measure(agent, "agent", "idle after first sync", 0, held_entries, settle));
    RETURN_IF_ERROR(Measure(server, "server", "serving the agent", 0, held_entries, settle));
    int64_t created = 0;
    for (int64_t n : svids) {
      std::vector<EntrySpec> specs;
      for (; created < n; ++created) {
        specs.push_back({.spiffe_id = absl::StrCat("spiffe://example.org/bench/w", created),
                         .parent_id = kNodeId,
                         .selectors = {absl::StrCat("unix:uid:", 100000 + created)}});
      }
      RETURN_IF_ERROR(CreateEntries(admin, specs).status());
      held_entries += static_cast<int64_t>(specs.size());
      RETURN_IF_ERROR(WaitMinted(agent, d / "agent.log", n));
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
  absl::Status WaitMinted(ChildProcess& agent, const std::filesystem::path& log, int64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60) +
                          n * std::chrono::milliseconds(50);
    while (MintedSoFar(log) < n) {
      if (!agent.Running()) return DaemonFailed("tessera-agent", absl::AbortedError("exited"), log);
      if (std::chrono::steady_clock::now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat("tessera-agent minted ", MintedSoFar(log),
                                                        " of ", n, " SVIDs: ", Tail(log)));
      }
      if (!SleepUnlessInterrupted(std::chrono::milliseconds(100))) return CheckInterrupted();
    }
    return absl::OkStatus();
  }

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

  std::string server_bin_;
  std::string agent_bin_;
  std::vector<int64_t> svids_ = {100, 1000};
  int64_t entries_ = 0;
  double settle_seconds_ = 2;
  ScenarioOutput out_;
};

}  // namespace

std::unique_ptr<Scenario> NewFootprintScenario() { return std::make_unique<FootprintScenario>(); }

}  // namespace tessera::bench
