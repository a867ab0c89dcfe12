#include "server/server.h"

#include <sys/stat.h>

#include <chrono>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "common/strings.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/api/convert.h"
#include "server/api/credentials.h"
#include "server/datastore/sqlite_datastore.h"
#include "server/services.h"
#include "spdlog/spdlog.h"

namespace tessera::server {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr auto kTickInterval = std::chrono::seconds(1);
constexpr auto kTokenPruneInterval = std::chrono::minutes(1);
// Memory gRPC's transport may hold for all connections together (see InitGrpc). Sync responses to
// many agents at once fit with room to spare; a hostile client costs at most this much.
constexpr size_t kTransportMemoryQuotaBytes = size_t{128} << 20;
// The loop ticks every second; this much silence means it is stuck.
constexpr int64_t kLiveTimeoutSeconds = 30;

ca::CaConfig CaConfigFrom(const ServerConfig& config) {
  ca::CaConfig ca{.trust_domain = config.trust_domain};
  ca.key_type = config.ca_key_type;
  ca.jwt_key_type = config.jwt_key_type;
  ca.ca_subject = {{"C", config.ca_subject_country}, {"O", config.ca_subject_organization}};
  ca.ca_ttl = config.ca_ttl;
  ca.default_x509_svid_ttl = config.default_x509_svid_ttl;
  ca.default_jwt_svid_ttl = config.default_jwt_svid_ttl;
  ca.agent_ttl = config.agent_ttl;
  ca.jwt_issuer = config.jwt_issuer;
  if (config.upstream_disk.has_value()) {
    ca.upstream =
        ca::DiskUpstreamConfig{.cert_file_path = config.upstream_disk->cert_file_path.string(),
                               .key_file_path = config.upstream_disk->key_file_path.string(),
                               .bundle_file_path = config.upstream_disk->bundle_file_path.string()};
  }
  return ca;
}

// The admin socket's directory is private to the server's user; a socket left by a previous
// run is replaced, anything else at that path is refused.
absl::Status PrepareSocketPath(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("admin socket: create ", path.parent_path().string(), ": ", ec.message()));
  }
  RETURN_IF_ERROR(MakePrivateDirectory(path.parent_path()));
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("admin socket: ", path.string(), " exists and is not a socket"));
    }
    fs::remove(path, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("admin socket: remove stale ", path.string(), ": ", ec.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Server::Server(ServerConfig config, const Clock& clock)
    : config_(std::move(config)), clock_(clock) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerConfig config, const Clock& clock) {
  std::unique_ptr<Server> server(new Server(std::move(config), clock));
  RETURN_IF_ERROR(server->Init());
  return server;
}

absl::Status Server::Init() {
  std::error_code ec;
  fs::create_directories(config_.data_dir.parent_path(), ec);
  RETURN_IF_ERROR(MakePrivateDirectory(config_.data_dir));
  if (config_.datastore.type != DatastoreConfig::Type::kSqlite) {
    return absl::UnimplementedError("datastore: only sqlite is supported by this build");
  }
  ASSIGN_OR_RETURN(datastore_, SqliteDataStore::Open(config_.datastore.sqlite_path, clock_));
  RETURN_IF_ERROR(InitCa());
  RefreshOwnSequence();
  RETURN_IF_ERROR(InitIndex());
  roles_ = std::make_unique<RegistryCallerRoles>(*datastore_);
  authorizer_ = std::make_unique<Authorizer>(
      config_.admin_ids, [this](const spiffe::TrustDomain& td) { return AuthoritiesOf(td); },
      *roles_, clock_);
  services_ = std::make_unique<Services>(ServiceDeps{.trust_domain = config_.trust_domain,
                                                     .datastore = datastore_.get(),
                                                     .index = index_.get(),
                                                     .authorizer = authorizer_.get(),
                                                     .notifier = this,
                                                     .clock = &clock_,
                                                     .ca = ca_.get()},
                                         config_, [this] { return own_sequence_.load(); });
  RETURN_IF_ERROR(services_->Init());
  RETURN_IF_ERROR(InitTls());
  RETURN_IF_ERROR(InitGrpc());
  if (config_.health.has_value()) {
    const HealthConfig& h = *config_.health;
    ASSIGN_OR_RETURN(health_, HealthServer::Start(
                                  HealthOptions{.bind_address = h.bind_address,
                                                .port = h.bind_port,
                                                .live_path = h.live_path,
                                                .ready_path = h.ready_path},
                                  [this] { return Live(); }, [this] { return Ready(); }));
  }
  last_tick_unix_ = std::chrono::system_clock::to_time_t(clock_.Now());
  loop_ = std::jthread([this](std::stop_token stop) { Loop(std::move(stop)); });
  serving_ = true;
  spdlog::info("server: serving trust domain {} on {}:{} and {}", config_.trust_domain.name(),
               config_.bind_address, port_, config_.socket_path.string());
  return absl::OkStatus();
}

absl::Status Server::InitCa() {
  if (config_.key_manager.type == KeyManagerConfig::Type::kMemory) {
    key_manager_ = std::make_unique<ca::MemoryKeyManager>();
  } else {
    ASSIGN_OR_RETURN(key_manager_,
                     ca::DiskKeyManager::Open(config_.key_manager.directory.string()));
  }
  ca::CaConfig ca_config = CaConfigFrom(config_);
  RETURN_IF_ERROR(ca::ValidateCaConfig(ca_config));
  if (ca_config.upstream.has_value()) {
    auto upstream = std::make_unique<ca::DiskUpstreamAuthority>(*ca_config.upstream);
    RETURN_IF_ERROR(upstream->Check());
    upstream_ = std::move(upstream);
  }
  journal_store_ = std::make_unique<DataStoreJournalStore>(*datastore_);
  publisher_ =
      std::make_unique<DataStoreBundlePublisher>(*datastore_, clock_, [this] { BundleChanged(); });
  ca_ = std::make_unique<ca::CaManager>(std::move(ca_config),
                                        ca::CaManagerDeps{.clock = &clock_,
                                                          .key_manager = key_manager_.get(),
                                                          .journal_store = journal_store_.get(),
                                                          .publisher = publisher_.get(),
                                                          .upstream = upstream_.get()});
  return ca_->Initialize();
}

absl::Status Server::InitIndex() {
  ASSIGN_OR_RETURN(std::vector<Entry> entries, datastore_->ListAllEntries());
  ASSIGN_OR_RETURN(std::vector<AttestedNode> nodes, datastore_->ListAllNodes());
  index_ = std::make_unique<EntryIndex>(config_.trust_domain, clock_);
  index_->Load(entries, nodes);
  spdlog::info("server: loaded {} registration entries and {} attested agents", entries.size(),
               nodes.size());
  return absl::OkStatus();
}

absl::Status Server::InitTls() {
  tls_files_ = std::make_unique<TlsFiles>(config_.data_dir / "tls");
  return PublishTls(/*new_svid=*/true);
}

absl::Status Server::InitGrpc() {
  RETURN_IF_ERROR(PrepareSocketPath(config_.socket_path));
  grpc::ServerBuilder builder;
  const std::string address = absl::StrCat(AsAbsl(config_.bind_address), ":", config_.bind_port);
  builder.AddListeningPort(address, ServerTlsCredentials(*tls_files_), &port_);
  builder.AddListeningPort("unix:" + config_.socket_path.string(),
                           grpc::InsecureServerCredentials());
  // gRPC's default SO_REUSEPORT would let a second server share the port silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Requests are small (the largest is a batch of CSRs); a client must not make us buffer more.
  builder.SetMaxReceiveMessageSize(4 << 20);
  // gRPC 1.51 enforces that limit only once a message has fully arrived, so a client (even one
  // that has not authenticated: AttestAgent needs no certificate) could make the server buffer a
  // message of any claimed size. The transport's memory quota caps what all connections together
  // may hold: past it, gRPC resets the offending stream (ENHANCE_YOUR_CALM).
  grpc::ResourceQuota quota("tessera-server");
  quota.Resize(kTransportMemoryQuotaBytes);
  builder.SetResourceQuota(quota);
  // Find dead agent connections (their push streams) within minutes, not hours.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  services_->Register(builder);
  grpc_ = builder.BuildAndStart();
  if (grpc_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("server: cannot listen on ", address,
                                               " and unix:", config_.socket_path.string()));
  }
  return absl::OkStatus();
}

