#include "agent/attestation_manager.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "attestors/x509pop/x509pop.h"
#include "common/status.h"
#include "common/strings.h"
#include "spdlog/spdlog.h"

namespace tessera::agent {
namespace {

using SysDuration = std::chrono::system_clock::duration;
using SteadyTime = std::chrono::steady_clock::time_point;

// Longest single sleep of the renewal thread: bounds how late a FakeClock's jump is noticed.
constexpr std::chrono::seconds kMaxSleep(1);

constexpr char kJoinTokenHint[] =
    "generate a new join token (tessera-server token generate) and restart with --join-token";
constexpr char kX509PopHint[] =
    "check the node certificate (certificate_path, private_key_path) against the server's "
    "x509pop ca_bundle_paths; if the agent was banned, lift the ban with "
    "`tessera-server agent evict`";

// Worth trying again (against another server address, after a pause).
bool IsRetryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

// The server does not accept this agent (evicted, banned, expired, unknown).
bool IsRefusal(const absl::Status& status) {
  return status.code() == absl::StatusCode::kPermissionDenied ||
         status.code() == absl::StatusCode::kNotFound ||
         status.code() == absl::StatusCode::kUnauthenticated;
}

// The serial of the SVID a NOT_ACTIVE refusal was about, from SPIRE's message
// `agent "<id>" expected to have serial number "<current>"; has "<presented>"`.
std::optional<std::string> RejectedSerial(const absl::Status& status) {
  if (AgentDeniedReason(status) != spire::api::types::PermissionDeniedDetails::AGENT_NOT_ACTIVE) {
    return std::nullopt;
  }
  constexpr std::string_view kHas = "; has \"";
  const std::string_view message = AsStd(status.message());
  const size_t at = message.rfind(kHas);
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view rest = message.substr(at + kHas.size());
  const size_t end = rest.find('"');
  if (end == std::string_view::npos) return std::nullopt;
  return std::string(rest.substr(0, end));
}

std::string FormatTime(Clock::TimePoint t) {
  return absl::FormatTime(absl::RFC3339_sec, absl::FromChrono(t), absl::UTCTimeZone());
}

double Uniform(double lo, double hi) {
  // Renewals and retries are rare: a fresh draw from the OS is cheap enough and needs no state.
  std::random_device device;
  return std::uniform_real_distribution<double>(lo, hi)(device);
}

// Capped exponential backoff; each delay is drawn from [d/2, d] so that agents restarted
// together do not retry in lockstep.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(std::max(initial, std::chrono::milliseconds(1))),
        max_(std::max(max, initial_)),
        current_(initial_) {}

  std::chrono::milliseconds Next() {
    const auto delay = current_;
    current_ = std::min(current_ * 2, max_);
    return std::chrono::milliseconds(
        std::llround(static_cast<double>(delay.count()) * Uniform(0.5, 1.0)));
  }
  void Reset() { current_ = initial_; }

