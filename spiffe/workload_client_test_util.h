// Test-only: an in-process fake of the SPIFFE Workload API (FakeWorkloadApi) served by a real
// gRPC server on a Unix socket or a TCP port (FakeWorkloadServer), and canned X.509 / JWT material
// to serve (WorkloadPki). The fake enforces the `workload.spiffe.io: true` header the way SPIRE
// does and counts the calls that lacked it. Streams send the current response, then every new
// one the test sets, until the test sets an error or shuts the fake down. Not part of
// tessera_spiffe. FakeWorkloadApi is safe for concurrent use (gRPC handler threads and the test);
// the rest is used by one test thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "spiffe/bundle.h"
#include "spiffe/bundle_json.h"
#include "spiffe/jwt_svid.h"
#include "spiffe/workload/workload.grpc.pb.h"
#include "spiffe/workload_client.h"
#include "spiffe/x509_test_util.h"

namespace tessera::spiffe::testing {

// A stream's script: the response streams send, or the error they end with.
template <typename Response>
struct StreamScript {
  std::optional<Response> response;  // nullopt: send nothing (the stream stays silent)
  std::optional<grpc::Status> error;
  uint64_t version = 0;  // bumped on every change, so open streams resend
};

class FakeWorkloadApi final : public ::SpiffeWorkloadAPI::Service {
 public:
  struct JwtIdentity {
    SpiffeId id;
    std::string hint;
  };

  FakeWorkloadApi() = default;
  FakeWorkloadApi(const FakeWorkloadApi&) = delete;
  FakeWorkloadApi& operator=(const FakeWorkloadApi&) = delete;

  void SetX509(::X509SVIDResponse response) { Set(x509_, std::move(response)); }
  void SetX509Error(grpc::Status status) { SetError(x509_, std::move(status)); }
  void SetX509Bundles(::X509BundlesResponse response) { Set(x509_bundles_, std::move(response)); }
  void SetX509BundlesError(grpc::Status status) { SetError(x509_bundles_, std::move(status)); }
  void SetJwtBundles(::JWTBundlesResponse response) { Set(jwt_bundles_, std::move(response)); }

  // JWT-SVIDs are minted with `key` (kid `key_id`) for these identities, in order; tokens are
  // validated against `authorities`.
  void SetJwt(PrivateKey key, std::string key_id, std::vector<JwtIdentity> identities,
              BundleSet authorities) {
    absl::MutexLock lock(&mu_);
    jwt_key_ = std::move(key);
    jwt_key_id_ = std::move(key_id);
    jwt_identities_ = std::move(identities);
    jwt_authorities_ = std::move(authorities);
  }
  // Unary calls sleep this long before answering (to test client deadlines).
  void SetUnaryDelay(std::chrono::milliseconds delay) {
    absl::MutexLock lock(&mu_);
    unary_delay_ = delay;
  }
  // Open streams end (with OK) and new calls are refused with Unavailable.
  void Shutdown() {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    changed_.SignalAll();
  }

  int calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  int calls_without_header() const {
    absl::MutexLock lock(&mu_);
    return calls_without_header_;
  }
  // The streams open right now.
  int open_streams() const {
    absl::MutexLock lock(&mu_);
    return open_streams_;
  }
  std::optional<::JWTSVIDRequest> last_jwt_request() const {
    absl::MutexLock lock(&mu_);
    return last_jwt_request_;
  }

  grpc::Status FetchX509SVID(grpc::ServerContext* context, const ::X509SVIDRequest*,
                             grpc::ServerWriter<::X509SVIDResponse>* writer) override {
    return Serve(context, writer, x509_);
  }
  grpc::Status FetchX509Bundles(grpc::ServerContext* context, const ::X509BundlesRequest*,
                                grpc::ServerWriter<::X509BundlesResponse>* writer) override {
    return Serve(context, writer, x509_bundles_);
  }
  grpc::Status FetchJWTBundles(grpc::ServerContext* context, const ::JWTBundlesRequest*,
                               grpc::ServerWriter<::JWTBundlesResponse>* writer) override {
    return Serve(context, writer, jwt_bundles_);
  }

