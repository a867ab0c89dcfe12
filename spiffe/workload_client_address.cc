// Workload API endpoint addresses (SPIFFE-FACTS §4, SPIFFE_ENDPOINT_SOCKET).
#include <arpa/inet.h>
#include <sys/un.h>

#include <cctype>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "spiffe/workload_client.h"

namespace tessera::spiffe {
namespace {

// What a unix socket address can hold, without the terminating NUL.
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1;

constexpr std::string_view kAddressLabel = "workload api address";

absl::Status Invalid(std::string_view label, std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat(AsAbsl(label), " \"", AsAbsl(text), "\": ", AsAbsl(why)));
}

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~';
}
bool IsSubDelim(char c) {
  return std::string_view("!$&'()*+,;=").find(c) != std::string_view::npos;
}
// RFC 3986 pchar without pct-encoded, plus the '/' between segments.
bool IsPathChar(char c) {
  return IsUnreserved(static_cast<unsigned char>(c)) || IsSubDelim(c) || c == ':' || c == '@' ||
         c == '/';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The path component of a URI, percent-decoded; only RFC 3986 path characters are allowed.
absl::StatusOr<std::string> DecodeUriPath(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%') {
      int hi = i + 2 < path.size() ? HexValue(path[i + 1]) : -1;
      int lo = i + 2 < path.size() ? HexValue(path[i + 2]) : -1;
      if (hi < 0 || lo < 0) return absl::InvalidArgumentError("malformed percent-escape in path");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
      continue;
    }
    if (!IsPathChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("character '", AsAbsl(std::string_view(&c, 1)), "' not allowed in a URI"));
    }
    out.push_back(c);
  }
  return out;
}

// gRPC decodes percent-escapes in a unix target's path, so everything but plain path
// characters is escaped.
std::string EncodeForGrpc(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : path) {
    if (IsPathChar(c)) {
      out.push_back(c);
    } else {
      auto b = static_cast<unsigned char>(c);
      out += {'%', kHex[b >> 4], kHex[b & 0xF]};
    }
  }
  return out;
}

// Checks a socket path (already decoded) and builds the address.
absl::StatusOr<WorkloadApiAddress> UnixAddress(std::string_view label, std::string_view text,
                                               std::string_view path) {
  if (path.empty()) return Invalid(label, text, "unix address must include a socket path");
  if (path.front() != '/') return Invalid(label, text, "socket path must be absolute");
  if (path.find('\0') != std::string_view::npos) {
    return Invalid(label, text, "socket path must not contain a NUL byte");
  }
  if (path.back() == '/') return Invalid(label, text, "socket path must not end with '/'");
  if (path.size() > kMaxSocketPath) {
    return Invalid(label, text,
                   absl::StrCat("socket path is ", path.size(), " bytes, more than the ",
                                kMaxSocketPath, " a unix socket address holds"));
  }
  WorkloadApiAddress address;
  address.transport = WorkloadApiAddress::Transport::kUnix;
  address.socket_path = std::string(path);
  // Always with the empty authority, so that a path starting with "//" is not read as a host.
  address.grpc_target = absl::StrCat("unix://", EncodeForGrpc(path));
  return address;
}

absl::StatusOr<uint16_t> ParsePort(std::string_view port) {
  if (port.empty() || port.size() > 5) return absl::InvalidArgumentError("bad port");
  uint32_t value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return absl::InvalidArgumentError("bad port");
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535) return absl::InvalidArgumentError("bad port");
  return static_cast<uint16_t>(value);
}

absl::StatusOr<WorkloadApiAddress> TcpAddress(std::string_view label, std::string_view text,
                                              std::string_view authority) {
  if (authority.find('@') != std::string_view::npos) {
    return Invalid(label, text, "tcp URI must not include user info");
  }
  std::string_view host;
  std::string_view rest;
  bool ipv6 = false;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Invalid(label, text, "unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    rest = authority.substr(close + 1);
    ipv6 = true;
  } else {
    size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : authority.substr(colon);
  }
  if (host.empty()) return Invalid(label, text, "tcp URI must include a host");
  if (!rest.starts_with(':') || rest.size() == 1) {
    return Invalid(label, text, "tcp URI must include a port");
  }
  absl::StatusOr<uint16_t> port = ParsePort(rest.substr(1));
  if (!port.ok()) {
    return Invalid(label, text, "tcp URI port must be a number from 1 to 65535");
  }
  std::string host_str(host);
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(ipv6 ? AF_INET6 : AF_INET, host_str.c_str(), buf) != 1) {
    return Invalid(label, text,
                   ipv6 ? "tcp URI host is not a valid IPv6 address"
                        : "tcp URI host must be an IP address, not a name");
  }
  WorkloadApiAddress address;
  address.transport = WorkloadApiAddress::Transport::kTcp;
  address.host = host_str;
  address.port = *port;
  address.grpc_target = ipv6 ? absl::StrCat("ipv6:[", host_str, "]:", *port)
                             : absl::StrCat("ipv4:", host_str, ":", *port);
  return address;
}

