// Test-only harness for the server API services: one process holding what the composition root
// would — a SQLite store in a temporary directory, a real CaManager (keys in memory) on a
// FakeClock set to the real time (gRPC judges TLS validity by the real clock), the
// authorized-entry index, RegistryCallerRoles and the Authorizer — and a real gRPC server with the
// TLS port on 127.0.0.1 and the admin Unix socket. Clients: AdminChannel (the socket: always
// admin), TlsChannel (TCP, with or without a client certificate), and AddAgent to have an attested
// agent whose SVID passes the agent check.
// Not thread-safe beyond what gRPC does with the services; one fixture per test.
#pragma once

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "server/api/authorizer.h"
#include "server/api/caller_roles.h"
#include "server/api/credentials.h"
#include "server/api/service_deps.h"
#include "server/api/tls_files.h"
#include "server/authorized/entry_index.h"
#include "server/ca/ca_manager.h"
#include "server/ca/journal.h"
#include "server/ca/key_manager.h"
#include "server/datastore/datastore_test_util.h"
#include "spiffe/grpc_tls.h"

namespace tessera::server::testing {

// Records every announcement, for assertions.
class RecordingNotifier final : public ChangeNotifier {
 public:
  void EntriesChanged(const EntryIndex::AffectedAgents& agents) override {
    absl::MutexLock lock(&mu_);
    for (const auto& agent : agents) agents_.push_back(agent.str());
    ++entry_changes_;
  }
  void BundleChanged() override {
    absl::MutexLock lock(&mu_);
    ++bundle_changes_;
  }
  void AgentRemoved(const spiffe::SpiffeId& agent) override {
    absl::MutexLock lock(&mu_);
    removed_.push_back(agent.str());
  }
  // Every agent announced as removed, in order.
  std::vector<std::string> removed() const {
    absl::MutexLock lock(&mu_);
    return removed_;
  }
  // Every agent announced so far, in order, with repeats.
  std::vector<std::string> agents() const {
    absl::MutexLock lock(&mu_);
    return agents_;
  }
  int entry_changes() const {
    absl::MutexLock lock(&mu_);
    return entry_changes_;
  }
  int bundle_changes() const {
    absl::MutexLock lock(&mu_);
    return bundle_changes_;
  }
  void Clear() {
    absl::MutexLock lock(&mu_);
    agents_.clear();
    removed_.clear();
    entry_changes_ = 0;
    bundle_changes_ = 0;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> agents_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> removed_ ABSL_GUARDED_BY(mu_);
  int entry_changes_ ABSL_GUARDED_BY(mu_) = 0;
  int bundle_changes_ ABSL_GUARDED_BY(mu_) = 0;
};

class ServiceTest : public DataStoreTest {
 protected:
  static constexpr std::string_view kServerId = "spiffe://example.org/spire/server";

  void SetUp() override {
    DataStoreTest::SetUp();
    if (HasFatalFailure()) return;
    clock_.Set(std::chrono::system_clock::now());
    ca_ = std::make_unique<ca::CaManager>(ca_config_,
                                          ca::CaManagerDeps{.clock = &clock_,
                                                            .key_manager = &key_manager_,
                                                            .journal_store = &journal_store_,
                                                            .publisher = nullptr,
                                                            .upstream = nullptr});
    ASSERT_TRUE(ca_->Initialize().ok());
    // The own bundle in the store, as the server's BundlePublisher keeps it.
    Bundle own;
    own.set_trust_domain("example.org");
    for (const auto& cert : ca_->bundle()->bundle.x509_authorities()) {
      own.add_x509_authorities()->set_asn1(cert.ToDer());
    }
    own.set_sequence_number(1);
    ASSERT_TRUE(store_->SetBundle(own).ok());

    index_ = std::make_unique<EntryIndex>(Td("example.org"), clock_);
    roles_ = std::make_unique<RegistryCallerRoles>(*store_);
    authorizer_ = std::make_unique<Authorizer>(
        admin_ids_,
        [this](const spiffe::TrustDomain& td) -> std::optional<std::vector<spiffe::Certificate>> {
          if (td != Td("example.org")) return std::nullopt;
          return ca_->bundle()->bundle.x509_authorities();
        },
        *roles_, clock_);
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    DataStoreTest::TearDown();
  }

