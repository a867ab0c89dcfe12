// WorkloadApiClient: an embeddable client of the SPIFFE Workload API (SPIFFE-FACTS §4), for
// workloads, proxies and tools that get their identity from a local agent (tessera-agent or
// spire-agent). It fetches or watches X509-SVIDs with their parsed chains and keys and the X.509
// bundles of every trust domain, fetches JWT-SVIDs and JWT bundles, and asks the agent to validate
// a JWT-SVID. Every call carries the mandatory `workload.spiffe.io: true` header; unary calls and
// one-shot fetches run under a deadline; every failure is an absl::Status with the gRPC code and
// the server's message ("workload api FetchJWTSVID: no identity issued").
//
// The endpoint is given explicitly or taken from SPIFFE_ENDPOINT_SOCKET (see
// ResolveWorkloadApiAddress).
//
// Thread-safety: a WorkloadApiClient is immutable after creation and safe for concurrent use; any
// number of threads may fetch and watch at once over its single channel. A Watch* call blocks the
// thread that makes it until its stop token is triggered (or the server answers with a code that
// must not be retried) and runs its callback on that thread, one call at a time; the client must
// outlive every running watch. The address functions are stateless, except that
// ResolveWorkloadApiAddress reads the environment (do not setenv concurrently).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "spiffe/bundle.h"
#include "spiffe/id.h"
#include "spiffe/jwt_svid.h"
#include "spiffe/x509_verify.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace tessera::spiffe {

// The environment variable clients fall back to when no address is configured.
inline constexpr std::string_view kEndpointSocketEnvVar = "SPIFFE_ENDPOINT_SOCKET";
// The metadata every Workload API request must carry (value case-sensitive).
inline constexpr std::string_view kWorkloadApiHeaderKey = "workload.spiffe.io";
inline constexpr std::string_view kWorkloadApiHeaderValue = "true";

// Where the Workload API listens.
struct WorkloadApiAddress {
  enum class Transport { kUnix, kTcp };
  Transport transport = Transport::kUnix;
  // kUnix: the socket's absolute filesystem path (percent-decoded).
  std::string socket_path;
  // kTcp: the IP literal (without brackets) and the port.
  std::string host;
  uint16_t port = 0;
  // The target to give gRPC: "unix:///run/agent.sock", "ipv4:127.0.0.1:8000", "ipv6:[::1]:8000".
  std::string grpc_target;
};

// The endpoint URI as SPIFFE_ENDPOINT_SOCKET holds it (RFC 3986, scheme case-insensitive):
//  - unix: an empty or absent authority and an absolute path, nothing else: "unix:///path" or
//    "unix:/path". Percent-escapes in the path are decoded. A host ("unix://host/path"), user
//    info, a relative path ("unix:path"), a query or a fragment is refused;
//  - tcp: an IP literal host and a port, nothing else: "tcp://127.0.0.1:8000",
//    "tcp://[::1]:8000". A host name, a missing port, a path, a query or a fragment is refused.
// Any other form is InvalidArgument naming what is wrong.
absl::StatusOr<WorkloadApiAddress> ParseEndpointSocketUri(std::string_view uri);

// An address given by a user or a config file: such a URI, or an absolute socket path
// ("/run/spire/agent.sock", taken literally).
absl::StatusOr<WorkloadApiAddress> ParseWorkloadApiAddress(std::string_view address);

// `address` (ParseWorkloadApiAddress) when it is not empty, else the value of
// SPIFFE_ENDPOINT_SOCKET (ParseEndpointSocketUri: a URI, not a bare path, as the standard says).
// FailedPrecondition when neither is set.
absl::StatusOr<WorkloadApiAddress> ResolveWorkloadApiAddress(std::string_view address);

// The same with the environment variable's value passed in (nullopt: unset), for callers and
// tests that do not want to read the process environment.
absl::StatusOr<WorkloadApiAddress> ResolveWorkloadApiAddress(
    std::string_view address, std::optional<std::string_view> endpoint_socket_env);

// One X509-SVID of the caller: chain (leaf first) and key, checked by ParseX509Svid (leaf
// profile, intermediates are CAs, the key matches the leaf).
struct WorkloadX509Svid {
  X509Svid svid;
  // The operator's label for this identity ("" when none); unique within one X509Context.
  std::string hint;
};

// The complete X.509 state the Workload API gives a caller at one moment.
struct X509Context {
  // Never empty; svids[0] is the default identity. An SVID whose non-empty hint repeats an
  // earlier one's is dropped (the first wins, as the standard asks).
  std::vector<WorkloadX509Svid> svids;
  // The X.509 authorities of the SVIDs' own trust domains (from the first SVID of each) and of
  // every federated trust domain, one bundle per trust domain. A federated entry naming one of
  // the SVIDs' own trust domains is ignored; an empty federated entry means that trust domain is
  // no longer trusted, so it has no bundle here.
  BundleSet bundles;

  const WorkloadX509Svid& default_svid() const { return svids.front(); }
};

// A JWT-SVID as the Workload API returned it: parsed, but not validated by the client (the agent
// that minted it is trusted; use ValidateJwtSvid or ParseAndValidateJwtSvid on tokens from peers).
struct WorkloadJwtSvid {
  JwtSvid svid;
  std::string hint;
};

