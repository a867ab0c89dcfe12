// Test harness for the agent: a real tessera-server in the same process (TLS on 127.0.0.1:<free
// port>, the admin socket, SQLite in a temp dir), join tokens, registration entries created over
// the admin socket (so the server's index and push notifications see them exactly as with the
// CLI), and a fixed agent identity for components that only borrow one.
//
// Header-only so every agent test binary can include it; link tessera_server (agent's
// TEST_DEPS already does).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_identity.h"
#include "agent/node_attestation.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "spiffe/x509_test_util.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"

namespace tessera::agent::testing {

// Entry fields a test sets; the rest keep the server's defaults.
struct TestEntry {
  std::string spiffe_path;  // "/web"
  std::string parent_path;  // "/spire/agent/join_token/<token>"
  std::vector<std::string> selectors = {"unix:uid:1000"};
  int32_t x509_svid_ttl = 0;  // seconds; 0 = server default
  int32_t jwt_svid_ttl = 0;
  std::vector<std::string> federates_with;
  std::string hint;
};

// A tessera-server for one test. Start() may be called again after Stop() (same data dir and
// port when `keep_port`): the restart keeps the CA, entries and agents.
class TestServer {
 public:
  explicit TestServer(std::filesystem::path dir) : dir_(std::move(dir)) {}
  ~TestServer() { Stop(); }

  // `tweak` adjusts the configuration before each start (TTLs, x509pop).
  void set_tweak(std::function<void(server::ServerConfig&)> tweak) { tweak_ = std::move(tweak); }

  void Start() {
    server::ServerConfig config(spiffe::testing::Td("example.org"));
    config.bind_address = "127.0.0.1";
    config.bind_port = port_;
    config.data_dir = dir_ / "server";
    config.socket_path = dir_ / "server-run" / "api.sock";
    config.datastore.sqlite_path = config.data_dir / "datastore.sqlite3";
    config.key_manager.directory = config.data_dir / "keys";
    config.join_token_enabled = true;
    if (tweak_) tweak_(config);
    auto server = server::Server::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    port_ = server_->port();
    socket_path_ = config.socket_path;
  }
  // Shuts the server down (agents then see it as unreachable); the port is kept for Start().
  void Stop() {
    if (server_ == nullptr) return;
    server_->Shutdown();
    server_->Wait();
    server_.reset();
  }

  server::Server& server() { return *server_; }
  uint16_t port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

  // The roots an agent bootstraps from (the CA's current bundle).
  std::vector<spiffe::Certificate> Roots() const {
    return server_->ca().bundle()->bundle.x509_authorities();
  }
  ServerConnection Connection() const {
    return ServerConnection{.target = target(),
                            .trust_domain = spiffe::testing::Td("example.org"),
                            .bundle = Roots(),
                            .timeout = std::chrono::seconds(10)};
  }

  std::string NewToken(std::chrono::seconds ttl = std::chrono::seconds(600)) {
    std::string token = "token-" + std::to_string(++tokens_) + "-" + std::to_string(port_);
    server::JoinToken record{
        .token = token,
        .expires_at = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + ttl)};
    EXPECT_TRUE(server_->datastore().CreateJoinToken(record).ok());
    return token;
  }

  // Attests a new agent with a fresh join token; its entries are parented to
  // "/spire/agent/join_token/<token>".
  absl::StatusOr<AgentState> AttestAgent(std::string* token_out = nullptr) {
    std::string token = NewToken();
    if (token_out != nullptr) *token_out = token;
    return AttestWithJoinToken(Connection(), token);
  }

  std::shared_ptr<grpc::Channel> Admin() const {
    return grpc::CreateChannel("unix:" + socket_path_.string(), grpc::InsecureChannelCredentials());
  }

