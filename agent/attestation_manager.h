// AttestationManager: owns the agent's own identity (issue 4, "Node attestation and the agent
// SVID"). It gets an agent SVID, keeps it on disk, renews it, and notices when it is gone.
//
//  - Start: the SVID stored in <data_dir>/agent_state.pem is used while it has not expired (no
//    server contact, no join token needed). Otherwise the agent attests (join token or x509pop)
//    and stores the result (0600). At first contact the server is verified against the bootstrap
//    bundle (trust_bundle_path, trust_bundle_url, or nothing with insecure_bootstrap); once a
//    bundle is stored, that one is trusted instead, as spire-agent does: a restarted agent trusts
//    what the server last told it, not the bootstrap file.
//  - Renewal (StartRenewal): at half-life minus up to 10% jitter. An agent the server marked
//    reattestable (x509pop) attests again with a fresh key; others call RenewAgent over mTLS
//    (as spire-agent's rotator). An unreachable server is retried with capped exponential
//    backoff and jitter while the SVID is valid.
//  - Loss: when the SVID expired, or the server refused it (RenewAgent PERMISSION_DENIED or
//    NOT_FOUND, or a ReportRejected that RenewAgent confirms), an agent with a node attestor that
//    may re-attest (x509pop) attests again by itself; a join-token agent cannot (a token is
//    single-use), so its stored state is cleared, CurrentAgentState() becomes nullptr, and the
//    log (once, at error) and Health() say that an operator must issue a new join token.
//    ReportRejected is a hint, never proof: a join-token agent first checks with RenewAgent
//    (success means the report was stale, and yields a fresh SVID); a NOT_ACTIVE report naming a
//    serial other than the current SVID's (a call made with an SVID already replaced) is ignored;
//    codes other than PERMISSION_DENIED, UNAUTHENTICATED and NOT_FOUND are ignored.
//
// Listeners (OnAgentStateChange) are called with each new state, never with nullptr (when the
// identity is lost, CurrentAgentState() says so and Health() explains), and never with a lock
// held: the first state on the thread that calls Start, later ones on the renewal thread.
//
// Thread-safety: Start, StartRenewal and Shutdown are called by the owner, in that order, from
// one thread. CurrentAgentState, OnAgentStateChange, ReportRejected and Health are safe from any
// thread (ReportRejected only records the report and wakes the renewal thread; it never blocks
// on I/O, so gRPC callback threads may call it).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/agent_identity.h"
#include "agent/bootstrap_bundle.h"
#include "agent/config.h"
#include "agent/node_attestation.h"
#include "agent/state_store.h"
#include "attestors/node_attestor.h"
#include "common/clock.h"

namespace tessera::agent {

// Timing knobs; the defaults are for production, tests shorten them.
struct AttestationOptions {
  // Retry delays after a failure: the first, doubling up to the cap; each actual delay is drawn
  // uniformly from [delay/2, delay].
  std::chrono::milliseconds initial_backoff = std::chrono::seconds(1);
  std::chrono::milliseconds max_backoff = std::chrono::seconds(30);
  // Deadline of one exchange with the server (AttestAgent + GetBundle, or RenewAgent).
  std::chrono::seconds server_timeout = std::chrono::seconds(30);
  BundleFetchOptions bundle_fetch;
};

class AttestationManager final : public AgentIdentitySource {
 public:
  // `join_token` overrides config.join_token when non-empty (the --join-token flag). Fails for
  // an x509pop configuration whose files cannot be loaded. `clock` judges SVID expiry and the
  // renewal time (RealClock when null).
  static absl::StatusOr<std::unique_ptr<AttestationManager>> Create(
      const AgentConfig& config, std::string join_token,
      std::shared_ptr<const Clock> clock = nullptr);
  static absl::StatusOr<std::unique_ptr<AttestationManager>> Create(
      const AgentConfig& config, std::string join_token, AttestationOptions options,
      std::shared_ptr<const Clock> clock = nullptr);

  ~AttestationManager() override;
  AttestationManager(const AttestationManager&) = delete;
  AttestationManager& operator=(const AttestationManager&) = delete;