Server::~Server() { Shutdown(); }

void Server::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  serving_ = false;
  spdlog::info("server: shutting down");
  if (services_) services_->BeginShutdown();
  if (grpc_) grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (loop_.joinable()) {
    loop_.request_stop();
    loop_.join();
  }
  health_.reset();
  std::error_code ec;
  fs::remove(config_.socket_path, ec);
}

void Server::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&shut_down_));
}

absl::Status Server::Ready() const {
  if (!serving_) return absl::UnavailableError("not serving");
  ca::CaStatus status = ca_->GetStatus();
  if (!status.current_x509_ca.has_value()) return absl::UnavailableError("no active X.509 CA");
  if (status.current_x509_ca->NotAfter() <= clock_.Now()) {
    return absl::UnavailableError("the X.509 CA has expired (rotation is failing)");
  }
  return absl::OkStatus();
}

absl::Status Server::Live() const {
  const int64_t now = std::chrono::system_clock::to_time_t(clock_.Now());
  if (now - last_tick_unix_.load() > kLiveTimeoutSeconds) {
    return absl::UnavailableError("the rotation loop is stuck");
  }
  return absl::OkStatus();
}

void Server::EntriesChanged(const EntryIndex::AffectedAgents& agents) {
  if (services_) services_->notifier().EntriesChanged(agents);
}