  ServiceDeps deps() {
    return ServiceDeps{.trust_domain = Td("example.org"),
                       .datastore = store_.get(),
                       .index = index_.get(),
                       .authorizer = authorizer_.get(),
                       .notifier = &notifier_,
                       .clock = &clock_,
                       .ca = ca_.get()};
  }

  // Starts the gRPC server with `services` on the TLS port and the admin socket. Once per test.
  void StartServer(std::initializer_list<grpc::Service*> services) {
    auto server_svid = ca_->IssueServerSvid();
    ASSERT_TRUE(server_svid.ok()) << server_svid.status();
    tls_files_ = std::make_unique<TlsFiles>(dir_ / "tls");
    ASSERT_TRUE(tls_files_
                    ->Publish(server_svid->key, server_svid->svid.chain,
                              ca_->bundle()->bundle.x509_authorities())
                    .ok());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", ServerTlsCredentials(*tls_files_), &port_);
    builder.AddListeningPort("unix:" + socket_path(), grpc::InsecureServerCredentials());
    for (grpc::Service* service : services) builder.RegisterService(service);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  std::string socket_path() const { return (dir_ / "api.sock").string(); }

  // The admin socket: every caller there is local, hence admin.
  std::shared_ptr<grpc::Channel> AdminChannel() {
    return grpc::CreateChannel("unix:" + socket_path(), grpc::InsecureChannelCredentials());
  }

  // TCP with TLS, the server verified as spiffe://example.org/spire/server against the CA's
  // bundle; with `identity` the client presents that certificate.
  std::shared_ptr<grpc::Channel> TlsChannel(
      const std::optional<spiffe::ClientIdentity>& identity = std::nullopt) {
    auto creds = spiffe::SpiffeTlsChannelCredentials(ca_->bundle()->bundle.x509_authorities(),
                                                     Id(kServerId), identity);
    EXPECT_TRUE(creds.ok()) << creds.status();
    // A fresh channel per identity: gRPC would otherwise reuse one TLS session for all.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), *creds, args);
  }

  // An X509-SVID for `id` signed by the CA (registered nowhere).
  spiffe::ClientIdentity IdentityFor(std::string_view id,
                                     std::chrono::seconds ttl = std::chrono::seconds(0)) {
    spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
    ca::SignedX509Svid svid = ca_->SignX509Svid(key.public_key(), Id(id), {}, ttl).value();
    return spiffe::ClientIdentity{key, svid.chain};
  }

  // An attested agent, as AttestAgent leaves it: an agent SVID from the CA, a node record with
  // its serial and `selectors`, and the node in the index. Returns its identity for TlsChannel.
  spiffe::ClientIdentity AddAgent(std::string_view agent_id, spiffe::SelectorSet selectors = {}) {
    // value(): a failure here is a broken harness, and aborts the test loudly.
    spiffe::PrivateKey key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
    ca::SignedX509Svid svid =
        ca_->SignAgentSvid(key.public_key(), Id(agent_id), std::chrono::seconds(0)).value();
    AttestedNode node = MakeNode(agent_id, svid.chain[0].SerialDecimal());
    node.cert_not_after = std::chrono::system_clock::to_time_t(svid.expires_at);
    node.selectors = selectors;
    EXPECT_TRUE(store_->CreateAttestedNode(node).ok());
    index_->UpsertNode(Id(agent_id), selectors);
    return spiffe::ClientIdentity{key, svid.chain};
  }

  ca::CaConfig ca_config_{.trust_domain = Td("example.org")};
  std::vector<spiffe::SpiffeId> admin_ids_;  // set before SetUp runs to have admin IDs
  ca::MemoryKeyManager key_manager_;
  ca::MemoryJournalStore journal_store_;
  std::unique_ptr<ca::CaManager> ca_;
  RecordingNotifier notifier_;
  std::unique_ptr<EntryIndex> index_;
  std::unique_ptr<RegistryCallerRoles> roles_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<TlsFiles> tls_files_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace tessera::server::testing
