#include "agent/cli/command.h"

#include <sys/stat.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <ostream>
#include <sstream>
#include <system_error>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "common/units.h"
#include "spiffe/base64.h"
#include "spiffe/certificate.h"
#include "spiffe/x509_verify.h"

namespace tessera::agent::cli {
namespace {

std::optional<std::string> ProcessEndpointSocketEnv() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): a CLI command runs on one thread.
  const char* value = std::getenv(std::string(spiffe::kEndpointSocketEnvVar).c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

std::string DescribeAddress(const spiffe::WorkloadApiAddress& address) {
  if (address.transport == spiffe::WorkloadApiAddress::Transport::kUnix) {
    return address.socket_path;
  }
  bool ipv6 = address.host.find(':') != std::string::npos;
  return absl::StrCat("tcp://", ipv6 ? "[" : "", address.host, ipv6 ? "]" : "", ":", address.port);
}

// The bundles of trust domains other than `own`, in trust-domain order.
std::vector<const spiffe::Bundle*> OtherBundles(const spiffe::X509Context& context,
                                                const spiffe::TrustDomain& own) {
  std::vector<const spiffe::Bundle*> out;
  for (const auto& [td, bundle] : context.bundles) {
    if (td != own) out.push_back(&bundle);
  }
  return out;
}

void PrintValidity(std::ostream& s, std::string_view label, const spiffe::Certificate& cert) {
  s << label << " Valid After:\t" << FormatTime(cert.NotBefore()) << "\n";
  s << label << " Valid Until:\t" << FormatTime(cert.NotAfter()) << "\n";
}

}  // namespace

CommandEnv::CommandEnv(std::ostream& out, std::ostream& err, const CommonFlags& flags,
                       const ApiCliOptions& options)
    : out_(out), err_(err), flags_(flags), options_(options) {}

absl::StatusOr<std::unique_ptr<spiffe::WorkloadApiClient>> CommandEnv::Connect() {
  absl::StatusOr<std::chrono::nanoseconds> timeout = ParseDuration(flags_.timeout);
  if (!timeout.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--timeout: ", timeout.status().message()));
  }
  timeout_ = std::chrono::ceil<std::chrono::milliseconds>(*timeout);
  if (timeout_.count() <= 0) return absl::InvalidArgumentError("--timeout must be positive");

  // The address as the client takes it, and who gave it (for messages).
  std::string source;
  std::string_view label;
  std::optional<std::string> env =
      options_.endpoint_socket_env ? options_.endpoint_socket_env() : ProcessEndpointSocketEnv();
  if (!flags_.socket_path.empty()) {
    label = "--socket-path";
    source = flags_.socket_path;
    // spire-agent takes a relative socket path; the client wants an absolute one or a URI.
    if (source.front() != '/' && source.find(':') == std::string::npos) {
      std::error_code ec;
      std::filesystem::path absolute = std::filesystem::absolute(source, ec);
      if (!ec) source = absolute.string();
    }
  } else if (env.has_value() && !env->empty()) {
    label = spiffe::kEndpointSocketEnvVar;
    source = *env;
  } else {
    label = "default socket path";
    source = options_.default_socket_path;
  }
  // The environment variable must be a URI (the standard's rule); a flag or default may also be
  // a plain path.
  absl::StatusOr<spiffe::WorkloadApiAddress> address =
      label == spiffe::kEndpointSocketEnvVar
          ? spiffe::ResolveWorkloadApiAddress("", std::string_view(source))
          : spiffe::ParseWorkloadApiAddress(source);
  if (!address.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(label), ": ", address.status().message()));
  }
  address_ = *address;
  endpoint_ = DescribeAddress(address_);
  absl::StatusOr<std::unique_ptr<spiffe::WorkloadApiClient>> client =
      spiffe::WorkloadApiClient::Create({.address = source, .timeout = timeout_});
  if (!client.ok()) {
    return absl::Status(client.status().code(),
                        absl::StrCat(AsAbsl(label), ": ", client.status().message()));
  }
  return client;
}

int CommandEnv::Fail(std::string_view message) {
  err_ << message << "\n";
  return 1;
}

int CommandEnv::Fail(const absl::Status& status) { return Fail(AsStd(status.message())); }

int CommandEnv::CallFailed(std::string_view what, const absl::Status& status) {
  return Fail(Explain(what, status));
}

