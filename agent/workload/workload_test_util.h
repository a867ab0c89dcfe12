// Test-only helpers for the Workload API endpoint tests: canned PKI and JWT keys, a fake
// JwtSvidSource, fake attestors, snapshots published straight into a Cache, a fixture running a
// real WorkloadEndpoint on a socket in a temp dir, and connections made by other processes (a
// child connects, possibly as another uid, and hands its socket over with SCM_RIGHTS, so the
// test talks gRPC over a connection whose kernel identity is the child's). Not part of the
// library. Used by one test thread plus the gRPC and agent threads the fakes are called on; the
// fakes are safe for that.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "agent/cache/cache.h"
#include "agent/cache/jwt_svid_source.h"
#include "agent/workload/endpoint.h"
#include "attestors/unix/unix.h"
#include "common/unique_fd.h"
#include "grpcpp/create_channel_posix.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "spiffe/jwt_svid.h"
#include "spiffe/workload/workload.grpc.pb.h"
#include "spiffe/workload_client.h"
#include "spiffe/x509_test_util.h"

namespace tessera::agent::testing {

using spiffe::testing::Id;
using spiffe::testing::Td;

inline bool Eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

inline std::string Message(const absl::Status& status) { return std::string(status.message()); }

// The number of threads of this process, from /proc/self/status.
inline int ThreadCount() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// example.org (root + JWT key) and other.org (root + JWT key), and X509-SVIDs issued by the
// roots.
struct Pki {
  spiffe::testing::Ca root;
  spiffe::testing::Ca other_root;
  spiffe::PrivateKey jwt_key;
  spiffe::PrivateKey other_jwt_key;

  static Pki Make() {
    auto now = std::chrono::system_clock::now();
    return Pki{.root = *spiffe::testing::MakeRootCa(Td("example.org"), now),
               .other_root = *spiffe::testing::MakeRootCa(Td("other.org"), now,
                                                          spiffe::KeyType::kEcP256, "other"),
               .jwt_key = *spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256),
               .other_jwt_key = *spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256)};
  }

  std::shared_ptr<const spiffe::X509Svid> Svid(std::string_view id) const {
    const spiffe::testing::Ca& ca = Id(id).MemberOf(Td("other.org")) ? other_root : root;
    auto leaf = spiffe::testing::MakeLeaf(ca, Id(id), std::chrono::system_clock::now());
    EXPECT_TRUE(leaf.ok()) << leaf.status();
    return std::make_shared<const spiffe::X509Svid>(
        spiffe::X509Svid{Id(id), {leaf->cert}, leaf->key});
  }

  spiffe::Bundle OwnBundle() const {
    spiffe::Bundle bundle(Td("example.org"));
    bundle.AddX509Authority(root.cert);
    EXPECT_TRUE(bundle.AddJwtAuthority("own-key", jwt_key.public_key()).ok());
    return bundle;
  }
  spiffe::Bundle OtherBundle() const {
    spiffe::Bundle bundle(Td("other.org"));
    bundle.AddX509Authority(other_root.cert);
    EXPECT_TRUE(bundle.AddJwtAuthority("other-key", other_jwt_key.public_key()).ok());
    return bundle;
  }
  spiffe::BundleSet Bundles(bool with_other = true) const {
    spiffe::BundleSet set;
    set.Put(OwnBundle());
    if (with_other) set.Put(OtherBundle());
    return set;
  }

  // A JWT-SVID signed by the own (or other.org's) key.
  std::string Token(std::string_view subject, std::vector<std::string> audience,
                    nlohmann::json extra = nullptr,
                    std::chrono::seconds ttl = std::chrono::minutes(5)) const {
    bool other = Id(subject).MemberOf(Td("other.org"));
    auto now = std::chrono::system_clock::now();
    auto token =
        spiffe::SignJwtSvid(spiffe::JwtSvidClaims{.subject = Id(subject),
                                                  .audience = std::move(audience),
                                                  .expiry = now + ttl,
                                                  .issued_at = now,
                                                  .extra = std::move(extra)},
                            other ? other_jwt_key : jwt_key, other ? "other-key" : "own-key");
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? *token : "";
  }
};