// What ValidateJWTSVID answered for a valid token.
struct ValidatedJwtSvid {
  SpiffeId spiffe_id;
  // The token's claims as the agent returned them (a JSON object). Whole numbers that fit an
  // int64 (e.g. "exp") are integers; other numbers are doubles, as protobuf's Struct carries them.
  nlohmann::json claims;
};

struct WorkloadApiClientOptions {
  // ParseWorkloadApiAddress's forms; empty: SPIFFE_ENDPOINT_SOCKET.
  std::string address;
  // Deadline of each unary call and of each one-shot fetch of a streaming RPC.
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  // Wait (until the deadline) for an endpoint that is not up yet instead of failing at once
  // with Unavailable. Fetches only; watches retry on their own.
  bool wait_for_ready = false;
  // Watches retry after an error with exponential backoff from `initial_backoff`, doubling up to
  // `max_backoff` (each wait randomly shortened by up to a fifth, so that a fleet of clients does
  // not reconnect in lockstep). A message received resets it. gRPC's own reconnection backoff is
  // set to the same bounds, so a restarted agent is found within max_backoff.
  std::chrono::milliseconds initial_backoff = std::chrono::seconds(1);
  std::chrono::milliseconds max_backoff = std::chrono::seconds(30);
};

namespace internal {
struct WorkloadStub;
}  // namespace internal

class WorkloadApiClient {
 public:
  // Called with each complete new state, or with an error (see the Watch* methods).
  using X509ContextCallback = std::function<void(const absl::StatusOr<X509Context>&)>;
  using BundlesCallback = std::function<void(const absl::StatusOr<BundleSet>&)>;

  // Resolves the address (ResolveWorkloadApiAddress) and makes the channel; nothing connects
  // until the first call.
  static absl::StatusOr<std::unique_ptr<WorkloadApiClient>> Create(
      WorkloadApiClientOptions options = {});
  // Over a channel the caller made (e.g. an in-process one); `options.address` is ignored.
  static std::unique_ptr<WorkloadApiClient> CreateForChannel(
      const std::shared_ptr<grpc::Channel>& channel, WorkloadApiClientOptions options = {});

  ~WorkloadApiClient();
  WorkloadApiClient(const WorkloadApiClient&) = delete;
  WorkloadApiClient& operator=(const WorkloadApiClient&) = delete;

  // The gRPC target in use ("" for CreateForChannel).
  const std::string& target() const { return target_; }

  // FetchX509SVID's first response. A response with a missing mandatory field, an SVID that does
  // not parse, or a bundle map key that is not a trust domain is Internal ("malformed response").
  absl::StatusOr<X509Context> FetchX509Context() const;
  // FetchX509SVID as a stream: `callback` gets every complete new state, in order. Errors go to
  // the callback too, and do not revoke the last state it got. A stream the server closes
  // cleanly after sending is reopened at once; Unavailable, PermissionDenied (no identity, for
  // now), any other code, or a stream closed before its first message, are followed by a
  // reconnection with backoff; a malformed message is reported and skipped, the stream stays
  // open. InvalidArgument and Unimplemented are not retried: after the callback has seen them,
  // the watch returns that status. Returns OK once `stop` is triggered (promptly: the open
  // stream is cancelled and a backoff wait interrupted).
  absl::Status WatchX509Context(const X509ContextCallback& callback,
                                const std::stop_token& stop) const;

  // FetchX509Bundles: the X.509 authorities of every trust domain the caller may trust (its own
  // and federated ones). An empty bundle map is malformed; an empty entry (trust withdrawn) is
  // left out.
  absl::StatusOr<BundleSet> FetchX509Bundles() const;
  absl::Status WatchX509Bundles(const BundlesCallback& callback, const std::stop_token& stop) const;

  // FetchJWTSVID for `audience` (at least one, none empty: InvalidArgument "audience must be
  // specified" before any call), restricted to `spiffe_id` when given. FetchJwtSvid returns the
  // first (default) identity's token, FetchJwtSvids all of them (a repeated non-empty hint drops
  // the later token). A token whose subject differs from its spiffe_id field is malformed.
  absl::StatusOr<WorkloadJwtSvid> FetchJwtSvid(
      const std::vector<std::string>& audience,
      const std::optional<SpiffeId>& spiffe_id = std::nullopt) const;
  absl::StatusOr<std::vector<WorkloadJwtSvid>> FetchJwtSvids(
      const std::vector<std::string>& audience,
      const std::optional<SpiffeId>& spiffe_id = std::nullopt) const;

  // FetchJWTBundles: the JWT authorities (JWKS) of every trust domain the caller may trust.
  absl::StatusOr<BundleSet> FetchJwtBundles() const;
  absl::Status WatchJwtBundles(const BundlesCallback& callback, const std::stop_token& stop) const;

  // ValidateJWTSVID: the agent validates `token` for `audience` (both required, checked here
  // first). An invalid token is the agent's InvalidArgument with its reason.
  absl::StatusOr<ValidatedJwtSvid> ValidateJwtSvid(std::string_view token,
                                                   std::string_view audience) const;

 private:
  WorkloadApiClient(std::string target, const std::shared_ptr<grpc::Channel>& channel,
                    WorkloadApiClientOptions options);

  // Immutable after construction.
  const std::string target_;
  const WorkloadApiClientOptions options_;
  const std::unique_ptr<internal::WorkloadStub> stub_;
};

}  // namespace tessera::spiffe
