// Workload API endpoint addresses: the SPIFFE_ENDPOINT_SOCKET URI forms, explicit paths and the
// fallback to the environment.
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/workload_client.h"
#include "spiffe/workload_client_test_util.h"

namespace tessera::spiffe {
namespace {

using ::testing::HasSubstr;
using Transport = WorkloadApiAddress::Transport;

struct UriCase {
  std::string input;
  std::string error;        // empty: valid
  std::string grpc_target;  // when valid
  std::string socket_path;  // when valid and unix
};

void PrintTo(const UriCase& c, std::ostream* os) { *os << '"' << c.input << '"'; }

const std::string kLongPath = "/" + std::string(120, 'a');

const UriCase kUriCases[] = {
    // The standard's form, and the one without the empty authority that go-spiffe also takes.
    {"unix:///run/spire/agent.sock", "", "unix:///run/spire/agent.sock", "/run/spire/agent.sock"},
    {"unix:/run/spire/agent.sock", "", "unix:///run/spire/agent.sock", "/run/spire/agent.sock"},
    {"UNIX:///tmp/a.sock", "", "unix:///tmp/a.sock", "/tmp/a.sock"},
    // Percent-escapes are decoded for the path and re-escaped for gRPC.
    {"unix:///tmp/a%20b%25.sock", "", "unix:///tmp/a%20b%25.sock", "/tmp/a b%.sock"},
    {"unix:///tmp/x:y@z.sock", "", "unix:///tmp/x:y@z.sock", "/tmp/x:y@z.sock"},
    // A path starting with "//" must not turn into an authority for gRPC.
    {"unix:////tmp/a.sock", "", "unix:////tmp/a.sock", "//tmp/a.sock"},
    {"tcp://127.0.0.1:8000", "", "ipv4:127.0.0.1:8000", ""},
    {"tcp://[::1]:8000", "", "ipv6:[::1]:8000", ""},
    {"TCP://10.0.0.1:65535", "", "ipv4:10.0.0.1:65535", ""},

    {"/run/spire/agent.sock", "not a URI", "", ""},
    {"agent.sock", "not a URI", "", ""},
    {"1unix:///x", "not a URI", "", ""},
    {":///x", "not a URI", "", ""},
    {"http://127.0.0.1:80", "unsupported scheme \"http\" (want unix or tcp)", "", ""},
    {"unix://host/run/agent.sock", "unix URI must not include a host", "", ""},
    {"unix://localhost/run/agent.sock", "unix URI must not include a host", "", ""},
    {"unix://user@/run/agent.sock", "unix URI must not include user info", "", ""},
    {"unix:run/agent.sock", "unix URI must have an absolute path", "", ""},
    {"unix:", "unix URI must include a socket path", "", ""},
    {"unix://", "unix URI must include a socket path", "", ""},
    {"unix:///", "socket path must not end with '/'", "", ""},
    {"unix:///run/", "socket path must not end with '/'", "", ""},
    {"unix:///run/agent.sock?x=1", "unix URI must not include a query", "", ""},
    {"unix:///run/agent.sock#frag", "unix URI must not include a fragment", "", ""},
    {"unix:///run/a%2", "malformed percent-escape in path", "", ""},
    {"unix:///run/a%zz", "malformed percent-escape in path", "", ""},
    {"unix:///run/a%00b", "socket path must not contain a NUL byte", "", ""},
    {"unix:///run/a b", "character ' ' not allowed in a URI", "", ""},
    {"unix:///run/a\"b", "character '\"' not allowed in a URI", "", ""},
    {"unix://" + kLongPath, "socket path is 121 bytes, more than the 107", "", ""},
    {"tcp://localhost:8000", "tcp URI host must be an IP address, not a name", "", ""},
    {"tcp://127.0.0.1", "tcp URI must include a port", "", ""},
    {"tcp://127.0.0.1:", "tcp URI must include a port", "", ""},
    {"tcp://:8000", "tcp URI must include a host", "", ""},
    {"tcp://127.0.0.1:8000/foo", "tcp URI must not include a path", "", ""},
    {"tcp://127.0.0.1:8000/", "tcp URI must not include a path", "", ""},
    {"tcp://127.0.0.1:8000?x", "tcp URI must not include a query", "", ""},
    {"tcp://127.0.0.1:0", "port must be a number from 1 to 65535", "", ""},
    {"tcp://127.0.0.1:65536", "port must be a number from 1 to 65535", "", ""},
    {"tcp://127.0.0.1:80a", "port must be a number from 1 to 65535", "", ""},
    {"tcp:127.0.0.1:8000", "tcp URI must have the form tcp://<ip>:<port>", "", ""},
    {"tcp://user@127.0.0.1:8000", "tcp URI must not include user info", "", ""},
    {"tcp://[::1:8000", "unterminated IPv6 literal", "", ""},
    {"tcp://[fe80::1%25eth0]:8000", "tcp URI host is not a valid IPv6 address", "", ""},
    {"tcp://::1:8000", "tcp URI host must be an IP address, not a name", "", ""},
    {"tcp://127.1:8000", "tcp URI host must be an IP address, not a name", "", ""},
};

class EndpointUriTest : public ::testing::TestWithParam<UriCase> {};

TEST_P(EndpointUriTest, ParsesLikeTheStandardSays) {
  const UriCase& c = GetParam();
  absl::StatusOr<WorkloadApiAddress> address = ParseEndpointSocketUri(c.input);
  if (c.error.empty()) {
    ASSERT_TRUE(address.ok()) << address.status();
    EXPECT_EQ(address->grpc_target, c.grpc_target);
    EXPECT_EQ(address->socket_path, c.socket_path);
    EXPECT_EQ(address->transport, c.socket_path.empty() ? Transport::kTcp : Transport::kUnix);
  } else {
    ASSERT_FALSE(address.ok()) << c.input << " was accepted as " << address->grpc_target;
    EXPECT_EQ(address.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(address.status().message()), HasSubstr(c.error));
    // The message quotes what was refused, so an operator can find it.
    EXPECT_THAT(std::string(address.status().message()),
                HasSubstr("workload api address \"" + c.input.substr(0, 20)));
  }
}

INSTANTIATE_TEST_SUITE_P(Forms, EndpointUriTest, ::testing::ValuesIn(kUriCases));

TEST(EndpointUriTest, TcpAddressParts) {
  absl::StatusOr<WorkloadApiAddress> v4 = ParseEndpointSocketUri("tcp://192.168.1.2:8081");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->host, "192.168.1.2");
  EXPECT_EQ(v4->port, 8081);
  absl::StatusOr<WorkloadApiAddress> v6 = ParseEndpointSocketUri("tcp://[2001:db8::1]:1");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(v6->port, 1);
}

TEST(EndpointUriTest, EmptyIsRefused) {
  EXPECT_EQ(ParseEndpointSocketUri("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseWorkloadApiAddress("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WorkloadApiAddressTest, PlainAbsolutePathIsTakenLiterally) {
  absl::StatusOr<WorkloadApiAddress> a = ParseWorkloadApiAddress("/run/tessera/agent.sock");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->transport, Transport::kUnix);
  EXPECT_EQ(a->socket_path, "/run/tessera/agent.sock");
  EXPECT_EQ(a->grpc_target, "unix:///run/tessera/agent.sock");

  // No decoding of a literal path; characters gRPC would misread are escaped for it.
  absl::StatusOr<WorkloadApiAddress> odd = ParseWorkloadApiAddress("/tmp/a b?#%41.sock");
  ASSERT_TRUE(odd.ok()) << odd.status();
  EXPECT_EQ(odd->socket_path, "/tmp/a b?#%41.sock");
  EXPECT_EQ(odd->grpc_target, "unix:///tmp/a%20b%3F%23%2541.sock");
}

TEST(WorkloadApiAddressTest, UrisAreAcceptedToo) {
  absl::StatusOr<WorkloadApiAddress> a = ParseWorkloadApiAddress("unix:///run/a.sock");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->socket_path, "/run/a.sock");
  absl::StatusOr<WorkloadApiAddress> t = ParseWorkloadApiAddress("tcp://127.0.0.1:9");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->grpc_target, "ipv4:127.0.0.1:9");
}