struct EntrySpec {
  std::string id;
  std::string spiffe_id;
  std::vector<std::string> selectors;
  int64_t created_at = 0;
  bool minted = true;
  std::string hint;
  std::vector<std::string> federates_with;
};

inline CachedIdentity Identity(const Pki& pki, const EntrySpec& spec) {
  std::vector<spiffe::TrustDomain> federates;
  for (const std::string& td : spec.federates_with) federates.push_back(Td(td));
  auto selectors = spiffe::SelectorSet::Parse(spec.selectors);
  EXPECT_TRUE(selectors.ok()) << selectors.status();
  auto entry = std::make_shared<const CachedEntry>(CachedEntry{.id = spec.id,
                                                               .spiffe_id = Id(spec.spiffe_id),
                                                               .selectors = *selectors,
                                                               .federates_with = federates,
                                                               .created_at = spec.created_at,
                                                               .hint = spec.hint});
  return CachedIdentity{entry, spec.minted ? pki.Svid(spec.spiffe_id) : nullptr};
}

// A JwtSvidSource that signs with the Pki's keys; inline or on its own threads.
class FakeJwtSource final : public JwtSvidSource {
 public:
  explicit FakeJwtSource(const Pki& pki) : pki_(pki) {}
  ~FakeJwtSource() override {
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

  void SetAsync(bool async) {
    absl::MutexLock lock(&mu_);
    async_ = async;
  }
  void SetError(std::optional<absl::Status> error) {
    absl::MutexLock lock(&mu_);
    error_ = std::move(error);
  }
  int calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  std::vector<std::string> last_audience() const {
    absl::MutexLock lock(&mu_);
    return last_audience_;
  }

  void FetchJwtSvid(std::shared_ptr<const CachedEntry> entry, std::vector<std::string> audience,
                    Callback done) override {
    bool async;
    std::optional<absl::Status> error;
    {
      absl::MutexLock lock(&mu_);
      ++calls_;
      last_audience_ = audience;
      async = async_;
      error = error_;
    }
    absl::StatusOr<std::string> result =
        error.has_value()
            ? absl::StatusOr<std::string>(*error)
            : absl::StatusOr<std::string>(pki_.Token(entry->spiffe_id.str(), audience));
    if (!async) {
      done(std::move(result));
      return;
    }
    absl::MutexLock lock(&mu_);
    threads_.emplace_back([done = std::move(done), result = std::move(result)]() mutable {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      done(std::move(result));
    });
  }

 private:
  const Pki& pki_;
  mutable absl::Mutex mu_;
  bool async_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> error_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> last_audience_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

// An attestor with a scripted answer, optionally after a delay it does not let a stop cut short
// (like an NSS lookup that cannot be interrupted).
class FakeAttestor final : public attestors::WorkloadAttestor {
 public:
  FakeAttestor(std::string name, absl::StatusOr<std::vector<std::string>> selectors,
               std::chrono::milliseconds delay = std::chrono::milliseconds(0))
      : name_(std::move(name)), selectors_(std::move(selectors)), delay_ms_(delay.count()) {}

  std::string_view name() const override { return name_; }
  absl::StatusOr<spiffe::SelectorSet> Attest(
      const attestors::WorkloadProcess& process,
      const attestors::AttestationDeadline& /*deadline*/) override {
    last_pid_ = process.pid;
    ++calls_;
    if (auto delay = std::chrono::milliseconds(delay_ms_.load()); delay.count() > 0) {
      std::this_thread::sleep_for(delay);
    }
    if (!selectors_.ok()) return selectors_.status();
    return spiffe::SelectorSet::Parse(*selectors_);
  }

  int calls() const { return calls_; }
  pid_t last_pid() const { return last_pid_; }
  // Applies to the calls that start afterwards.
  void set_delay(std::chrono::milliseconds delay) { delay_ms_ = delay.count(); }

 private:
  const std::string name_;
  const absl::StatusOr<std::vector<std::string>> selectors_;
  std::atomic<int64_t> delay_ms_;
  std::atomic<int> calls_{0};
  std::atomic<pid_t> last_pid_{0};
};

// The selector of a uid, "unix:uid:<uid>".
inline std::string Uid(uid_t uid) { return "unix:uid:" + std::to_string(uid); }

// The SPIFFE IDs of a context's SVIDs, in order.
inline std::vector<std::string> Ids(const spiffe::X509Context& context) {
  std::vector<std::string> ids;
  for (const auto& svid : context.svids) ids.push_back(svid.svid.id.str());
  return ids;
}

inline std::shared_ptr<attestors::WorkloadAttestor> UnixAttestor() {
  auto attestor = attestors::unix::NewAttestor(attestors::unix::Config{});
  EXPECT_TRUE(attestor.ok()) << attestor.status();
  return std::shared_ptr<attestors::WorkloadAttestor>(std::move(*attestor));
}

// SCM_RIGHTS over a socketpair.
inline bool SendFd(int channel, int fd) {
  char byte = 'f';
  iovec iov{.iov_base = &byte, .iov_len = 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  return ::sendmsg(channel, &msg, 0) == 1;
}

inline UniqueFd ReceiveFd(int channel) {
  char byte;
  iovec iov{.iov_base = &byte, .iov_len = 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  pollfd p{.fd = channel, .events = POLLIN, .revents = 0};
  if (::poll(&p, 1, 10000) != 1 || ::recvmsg(channel, &msg, MSG_CMSG_CLOEXEC) != 1) {
    return UniqueFd();
  }
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg == nullptr || cmsg->cmsg_type != SCM_RIGHTS) return UniqueFd();
  int fd;
  std::memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  return UniqueFd(fd);
}

// A connection to the agent made by a child process: the child (optionally after switching to
// `uid`/`gid`) connects, waits until the agent has accepted (the gRPC server speaks first),
// passes the socket to the test and then lives until Release() (or exits at once with
// `exit_after_handover`). Only async-signal-safe calls in the child: the parent has threads.
class ChildConnection {
 public:
  ChildConnection(const std::string& socket_path, std::optional<uid_t> uid,
                  std::optional<gid_t> gid, bool exit_after_handover) {
    int pair[2];
    int hold[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0 ||
        ::pipe2(hold, O_CLOEXEC) != 0) {
      return;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(pair[0]);
      ::close(hold[1]);
      if (gid.has_value() && ::setgroups(0, nullptr) != 0) ::_exit(10);
      if (gid.has_value() && ::setgid(*gid) != 0) ::_exit(11);
      if (uid.has_value() && ::setuid(*uid) != 0) ::_exit(12);
      int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        ::_exit(13);
      }
      pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
      ::poll(&p, 1, 5000);
      char peek;
      ::recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT);
      if (!SendFd(pair[1], fd)) ::_exit(14);
      if (!exit_after_handover) {
        char c;
        while (::read(hold[0], &c, 1) < 0 && errno == EINTR) {
        }
      }
      ::_exit(0);
    }
    ::close(pair[1]);
    ::close(hold[0]);
    pid_ = pid;
    hold_.Reset(hold[1]);
    fd_ = ReceiveFd(pair[0]);
    ::close(pair[0]);
    if (exit_after_handover) Reap();
  }
  ~ChildConnection() { Release(); }

  pid_t pid() const { return pid_; }
  bool ok() const { return pid_ > 0 && fd_.valid(); }
  // The connected socket, for grpc::CreateInsecureChannelFromFd (which takes it over).
  int TakeFd() { return fd_.Release(); }
  // Lets the child exit and reaps it.
  void Release() {
    hold_.Reset();
    Reap();
  }
  int exit_code() const { return exit_code_; }

 private:
  void Reap() {
    if (pid_ <= 0 || reaped_) return;
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  UniqueFd fd_;
  UniqueFd hold_;
};

// A Workload API client over an already connected socket.
inline std::unique_ptr<spiffe::WorkloadApiClient> ClientOverFd(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateInsecureChannelFromFd("workload-test", fd);
  return spiffe::WorkloadApiClient::CreateForChannel(
      channel, spiffe::WorkloadApiClientOptions{.timeout = std::chrono::seconds(5)});
}

// A real endpoint on a socket in a fresh directory, over a cache the test publishes into.
class EndpointFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    socket_path_ = dir_.path() + "/agent.sock";
  }
  void TearDown() override { endpoint_.reset(); }

