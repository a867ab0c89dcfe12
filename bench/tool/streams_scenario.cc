// Scenario `streams`: many open FetchX509SVID streams on one real tessera-agent: its memory and
// CPU while they are idle, and how fast a bundle change reaches all of them.
//
// Setup: ServerDaemon + AgentDaemon; one entry with the selector unix:uid:<this tool's uid>. The
// tool opens --streams streams (gRPC's callback API, no thread per stream), each on its own
// connection unless --streams-per-connection says otherwise, and waits until every one got its
// first response. (The tool raises its open-file limit to the hard limit; the agent inherits it.)
// Then:
//  - idle: the agent's RSS and CPU time (utime + stime, /proc/<pid>/stat) over --idle-seconds;
//  - bundle change: a new self-signed CA certificate is appended to the server's bundle over the
//    admin API (AppendBundle). The server pushes the change to the agent, the agent fetches the
//    bundle and sends every stream a response whose bundle holds the new certificate. Measured
//    from just before the admin call to the moment each stream has it (the last one: the
//    fan-out time), with the agent's CPU time and RSS over the change.
// Target (issue 7): the last stream has the new bundle within 1 s.
//
// The tool's own reading of 10,000 responses shares the machine's cores with the agent, so the
// fan-out time includes some client work; the agent's CPU time is its own.
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/tool/admin_client.h"
#include "bench/tool/deployment.h"
#include "bench/tool/report.h"
#include "bench/tool/scenario.h"
#include "common/status.h"
#include "grpcpp/grpcpp.h"
#include "spiffe/key.h"
#include "spiffe/workload/workload.grpc.pb.h"
#include "spiffe/x509_svid.h"

namespace tessera::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kWorkloadId[] = "spiffe://example.org/bench/workload";
constexpr double kTargetFanOutMs = 1000;

// What every stream reports to the scenario. Counters only grow.
struct Progress {
  std::mutex mu;
  std::condition_variable changed;
  size_t first_responses = 0;
  size_t have_marker = 0;
  size_t ended = 0;
  size_t failed = 0;  // ended with an error before being cancelled, or a wrong response
  std::string first_error;
  // DER of the certificate that marks the new bundle; set before the change, read-only after.
  std::string marker;
  Clock::time_point change_start;
  std::vector<double> marker_ms;  // per stream that got it, ms after change_start
};

class Stream final : public grpc::ClientReadReactor<X509SVIDResponse> {
 public:
  Stream(SpiffeWorkloadAPI::Stub& stub, Progress& progress) : progress_(progress) {
    ctx_.AddMetadata("workload.spiffe.io", "true");
    stub.async()->FetchX509SVID(&ctx_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void Cancel() { ctx_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    const auto now = Clock::now();
    const bool valid = response_.svids_size() == 1 && response_.svids(0).spiffe_id() == kWorkloadId;
    bool marked = false;
    if (valid && !has_marker_) {
      std::lock_guard lock(progress_.mu);
      marked = !progress_.marker.empty() &&
               response_.svids(0).bundle().find(progress_.marker) != std::string::npos;
    }
    {
      std::lock_guard lock(progress_.mu);
      if (!valid) {
        ++progress_.failed;
        if (progress_.first_error.empty()) progress_.first_error = "a response without the SVID";
      }
      if (!got_first_) ++progress_.first_responses;
      if (marked) {
        ++progress_.have_marker;
        progress_.marker_ms.push_back(
            std::chrono::duration<double, std::milli>(now - progress_.change_start).count());
      }
      progress_.changed.notify_all();
    }
    got_first_ = true;
    has_marker_ = has_marker_ || marked;
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    std::lock_guard lock(progress_.mu);
    if (status.error_code() != grpc::StatusCode::CANCELLED) {
      ++progress_.failed;
      if (progress_.first_error.empty()) {
        progress_.first_error = absl::StrCat("stream ended: ", status.error_message());
      }
    }
    ++progress_.ended;
    progress_.changed.notify_all();
  }

 private:
  Progress& progress_;
  grpc::ClientContext ctx_;
  X509SVIDRequest request_;
  X509SVIDResponse response_;
  bool got_first_ = false;
  bool has_marker_ = false;
};

// Waits until `done(progress)` or a stream failed; DeadlineExceeded after `timeout`.
absl::Status WaitProgress(Progress& progress, const std::function<bool(const Progress&)>& done,
                          std::chrono::milliseconds timeout, const std::string& what) {
  const auto deadline = Clock::now() + timeout;
  std::unique_lock lock(progress.mu);
  while (!done(progress)) {
    if (progress.failed > 0) {
      return absl::InternalError(absl::StrCat(what, ": ", progress.failed,
                                              " streams failed, first: ", progress.first_error));
    }
    if (Interrupted()) return absl::CancelledError("interrupted");
    if (Clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": timed out; ", progress.first_responses, " first responses, ",
                       progress.have_marker, " with the new bundle"));
    }
    progress.changed.wait_for(lock, std::chrono::milliseconds(50));
  }
  return absl::OkStatus();
}

