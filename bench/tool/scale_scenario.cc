// Scenario `scale`: what one agent's entry sync costs a real tessera-server as the registry grows
// from a fleet's worth of entries to ten times that, with --agents simulated agents connected.
//
// Setup: a tessera-server daemon (its own process, so /proc tells its CPU and RSS apart from the
// tool's) with the join_token attestor. The tool then acts as --agents agents at once: each gets
// a join token aliased to spiffe://example.org/bench/scale/node-<i> and attests with the agent's
// own code (AttestWithJoinToken, several at a time), then keeps one agent::ServerClient (its own
// mTLS channel, as a real agent has) for the rest of the run. Each agent's node gets
// --entries-per-agent entries (K) with selectors no other entry has.
//
// Phases: 1 holds those entries alone (agents x (K + 1) with the join-token alias entries);
// 2 adds entries parented to absent nodes, K per node like a larger fleet, until the registry
// holds --entries. What each measured agent is authorized for does not change between phases,
// so a flat per-sync cost means the server's work per agent does not grow with the registry.
//
// Measuring a phase: a warm-up pass (every agent syncs once: connects its channel, fills the
// server's caches; not in the latency numbers), then --rounds rounds in which every agent does
// a full SyncAuthorizedEntries with an empty cache (a fresh agent's sync), --concurrency at a
// time. Each call alone is timed; afterwards its result is checked: exactly the agent's K
// entries and its alias entry, or the scenario fails. Server CPU = utime + stime of
// /proc/<pid>/stat across the rounds; RSS from /proc/<pid>/status after them, and before the
// warm-up pass too (in phase 1 the entries are held but no agent channel is open yet, which
// tells the cost of entries from that of connections). The tool's own CPU (getrusage) is
// reported as well: on a small machine the simulated agents compete with the server for cores,
// and since their work per sync is the same in both phases, its ratio shows how much the machine
// alone moved between them. Nothing here judges a number.
//
// Each agent holds one connection on each side, so the soft RLIMIT_NOFILE is raised to the hard
// limit before the server starts (it inherits it), and the server's limit is checked.
//
// Not thread-safe as a whole (one scenario on the main thread); the attestation and sync passes
// run on worker threads that share only atomics, the per-call slots they own and a mutex for
// the first error.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "agent/node_attestation.h"
#include "agent/server_client.h"
#include "bench/tool/admin_client.h"
#include "bench/tool/deployment.h"
#include "bench/tool/in_process_server.h"
#include "bench/tool/process.h"
#include "bench/tool/report.h"
#include "bench/tool/scenario.h"
#include "common/status.h"

namespace tessera::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

constexpr char kNodePrefix[] = "spiffe://example.org/bench/scale/node-";
constexpr char kAbsentNodePrefix[] = "spiffe://example.org/bench/scale/absent-node-";
constexpr int kTokenTtlSeconds = 3600;
constexpr size_t kAttestThreads = 8;
constexpr size_t kCreateChunk = 10'000;
// Descriptors each side keeps besides one connection per agent.
constexpr rlim_t kSpareFds = 256;

double SelfCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Soft RLIMIT_NOFILE raised to the hard limit (children inherit it); an error when even that
// is below `needed`.
absl::StatusOr<rlim_t> RaiseFdLimit(rlim_t needed) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return absl::InternalError("getrlimit");
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return absl::InternalError("setrlimit");
  }
  if (limit.rlim_cur < needed) {
    return absl::FailedPreconditionError(absl::StrCat("open files limit ", limit.rlim_cur,
                                                      " is below the ", needed, " this run needs"));
  }
  return limit.rlim_cur;
}

// The soft "Max open files" of /proc/<pid>/limits.
absl::StatusOr<int64_t> MaxOpenFiles(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/limits"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(sizeof("Max open files") - 1));
    std::string soft;
    fields >> soft;
    if (soft == "unlimited") return INT64_MAX;
    return std::stoll(soft);
  }
  return absl::InternalError(absl::StrCat("no open files limit in /proc/", pid, "/limits"));
}