  WorkloadEndpointOptions Options() {
    WorkloadEndpointOptions options;
    options.socket_path = socket_path_;
    options.attestors = {UnixAttestor()};
    options.attestation_timeout = std::chrono::seconds(5);
    options.cache = &cache_;
    options.jwt_source = &jwt_source_;
    return options;
  }
  void StartEndpoint() { StartEndpoint(Options()); }
  void StartEndpoint(WorkloadEndpointOptions options) {
    absl::StatusOr<std::unique_ptr<WorkloadEndpoint>> endpoint =
        WorkloadEndpoint::Start(std::move(options));
    ASSERT_TRUE(endpoint.ok()) << endpoint.status();
    endpoint_ = std::move(*endpoint);
  }

  // Publishes the next snapshot with these entries (and the own + other.org bundles).
  void Publish(const std::vector<EntrySpec>& entries,
               std::optional<spiffe::BundleSet> bundles = {}) {
    std::vector<CachedIdentity> identities;
    for (const EntrySpec& spec : entries) identities.push_back(Identity(pki_, spec));
    PublishIdentities(std::move(identities), std::move(bundles));
  }
  void PublishIdentities(std::vector<CachedIdentity> identities,
                         std::optional<spiffe::BundleSet> bundles = {},
                         bool server_reachable = true) {
    ASSERT_TRUE(cache_.Publish(std::make_shared<const CacheSnapshot>(
        Td("example.org"), ++generation_, bundles.has_value() ? *bundles : pki_.Bundles(),
        std::move(identities), server_reachable)));
  }