  grpc::Status FetchJWTSVID(grpc::ServerContext* context, const ::JWTSVIDRequest* request,
                            ::JWTSVIDResponse* response) override {
    if (grpc::Status s = Admit(*context); !s.ok()) return s;
    Delay(*context);
    absl::MutexLock lock(&mu_);
    last_jwt_request_ = *request;
    if (request->audience().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "audience must be specified");
    }
    if (!jwt_key_.has_value()) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no identity issued");
    }
    for (const JwtIdentity& identity : jwt_identities_) {
      if (!request->spiffe_id().empty() && identity.id.str() != request->spiffe_id()) continue;
      JwtSvidClaims claims{.subject = identity.id,
                           .audience = {request->audience().begin(), request->audience().end()},
                           .expiry = std::chrono::system_clock::now() + std::chrono::minutes(5),
                           .issued_at = std::chrono::system_clock::now(),
                           .extra = {{"jti", "fake-jti"}}};
      absl::StatusOr<std::string> token = SignJwtSvid(claims, *jwt_key_, jwt_key_id_);
      if (!token.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "sign");
      ::JWTSVID* svid = response->add_svids();
      svid->set_spiffe_id(identity.id.str());
      svid->set_svid(*token);
      svid->set_hint(identity.hint);
    }
    if (response->svids().empty()) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no identity issued");
    }
    return grpc::Status::OK;
  }

  grpc::Status ValidateJWTSVID(grpc::ServerContext* context,
                               const ::ValidateJWTSVIDRequest* request,
                               ::ValidateJWTSVIDResponse* response) override {
    if (grpc::Status s = Admit(*context); !s.ok()) return s;
    Delay(*context);
    if (request->audience().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "audience must be specified");
    }
    if (request->svid().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "svid must be specified");
    }
    absl::MutexLock lock(&mu_);
    absl::StatusOr<JwtSvid> svid = ParseAndValidateJwtSvid(
        request->svid(), jwt_authorities_, {request->audience()}, std::chrono::system_clock::now());
    if (!svid.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(svid.status().message()));
    }
    response->set_spiffe_id(svid->subject.str());
    if (!google::protobuf::util::JsonStringToMessage(svid->claims.dump(),
                                                     response->mutable_claims())
             .ok()) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "claims to Struct");
    }
    return grpc::Status::OK;
  }

 private:
  template <typename Response>
  void Set(StreamScript<Response>& script, Response response) {
    absl::MutexLock lock(&mu_);
    script.response = std::move(response);
    script.error.reset();
    ++script.version;
    changed_.SignalAll();
  }
  template <typename Response>
  void SetError(StreamScript<Response>& script, grpc::Status status) {
    absl::MutexLock lock(&mu_);
    script.error = std::move(status);
    ++script.version;
    changed_.SignalAll();
  }

  // SPIRE's check: exactly one value, equal to "true".
  grpc::Status Admit(const grpc::ServerContext& context) {
    auto [begin, end] = context.client_metadata().equal_range(
        grpc::string_ref(kWorkloadApiHeaderKey.data(), kWorkloadApiHeaderKey.size()));
    int values = 0;
    bool ok = true;
    for (auto it = begin; it != end; ++it) {
      ++values;
      ok = ok && std::string_view(it->second.data(), it->second.size()) == kWorkloadApiHeaderValue;
    }
    absl::MutexLock lock(&mu_);
    ++calls_;
    if (values != 1 || !ok) {
      ++calls_without_header_;
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "security header missing from request");
    }
    if (shutdown_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down");
    return grpc::Status::OK;
  }

  void Delay(grpc::ServerContext& context) {
    std::chrono::milliseconds delay;
    {
      absl::MutexLock lock(&mu_);
      delay = unary_delay_;
    }
    auto until = std::chrono::steady_clock::now() + delay;
    while (std::chrono::steady_clock::now() < until && !context.IsCancelled()) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

  template <typename Response>
  grpc::Status Serve(grpc::ServerContext* context, grpc::ServerWriter<Response>* writer,
                     StreamScript<Response>& script) {
    if (grpc::Status s = Admit(*context); !s.ok()) return s;
    mu_.Lock();
    ++open_streams_;
    uint64_t sent = 0;  // versions start at 1 once something is set
    grpc::Status result = grpc::Status::OK;
    while (true) {
      if (shutdown_) break;
      if (context->IsCancelled()) {
        result = grpc::Status::CANCELLED;
        break;
      }
      if (script.error.has_value()) {
        result = *script.error;
        break;
      }
      if (script.version != sent && script.response.has_value()) {
        Response response = *script.response;
        sent = script.version;
        mu_.Unlock();
        bool written = writer->Write(response);
        mu_.Lock();
        if (!written) {
          result = grpc::Status::CANCELLED;
          break;
        }
        continue;
      }
      // Cancellation has no wake-up of its own: poll it.
      changed_.WaitWithTimeout(&mu_, absl::Milliseconds(10));
    }
    --open_streams_;
    mu_.Unlock();
    return result;
  }

  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  StreamScript<::X509SVIDResponse> x509_ ABSL_GUARDED_BY(mu_);
  StreamScript<::X509BundlesResponse> x509_bundles_ ABSL_GUARDED_BY(mu_);
  StreamScript<::JWTBundlesResponse> jwt_bundles_ ABSL_GUARDED_BY(mu_);
  std::optional<PrivateKey> jwt_key_ ABSL_GUARDED_BY(mu_);
  std::string jwt_key_id_ ABSL_GUARDED_BY(mu_);
  std::vector<JwtIdentity> jwt_identities_ ABSL_GUARDED_BY(mu_);
  BundleSet jwt_authorities_ ABSL_GUARDED_BY(mu_);
  std::chrono::milliseconds unary_delay_ ABSL_GUARDED_BY(mu_){0};
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  int calls_without_header_ ABSL_GUARDED_BY(mu_) = 0;
  int open_streams_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<::JWTSVIDRequest> last_jwt_request_ ABSL_GUARDED_BY(mu_);
};

