#include "agent/bootstrap_bundle.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/text.h"
#include "spiffe/bundle_json.h"

namespace tessera::agent {
namespace {

using CurlPtr = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;

// For messages: a URL may carry credentials in its userinfo or a token in its query.
std::string RedactUrl(std::string_view url) {
  std::string_view out = url.substr(0, url.find_first_of("?#"));
  size_t scheme_end = out.find("://");
  if (scheme_end == std::string_view::npos) return std::string(out);
  size_t authority_start = scheme_end + 3;
  size_t authority_end = out.find('/', authority_start);
  size_t at = out.substr(0, authority_end).rfind('@');
  if (at == std::string_view::npos || at < authority_start) return std::string(out);
  return absl::StrCat(AsAbsl(out.substr(0, authority_start)), AsAbsl(out.substr(at + 1)));
}

struct Body {
  std::string data;
  bool too_large = false;
};

size_t Append(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* body = static_cast<Body*>(userdata);
  const size_t n = size * nmemb;
  if (body->data.size() + n > kMaxBootstrapBundleBytes) {
    body->too_large = true;
    return 0;  // makes curl abort with CURLE_WRITE_ERROR
  }
  body->data.append(ptr, n);
  return n;
}

// Errors the operator has to fix rather than wait out.
bool IsConfigurationError(CURLcode code) {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_TOO_MANY_REDIRECTS:
      return true;
    default:
      return false;
  }
}

}  // namespace

absl::StatusOr<std::vector<spiffe::Certificate>> ParseBootstrapBundle(
    std::string_view data, TrustBundleFormat format, const spiffe::TrustDomain& trust_domain,
    std::string_view source) {
  std::vector<spiffe::Certificate> certs;
  if (format == TrustBundleFormat::kPem) {
    auto parsed = spiffe::ParsePemChain(data);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trust bundle ", AsAbsl(source), ": not a PEM bundle: ", parsed.status().message()));
    }
    certs = *std::move(parsed);
  } else {
    auto parsed = spiffe::ParseSpiffeBundle(trust_domain, data);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trust bundle ", AsAbsl(source), ": not a SPIFFE bundle: ", parsed.status().message()));
    }
    certs = parsed->x509_authorities();
  }
  if (certs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("trust bundle ", AsAbsl(source), ": no X.509 authorities"));
  }
  return certs;
}

absl::StatusOr<std::string> FetchHttps(const std::string& url, const BundleFetchOptions& options) {
  const std::string shown = RedactUrl(url);
  if (!std::string_view(url).starts_with("https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("trust bundle URL ", Quoted(shown), " must use https"));
  }
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CurlPtr curl(curl_easy_init(), &curl_easy_cleanup);
  if (curl == nullptr) return absl::InternalError("trust bundle: curl_easy_init failed");
  Body body;
  char error[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_file.empty()) {
    // Only these CAs: the system's directory of CAs would otherwise still be consulted.
    curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
  }
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // we are multi-threaded
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "tessera-agent");
  CURLcode code = curl_easy_perform(c);
  if (body.too_large) {
    return absl::FailedPreconditionError(absl::StrCat("trust bundle URL ", Quoted(shown),
                                                      ": answer larger than ",
                                                      kMaxBootstrapBundleBytes, " bytes"));
  }
  if (code != CURLE_OK) {
    std::string why = error[0] != '\0' ? std::string(error) : curl_easy_strerror(code);
    std::string message = absl::StrCat("trust bundle URL ", Quoted(shown), ": ", why);
    if (IsConfigurationError(code)) return absl::FailedPreconditionError(message);
    return absl::UnavailableError(message);
  }
  long http_status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http_status);
  if (http_status != 200) {
    std::string message =
        absl::StrCat("trust bundle URL ", Quoted(shown), ": HTTP status ", http_status);
    if (http_status >= 500) return absl::UnavailableError(message);
    return absl::FailedPreconditionError(message);
  }
  return std::move(body.data);
}

absl::StatusOr<std::vector<spiffe::Certificate>> LoadBootstrapBundle(
    const AgentConfig& config, const BundleFetchOptions& options) {
  if (!config.trust_bundle_path.empty()) {
    const std::string source = config.trust_bundle_path.string();
    auto data = ReadFileToString(config.trust_bundle_path, kMaxBootstrapBundleBytes);
    if (!data.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("trust_bundle_path: ", data.status().message()));
    }
    return ParseBootstrapBundle(*data, config.trust_bundle_format, config.trust_domain, source);
  }
  if (!config.trust_bundle_url.empty()) {
    ASSIGN_OR_RETURN(std::string data, FetchHttps(config.trust_bundle_url, options));
    return ParseBootstrapBundle(data, config.trust_bundle_format, config.trust_domain,
                                RedactUrl(config.trust_bundle_url));
  }
  return std::vector<spiffe::Certificate>{};
}

}  // namespace tessera::agent