  spiffe::WorkloadApiClientOptions ClientOptions() const {
    return spiffe::WorkloadApiClientOptions{.address = "unix://" + socket_path_,
                                            .timeout = std::chrono::seconds(5),
                                            .initial_backoff = std::chrono::milliseconds(20),
                                            .max_backoff = std::chrono::milliseconds(200)};
  }
  std::unique_ptr<spiffe::WorkloadApiClient> Client() {
    auto client = spiffe::WorkloadApiClient::Create(ClientOptions());
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }
  // The generated stub, for requests the real client would never send.
  std::unique_ptr<::SpiffeWorkloadAPI::Stub> RawStub() {
    return ::SpiffeWorkloadAPI::NewStub(
        grpc::CreateChannel("unix://" + socket_path_, grpc::InsecureChannelCredentials()));
  }
  static void AddHeader(grpc::ClientContext& context) {
    context.AddMetadata(std::string(spiffe::kWorkloadApiHeaderKey),
                        std::string(spiffe::kWorkloadApiHeaderValue));
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  spiffe::testing::TempDir dir_;
  std::string socket_path_;
  Pki pki_ = Pki::Make();
  Cache cache_{Td("example.org")};
  FakeJwtSource jwt_source_{pki_};
  uint64_t generation_ = 0;
  std::unique_ptr<WorkloadEndpoint> endpoint_;
};

}  // namespace tessera::agent::testing