// A gRPC server for one FakeWorkloadApi at a gRPC listening address ("unix:///...",
// "127.0.0.1:0").
class FakeWorkloadServer {
 public:
  FakeWorkloadServer(FakeWorkloadApi* service, const std::string& listen) : service_(service) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service);
    server_ = builder.BuildAndStart();
  }
  ~FakeWorkloadServer() { Stop(); }
  FakeWorkloadServer(const FakeWorkloadServer&) = delete;
  FakeWorkloadServer& operator=(const FakeWorkloadServer&) = delete;

  bool started() const { return server_ != nullptr; }
  int port() const { return port_; }
  std::shared_ptr<grpc::Channel> InProcessChannel() {
    return server_->InProcessChannel(grpc::ChannelArguments());
  }

  // Ends open streams, then stops the server (a restart binds a fresh one on the same address).
  void Stop() {
    if (server_ == nullptr) return;
    service_->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
    server_.reset();
  }

 private:
  FakeWorkloadApi* service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// Canned SPIFFE material: example.org (root → intermediate → leaves) and a federated other.org.
struct WorkloadPki {
  Ca root;
  Ca intermediate;
  Ca other_root;  // other.org
  PrivateKey jwt_key;
  std::string jwt_key_id = "jwt-key-1";
  PrivateKey other_jwt_key;
  std::string other_jwt_key_id = "other-key-1";

  static absl::StatusOr<WorkloadPki> Make() {
    auto now = std::chrono::system_clock::now();
    ASSIGN_OR_RETURN(Ca root, MakeRootCa(Td("example.org"), now));
    ASSIGN_OR_RETURN(Ca intermediate, MakeIntermediateCa(root, Td("example.org"), now));
    ASSIGN_OR_RETURN(Ca other, MakeRootCa(Td("other.org"), now, KeyType::kEcP256, "other-root"));
    ASSIGN_OR_RETURN(PrivateKey jwt_key, PrivateKey::Generate(KeyType::kEcP256));
    ASSIGN_OR_RETURN(PrivateKey other_jwt_key, PrivateKey::Generate(KeyType::kEcP256));
    return WorkloadPki{.root = std::move(root),
                       .intermediate = std::move(intermediate),
                       .other_root = std::move(other),
                       .jwt_key = std::move(jwt_key),
                       .other_jwt_key = std::move(other_jwt_key)};
  }

  // An X509-SVID issued by the intermediate: chain leaf + intermediate, and its PKCS#8 key.
  absl::StatusOr<::X509SVID> Svid(std::string_view id, std::string hint = "") const {
    ASSIGN_OR_RETURN(Leaf leaf, MakeLeaf(intermediate, Id(id), std::chrono::system_clock::now()));
    ASSIGN_OR_RETURN(std::string key, leaf.key.ToPkcs8Der());
    ::X509SVID svid;
    svid.set_spiffe_id(std::string(id));
    svid.set_x509_svid(leaf.cert.ToDer() + intermediate.cert.ToDer());
    svid.set_x509_svid_key(key);
    svid.set_bundle(root.cert.ToDer());
    svid.set_hint(std::move(hint));
    return svid;
  }