void Server::AgentRemoved(const spiffe::SpiffeId& agent) {
  if (services_) services_->notifier().AgentRemoved(agent);
}

void Server::RefreshOwnSequence() {
  auto stored = datastore_->FetchBundle(config_.trust_domain);
  if (!stored.ok()) {
    spdlog::warn("server: read own bundle: {}", AsStd(stored.status().message()));
  } else if (stored->has_value()) {
    own_sequence_ = (*stored)->sequence_number();
  }
}

void Server::BundleChanged() {
  roots_stale_ = true;
  RefreshOwnSequence();
  if (services_) services_->notifier().BundleChanged();
}

std::optional<std::vector<spiffe::Certificate>> Server::AuthoritiesOf(
    const spiffe::TrustDomain& td) const {
  if (td == config_.trust_domain) {
    auto contents = ca_->bundle();
    if (contents == nullptr) return std::nullopt;
    return contents->bundle.x509_authorities();
  }
  auto stored = datastore_->FetchBundle(td);
  if (!stored.ok()) {
    spdlog::warn("server: fetch bundle of {}: {}", td.name(), AsStd(stored.status().message()));
    return std::nullopt;
  }
  if (!stored->has_value()) return std::nullopt;
  auto bundle = BundleFromProto(**stored);
  if (!bundle.ok()) return std::nullopt;
  return bundle->x509_authorities();
}

absl::StatusOr<std::vector<spiffe::Certificate>> Server::TrustedRoots() const {
  std::vector<spiffe::Certificate> roots;
  if (auto own = ca_->bundle(); own != nullptr) roots = own->bundle.x509_authorities();
  PageRequest page{.page_size = 100, .token = ""};
  while (true) {
    ASSIGN_OR_RETURN(Page<Bundle> bundles, datastore_->ListBundles(page));
    if (bundles.items.empty()) break;
    for (const Bundle& stored : bundles.items) {
      auto bundle = BundleFromProto(stored);
      if (!bundle.ok() || bundle->trust_domain() == config_.trust_domain) continue;
      for (const auto& cert : bundle->x509_authorities()) roots.push_back(cert);
    }
    if (bundles.next_token.empty()) break;
    page.token = bundles.next_token;
  }
  return roots;
}

absl::Status Server::PublishTls(bool new_svid) {
  if (new_svid || !server_svid_.has_value()) {
    ASSIGN_OR_RETURN(ca::ServerSvid issued, ca_->IssueServerSvid());
    server_key_ = std::move(issued.key);
    server_svid_ = std::move(issued.svid);
  }
  ASSIGN_OR_RETURN(std::vector<spiffe::Certificate> roots, TrustedRoots());
  return tls_files_->Publish(*server_key_, server_svid_->chain, roots);
}

void Server::Loop(std::stop_token stop) {
  absl::Mutex wait_mu;
  absl::CondVar wake;
  std::stop_callback on_stop(stop, [&] {
    absl::MutexLock lock(&wait_mu);
    wake.Signal();
  });
  while (!stop.stop_requested()) {
    {
      absl::MutexLock lock(&wait_mu);
      if (stop.stop_requested()) break;
      wake.WaitWithTimeout(&wait_mu, absl::FromChrono(kTickInterval));
    }
    if (stop.stop_requested()) break;
    Tick();
  }
}

void Server::Tick() {
  const auto now = clock_.Now();
  last_tick_unix_ = std::chrono::system_clock::to_time_t(now);
  if (auto rotated = ca_->Tick(); !rotated.ok()) {
    spdlog::error("ca: rotation failed (retrying): {}", AsStd(rotated.status().message()));
  }
  const bool renew = !server_svid_.has_value() || ca::ShouldRenew(*server_svid_, now);
  if (renew || roots_stale_.exchange(false)) {
    if (absl::Status s = PublishTls(renew); !s.ok()) {
      roots_stale_ = true;  // try again next tick
      spdlog::error("server: refresh TLS identity: {}", AsStd(s.message()));
    } else if (renew) {
      spdlog::info("server: renewed the server SVID (valid until {})",
                   absl::FormatTime(absl::FromChrono(server_svid_->expires_at)));
    }
  }
  if (now >= next_token_prune_) {
    next_token_prune_ = now + kTokenPruneInterval;
    auto pruned = datastore_->PruneJoinTokens(std::chrono::system_clock::to_time_t(now));
    if (!pruned.ok()) {
      spdlog::warn("server: prune join tokens: {}", AsStd(pruned.status().message()));
    } else if (*pruned > 0) {
      spdlog::info("server: pruned {} expired join tokens", *pruned);
    }
  }
}

}  // namespace tessera::server
