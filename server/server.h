// Server: tessera-server's composition root. From a validated ServerConfig it builds, in order,
// the datastore, the key manager and upstream authority, the CA (its journal and the own bundle
// kept in the datastore), the authorized-entry index (loaded from every stored entry and node),
// the authorizer, the SPIRE API services and Tessera's push service, the server's own TLS
// identity, one gRPC server listening on the TCP port (TLS; agents and remote admins) and on the
// admin Unix socket (local callers are admins), the optional health endpoint, and a background
// loop that rotates the CA, renews the server SVID at half-life, refreshes the TLS roots when a
// bundle changes and prunes expired join tokens.
//
// Lifetime: Start returns once both listeners accept calls; Shutdown (or the destructor) stops
// the listeners, ends open push streams, joins the loop and closes the datastore, in that order.
// Thread-safety: Shutdown may be called from any thread, once or more; the accessors are for
// tests and are safe while the server runs.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/health_server.h"
#include "grpcpp/server.h"
#include "server/api/authorizer.h"
#include "server/api/caller_roles.h"
#include "server/api/service_deps.h"
#include "server/api/tls_files.h"
#include "server/authorized/entry_index.h"
#include "server/ca/ca_manager.h"
#include "server/ca/key_manager.h"
#include "server/ca/upstream_authority.h"
#include "server/ca_storage.h"
#include "server/config.h"
#include "server/datastore/datastore.h"

namespace tessera::server {

class Services;

class Server final : private ChangeNotifier {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerConfig config,
                                                       const Clock& clock = RealClock::Get());
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void Shutdown();
  // Blocks until Shutdown has been called (from another thread or a signal handler thread).
  void Wait();

  // The TCP port the API listens on (the configured one, or the one chosen for port 0).
  int port() const { return port_; }
  // The health endpoint's port; 0 without `[health]`.
  uint16_t health_port() const { return health_ ? health_->port() : 0; }
  // OK once serving with an active CA; the reason otherwise.
  absl::Status Ready() const;
  // OK while the background loop keeps ticking.
  absl::Status Live() const;

  const ServerConfig& config() const { return config_; }
  ca::CaManager& ca() { return *ca_; }
  DataStore& datastore() { return *datastore_; }

 private:
  Server(ServerConfig config, const Clock& clock);

  absl::Status Init();
  absl::Status InitCa();
  absl::Status InitIndex();
  absl::Status InitTls();
  absl::Status InitGrpc();

  // ChangeNotifier: fans out to the push service and marks the TLS roots stale.
  void EntriesChanged(const EntryIndex::AffectedAgents& agents) override;
  void BundleChanged() override;
  void AgentRemoved(const spiffe::SpiffeId& agent) override;

  // Roots for client certificates: the own CA bundle and every federated bundle.
  absl::StatusOr<std::vector<spiffe::Certificate>> TrustedRoots() const;
  // X.509 authorities of `td` for IdentifyCaller: the CA's own, or a stored federated bundle.
  std::optional<std::vector<spiffe::Certificate>> AuthoritiesOf(
      const spiffe::TrustDomain& td) const;
  // Issues a server SVID and publishes it with the current roots.
  absl::Status PublishTls(bool new_svid);

  void RefreshOwnSequence();
  void Loop(std::stop_token stop);
  void Tick();

  const ServerConfig config_;
  const Clock& clock_;

  std::unique_ptr<DataStore> datastore_;
  std::unique_ptr<ca::KeyManager> key_manager_;
  std::unique_ptr<ca::UpstreamAuthority> upstream_;
  std::unique_ptr<DataStoreJournalStore> journal_store_;
  std::unique_ptr<DataStoreBundlePublisher> publisher_;
  std::unique_ptr<ca::CaManager> ca_;
  std::unique_ptr<EntryIndex> index_;
  std::unique_ptr<RegistryCallerRoles> roles_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<Services> services_;
  std::unique_ptr<TlsFiles> tls_files_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<HealthServer> health_;
  int port_ = 0;

  // Loop state: only the loop thread touches these after Start.
  std::optional<ca::SignedX509Svid> server_svid_;
  std::optional<spiffe::PrivateKey> server_key_;
  Clock::TimePoint next_token_prune_{};

  std::atomic<bool> roots_stale_ = false;
  // The stored own bundle's sequence number, refreshed on every bundle change (push messages).
  std::atomic<uint64_t> own_sequence_ = 0;
  std::atomic<int64_t> last_tick_unix_ = 0;
  std::atomic<bool> serving_ = false;

  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::jthread loop_;
};

}  // namespace tessera::server