TEST(WorkloadApiAddressTest, BadPlainPaths) {
  EXPECT_THAT(std::string(ParseWorkloadApiAddress("run/agent.sock").status().message()),
              HasSubstr("not a URI"));
  EXPECT_THAT(std::string(ParseWorkloadApiAddress("/run/").status().message()),
              HasSubstr("must not end with '/'"));
  EXPECT_THAT(std::string(ParseWorkloadApiAddress(kLongPath).status().message()),
              HasSubstr("more than the 107"));
  EXPECT_THAT(std::string(ParseWorkloadApiAddress(std::string("/run/a\0b", 8)).status().message()),
              HasSubstr("NUL"));
}

TEST(ResolveWorkloadApiAddressTest, ExplicitWinsOverEnvironment) {
  absl::StatusOr<WorkloadApiAddress> a =
      ResolveWorkloadApiAddress("/explicit.sock", "unix:///env.sock");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->socket_path, "/explicit.sock");
}

TEST(ResolveWorkloadApiAddressTest, FallsBackToEnvironment) {
  absl::StatusOr<WorkloadApiAddress> a = ResolveWorkloadApiAddress("", "unix:///env.sock");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->socket_path, "/env.sock");
}

TEST(ResolveWorkloadApiAddressTest, EnvironmentMustHoldAUri) {
  absl::StatusOr<WorkloadApiAddress> a = ResolveWorkloadApiAddress("", "/env.sock");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(a.status().message()),
              HasSubstr("SPIFFE_ENDPOINT_SOCKET \"/env.sock\": not a URI"));
  absl::StatusOr<WorkloadApiAddress> host =
      ResolveWorkloadApiAddress("", "unix://agent/run/a.sock");
  ASSERT_FALSE(host.ok());
  EXPECT_THAT(std::string(host.status().message()),
              HasSubstr("SPIFFE_ENDPOINT_SOCKET \"unix://agent/run/a.sock\": unix URI must not "
                        "include a host"));
}