  // The JWT authorities of both trust domains.
  absl::StatusOr<BundleSet> JwtAuthorities() const {
    Bundle own(Td("example.org"));
    RETURN_IF_ERROR(own.AddJwtAuthority(jwt_key_id, jwt_key.public_key()));
    Bundle other(Td("other.org"));
    RETURN_IF_ERROR(other.AddJwtAuthority(other_jwt_key_id, other_jwt_key.public_key()));
    BundleSet set;
    set.Put(std::move(own));
    set.Put(std::move(other));
    return set;
  }

  absl::StatusOr<::JWTBundlesResponse> JwtBundlesResponse() const {
    ASSIGN_OR_RETURN(BundleSet set, JwtAuthorities());
    ::JWTBundlesResponse response;
    for (const auto& [td, bundle] : set) {
      ASSIGN_OR_RETURN(std::string jwks, JwtBundleToJwks(bundle));
      (*response.mutable_bundles())[td.IdString()] = jwks;
    }
    return response;
  }

  ::X509BundlesResponse X509BundlesResponse() const {
    ::X509BundlesResponse response;
    (*response.mutable_bundles())["spiffe://example.org"] = root.cert.ToDer();
    (*response.mutable_bundles())["spiffe://other.org"] = other_root.cert.ToDer();
    return response;
  }
};

// Collects what a watch callback receives, for a test thread to wait on.
template <typename T>
class WatchRecorder {
 public:
  using Events = std::vector<absl::StatusOr<T>>;

  void operator()(const absl::StatusOr<T>& event) {
    absl::MutexLock lock(&mu_);
    events_.push_back(event);
  }
  // Waits until `done(events)` holds; false on timeout.
  template <typename Pred>
  bool WaitFor(const Pred& done, absl::Duration timeout = absl::Seconds(10)) const {
    absl::MutexLock lock(&mu_);
    auto cond = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done(events_); };
    return mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
  }
  bool WaitForCount(size_t n, absl::Duration timeout = absl::Seconds(10)) const {
    return WaitFor([n](const Events& e) { return e.size() >= n; }, timeout);
  }
  Events events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  mutable absl::Mutex mu_;
  Events events_ ABSL_GUARDED_BY(mu_);
};

// A fake Workload API on a Unix socket in a fresh directory, with canned material.
class WorkloadApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    socket_path_ = dir_.path() + "/agent.sock";
    ASSERT_OK_AND_ASSIGN(WorkloadPki pki, WorkloadPki::Make());
    pki_.emplace(std::move(pki));
    fake_ = std::make_unique<FakeWorkloadApi>();
    StartServer();
  }
  void TearDown() override { server_.reset(); }

  void StartServer() {
    server_ = std::make_unique<FakeWorkloadServer>(fake_.get(), "unix://" + socket_path_);
    ASSERT_TRUE(server_->started());
  }
  // A fresh fake (a gRPC service serves one server in its life) on the same socket path.
  FakeWorkloadApi& RestartWithNewFake() {
    server_.reset();
    fake_ = std::make_unique<FakeWorkloadApi>();
    StartServer();
    return *fake_;
  }

  // Short backoff and deadline, so that tests about retries and deadlines run fast.
  WorkloadApiClientOptions FastOptions() const {
    return WorkloadApiClientOptions{.address = "unix://" + socket_path_,
                                    .timeout = std::chrono::seconds(5),
                                    .wait_for_ready = false,
                                    .initial_backoff = std::chrono::milliseconds(20),
                                    .max_backoff = std::chrono::milliseconds(200)};
  }
  std::unique_ptr<WorkloadApiClient> Client() { return Client(FastOptions()); }
  std::unique_ptr<WorkloadApiClient> Client(WorkloadApiClientOptions options) {
    absl::StatusOr<std::unique_ptr<WorkloadApiClient>> client =
        WorkloadApiClient::Create(std::move(options));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  const WorkloadPki& pki() const { return *pki_; }

  TempDir dir_;
  std::string socket_path_;
  std::optional<WorkloadPki> pki_;
  std::unique_ptr<FakeWorkloadApi> fake_;
  std::unique_ptr<FakeWorkloadServer> server_;
};

}  // namespace tessera::spiffe::testing