std::string CommandEnv::Explain(std::string_view what, const absl::Status& status) const {
  const absl::string_view message = status.message();
  if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::StrCat("no answer from the Workload API at ", endpoint_, " within ",
                        FormatDuration(timeout_));
  }
  if (status.code() == absl::StatusCode::kUnavailable) {
    // gRPC reports a failed connect() as Unavailable with the system's error text; an agent that
    // answers Unavailable itself ("workload attestation failed") has none of these.
    std::string reach = absl::StrCat("cannot reach the Workload API at ", endpoint_, ": ");
    if (absl::StrContains(message, "No such file or directory")) {
      return absl::StrCat(reach, "no such socket (is tessera-agent running?)");
    }
    if (absl::StrContains(message, "Connection refused")) {
      // Linux refuses a connect() to a file that is not a socket, too.
      struct stat st {};
      if (address_.transport == spiffe::WorkloadApiAddress::Transport::kUnix &&
          ::stat(address_.socket_path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
        return absl::StrCat(reach, "not a socket");
      }
      return absl::StrCat(reach, "connection refused (is tessera-agent running?)");
    }
    if (absl::StrContains(message, "Permission denied")) {
      return absl::StrCat(reach, "permission denied (this user may not connect to the socket)");
    }
    if (absl::StrContains(message, "failed to connect") ||
        absl::StrContains(message, "Socket closed") ||
        absl::StrContains(message, "Connection reset")) {
      return absl::StrCat(reach, AsAbsl(AgentMessage(status)));
    }
  }
  return absl::StrCat(AsAbsl(what), ": ", AsAbsl(AgentMessage(status)));
}

CLI::App* Registrar::AddLeaf(CLI::App* parent, const std::string& name,
                             const std::string& description, RunFn run) {
  CLI::App* app = parent->add_subcommand(name, description);
  auto flags = std::make_unique<CommonFlags>();
  app->add_option(
      "--socket-path", flags->socket_path,
      absl::StrCat("Workload API socket: a path, or a unix:// or tcp:// URI (default: $",
                   AsAbsl(spiffe::kEndpointSocketEnvVar), ", else ", AsAbsl(kDefaultSocketPath),
                   ")"));
  app->add_option("--output", flags->output, "output format: json or pretty")
      ->check(CLI::IsMember({"json", "pretty"}))
      ->capture_default_str();
  app->add_option("--timeout", flags->timeout, "how long to wait for the agent's answer")
      ->capture_default_str();
  leaves_.push_back(Leaf{app, std::move(flags), std::move(run)});
  return app;
}

std::optional<int> Registrar::RunParsed(std::ostream& out, std::ostream& err,
                                        const ApiCliOptions& options) {
  for (Leaf& leaf : leaves_) {
    if (!leaf.app->parsed()) continue;
    CommandEnv env(out, err, *leaf.flags, options);
    int rc = leaf.run(env);
    out.flush();
    err.flush();
    return rc;
  }
  return std::nullopt;
}

std::string FormatX509Context(const spiffe::X509Context& context,
                              std::chrono::nanoseconds response_time) {
  std::ostringstream s;
  const size_t n = context.svids.size();
  s << "Received " << n << (n == 1 ? " svid" : " svids") << " after "
    << FormatResponseTime(response_time) << "\n";
  for (const spiffe::WorkloadX509Svid& svid : context.svids) {
    const std::vector<spiffe::Certificate>& chain = svid.svid.chain;
    const spiffe::TrustDomain td = svid.svid.id.trust_domain();
    s << "\n";
    // The ID first, so that a problem further down is known to concern this SVID.
    s << "SPIFFE ID:\t\t" << svid.svid.id.str() << "\n";
    if (!svid.hint.empty()) s << "Hint:\t\t\t" << svid.hint << "\n";
    s << "Serial:\t\t\t" << chain.front().SerialHex() << "\n";
    PrintValidity(s, "SVID", chain.front());
    s << "Intermediates:\t\t" << chain.size() - 1 << "\n";
    for (size_t i = 1; i < chain.size(); ++i) {
      PrintValidity(s, absl::StrCat("Intermediate #", i), chain[i]);
    }
    if (const spiffe::Bundle* own = context.bundles.Find(td); own != nullptr) {
      for (size_t i = 0; i < own->x509_authorities().size(); ++i) {
        PrintValidity(s, absl::StrCat("CA #", i + 1), own->x509_authorities()[i]);
      }
    }
    for (const spiffe::Bundle* other : OtherBundles(context, td)) {
      for (size_t i = 0; i < other->x509_authorities().size(); ++i) {
        PrintValidity(s, absl::StrCat("[", other->trust_domain().IdString(), "] CA #", i + 1),
                      other->x509_authorities()[i]);
      }
    }
  }
  s << "\n";
  return s.str();
}