// The agent holds two descriptors per connection (the socket and the caller's pidfd), the tool
// one; this much is left for everything else the daemons and the tool open.
constexpr rlim_t kSpareDescriptors = 1024;

// Raises this process's open-file limit (which the daemons inherit) as far as allowed: the hard
// limit to what `connections` need when permitted (CAP_SYS_RESOURCE), the soft one to the hard
// one. Returns how many connections fit.
absl::StatusOr<size_t> RaiseFileLimit(size_t connections) {
  const rlim_t needed = 2 * connections + kSpareDescriptors;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return absl::InternalError("getrlimit");
  if (limit.rlim_max < needed) {
    const rlimit raised{.rlim_cur = needed, .rlim_max = needed};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) return connections;
  }
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return absl::InternalError("setrlimit");
  if (limit.rlim_cur <= 2 * kSpareDescriptors) {
    return absl::FailedPreconditionError(
        absl::StrCat("open-file limit ", limit.rlim_cur, " is too low (raise `ulimit -Hn`)"));
  }
  return std::min<size_t>(connections, (limit.rlim_cur - kSpareDescriptors) / 2);
}

// A new CA certificate (self-signed, P-256) in DER: what an operator appends when rolling in a
// new root.
absl::StatusOr<std::string> NewAuthority() {
  ASSIGN_OR_RETURN(spiffe::PrivateKey key, spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256));
  const auto now = std::chrono::system_clock::now();
  ASSIGN_OR_RETURN(
      spiffe::Certificate cert,
      spiffe::SignSelfSignedCa({.public_key = key.public_key(),
                                .trust_domain = *spiffe::TrustDomain::Parse(kBenchTrustDomain),
                                .not_before = now - spiffe::kBackdate,
                                .not_after = now + std::chrono::hours(24)},
                               key));
  return cert.ToDer();
}

class StreamsScenario final : public Scenario {
 public:
  std::string_view name() const override { return "streams"; }
  std::string_view description() const override {
    return "10,000 open FetchX509SVID streams on a real agent: RSS/CPU idle and during a bundle "
           "change, time until the last stream has it";
  }

  void AddFlags(CLI::App& app) override {
    AddDaemonBinaryFlags(app, binaries_);
    app.add_option("--streams", streams_, "open streams")->capture_default_str();
    app.add_option("--streams-per-connection", per_connection_,
                   "streams sharing one connection (1: every stream a workload of its own; 0: 1 "
                   "unless the open-file limit is too low for that, then the fewest that fit)")
        ->capture_default_str();
    app.add_option("--idle-seconds", idle_seconds_, "idle window for the RSS/CPU reading")
        ->capture_default_str();
  }

  absl::StatusOr<ScenarioOutput> Run(const CommonOptions& common) override;

 private:
  DaemonBinaries binaries_;
  int streams_ = 10'000;
  int per_connection_ = 0;
  double idle_seconds_ = 5;
};

