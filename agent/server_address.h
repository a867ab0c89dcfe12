// A tessera-server address as the agent's configuration and command line take it: "host:port",
// "192.0.2.1:8081" or "[2001:db8::1]:8081". Plain values and pure functions; safe for concurrent
// use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace tessera::agent {

// One tessera-server endpoint (the agent fails over between several).
struct ServerAddress {
  // A DNS name or an IP literal (IPv6 without brackets).
  std::string host;
  uint16_t port = 0;

  // "host:port", an IPv6 literal in brackets: the form of gRPC targets and of messages.
  std::string HostPort() const;
  bool operator==(const ServerAddress&) const = default;
};

// Parses "host:port", "1.2.3.4:port" or "[v6]:port". The host must be a valid DNS name or IP
// literal and the port 1 to 65535. Errors are InvalidArgument, the text quoted.
absl::StatusOr<ServerAddress> ParseServerAddress(std::string_view text);

}  // namespace tessera::agent
