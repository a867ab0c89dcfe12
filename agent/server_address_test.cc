#include "agent/server_address.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::agent {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(ServerAddressTest, ParsesNamesAndAddresses) {
  struct Case {
    std::string text, host;
    uint16_t port;
    std::string host_port;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"tessera-server:8081", "tessera-server", 8081, "tessera-server:8081"},
           {"Server-1.Example.ORG:1", "Server-1.Example.ORG", 1, "Server-1.Example.ORG:1"},
           {"192.0.2.10:65535", "192.0.2.10", 65535, "192.0.2.10:65535"},
           {"[2001:db8::1]:443", "2001:db8::1", 443, "[2001:db8::1]:443"},
           {"[::1]:8081", "::1", 8081, "[::1]:8081"},
           {"localhost:08081", "localhost", 8081, "localhost:8081"},
       }) {
    absl::StatusOr<ServerAddress> a = ParseServerAddress(c.text);
    ASSERT_TRUE(a.ok()) << c.text << ": " << a.status();
    EXPECT_EQ(a->host, c.host);
    EXPECT_EQ(a->port, c.port);
    EXPECT_EQ(a->HostPort(), c.host_port);
  }
}

TEST(ServerAddressTest, RejectsBadAddresses) {
  struct Case {
    std::string text, error;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"tessera-server",
            "\"tessera-server\" has no port (write \"host:port\", e.g. "
            "\"tessera-server:8081\")"},
           {"tessera-server:", "\"tessera-server:\" has no port"},
           {"[::1]", "\"[::1]\" has no port (write \"host:port\", e.g. \"[::1]:8081\")"},
           {"[::1]:", "has no port"},
           {":8081", "the host is empty"},
           {"", "the host is empty"},
           {"host:0", "port 0 is out of range (1 to 65535)"},
           {"host:65536", "port 65536 is out of range"},
           {"host:123456", "invalid port \"123456\""},
           {"host:+80", "invalid port \"+80\""},
           {"host:80a", "invalid port \"80a\""},
           {"host:http", "invalid port \"http\""},
           {"::1:8081", "put an IPv6 address in brackets"},
           {"2001:db8::1", "put an IPv6 address in brackets"},
           {"[2001:db8::g]:80", "invalid IPv6 address \"2001:db8::g\""},
           {"[::1:80", "missing \"]\""},
           {"[::1]x:80", "unexpected \"x:80\" after \"]\""},
           {"10.0.0.256:80", "invalid IPv4 address \"10.0.0.256\""},
           {"10.0.1:80", "invalid IPv4 address"},
           {"bad_name:80", "invalid host name \"bad_name\""},
           {"-lead.example:80", "invalid host name"},
           {"trail-.example:80", "invalid host name"},
           {"a..b:80", "invalid host name"},
           {"example.org.:80", "invalid host name"},
           {"host name:80", "invalid host name"},
           {"http://host:80", "write \"host:port\" without a scheme"},
           {std::string(64, 'a') + ".org:80", "invalid host name"},
       }) {
    absl::StatusOr<ServerAddress> a = ParseServerAddress(c.text);
    ASSERT_FALSE(a.ok()) << c.text;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(a.status()), HasSubstr(c.error)) << c.text;
  }
}

TEST(ServerAddressTest, LongestLabelAndNameAccepted) {
  EXPECT_TRUE(ParseServerAddress(std::string(63, 'a') + ".org:80").ok());
  std::string name;
  while (name.size() < 240) name += std::string(9, 'b') + ".";
  name += "org";
  ASSERT_LE(name.size(), 253u);
  EXPECT_TRUE(ParseServerAddress(name + ":80").ok());
  EXPECT_FALSE(ParseServerAddress(std::string(250, 'c') + ".org:80").ok());
}

}  // namespace
}  // namespace tessera::agent