  // Blocks until the agent has an identity (see the file comment). An unreachable server (or
  // trust_bundle_url) is retried with backoff, each failure logged. Failures retrying cannot fix
  // return at once, FailedPrecondition with what the operator must do: no join token, a token
  // the server refused (unknown, used, expired), x509pop refused, a bad bootstrap bundle.
  // Cancelled when `stop` is requested.
  absl::Status Start(std::stop_token stop);

  // Starts the background thread that renews, re-attests and detects loss. After a successful
  // Start; at most once.
  void StartRenewal();

  // Stops and joins the renewal thread. Idempotent; the destructor calls it.
  void Shutdown();

  // OK while the agent holds a valid SVID. Unavailable before the first attestation and while
  // an expired SVID cannot be replaced because the server is unreachable; FailedPrecondition
  // when an operator must act, with what to do.
  absl::Status Health() const;

  // AgentIdentitySource.
  std::shared_ptr<const AgentState> CurrentAgentState() const override;
  void OnAgentStateChange(std::function<void(std::shared_ptr<const AgentState>)> fn) override;
  void ReportRejected(const absl::Status& status) override;

  // Where the state is kept (<data_dir>/agent_state.pem).
  std::filesystem::path state_path() const { return store_.path(); }

 private:
  using Listener = std::function<void(std::shared_ptr<const AgentState>)>;
  enum class Wake { kTime, kRejected, kStopped };

  AttestationManager(const AgentConfig& config, std::string join_token, AttestationOptions options,
                     std::shared_ptr<const Clock> clock,
                     std::unique_ptr<attestors::AgentNodeAttestor> attestor);

  std::string Target() const;  // the server address in use
  void NextServer();           // fail over to the next address
  ServerConnection Connection(std::vector<spiffe::Certificate> roots, bool insecure) const;
  // One AttestAgent with the configured attestor against the current server address.
  absl::StatusOr<AgentState> AttestOnce(std::vector<spiffe::Certificate> roots, bool insecure);
  absl::StatusOr<std::vector<spiffe::Certificate>> BootstrapRoots(std::stop_token stop);
  // Stores (when `persist`), publishes, schedules the renewal and notifies. `fresh`: just
  // issued (rather than loaded from disk).
  void Install(AgentState state, bool persist, bool fresh);
  // The server refused the identity: forget it, say what the operator must do.
  void Lose(const AgentState& state, std::string_view why);
  // A failure of Start that retrying cannot fix: FailedPrecondition with `hint`, also in Health.
  absl::Status StartError(const absl::Status& status, std::string_view hint);
  void RenewalLoop(std::stop_token stop);
  // Sleeps until `time_left` says the time has come, a stop request, or (when `on_rejection`) a
  // rejection. WaitUntil's deadline is by clock_ (renewal times); WaitUntilSteady's is real time
  // (retry pauses).
  Wake Wait(const std::function<std::chrono::system_clock::duration()>& time_left,
            const std::stop_token& stop, bool on_rejection);
  Wake WaitUntil(Clock::TimePoint deadline, const std::stop_token& stop, bool on_rejection);
  Wake WaitUntilSteady(std::chrono::steady_clock::time_point deadline, const std::stop_token& stop,
                       bool on_rejection);

  // Fixed at construction.
  const AgentConfig config_;
  const std::string join_token_;
  const AttestationOptions options_;
  const std::shared_ptr<const Clock> clock_;
  const StateStore store_;
  // x509pop's agent half; null for join_token. Used by Start, then only by the renewal thread.
  const std::unique_ptr<attestors::AgentNodeAttestor> attestor_;

  // Owned by whichever of Start / the renewal thread runs (never both at once).
  size_t server_index_ = 0;
  // The roots the server is verified against when there is no current state to take them from
  // (after a loss): the last bundle received.
  std::vector<spiffe::Certificate> last_bundle_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::shared_ptr<const AgentState> state_ ABSL_GUARDED_BY(mu_);
  Clock::TimePoint renew_at_ ABSL_GUARDED_BY(mu_);
  absl::Status health_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> rejection_ ABSL_GUARDED_BY(mu_);
  std::vector<Listener> listeners_ ABSL_GUARDED_BY(mu_);

  std::jthread renewal_;
};

}  // namespace tessera::agent
