// `api watch`, `healthcheck`, and how every command finds and reports on its endpoint, against
// the fake Workload API: watch prints each update and ends on --max-updates, SIGINT or SIGTERM
// (restoring the previous handlers); healthcheck follows spire-agent's verdicts; the endpoint
// comes from --socket-path, else SPIFFE_ENDPOINT_SOCKET, else the default; an agent that is not
// there, refuses the connection or does not answer in time is reported clearly with exit 1.
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/cli/cli_test_util.h"
#include "common/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::agent::cli::testing {
namespace {

using spiffe::testing::FakeWorkloadApi;
using spiffe::testing::FakeWorkloadServer;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

bool WaitUntil(const std::function<bool()>& done,
               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// A command running on its own thread, its output readable while it runs.
class Background {
 public:
  Background(std::vector<std::string> args, ApiCliOptions options) {
    args.insert(args.begin(), "tessera-agent");
    thread_ = std::thread([this, args = std::move(args), options = std::move(options)] {
      code_ = RunApiCli(args, out_, err_, options);
    });
  }
  ~Background() {
    if (thread_.joinable()) thread_.join();
  }
  int Join() {
    thread_.join();
    return code_;
  }
  std::string out() const { return out_.str(); }
  std::string err() const { return err_.str(); }

 private:
  SyncStream out_;
  SyncStream err_;
  std::atomic<int> code_{-1};
  std::thread thread_;
};

class WatchCliTest : public AgentCliTest {
 protected:
  std::unique_ptr<Background> Start(std::vector<std::string> args) {
    args.push_back("--socket-path");
    args.push_back(socket_path_);
    return std::make_unique<Background>(std::move(args), IsolatedOptions());
  }
};

TEST_F(WatchCliTest, PrintsEveryUpdateUntilMaxUpdates) {
  auto watch = Start({"api", "watch", "--max-updates", "2"});
  ASSERT_TRUE(WaitUntil([&] { return watch->out().find("Received 2 svids") != std::string::npos; }))
      << watch->err();
  fake_->SetX509(X509Response({db_}));
  EXPECT_EQ(watch->Join(), 0) << watch->err();
  const std::string out = watch->out();
  EXPECT_EQ(Count(out, "Received "), 2u) << out;
  size_t second = out.find("Received 1 svid after ");
  ASSERT_NE(second, std::string::npos) << out;
  EXPECT_THAT(out.substr(0, second), HasSubstr("SPIFFE ID:\t\tspiffe://example.org/web\n"));
  EXPECT_THAT(out.substr(second), HasSubstr("SPIFFE ID:\t\tspiffe://example.org/db\n"));
  EXPECT_THAT(out.substr(second), Not(HasSubstr("example.org/web")));
  // The stream was closed, not left behind.
  EXPECT_TRUE(WaitUntil([&] { return fake_->open_streams() == 0; }));
}

TEST_F(WatchCliTest, JsonPrintsOneDocumentPerUpdate) {
  CliResult r = Run({"api", "watch", "--max-updates", "1", "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(Count(r.out, "\n"), 1u) << r.out;
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << r.out;
  ASSERT_EQ(doc["svids"].size(), 2u);
  EXPECT_EQ(doc["svids"][1]["spiffe_id"], kDb);
  EXPECT_TRUE(doc["federated_bundles"].contains("spiffe://other.org"));
}

TEST_F(WatchCliTest, SigtermAndSigintEndItCleanlyAndRestoreHandlers) {
  for (int signo : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(signo);
    // A handler of the caller's, to be put back afterwards.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    struct sigaction before {};
    ASSERT_EQ(sigaction(signo, &ignore, &before), 0);

    auto watch = Start({"api", "watch"});
    ASSERT_TRUE(WaitUntil([&] {
      return watch->out().find("Received 2 svids") != std::string::npos;
    })) << watch->err();
    ASSERT_EQ(::kill(::getpid(), signo), 0);
    EXPECT_EQ(watch->Join(), 0) << watch->err();
    EXPECT_THAT(watch->err(), IsEmpty());
    EXPECT_TRUE(WaitUntil([&] { return fake_->open_streams() == 0; }));

    struct sigaction after {};
    ASSERT_EQ(sigaction(signo, &before, &after), 0);
    EXPECT_EQ(after.sa_handler, SIG_IGN);
  }
}

TEST_F(WatchCliTest, ReportsErrorsAndKeepsWatching) {
  fake_->SetX509Error(grpc::Status(grpc::StatusCode::UNAVAILABLE, "workload attestation failed"));
  auto watch = Start({"api", "watch", "--max-updates", "1"});
  ASSERT_TRUE(WaitUntil([&] {
    return watch->err().find("failed to watch X509-SVIDs: workload attestation failed\n") !=
           std::string::npos;
  })) << watch->err();
  fake_->SetX509(X509Response({web_}));
  EXPECT_EQ(watch->Join(), 0);
  EXPECT_THAT(watch->out(), StartsWith("Received 1 svid after "));
}

TEST_F(WatchCliTest, StopsOnAnErrorThatMustNotBeRetried) {
  fake_->SetX509Error(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad request"));
  CliResult r = Run({"api", "watch"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to watch X509-SVIDs: bad request\n");
  r = Run({"api", "watch", "--max-updates", "-1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "--max-updates must not be negative\n");
}

class HealthCheckCliTest : public AgentCliTest {
 protected:
  // A Unix socket bound but not listening: connecting to it is refused.
  std::string RefusingSocket() {
    std::string path = dir_.path() + "/refusing.sock";
    refusing_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    EXPECT_EQ(::bind(refusing_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << std::strerror(errno);
    return path;
  }
  UniqueFd refusing_;
};

TEST_F(HealthCheckCliTest, HealthyAgent) {
  CliResult r = Run({"healthcheck"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Agent is healthy.\n");
  r = Run({"healthcheck", "--verbose"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Contacting Workload API at " + socket_path_ +
                       "...\nSVID received over Workload API.\nAgent is healthy.\n");
  r = Run({"healthcheck", "--output", "json"});
  EXPECT_EQ(r.out, "{\"healthy\":true}\n");
}

TEST_F(HealthCheckCliTest, NoIdentityForTheCallerIsStillHealthy) {
  fake_->SetX509Error(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no identity issued"));
  CliResult r = Run({"healthcheck", "--verbose"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Workload API answered PermissionDenied (no identity issued)"));
  EXPECT_THAT(r.out, HasSubstr("Agent is healthy.\n"));
}

TEST_F(HealthCheckCliTest, AgentAnsweringUnavailableIsUnhealthyUnlessShallow) {
  fake_->SetX509Error(grpc::Status(grpc::StatusCode::UNAVAILABLE, "workload attestation failed"));
  CliResult r = Run({"healthcheck"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "Agent is unhealthy: the Workload API answered with an error: workload attestation "
            "failed\n");
  EXPECT_THAT(r.out, IsEmpty());

  int calls = fake_->calls();
  r = Run({"healthcheck", "--shallow", "--verbose"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Workload API socket accepts connections.\nAgent is healthy.\n"));
  EXPECT_EQ(fake_->calls(), calls);
}

TEST_F(HealthCheckCliTest, UnreachableAgentIsUnhealthy) {
  const std::string missing = dir_.path() + "/missing.sock";
  const std::string refusing = RefusingSocket();
  for (const char* shallow : {"--verbose", "--shallow"}) {
    SCOPED_TRACE(shallow);
    CliResult r = RunWith({"healthcheck", shallow, "--socket-path", missing}, IsolatedOptions());
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "Agent is unhealthy: cannot reach the Workload API at " + missing +
                         ": no such socket (is tessera-agent running?)\n");
    r = RunWith({"healthcheck", shallow, "--socket-path", refusing}, IsolatedOptions());
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "Agent is unhealthy: cannot reach the Workload API at " + refusing +
                         ": connection refused (is tessera-agent running?)\n");
  }
}

class EndpointCliTest : public HealthCheckCliTest {};

TEST_F(EndpointCliTest, UnreachableOrSilentAgentExitsOneWithTheReason) {
  const std::string missing = dir_.path() + "/missing.sock";
  CliResult r = RunWith({"api", "fetch", "x509", "--socket-path", missing}, IsolatedOptions());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "cannot reach the Workload API at " + missing +
                       ": no such socket (is tessera-agent running?)\n");
  EXPECT_THAT(r.out, IsEmpty());

  const std::string refusing = RefusingSocket();
  r = RunWith({"api", "fetch", "jwt", "--audience", "a", "--socket-path", refusing},
              IsolatedOptions());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "cannot reach the Workload API at " + refusing +
                       ": connection refused (is tessera-agent running?)\n");

  r = RunWith({"api", "fetch", "x509", "--socket-path", dir_.path()}, IsolatedOptions());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "cannot reach the Workload API at " + dir_.path() + ": not a socket\n");

  fake_->SetUnaryDelay(std::chrono::seconds(5));
  auto start = std::chrono::steady_clock::now();
  r = Run({"api", "validate", "jwt", "--audience", "a", "--svid", "x.y.z", "--timeout", "200ms"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "no answer from the Workload API at " + socket_path_ + " within 200ms\n");

  r = Run({"api", "fetch", "bundles", "--timeout", "soon"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("--timeout: invalid duration \"soon\""));
  r = RunWith({"api", "fetch", "bundles", "--socket-path", "tcp://localhost:1"}, IsolatedOptions());
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("--socket-path: "));
}

TEST_F(EndpointCliTest, SpiffeEndpointSocketIsUsedWithoutSocketPath) {
  const std::string uri = "unix://" + socket_path_;
  ApiCliOptions options = IsolatedOptions();
  options.endpoint_socket_env = [uri] { return std::optional<std::string>(uri); };
  CliResult r = RunWith({"api", "fetch", "bundles"}, options);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("* spiffe://example.org\n"));

  // --socket-path wins over the variable.
  options.endpoint_socket_env = [] {
    return std::optional<std::string>("unix:///nonexistent.sock");
  };
  r = RunWith({"api", "fetch", "bundles", "--socket-path", socket_path_}, options);
  EXPECT_EQ(r.code, 0) << r.err;

  // The standard makes the variable a URI: a bare path there is refused, naming the variable.
  options.endpoint_socket_env = [this] { return std::optional<std::string>(socket_path_); };
  r = RunWith({"api", "fetch", "bundles"}, options);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("SPIFFE_ENDPOINT_SOCKET: "));

  // Read from the real environment when no function is given.
  ASSERT_EQ(::setenv("SPIFFE_ENDPOINT_SOCKET", uri.c_str(), 1), 0);
  r = RunWith({"healthcheck"}, ApiCliOptions{.default_socket_path = "/nonexistent.sock"});
  ::unsetenv("SPIFFE_ENDPOINT_SOCKET");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Agent is healthy.\n");
}

TEST_F(EndpointCliTest, DefaultSocketWhenNothingElseIsGiven) {
  ApiCliOptions options = IsolatedOptions();
  CliResult r = RunWith({"api", "fetch", "bundles"}, options);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "cannot reach the Workload API at /nonexistent/tessera-cli-test/api.sock: no such "
            "socket (is tessera-agent running?)\n");
  options.default_socket_path = socket_path_;
  r = RunWith({"api", "fetch", "bundles"}, options);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ApiCliOptions().default_socket_path, "/run/tessera/agent/api.sock");
}

TEST_F(EndpointCliTest, RelativeSocketPathAndTcpEndpoint) {
  std::filesystem::path cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir_.path());
  CliResult r =
      RunWith({"api", "fetch", "bundles", "--socket-path", "agent.sock"}, IsolatedOptions());
  std::filesystem::current_path(cwd);
  EXPECT_EQ(r.code, 0) << r.err;

  FakeWorkloadApi tcp_fake;
  tcp_fake.SetX509Bundles(pki().X509BundlesResponse());
  FakeWorkloadServer tcp_server(&tcp_fake, "127.0.0.1:0");
  ASSERT_TRUE(tcp_server.started());
  const std::string uri = "tcp://127.0.0.1:" + std::to_string(tcp_server.port());
  r = RunWith({"api", "fetch", "bundles", "--output", "json", "--socket-path", uri},
              IsolatedOptions());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("spiffe://other.org"));
  r = RunWith({"healthcheck", "--shallow", "--socket-path", uri}, IsolatedOptions());
  EXPECT_EQ(r.code, 0) << r.err;
  tcp_server.Stop();
  r = RunWith({"healthcheck", "--shallow", "--socket-path", uri}, IsolatedOptions());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Agent is unhealthy: cannot reach the Workload API at " + uri +
                       ": connection refused (is tessera-agent running?)\n");
}

}  // namespace
}  // namespace tessera::agent::cli::testing