nlohmann::json X509ContextToJson(const spiffe::X509Context& context) {
  nlohmann::json svids = nlohmann::json::array();
  std::vector<spiffe::TrustDomain> own_tds;
  for (const spiffe::WorkloadX509Svid& svid : context.svids) {
    const spiffe::TrustDomain td = svid.svid.id.trust_domain();
    own_tds.push_back(td);
    const spiffe::Bundle* own = context.bundles.Find(td);
    svids.push_back(
        {{"spiffe_id", svid.svid.id.str()},
         {"x509_svid", spiffe::Base64Encode(spiffe::ChainToDer(svid.svid.chain))},
         {"bundle", own == nullptr ? "" : spiffe::Base64Encode(spiffe::X509AuthoritiesToDer(*own))},
         {"hint", svid.hint}});
  }
  nlohmann::json federated = nlohmann::json::object();
  for (const auto& [td, bundle] : context.bundles) {
    if (std::find(own_tds.begin(), own_tds.end(), td) != own_tds.end()) continue;
    federated[td.IdString()] = spiffe::Base64Encode(spiffe::X509AuthoritiesToDer(bundle));
  }
  return {{"svids", std::move(svids)},
          {"crl", nlohmann::json::array()},
          {"federated_bundles", std::move(federated)}};
}

absl::Status VerifyX509Context(const spiffe::X509Context& context) {
  auto now = std::chrono::system_clock::now();
  for (const spiffe::WorkloadX509Svid& svid : context.svids) {
    const spiffe::TrustDomain own = svid.svid.id.trust_domain();
    auto authorities =
        [&](const spiffe::TrustDomain& td) -> std::optional<std::vector<spiffe::Certificate>> {
      const std::vector<spiffe::Certificate>* certs = context.bundles.X509AuthoritiesFor(td);
      if (td != own || certs == nullptr) return std::nullopt;
      return *certs;
    };
    absl::StatusOr<spiffe::VerifiedX509Svid> verified =
        spiffe::VerifyX509Svid(svid.svid.chain, authorities, now);
    if (!verified.ok()) {
      return absl::InternalError(absl::StrCat(
          "\"", svid.svid.id.str(),
          "\" SVID failed verification against its bundle: ", verified.status().message()));
    }
  }
  return absl::OkStatus();
}

std::string FormatTime(std::chrono::system_clock::time_point t) {
  time_t seconds = std::chrono::system_clock::to_time_t(t);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  char buf[64];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S +0000 UTC", &utc);
  return std::string(buf, n);
}

std::string FormatResponseTime(std::chrono::nanoseconds d) {
  int64_t us = std::chrono::round<std::chrono::microseconds>(d).count();
  if (us < 1000) return absl::StrCat(us, "µs");
  // Go's layout: the largest unit, with the fraction's trailing zeros dropped.
  auto with_fraction = [](int64_t value, int64_t unit, std::string_view suffix) {
    std::string text = absl::StrCat(value / unit);
    if (int64_t fraction = value % unit; fraction != 0) {
      char buf[16];
      std::snprintf(buf, sizeof(buf), unit == 1000 ? "%03lld" : "%06lld",
                    static_cast<long long>(fraction));
      std::string digits(buf);
      digits.erase(digits.find_last_not_of('0') + 1);
      absl::StrAppend(&text, ".", digits);
    }
    absl::StrAppend(&text, AsAbsl(suffix));
    return text;
  };
  if (us < 1000 * 1000) return with_fraction(us, 1000, "ms");
  return with_fraction(us, 1000 * 1000, "s");
}

std::string_view AgentMessage(const absl::Status& status) {
  std::string_view message = AsStd(status.message());
  constexpr std::string_view kPrefix = "workload api ";
  if (!message.starts_with(kPrefix)) return message;
  size_t colon = message.find(": ", kPrefix.size());
  if (colon == std::string_view::npos) return message;
  return message.substr(colon + 2);
}

}  // namespace tessera::agent::cli