// Runs fn(0) .. fn(n-1) on `threads` threads; hands out no more work after the first error or
// an interrupt, and returns that error.
absl::Status ParallelFor(size_t n, size_t threads, const std::function<absl::Status(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  absl::Status first;
  {
    std::vector<std::jthread> workers;
    for (size_t t = 0; t < std::min(n, threads); ++t) {
      workers.emplace_back([&] {
        while (!failed && !Interrupted()) {
          const size_t i = next++;
          if (i >= n) return;
          if (absl::Status status = fn(i); !status.ok()) {
            std::lock_guard lock(mu);
            if (first.ok()) first = std::move(status);
            failed = true;
          }
        }
      });
    }
  }
  RETURN_IF_ERROR(first);
  return CheckInterrupted();
}

// Nearest-rank percentile (p in (0, 1]).
double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(p * static_cast<double>(values.size()));
  return values[std::clamp<size_t>(static_cast<size_t>(rank), 1, values.size()) - 1];
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

struct SimAgent {
  std::string alias;  // its node ID, the parent of its entries
  std::unique_ptr<FixedAgentIdentity> identity;
  std::unique_ptr<agent::ServerClient> client;  // after `identity`: destroyed before it
  // Its own entries: entry ID -> SPIFFE ID.
  std::unordered_map<std::string, std::string> expected;
};

struct PhaseResult {
  std::string name;
  int64_t registry_entries = 0;
  std::vector<double> warmup_ms;
  std::vector<double> sync_ms;
  double seconds = 0;  // wall time of the measured rounds
  double server_cpu_seconds = 0;
  double tool_cpu_seconds = 0;
  Memory memory_before;  // server, before the warm-up pass
  Memory server_memory;  // server, after the timed rounds
  double syncs_per_second() const { return Ratio(static_cast<double>(sync_ms.size()), seconds); }
  double server_cpu_ms_per_sync() const {
    return Ratio(server_cpu_seconds * 1000, static_cast<double>(sync_ms.size()));
  }
  double tool_cpu_ms_per_sync() const {
    return Ratio(tool_cpu_seconds * 1000, static_cast<double>(sync_ms.size()));
  }
};

// The agent's sync result must be its own entries and its alias entry, nothing else.
absl::Status CheckSync(const SimAgent& agent, const agent::ServerClient& client,
                       const agent::EntryMap& got) {
  bool alias_seen = false;
  for (const auto& [id, entry] : got) {
    auto it = agent.expected.find(id);
    if (it != agent.expected.end() && entry->spiffe_id.str() == it->second) continue;
    if (!alias_seen && entry->spiffe_id.str() == agent.alias) {
      alias_seen = true;
      continue;
    }
    return absl::InternalError(absl::StrCat("sync of ", agent.alias, " returned entry ", id, " (",
                                            entry->spiffe_id.str(), "), not one of its own"));
  }
  if (!alias_seen || got.size() != agent.expected.size() + 1) {
    return absl::InternalError(absl::StrCat("sync of ", agent.alias, " returned ", got.size(),
                                            " entries, expected its ", agent.expected.size(),
                                            " and its alias"));
  }
  if (client.last_entry_sync_stats().dropped != 0) {
    return absl::InternalError(absl::StrCat("sync of ", agent.alias, " dropped invalid entries"));
  }
  return absl::OkStatus();
}

// Creates `specs` in chunks, printing progress; the seconds it took.
absl::StatusOr<double> CreateWithProgress(const std::filesystem::path& admin,
                                          const std::vector<EntrySpec>& specs,
                                          const std::function<void(size_t, std::string)>& on_id) {
  const auto start = Clock::now();
  for (size_t done = 0; done < specs.size();) {
    RETURN_IF_ERROR(CheckInterrupted());
    const size_t end = std::min(specs.size(), done + kCreateChunk);
    std::vector<EntrySpec> chunk(specs.begin() + done, specs.begin() + end);
    ASSIGN_OR_RETURN(std::vector<std::string> ids, CreateEntries(admin, chunk));
    for (size_t i = 0; i < ids.size(); ++i) on_id(done + i, std::move(ids[i]));
    done = end;
    std::cerr << "scale: created " << done << " of " << specs.size() << " entries ("
              << FormatFixed(Seconds(Clock::now() - start).count(), 1) << " s)\n";
  }
  return Seconds(Clock::now() - start).count();
}

class ScaleScenario final : public Scenario {
 public:
  std::string_view name() const override { return "scale"; }
  std::string_view description() const override {
    return "per-agent sync latency, server CPU and RSS with 1,000 agents, 10k vs 100k entries";
  }

  void AddFlags(CLI::App& app) override {
    AddDaemonBinaryFlags(app, binaries_);
    app.add_option("--agents", agents_, "simulated agents (--quick: 20)")->capture_default_str();
    app.add_option("--entries-per-agent", per_agent_, "entries under each agent (--quick: 5)")
        ->capture_default_str();
    app.add_option("--entries", entries_,
                   "registry size of the second phase, filled with other nodes' entries "
                   "(--quick: 1,000)")
        ->capture_default_str();
    app.add_option("--concurrency", concurrency_, "syncs in flight at once")->capture_default_str();
    app.add_option("--rounds", rounds_, "full syncs of every agent per phase (--quick: 1)")
        ->capture_default_str();
  }

  absl::StatusOr<ScenarioOutput> Run(const CommonOptions& common) override {
    size_t agents = agents_, per_agent = per_agent_, rounds = rounds_;
    int64_t entries = entries_;
    if (common.quick) {
      agents = 20;
      per_agent = 5;
      entries = 1000;
      rounds = 1;
    }
    if (agents == 0 || per_agent == 0 || rounds == 0 || concurrency_ == 0) {
      return absl::InvalidArgumentError(
          "--agents, --entries-per-agent, --rounds, --concurrency: at least 1");
    }
    // The server's TLS handshakes log a harmless hostname mismatch at ERROR (the agent checks the
    // SPIFFE ID instead); keep gRPC quiet unless asked. Read when gRPC initializes.
    if (!common.verbose) setenv("GRPC_VERBOSITY", "NONE", /*overwrite=*/0);
    const rlim_t needed_fds = agents + kSpareFds;
    ASSIGN_OR_RETURN(const rlim_t fd_limit, RaiseFdLimit(needed_fds));

    // Declared in this order so that the clients go first, then the server, then the directory.
    ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("tessera-bench-scale"));
    ASSIGN_OR_RETURN(std::unique_ptr<ServerDaemon> server,
                     ServerDaemon::Start(dir.path(), binaries_.server));
    const pid_t server_pid = server->process().pid();
    ASSIGN_OR_RETURN(const int64_t server_fd_limit, MaxOpenFiles(server_pid));
    if (server_fd_limit < static_cast<int64_t>(needed_fds)) {
      return absl::FailedPreconditionError(
          absl::StrCat("tessera-server may open only ", server_fd_limit, " files"));
    }
    ASSIGN_OR_RETURN(const Memory idle_memory, ReadMemory(server_pid));
    std::vector<SimAgent> sims(agents);

    ASSIGN_OR_RETURN(const agent::ServerConnection connection, server->Connection());
    ASSIGN_OR_RETURN(const agent::ServerAddress address,
                     agent::ParseServerAddress(connection.target));
    std::cerr << "scale: attesting " << agents << " agents\n";
    const auto attest_start = Clock::now();
    RETURN_IF_ERROR(ParallelFor(agents, kAttestThreads, [&](size_t i) -> absl::Status {
      SimAgent& sim = sims[i];
      sim.alias = absl::StrCat(kNodePrefix, i);
      ASSIGN_OR_RETURN(std::string token,
                       CreateJoinToken(server->admin_socket(), kTokenTtlSeconds, sim.alias));
      ASSIGN_OR_RETURN(agent::AgentState state, agent::AttestWithJoinToken(connection, token),
                       Annotate(_, absl::StrCat("attest ", sim.alias)));
      sim.identity = std::make_unique<FixedAgentIdentity>(std::move(state));
      sim.client = std::make_unique<agent::ServerClient>(
          agent::ServerClientOptions{.trust_domain = connection.trust_domain,
                                     .servers = {address},
                                     .rpc_timeout = std::chrono::seconds(120)},
          *sim.identity);
      return absl::OkStatus();
    }));
    const double attest_seconds = Seconds(Clock::now() - attest_start).count();
    ASSIGN_OR_RETURN(const Memory attested_memory, ReadMemory(server_pid));

    // Phase 1: every agent's own entries.
    std::vector<EntrySpec> specs;
    for (size_t i = 0; i < agents; ++i) {
      for (size_t j = 0; j < per_agent; ++j) {
        specs.push_back({.spiffe_id = absl::StrCat(sims[i].alias, "/w", j),
                         .parent_id = sims[i].alias,
                         .selectors = {absl::StrCat("unix:uid:", 100000 + specs.size())}});
      }
    }
    ASSIGN_OR_RETURN(const double own_seconds,
                     CreateWithProgress(server->admin_socket(), specs, [&](size_t k, auto id) {
                       sims[k / per_agent].expected.emplace(std::move(id), specs[k].spiffe_id);
                     }));
    const int64_t own_entries = static_cast<int64_t>(agents * (per_agent + 1));
    std::vector<PhaseResult> phases;
    ASSIGN_OR_RETURN(PhaseResult first,
                     Measure("own entries", own_entries, sims, rounds, server_pid));
    phases.push_back(std::move(first));

    // Phase 2: other nodes' entries up to --entries.
    double filler_seconds = 0;
    const int64_t filler = std::max<int64_t>(0, entries - own_entries);
    if (filler > 0) {
      specs.clear();
      for (int64_t k = 0; k < filler; ++k) {
        const std::string node = absl::StrCat(kAbsentNodePrefix, k / per_agent);
        specs.push_back({.spiffe_id = absl::StrCat(node, "/w", k % per_agent),
                         .parent_id = node,
                         .selectors = {absl::StrCat("unix:uid:", 100000 + own_entries + k)}});
      }
      ASSIGN_OR_RETURN(filler_seconds,
                       CreateWithProgress(server->admin_socket(), specs, [](size_t, auto) {}));
      ASSIGN_OR_RETURN(PhaseResult second, Measure("+ others' entries", own_entries + filler, sims,
                                                   rounds, server_pid));
      phases.push_back(std::move(second));
    }

    sims.clear();  // every client closed before the server stops
    const int server_exit = server->process().Stop();

    ScenarioOutput out;
    out.parameters = {{"server_bin", binaries_.server},
                      {"agents", agents},
                      {"entries_per_agent", per_agent},
                      {"entries", entries},
                      {"concurrency", concurrency_},
                      {"rounds", rounds},
                      {"open_files_limit", fd_limit},
                      {"server_open_files_limit", server_fd_limit},
                      {"attest_seconds", attest_seconds},
                      {"agents_attested_per_second", Ratio(agents, attest_seconds)},
                      {"server_rss_kib_idle", idle_memory.rss_kib},
                      {"server_rss_kib_agents_attested", attested_memory.rss_kib},
                      {"own_entries_created", agents * per_agent},
                      {"own_entries_create_seconds", own_seconds},
                      {"other_entries_created", filler},
                      {"other_entries_create_seconds", filler_seconds},
                      {"server_exit_status", server_exit}};
    Report(phases, agents, per_agent, out);
    out.table.notes.push_back(absl::StrCat(
        "setup: ", agents, " agents attested in ", FormatFixed(attest_seconds, 1), " s (",
        FormatFixed(Ratio(agents, attest_seconds), 0), "/s); entries created at ",
        FormatFixed(Ratio(agents * per_agent, own_seconds), 0), "/s (own)",
        filler > 0
            ? absl::StrCat(", ", FormatFixed(Ratio(filler, filler_seconds), 0), "/s (others')")
            : "",
        "; server RSS idle ", FormatMiB(idle_memory.rss_kib), " MiB, with agents attested ",
        FormatMiB(attested_memory.rss_kib), " MiB"));
    if (server_exit != 0) {
      out.table.notes.push_back(absl::StrCat("server exit status on SIGTERM: ", server_exit));
    }
    if (TESSERA_BENCH_SANITIZE) {
      out.table.notes.push_back("sanitizer build: times and memory are inflated");
    }
    return out;
  }

 private:
  // One warm-up pass, then `rounds` timed passes of a full sync by every agent.
  absl::StatusOr<PhaseResult> Measure(const std::string& name, int64_t registry_entries,
                                      std::vector<SimAgent>& sims, size_t rounds, pid_t server) {
    PhaseResult result{.name = name, .registry_entries = registry_entries};
    std::cerr << "scale: measuring with " << registry_entries << " entries\n";
    auto pass = [&](std::vector<double>& ms, size_t offset) {
      return ParallelFor(sims.size(), concurrency_, [&](size_t i) -> absl::Status {
        agent::ServerClient& client = *sims[i].client;
        const auto start = Clock::now();
        absl::StatusOr<agent::EntryMap> got = client.SyncAuthorizedEntries(agent::EntryMap());
        ms[offset + i] = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        if (!got.ok()) return Annotate(got.status(), sims[i].alias);
        return CheckSync(sims[i], client, *got);
      });
    };
    ASSIGN_OR_RETURN(result.memory_before, ReadMemory(server));
    result.warmup_ms.resize(sims.size());
    RETURN_IF_ERROR(pass(result.warmup_ms, 0));

    result.sync_ms.resize(sims.size() * rounds);
    ASSIGN_OR_RETURN(const double cpu_before, ReadCpuSeconds(server));
    const double tool_before = SelfCpuSeconds();
    const auto start = Clock::now();
    for (size_t r = 0; r < rounds; ++r) RETURN_IF_ERROR(pass(result.sync_ms, r * sims.size()));
    result.seconds = Seconds(Clock::now() - start).count();
    result.tool_cpu_seconds = SelfCpuSeconds() - tool_before;
    ASSIGN_OR_RETURN(const double cpu_after, ReadCpuSeconds(server));
    result.server_cpu_seconds = cpu_after - cpu_before;
    ASSIGN_OR_RETURN(result.server_memory, ReadMemory(server));
    return result;
  }

  void Report(const std::vector<PhaseResult>& phases, size_t agents, size_t per_agent,
              ScenarioOutput& out) const {
    out.table.columns = {"phase",
                         "registry entries",
                         "agents",
                         "entries/sync",
                         "syncs",
                         "p50 ms",
                         "p99 ms",
                         "max ms",
                         "syncs/s",
                         "server CPU ms/sync",
                         "tool CPU ms/sync",
                         "server RSS MiB"};
    std::string rss_note;
    for (const PhaseResult& p : phases) {
      const double p50 = Percentile(p.sync_ms, 0.5), p99 = Percentile(p.sync_ms, 0.99),
                   max = Percentile(p.sync_ms, 1.0);
      out.table.rows.push_back(
          {p.name, std::to_string(p.registry_entries), std::to_string(agents),
           std::to_string(per_agent + 1), std::to_string(p.sync_ms.size()), FormatFixed(p50, 2),
           FormatFixed(p99, 2), FormatFixed(max, 2), FormatFixed(p.syncs_per_second(), 0),
           FormatFixed(p.server_cpu_ms_per_sync(), 3), FormatFixed(p.tool_cpu_ms_per_sync(), 3),
           FormatMiB(p.server_memory.rss_kib)});
      out.results.push_back(
          {{"phase", p.name},
           {"registry_entries", p.registry_entries},
           {"agents", agents},
           {"entries_per_sync", per_agent + 1},
           {"syncs", p.sync_ms.size()},
           {"seconds", p.seconds},
           {"sync_ms_p50", p50},
           {"sync_ms_p90", Percentile(p.sync_ms, 0.9)},
           {"sync_ms_p99", p99},
           {"sync_ms_max", max},
           {"warmup_sync_ms_p50", Percentile(p.warmup_ms, 0.5)},
           {"warmup_sync_ms_max", Percentile(p.warmup_ms, 1.0)},
           {"syncs_per_second", p.syncs_per_second()},
           {"server_cpu_seconds", p.server_cpu_seconds},
           {"server_cpu_ms_per_sync", p.server_cpu_ms_per_sync()},
           {"tool_cpu_seconds", p.tool_cpu_seconds},
           {"tool_cpu_ms_per_sync", p.tool_cpu_ms_per_sync()},
           {"server_rss_kib_before_warmup", p.memory_before.rss_kib},
           {"server_rss_kib", p.server_memory.rss_kib},
           {"server_pss_kib", p.server_memory.pss_kib},
           {"sync_ms_p50_ratio_to_first_phase",
            Ratio(p50, Percentile(phases.front().sync_ms, 0.5))},
           {"server_cpu_per_sync_ratio_to_first_phase",
            Ratio(p.server_cpu_ms_per_sync(), phases.front().server_cpu_ms_per_sync())},
           {"tool_cpu_per_sync_ratio_to_first_phase",
            Ratio(p.tool_cpu_ms_per_sync(), phases.front().tool_cpu_ms_per_sync())}});
      rss_note += absl::StrCat(rss_note.empty() ? "" : "; ", p.name, " ",
                               FormatMiB(p.memory_before.rss_kib), " -> ",
                               FormatMiB(p.server_memory.rss_kib));
    }
    out.table.notes = {
        "entries/sync: the agent's own entries plus its join-token alias entry, checked on every "
        "sync; latency = one SyncAuthorizedEntries with an empty cache, after a warm-up pass",
        "server CPU: utime+stime of the tessera-server process over the timed rounds; tool CPU: "
        "the simulated agents (same machine, so they compete for the cores)",
        absl::StrCat("server RSS MiB before the warm-up pass -> after the rounds: ", rss_note)};
    if (phases.size() == 2) {
      const PhaseResult &a = phases[0], &b = phases[1];
      out.table.notes.push_back(absl::StrCat(
          "registry x", FormatFixed(Ratio(b.registry_entries, a.registry_entries), 1),
          ": p50 ratio ",
          FormatFixed(Ratio(Percentile(b.sync_ms, 0.5), Percentile(a.sync_ms, 0.5)), 2),
          ", server CPU/sync ratio ",
          FormatFixed(Ratio(b.server_cpu_ms_per_sync(), a.server_cpu_ms_per_sync()), 2),
          " (1.00 = per-agent cost flat); tool CPU/sync ratio ",
          FormatFixed(Ratio(b.tool_cpu_ms_per_sync(), a.tool_cpu_ms_per_sync()), 2),
          " (the same client work in both phases: how much the machine alone moved)"));
    }
  }

  DaemonBinaries binaries_;
  size_t agents_ = 1000;
  size_t per_agent_ = 10;
  int64_t entries_ = 100'000;
  size_t concurrency_ = 16;
  size_t rounds_ = 5;
};

}  // namespace

std::unique_ptr<Scenario> NewScaleScenario() { return std::make_unique<ScaleScenario>(); }

}  // namespace tessera::bench