TEST(ResolveWorkloadApiAddressTest, NeitherGivenIsFailedPrecondition) {
  for (std::optional<std::string_view> env :
       {std::optional<std::string_view>(), std::optional<std::string_view>("")}) {
    absl::StatusOr<WorkloadApiAddress> a = ResolveWorkloadApiAddress("", env);
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(a.status().message()),
                HasSubstr("none given and SPIFFE_ENDPOINT_SOCKET is not set"));
  }
}

// The real process environment (this test binary is single-threaded here).
// NOLINTBEGIN(concurrency-mt-unsafe)
TEST(ResolveWorkloadApiAddressTest, ReadsTheProcessEnvironment) {
  ASSERT_EQ(setenv("SPIFFE_ENDPOINT_SOCKET", "unix:/run/from-env.sock", 1), 0);
  absl::StatusOr<WorkloadApiAddress> a = ResolveWorkloadApiAddress("");
  absl::StatusOr<std::unique_ptr<WorkloadApiClient>> client = WorkloadApiClient::Create();
  ASSERT_EQ(setenv("SPIFFE_ENDPOINT_SOCKET", "tcp://localhost:1", 1), 0);
  absl::StatusOr<std::unique_ptr<WorkloadApiClient>> bad = WorkloadApiClient::Create();
  ASSERT_EQ(unsetenv("SPIFFE_ENDPOINT_SOCKET"), 0);
  absl::StatusOr<WorkloadApiAddress> unset = ResolveWorkloadApiAddress("");

  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->socket_path, "/run/from-env.sock");
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->target(), "unix:///run/from-env.sock");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("not a name"));
  EXPECT_EQ(unset.status().code(), absl::StatusCode::kFailedPrecondition);
}
// NOLINTEND(concurrency-mt-unsafe)

// gRPC and the client agree on which file a path with odd characters names.
TEST(WorkloadApiAddressTest, OddSocketPathReachesTheServer) {
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string path = dir.path() + "/a b%41?#.sock";
  absl::StatusOr<WorkloadApiAddress> address = ParseWorkloadApiAddress(path);
  ASSERT_TRUE(address.ok()) << address.status();

  testing::FakeWorkloadApi fake;
  ASSERT_OK_AND_ASSIGN(testing::WorkloadPki pki, testing::WorkloadPki::Make());
  fake.SetX509Bundles(pki.X509BundlesResponse());
  testing::FakeWorkloadServer server(&fake, address->grpc_target);
  ASSERT_TRUE(server.started());
  EXPECT_TRUE(std::filesystem::exists(path));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<WorkloadApiClient> client,
                       WorkloadApiClient::Create({.address = path}));
  absl::StatusOr<BundleSet> bundles = client->FetchX509Bundles();
  ASSERT_TRUE(bundles.ok()) << bundles.status();
  EXPECT_EQ(bundles->size(), 2u);
}

}  // namespace
}  // namespace tessera::spiffe
