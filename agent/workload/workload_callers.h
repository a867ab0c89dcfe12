// WorkloadCallers: "who is calling?" for every gRPC service served on the agent's Workload API
// socket (SpiffeWorkloadAPI here, Envoy SDS next to it). Given a call, it finds the connection's
// pinned caller (see caller_table.h), runs the workload attestors and answers with the caller's
// selectors, having checked just before answering that the process which connected is still the
// one running (DESIGN.md, data flow 2). Services match the selectors against the cache.
//
// The call never blocks the thread that asks: `done` runs later, on one of the agent's
// attestation threads, or inline when the answer is known at once (an unknown connection, the
// agent shutting down) or when the returned stop source is triggered.
//
// Thread-safety: implementations are safe for concurrent use from gRPC's callback threads.
#pragma once

#include <sys/types.h>

#include <functional>
#include <stop_token>

#include "absl/status/statusor.h"
#include "spiffe/selector.h"

namespace grpc {
class CallbackServerContext;
}  // namespace grpc

namespace tessera::agent {

// The caller of one call, as attested.
struct AttestedCaller {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  // The union of what every attestor that answered in time returned (possibly empty).
  spiffe::SelectorSet selectors;
};

class WorkloadCallers {
 public:
  // Receives the attested caller, or the status to end the call with:
  //   Unauthenticated "could not verify existence of the original caller: ..." when the process
  //     that connected has exited (its pid may belong to another process by now), as SPIRE;
  //   Internal "caller of connection ... is unknown to the agent" for a connection the agent did
  //     not accept itself;
  //   Unavailable "agent is shutting down";
  //   Cancelled "attestation cancelled" after the returned stop source was triggered.
  // A failing or late attestor is not an error: it is logged and contributes no selectors.
  using Callback = std::function<void(absl::StatusOr<AttestedCaller>)>;

  virtual ~WorkloadCallers() = default;

  // Attests the caller of `context`'s call. `context` is only read before Attest returns.
  // `done` runs exactly once. Trigger the returned stop source when the call is cancelled: the
  // attestors are told to stop and `done` gets Cancelled promptly (on the triggering thread).
  virtual std::stop_source Attest(grpc::CallbackServerContext* context, Callback done) = 0;
};

}  // namespace tessera::agent
