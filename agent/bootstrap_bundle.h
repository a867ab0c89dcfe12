// The bootstrap trust bundle: the X.509 authorities a fresh agent trusts the server with at first
// contact (SPIRE's trust_bundle_path / trust_bundle_url / trust_bundle_format). Once the agent
// has attested, the bundle it received from the server replaces it (see attestation_manager.h).
//
// The bundle is either a local file or an https:// URL fetched with libcurl. Plain http is
// refused here as well as in the config: whatever the URL returns becomes the root of all trust
// in the server, so it must arrive over a channel authenticated by the system's CAs (as with
// SPIRE, whose agent fetches it with Go's default TLS client). Redirects are followed only to
// https:// URLs. libcurl is not linked: it is loaded at the first download, so that the agents
// that bootstrap from a file (most) never map it and the libraries it pulls in.
//
// Stateless functions (libcurl, once loaded, stays loaded); safe to call from any thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/config.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"

namespace tessera::agent {

// Largest bundle document accepted, from a file or a URL.
inline constexpr size_t kMaxBootstrapBundleBytes = 1 << 20;

struct BundleFetchOptions {
  // PEM file with the CAs that authenticate the https server; empty means the system's CA
  // store. For a private PKI (and tests).
  std::filesystem::path ca_file;
  // Deadline for the whole download.
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
  // The shared library the download uses; when it cannot be loaded, FetchHttps fails with
  // FailedPrecondition. Tests name one that does not exist.
  std::string libcurl = "libcurl.so.4";
};

// The certificates of a bundle document. kPem: one or more CERTIFICATE blocks and nothing else.
// kSpiffe: a SPIFFE bundle (JWKS) whose "x509-svid" keys are the authorities; JWT keys are
// ignored. An empty bundle is an error. Errors are InvalidArgument naming `source`.
absl::StatusOr<std::vector<spiffe::Certificate>> ParseBootstrapBundle(
    std::string_view data, TrustBundleFormat format, const spiffe::TrustDomain& trust_domain,
    std::string_view source);

// GET `url` (https only) and return the body of a 200 answer. Errors: InvalidArgument for a
// URL that is not https; Unavailable when the server cannot be reached, times out or answers
// 5xx (worth retrying); FailedPrecondition when libcurl cannot be loaded, the server's
// certificate is not trusted, it answers anything else, or the body exceeds
// kMaxBootstrapBundleBytes (an operator must fix something).
absl::StatusOr<std::string> FetchHttps(const std::string& url, const BundleFetchOptions& options);

// The bootstrap bundle `config` names: trust_bundle_path or trust_bundle_url, in
// trust_bundle_format. With insecure_bootstrap (or neither set) there is none: an empty vector.
// A missing or unreadable file is FailedPrecondition; fetch errors are as FetchHttps says.
absl::StatusOr<std::vector<spiffe::Certificate>> LoadBootstrapBundle(
    const AgentConfig& config, const BundleFetchOptions& options = {});

}  // namespace tessera::agent
