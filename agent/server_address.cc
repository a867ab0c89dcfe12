#include "agent/server_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/text.h"

namespace tessera::agent {
namespace {

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsIpv4(std::string_view host) {
  in_addr addr{};
  return ::inet_pton(AF_INET, std::string(host).c_str(), &addr) == 1;
}

bool IsIpv6(std::string_view host) {
  in6_addr addr{};
  return ::inet_pton(AF_INET6, std::string(host).c_str(), &addr) == 1;
}

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
bool IsDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      const bool ok =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    start = end + 1;
  }
  return true;
}

absl::Status CheckHost(std::string_view host) {
  if (host.empty()) return absl::InvalidArgumentError("the host is empty");
  // A name whose last label is numeric can only be meant as an IPv4 address (no top-level
  // domain is numeric), so "10.0.0.256" is a bad address rather than a host name.
  const size_t last_dot = host.rfind('.');
  const std::string_view last_label =
      last_dot == std::string_view::npos ? host : host.substr(last_dot + 1);
  if (IsDigits(last_label)) {
    if (IsIpv4(host)) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("invalid IPv4 address ", Quoted(host)));
  }
  if (!IsDnsName(host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid host name ", Quoted(host), " (letters, digits, '-' and '.' only)"));
  }
  return absl::OkStatus();
}

// `host` is written as in the address (IPv6 in brackets), for the example in the message.
absl::Status NoPort(std::string_view address, std::string_view host) {
  return absl::InvalidArgumentError(absl::StrCat(Quoted(address),
                                                 " has no port (write \"host:port\", e.g. \"",
                                                 AsAbsl(host.substr(0, 64)), ":8081\")"));
}

absl::StatusOr<uint16_t> ParsePort(std::string_view text) {
  if (!IsDigits(text) || text.size() > 5) {
    return absl::InvalidArgumentError(absl::StrCat("invalid port ", Quoted(text)));
  }
  int port = 0;
  std::from_chars(text.data(), text.data() + text.size(), port);
  if (port < 1 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port, " is out of range (1 to 65535)"));
  }
  return static_cast<uint16_t>(port);
}

}  // namespace

std::string ServerAddress::HostPort() const {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<ServerAddress> ParseServerAddress(std::string_view text) {
  ServerAddress address;
  std::string_view port;
  if (text.find("://") != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("write \"host:port\" without a scheme (got ", Quoted(text), ")"));
  }
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("missing \"]\" after the IPv6 address in ", Quoted(text)));
    }
    const std::string_view host = text.substr(1, close - 1);
    if (!IsIpv6(host)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid IPv6 address ", Quoted(host)));
    }
    address.host = std::string(host);
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest == ":") return NoPort(text, text.substr(0, close + 1));
    if (rest.front() != ':') {
      return absl::InvalidArgumentError(absl::StrCat("unexpected ", Quoted(rest), " after \"]\""));
    }
    port = rest.substr(1);
  } else {
    const size_t colon = text.rfind(':');
    const std::string_view host = text.substr(0, colon);
    // "::1" or "::1:8081": an IPv6 literal without brackets, whose port cannot be told apart.
    if (host.find(':') != std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "put an IPv6 address in brackets, as in \"[::1]:8081\" (got ", Quoted(text), ")"));
    }
    RETURN_IF_ERROR(CheckHost(host));
    address.host = std::string(host);
    if (colon == std::string_view::npos || colon + 1 == text.size()) return NoPort(text, host);
    port = text.substr(colon + 1);
  }
  ASSIGN_OR_RETURN(address.port, ParsePort(port));
  return address;
}

}  // namespace tessera::agent