  // Creates `entry` over the admin socket; returns its ID ("" and a test failure on error).
  std::string CreateEntry(const TestEntry& entry) {
    namespace entryv1 = ::spire::api::server::entry::v1;
    entryv1::BatchCreateEntryRequest req;
    auto* e = req.add_entries();
    e->mutable_spiffe_id()->set_trust_domain("example.org");
    e->mutable_spiffe_id()->set_path(entry.spiffe_path);
    e->mutable_parent_id()->set_trust_domain("example.org");
    e->mutable_parent_id()->set_path(entry.parent_path);
    for (const std::string& text : entry.selectors) {
      auto colon = text.find(':');
      auto* sel = e->add_selectors();
      sel->set_type(text.substr(0, colon));
      sel->set_value(text.substr(colon + 1));
    }
    e->set_x509_svid_ttl(entry.x509_svid_ttl);
    e->set_jwt_svid_ttl(entry.jwt_svid_ttl);
    for (const std::string& td : entry.federates_with) e->add_federates_with(td);
    e->set_hint(entry.hint);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    entryv1::BatchCreateEntryResponse resp;
    grpc::Status status = entryv1::Entry::NewStub(Admin())->BatchCreateEntry(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (!status.ok() || resp.results_size() != 1) return "";
    EXPECT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
    return resp.results(0).entry().id();
  }

  // Adds a federated bundle for `trust_domain` holding `root` over the admin socket.
  void CreateFederatedBundle(std::string_view trust_domain, const spiffe::Certificate& root) {
    namespace bundlev1 = ::spire::api::server::bundle::v1;
    bundlev1::BatchCreateFederatedBundleRequest req;
    auto* bundle = req.add_bundle();
    bundle->set_trust_domain(std::string(trust_domain));
    bundle->add_x509_authorities()->set_asn1(root.ToDer());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    bundlev1::BatchCreateFederatedBundleResponse resp;
    grpc::Status status =
        bundlev1::Bundle::NewStub(Admin())->BatchCreateFederatedBundle(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
  }

  void DeleteEntry(const std::string& id) {
    namespace entryv1 = ::spire::api::server::entry::v1;
    entryv1::BatchDeleteEntryRequest req;
    req.add_ids(id);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    entryv1::BatchDeleteEntryResponse resp;
    grpc::Status status = entryv1::Entry::NewStub(Admin())->BatchDeleteEntry(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }

 private:
  std::filesystem::path dir_;
  std::function<void(server::ServerConfig&)> tweak_;
  std::unique_ptr<server::Server> server_;
  uint16_t port_ = 0;
  std::filesystem::path socket_path_;
  int tokens_ = 0;
};

// An AgentIdentitySource holding a state the test sets; records rejections.
class FixedAgentIdentity final : public AgentIdentitySource {
 public:
  explicit FixedAgentIdentity(AgentState state)
      : state_(std::make_shared<const AgentState>(std::move(state))) {}

  std::shared_ptr<const AgentState> CurrentAgentState() const override {
    std::lock_guard lock(mu_);
    return state_;
  }
  void OnAgentStateChange(std::function<void(std::shared_ptr<const AgentState>)> fn) override {
    std::lock_guard lock(mu_);
    listeners_.push_back(std::move(fn));
  }
  void ReportRejected(const absl::Status& status) override {
    std::lock_guard lock(mu_);
    rejections_.push_back(status);
  }

  void Set(AgentState state) {
    auto next = std::make_shared<const AgentState>(std::move(state));
    std::vector<std::function<void(std::shared_ptr<const AgentState>)>> listeners;
    {
      std::lock_guard lock(mu_);
      state_ = next;
      listeners = listeners_;
    }
    for (auto& fn : listeners) fn(next);
  }
  std::vector<absl::Status> rejections() const {
    std::lock_guard lock(mu_);
    return rejections_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const AgentState> state_;
  std::vector<std::function<void(std::shared_ptr<const AgentState>)>> listeners_;
  std::vector<absl::Status> rejections_;
};

// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
inline bool Eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

}  // namespace tessera::agent::testing