 private:
  const std::chrono::milliseconds initial_;
  const std::chrono::milliseconds max_;
  std::chrono::milliseconds current_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AttestationManager>> AttestationManager::Create(
    const AgentConfig& config, std::string join_token, std::shared_ptr<const Clock> clock) {
  return Create(config, std::move(join_token), AttestationOptions{}, std::move(clock));
}

absl::StatusOr<std::unique_ptr<AttestationManager>> AttestationManager::Create(
    const AgentConfig& config, std::string join_token, AttestationOptions options,
    std::shared_ptr<const Clock> clock) {
  if (config.server_addresses.empty()) {
    return absl::InvalidArgumentError("agent: no server_address configured");
  }
  std::unique_ptr<attestors::AgentNodeAttestor> attestor;
  if (config.node_attestor == NodeAttestorType::kX509Pop) {
    if (!config.x509pop.has_value()) {
      return absl::InvalidArgumentError("agent: node attestor x509pop is not configured");
    }
    auto made = attestors::x509pop::NewAgentAttestor(
        {.certificate_path = config.x509pop->certificate_path.string(),
         .private_key_path = config.x509pop->private_key_path.string(),
         .intermediates_path = config.x509pop->intermediates_path.string()});
    if (!made.ok()) {
      return absl::Status(made.status().code(),
                          absl::StrCat("node_attestor.x509pop: ", made.status().message()));
    }
    attestor = *std::move(made);
  }
  if (join_token.empty()) join_token = config.join_token;
  if (clock == nullptr) {
    // RealClock::Get() lives for the whole process; the shared_ptr only borrows it.
    clock = std::shared_ptr<const Clock>(&RealClock::Get(), [](const Clock*) {});
  }
  return std::unique_ptr<AttestationManager>(new AttestationManager(
      config, std::move(join_token), options, std::move(clock), std::move(attestor)));
}

AttestationManager::AttestationManager(const AgentConfig& config, std::string join_token,
                                       AttestationOptions options,
                                       std::shared_ptr<const Clock> clock,
                                       std::unique_ptr<attestors::AgentNodeAttestor> attestor)
    : config_(config),
      join_token_(std::move(join_token)),
      options_(std::move(options)),
      clock_(std::move(clock)),
      store_(config.data_dir),
      attestor_(std::move(attestor)),
      health_(absl::UnavailableError("agent: not attested yet")) {}

AttestationManager::~AttestationManager() { Shutdown(); }

void AttestationManager::Shutdown() {
  if (!renewal_.joinable()) return;
  renewal_.request_stop();
  renewal_.join();
}

void AttestationManager::StartRenewal() {
  if (renewal_.joinable()) return;
  renewal_ = std::jthread([this](std::stop_token stop) { RenewalLoop(std::move(stop)); });
}

std::shared_ptr<const AgentState> AttestationManager::CurrentAgentState() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

void AttestationManager::OnAgentStateChange(
    std::function<void(std::shared_ptr<const AgentState>)> fn) {
  absl::MutexLock lock(&mu_);
  listeners_.push_back(std::move(fn));
}

void AttestationManager::ReportRejected(const absl::Status& status) {
  if (!IsRefusal(status)) return;
  {
    absl::MutexLock lock(&mu_);
    if (state_ == nullptr) return;
    if (auto serial = RejectedSerial(status);
        serial.has_value() && *serial != state_->svid.chain[0].SerialDecimal()) {
      // A call still made with an SVID we already replaced (a renewal's first use retires the
      // previous one): nothing is wrong with the current one.
      return;
    }
    rejection_ = status;
    cv_.SignalAll();
  }
  spdlog::warn("agent: the server refused the agent SVID ({}); checking with the server",
               AsStd(status.message()));
}

absl::Status AttestationManager::Health() const {
  absl::MutexLock lock(&mu_);
  return health_;
}

absl::Status AttestationManager::Start(std::stop_token stop) {
  if (CurrentAgentState() != nullptr) return absl::OkStatus();

  std::optional<AgentState> stored;
  auto loaded = store_.Load();
  if (!loaded.ok()) {
    spdlog::warn("agent: ignoring the stored state: {}", AsStd(loaded.status().message()));
  } else if (loaded->has_value()) {
    if ((*loaded)->svid.id.trust_domain() != config_.trust_domain) {
      spdlog::warn("agent: ignoring the stored identity {}: not in trust domain {}",
                   (*loaded)->svid.id.str(), config_.trust_domain.name());
    } else {
      stored = std::move(**loaded);
    }
  }

  if (stored.has_value()) {
    const Clock::TimePoint not_after = stored->svid.chain[0].NotAfter();
    if (clock_->Now() < not_after) {
      spdlog::info("agent: resuming as {} with the stored SVID (valid until {})",
                   stored->svid.id.str(), FormatTime(not_after));
      if (!join_token_.empty() && attestor_ == nullptr) {
        spdlog::info("agent: the join token is not used: the stored identity is still valid");
      }
      Install(*std::move(stored), /*persist=*/false, /*fresh=*/false);
      return absl::OkStatus();
    }
    spdlog::info("agent: the stored SVID of {} expired at {}; attesting again",
                 stored->svid.id.str(), FormatTime(not_after));
  }

  if (attestor_ == nullptr && join_token_.empty()) {
    std::string message =
        stored.has_value()
            ? absl::StrCat("agent: the stored SVID of ", stored->svid.id.str(),
                           " has expired and a join-token agent cannot renew it; ", kJoinTokenHint)
            : absl::StrCat("agent: no join token, and no stored identity in ",
                           store_.path().string(),
                           "; generate a join token (tessera-server token generate) and start "
                           "with --join-token or set join_token");
    return StartError(absl::FailedPreconditionError(message), "");
  }

  // A restarted agent trusts the bundle the server gave it, not the bootstrap file.
  std::vector<spiffe::Certificate> roots;
  bool insecure = false;
  if (stored.has_value()) {
    roots = stored->bundle;
  } else if (config_.insecure_bootstrap) {
    insecure = true;
    spdlog::warn(
        "agent: insecure_bootstrap: the server's certificate chain is not verified at first "
        "contact, only that it is {}/spire/server",
        config_.trust_domain.Id().str());
  } else {
    ASSIGN_OR_RETURN(roots, BootstrapRoots(stop));
  }
  last_bundle_ = roots;

  Backoff backoff(options_.initial_backoff, options_.max_backoff);
  while (!stop.stop_requested()) {
    const std::string target = Target();
    auto state = AttestOnce(roots, insecure);
    if (state.ok()) {
      spdlog::info("agent: attested to {} as {} (SVID valid until {})", target,
                   state->svid.id.str(), FormatTime(state->svid.chain[0].NotAfter()));
      Install(*std::move(state), /*persist=*/true, /*fresh=*/true);
      return absl::OkStatus();
    }
    if (!IsRetryable(state.status())) {
      return StartError(state.status(), attestor_ == nullptr ? kJoinTokenHint : kX509PopHint);
    }
    const auto delay = backoff.Next();
    spdlog::warn("agent: attestation to {} failed (retrying in {} ms): {}", target, delay.count(),
                 AsStd(state.status().message()));
    {
      absl::MutexLock lock(&mu_);
      health_ = absl::UnavailableError(absl::StrCat("agent: not attested yet: attestation to ",
                                                    target, " failed: ", state.status().message()));
    }
    NextServer();
    if (WaitUntilSteady(SteadyTime::clock::now() + delay, stop, false) == Wake::kStopped) break;
  }
  return absl::CancelledError("agent: attestation cancelled");
}

absl::StatusOr<std::vector<spiffe::Certificate>> AttestationManager::BootstrapRoots(
    std::stop_token stop) {
  Backoff backoff(options_.initial_backoff, options_.max_backoff);
  while (!stop.stop_requested()) {
    auto roots = LoadBootstrapBundle(config_, options_.bundle_fetch);
    if (roots.ok() && roots->empty()) {
      return StartError(absl::FailedPreconditionError("agent: no bootstrap trust bundle"),
                        "set trust_bundle_path, trust_bundle_url or insecure_bootstrap");
    }
    if (roots.ok()) return roots;
    if (roots.status().code() != absl::StatusCode::kUnavailable) {
      return StartError(roots.status(),
                        "fix trust_bundle_path or trust_bundle_url (and trust_bundle_format, "
                        "pem or spiffe)");
    }
    const auto delay = backoff.Next();
    spdlog::warn("agent: reading the bootstrap trust bundle failed (retrying in {} ms): {}",
                 delay.count(), AsStd(roots.status().message()));
    if (WaitUntilSteady(SteadyTime::clock::now() + delay, stop, false) == Wake::kStopped) break;
  }
  return absl::CancelledError("agent: attestation cancelled");
}

absl::Status AttestationManager::StartError(const absl::Status& status, std::string_view hint) {
  std::string message(status.message());
  if (!std::string_view(message).starts_with("agent")) message = "agent: " + message;
  if (message.find("could not find node attestor") != std::string::npos) {
    hint = "enable this node attestor on the server, or configure one the server accepts";
  }
  if (!hint.empty()) absl::StrAppend(&message, "; ", AsAbsl(hint));
  absl::Status error = absl::FailedPreconditionError(message);
  {
    absl::MutexLock lock(&mu_);
    health_ = error;
  }
  spdlog::error("{}", message);
  return error;
}

std::string AttestationManager::Target() const {
  return config_.server_addresses[server_index_ % config_.server_addresses.size()].HostPort();
}

void AttestationManager::NextServer() { ++server_index_; }

ServerConnection AttestationManager::Connection(std::vector<spiffe::Certificate> roots,
                                                bool insecure) const {
  return ServerConnection{.target = Target(),
                          .trust_domain = config_.trust_domain,
                          .bundle = std::move(roots),
                          .insecure_bootstrap = insecure,
                          .timeout = options_.server_timeout};
}

absl::StatusOr<AgentState> AttestationManager::AttestOnce(std::vector<spiffe::Certificate> roots,
                                                          bool insecure) {
  ServerConnection server = Connection(std::move(roots), insecure);
  if (attestor_ != nullptr) return AttestWithAttestor(server, *attestor_);
  return AttestWithJoinToken(server, join_token_);
}

void AttestationManager::Install(AgentState state, bool persist, bool fresh) {
  auto shared = std::make_shared<const AgentState>(std::move(state));
  if (persist) {
    absl::Status saved = store_.Save(*shared);
    if (!saved.ok()) {
      spdlog::error(
          "agent: could not store the agent SVID (a restart will have to attest "
          "again): {}",
          AsStd(saved.message()));
    }
  }
  last_bundle_ = shared->bundle;
  // Half-life measured from when we got the SVID: its notBefore is backdated (10 s at SPIRE and
  // tessera-server), which for short TTLs would put the half-life in the past and renew in a
  // loop. A stored SVID is judged by its notBefore, so a restarted agent past half-life renews.
  const Clock::TimePoint now = clock_->Now();
  const spiffe::Certificate& leaf = shared->svid.chain[0];
  const Clock::TimePoint start = fresh ? std::max(leaf.NotBefore(), now) : leaf.NotBefore();
  const SysDuration lifetime = std::max(leaf.NotAfter() - start, SysDuration::zero());
  const auto jitter = std::chrono::duration_cast<SysDuration>(lifetime * Uniform(0.0, 0.1));
  const Clock::TimePoint renew_at = start + lifetime / 2 - jitter;

  std::vector<Listener> listeners;
  {
    absl::MutexLock lock(&mu_);
    state_ = shared;
    renew_at_ = renew_at;
    health_ = absl::OkStatus();
    rejection_.reset();  // it was about the SVID just replaced
    listeners = listeners_;
  }
  spdlog::debug("agent: next renewal of the agent SVID at {}", FormatTime(renew_at));
  for (const Listener& fn : listeners) fn(shared);
}

void AttestationManager::Lose(const AgentState& state, std::string_view why) {
  const std::string& id = state.svid.id.str();
  std::string message =
      attestor_ == nullptr ? absl::StrCat("agent ", id, " was evicted or its SVID expired (",
                                          AsAbsl(why), "); ", kJoinTokenHint)
                           : absl::StrCat("agent ", id, " was refused by the server (", AsAbsl(why),
                                          "); it keeps trying to attest again; ", kX509PopHint);
  absl::Status cleared = store_.Clear();
  if (!cleared.ok()) {
    spdlog::error("agent: could not remove the stored state: {}", AsStd(cleared.message()));
  }
  {
    absl::MutexLock lock(&mu_);
    state_ = nullptr;
    rejection_.reset();
    health_ = absl::FailedPreconditionError(message);
  }
  spdlog::error("{}", message);
}

AttestationManager::Wake AttestationManager::Wait(const std::function<SysDuration()>& time_left,
                                                  const std::stop_token& stop, bool on_rejection) {
  std::stop_callback wake(stop, [this] {
    absl::MutexLock lock(&mu_);
    cv_.SignalAll();
  });
  absl::MutexLock lock(&mu_);
  while (true) {
    if (stop.stop_requested()) return Wake::kStopped;
    if (on_rejection && rejection_.has_value()) return Wake::kRejected;
    const SysDuration left = time_left();
    if (left <= SysDuration::zero()) return Wake::kTime;
    cv_.WaitWithTimeout(&mu_, absl::FromChrono(std::min<SysDuration>(left, kMaxSleep)));
  }
}

AttestationManager::Wake AttestationManager::WaitUntil(Clock::TimePoint deadline,
                                                       const std::stop_token& stop,
                                                       bool on_rejection) {
  return Wait([&] { return deadline - clock_->Now(); }, stop, on_rejection);
}

AttestationManager::Wake AttestationManager::WaitUntilSteady(SteadyTime deadline,
                                                             const std::stop_token& stop,
                                                             bool on_rejection) {
  return Wait(
      [&] {
        return std::chrono::duration_cast<SysDuration>(deadline - std::chrono::steady_clock::now());
      },
      stop, on_rejection);
}

void AttestationManager::RenewalLoop(std::stop_token stop) {
  Backoff backoff(options_.initial_backoff, options_.max_backoff);
  // After a failure: when to try again, instead of the schedule. Real time, not clock_: the
  // pause is about the server's recovery, not about certificate validity.
  std::optional<SteadyTime> retry_at;
  bool force_attest = false;  // RenewAgent was refused: try attesting instead
  while (true) {
    std::shared_ptr<const AgentState> state;
    Clock::TimePoint when;
    {
      absl::MutexLock lock(&mu_);
      state = state_;
      when = renew_at_;
    }
    if (state == nullptr && attestor_ == nullptr) {
      // Lost for good: nothing to do until an operator restarts the agent with a new token.
      if (WaitUntil(Clock::TimePoint::max(), stop, false) == Wake::kStopped) return;
      continue;
    }
    const bool on_rejection = state != nullptr;
    Wake wake = Wake::kTime;
    if (retry_at.has_value()) {
      wake = WaitUntilSteady(*retry_at, stop, on_rejection);
    } else if (state != nullptr && !force_attest) {
      wake = WaitUntil(when, stop, on_rejection);
    } else if (stop.stop_requested()) {
      wake = Wake::kStopped;
    }
    if (wake == Wake::kStopped) return;
    if (wake == Wake::kRejected) {
      absl::MutexLock lock(&mu_);
      rejection_.reset();
    }

    const Clock::TimePoint now = clock_->Now();
    const bool expired = state != nullptr && now >= state->svid.chain[0].NotAfter();
    if (expired && attestor_ == nullptr) {
      Lose(*state,
           absl::StrCat("its SVID expired at ", FormatTime(state->svid.chain[0].NotAfter())));
      continue;
    }
    const bool attest = attestor_ != nullptr &&
                        (state == nullptr || state->reattestable || expired || force_attest);
    const std::string target = Target();
    absl::StatusOr<AgentState> next =
        attest ? AttestOnce(state != nullptr ? state->bundle : last_bundle_, false)
               : RenewAgentSvid(Connection(state->bundle, false), *state);
    if (next.ok()) {
      spdlog::info("agent: {} {} with {} (SVID serial {}, valid until {})",
                   attest ? "attested again as" : "renewed the SVID of", next->svid.id.str(),
                   target, next->svid.chain[0].SerialDecimal(),
                   FormatTime(next->svid.chain[0].NotAfter()));
      Install(*std::move(next), /*persist=*/true, /*fresh=*/true);
      backoff.Reset();
      retry_at.reset();
      force_attest = false;
      continue;
    }
    const absl::Status& error = next.status();
    if (IsRefusal(error) && !attest && attestor_ != nullptr) {
      force_attest = true;  // the server no longer knows us; our attestor can fix that
      retry_at.reset();
      continue;
    }
    const auto delay = backoff.Next();
    retry_at = SteadyTime::clock::now() + delay;
    if (IsRefusal(error) && state != nullptr) {
      Lose(*state, AsStd(error.message()));
      continue;
    }
    spdlog::warn("agent: {} with {} failed (retrying in {} ms): {}",
                 attest ? "attestation" : "renewing the agent SVID", target, delay.count(),
                 AsStd(error.message()));
    NextServer();
    if (expired) {
      absl::MutexLock lock(&mu_);
      health_ = absl::UnavailableError(
          absl::StrCat("agent: the agent SVID of ", state->svid.id.str(), " expired at ",
                       FormatTime(state->svid.chain[0].NotAfter()),
                       " and attesting again fails: ", error.message()));
    }
  }
}

}  // namespace tessera::agent