absl::StatusOr<ScenarioOutput> StreamsScenario::Run(const CommonOptions& common) {
  const int streams = common.quick ? 50 : streams_;
  const double idle_seconds = common.quick ? 0.5 : idle_seconds_;
  if (streams < 1 || per_connection_ < 0) {
    return absl::InvalidArgumentError("--streams: at least 1; --streams-per-connection: >= 0");
  }
  if (!(idle_seconds >= 0)) return absl::InvalidArgumentError("--idle-seconds: 0 or more");
  int per_connection = per_connection_;
  if (per_connection == 0) {  // auto: as few per connection as the open-file limit allows
    ASSIGN_OR_RETURN(const size_t fit, RaiseFileLimit(streams));
    per_connection = static_cast<int>((streams + fit - 1) / fit);
  }
  const size_t connections = (streams + per_connection - 1) / per_connection;
  ASSIGN_OR_RETURN(const size_t fit, RaiseFileLimit(connections));
  if (fit < connections) {
    return absl::FailedPreconditionError(
        absl::StrCat(connections, " connections need an open-file limit of ",
                     2 * connections + kSpareDescriptors, " (raise `ulimit -Hn`)"));
  }
  ScenarioOutput out;
  out.parameters = {{"server_bin", binaries_.server},
                    {"agent_bin", binaries_.agent},
                    {"streams", streams},
                    {"connections", connections},
                    {"idle_seconds", idle_seconds}};
  out.table.columns = {"phase",  "streams", "agent RSS MiB", "agent CPU %", "p50 ms",
                       "p99 ms", "last ms", "target",        "verdict"};

  ASSIGN_OR_RETURN(Deployment deployment,
                   StartDeployment("tessera-bench-streams", binaries_, kWorkloadId));
  ServerDaemon& server = *deployment.server;
  AgentDaemon& agent = *deployment.agent;
  ASSIGN_OR_RETURN(const Memory before, ReadMemory(agent.process().pid()));

  const std::string target = deployment.workload_target();
  std::vector<std::unique_ptr<SpiffeWorkloadAPI::Stub>> stubs;
  for (size_t i = 0; i < connections; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stubs.push_back(SpiffeWorkloadAPI::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args)));
  }
  Progress progress;
  std::vector<std::unique_ptr<Stream>> open;
  // Cancels every stream and waits for their OnDone before they are destroyed, however Run ends.
  struct Closer {
    std::vector<std::unique_ptr<Stream>>& open;
    Progress& progress;
    ~Closer() {
      for (auto& s : open) s->Cancel();
      std::unique_lock lock(progress.mu);
      progress.changed.wait(lock, [&] { return progress.ended == open.size(); });
    }
  } closer{open, progress};

  // In waves, so that the agent's listen backlog never overflows (a connect to a full Unix
  // socket backlog fails at once instead of waiting).
  constexpr int kWave = 500;
  const auto open_start = Clock::now();
  for (int i = 0; i < streams; ++i) {
    open.push_back(std::make_unique<Stream>(*stubs[i / per_connection], progress));
    if (open.size() % kWave != 0 && i + 1 < streams) continue;
    RETURN_IF_ERROR(WaitProgress(
        progress, [&](const Progress& p) { return p.first_responses == open.size(); },
        std::chrono::seconds(60), "opening streams"));
  }
  const double open_seconds = std::chrono::duration<double>(Clock::now() - open_start).count();
  std::cerr << "streams: " << streams << " open in " << FormatFixed(open_seconds, 1) << " s\n";

  auto reading = [&](const char* phase, double cpu_percent, const Memory& memory,
                     const LatencySummary* fan_out) {
    const bool judged = fan_out != nullptr;
    const bool met = judged && fan_out->max < kTargetFanOutMs;
    out.table.rows.push_back(
        {phase, std::to_string(phase == std::string("before streams") ? 0 : streams),
         FormatFixed(memory.rss_kib / 1024.0, 1), FormatFixed(cpu_percent, 1),
         judged ? FormatFixed(fan_out->p50, 1) : "", judged ? FormatFixed(fan_out->p99, 1) : "",
         judged ? FormatFixed(fan_out->max, 1) : "", judged ? "last < 1 s" : "",
         judged ? (met ? "met" : "MISSED") : ""});
    nlohmann::json row = {{"phase", phase},
                          {"agent_rss_kib", memory.rss_kib},
                          {"agent_pss_kib", memory.pss_kib},
                          {"agent_cpu_percent", cpu_percent}};
    if (judged) {
      row["fan_out"] = fan_out->ToJson();
      row["target_last_ms"] = kTargetFanOutMs;
      row["target_met"] = met;
    }
    out.results.push_back(std::move(row));
  };
  reading("before streams", 0, before, nullptr);

  // Idle.
  const pid_t pid = agent.process().pid();
  ASSIGN_OR_RETURN(const double idle_cpu_start, ReadCpuSeconds(pid));
  const auto idle_start = Clock::now();
  if (!SleepUnlessInterrupted(
          std::chrono::milliseconds(static_cast<int64_t>(idle_seconds * 1000)))) {
    return CheckInterrupted();
  }
  ASSIGN_OR_RETURN(const double idle_cpu_end, ReadCpuSeconds(pid));
  const double idle_wall = std::chrono::duration<double>(Clock::now() - idle_start).count();
  ASSIGN_OR_RETURN(const Memory idle, ReadMemory(pid));
  reading("idle", 100 * (idle_cpu_end - idle_cpu_start) / idle_wall, idle, nullptr);

  // The bundle change.
  ASSIGN_OR_RETURN(const std::string marker, NewAuthority());
  ASSIGN_OR_RETURN(const double change_cpu_start, ReadCpuSeconds(pid));
  {
    std::lock_guard lock(progress.mu);
    progress.marker = marker;
    progress.change_start = Clock::now();
  }
  RETURN_IF_ERROR(AppendX509Authority(server.admin_socket(), marker));
  RETURN_IF_ERROR(WaitProgress(
      progress, [&](const Progress& p) { return p.have_marker == open.size(); },
      std::chrono::seconds(60), "bundle change"));
  const double change_wall =
      std::chrono::duration<double>(Clock::now() - progress.change_start).count();
  ASSIGN_OR_RETURN(const double change_cpu_end, ReadCpuSeconds(pid));
  ASSIGN_OR_RETURN(const Memory changed, ReadMemory(pid));
  std::vector<double> fan_out_ms;
  {
    std::lock_guard lock(progress.mu);
    fan_out_ms = progress.marker_ms;
  }
  const LatencySummary fan_out = SummarizeLatencies(fan_out_ms);
  reading("bundle change", 100 * (change_cpu_end - change_cpu_start) / change_wall, changed,
          &fan_out);
  out.parameters["open_seconds"] = open_seconds;
  out.parameters["agent_cpu_seconds_bundle_change"] = change_cpu_end - change_cpu_start;
  out.table.notes = {
      absl::StrCat(streams, " streams on ", connections, " connections, opened in ",
                   FormatFixed(open_seconds, 1), " s"),
      "agent CPU %: of one core, over the idle window / from the AppendBundle call until the "
      "last stream had the new bundle",
      absl::StrCat("the change cost the agent ",
                   FormatFixed(1000 * (change_cpu_end - change_cpu_start), 0), " ms of CPU (",
                   FormatFixed(1e6 * (change_cpu_end - change_cpu_start) / streams, 1),
                   " us per stream)"),
      "p50/p99/last: ms from just before the AppendBundle call until a stream had the new bundle"};
  if (TESSERA_BENCH_SANITIZE) {
    out.table.notes.push_back("sanitizer build: times and sizes are inflated");
  }
  return out;
}

}  // namespace

std::unique_ptr<Scenario> NewStreamsScenario() { return std::make_unique<StreamsScenario>(); }

}  // namespace tessera::bench