absl::StatusOr<WorkloadApiAddress> ParseUri(std::string_view label, std::string_view text) {
  size_t colon = text.find(':');
  bool scheme_ok = colon != std::string_view::npos && colon > 0 &&
                   std::isalpha(static_cast<unsigned char>(text[0])) != 0;
  for (size_t i = 1; scheme_ok && i < colon; ++i) {
    char c = text[i];
    scheme_ok =
        std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
  }
  if (!scheme_ok) {
    return Invalid(label, text, "not a URI: want unix:///path/to/socket or tcp://<ip>:<port>");
  }
  std::string scheme = absl::AsciiStrToLower(AsAbsl(text.substr(0, colon)));
  std::string_view rest = text.substr(colon + 1);

  std::optional<std::string_view> authority;
  if (rest.starts_with("//")) {
    size_t end = rest.find_first_of("/?#", 2);
    authority = rest.substr(2, end == std::string_view::npos ? std::string_view::npos : end - 2);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  }
  size_t query = rest.find_first_of("?#");
  std::string_view path = rest.substr(0, query);
  if (query != std::string_view::npos) {
    bool is_query = rest[query] == '?';
    return Invalid(
        label, text,
        absl::StrCat(scheme, " URI must not include a ", is_query ? "query" : "fragment"));
  }

  if (scheme == "unix") {
    if (authority.has_value() && !authority->empty()) {
      return Invalid(label, text,
                     authority->find('@') != std::string_view::npos
                         ? "unix URI must not include user info"
                         : "unix URI must not include a host (write unix:///path/to/socket)");
    }
    if (path.empty()) return Invalid(label, text, "unix URI must include a socket path");
    if (!path.starts_with('/')) {
      return Invalid(label, text, "unix URI must have an absolute path (unix:///path/to/socket)");
    }
    absl::StatusOr<std::string> decoded = DecodeUriPath(path);
    if (!decoded.ok()) return Invalid(label, text, AsStd(decoded.status().message()));
    return UnixAddress(label, text, *decoded);
  }
  if (scheme == "tcp") {
    if (!authority.has_value()) {
      return Invalid(label, text, "tcp URI must have the form tcp://<ip>:<port>");
    }
    if (!path.empty()) return Invalid(label, text, "tcp URI must not include a path");
    return TcpAddress(label, text, *authority);
  }
  return Invalid(label, text,
                 absl::StrCat("unsupported scheme \"", scheme, "\" (want unix or tcp)"));
}

}  // namespace

absl::StatusOr<WorkloadApiAddress> ParseEndpointSocketUri(std::string_view uri) {
  if (uri.empty()) return absl::InvalidArgumentError("workload api address is empty");
  return ParseUri(kAddressLabel, uri);
}

absl::StatusOr<WorkloadApiAddress> ParseWorkloadApiAddress(std::string_view address) {
  if (address.empty()) return absl::InvalidArgumentError("workload api address is empty");
  if (address.front() == '/') return UnixAddress(kAddressLabel, address, address);
  return ParseUri(kAddressLabel, address);
}

absl::StatusOr<WorkloadApiAddress> ResolveWorkloadApiAddress(
    std::string_view address, std::optional<std::string_view> endpoint_socket_env) {
  if (!address.empty()) return ParseWorkloadApiAddress(address);
  if (!endpoint_socket_env.has_value() || endpoint_socket_env->empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no workload api address: none given and ", AsAbsl(kEndpointSocketEnvVar), " is not set"));
  }
  // The standard defines the variable as a URI: a bare path there is refused.
  return ParseUri(kEndpointSocketEnvVar, *endpoint_socket_env);
}

absl::StatusOr<WorkloadApiAddress> ResolveWorkloadApiAddress(std::string_view address) {
  // Not thread-safe against a concurrent setenv, as the header says.
  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  const char* env = std::getenv(std::string(kEndpointSocketEnvVar).c_str());
  return ResolveWorkloadApiAddress(
      address, env == nullptr ? std::nullopt : std::optional<std::string_view>(env));
}

}  // namespace tessera::spiffe
