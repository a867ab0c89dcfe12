#include "agent/bootstrap_bundle.h"

#include <curl/curl.h>
#include <dlfcn.h>

#include <map>
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

// libcurl is opened at the first download rather than linked: most agents bootstrap from a
// file, and linking it would map libcurl and the TLS, Kerberos, LDAP and SSH libraries it
// depends on into every agent (about 4 MiB of RSS) for a fetch that happens once, if ever.
// Only the functions below are used; the types and constants still come from <curl/curl.h>.
struct CurlApi {
  CURLcode (*global_init)(long flags);
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL* curl, CURLoption option, ...);
  CURLcode (*easy_perform)(CURL* curl);
  CURLcode (*easy_getinfo)(CURL* curl, CURLINFO info, ...);
  void (*easy_cleanup)(CURL* curl);
  const char* (*easy_strerror)(CURLcode code);
};

template <typename Fn>
bool Resolve(void* library, const char* symbol, Fn*& fn) {
  fn = reinterpret_cast<Fn*>(::dlsym(library, symbol));
  return fn != nullptr;
}

// The functions of `soname`, opened and initialised once per process and never closed (what
// libcurl and its TLS library set up at initialisation is not meant to be torn down while other
// threads run). A failure is not remembered: installing libcurl fixes the next attempt.
absl::StatusOr<const CurlApi*> LoadCurl(const std::string& soname) {
  static std::mutex mu;
  static std::map<std::string, CurlApi>* loaded = new std::map<std::string, CurlApi>();
  std::lock_guard lock(mu);
  if (auto it = loaded->find(soname); it != loaded->end()) return &it->second;
  auto missing = [&soname](std::string_view why) {
    return absl::FailedPreconditionError(absl::StrCat(
        "trust_bundle_url needs libcurl (", soname, "), which could not be loaded: ", AsAbsl(why),
        "; install libcurl (Debian: libcurl4) or use trust_bundle_path"));
  };
  void* library = ::dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = ::dlerror();
    return missing(why != nullptr ? why : "dlopen failed");
  }
  CurlApi api{};
  if (!Resolve(library, "curl_global_init", api.global_init) ||
      !Resolve(library, "curl_easy_init", api.easy_init) ||
      !Resolve(library, "curl_easy_setopt", api.easy_setopt) ||
      !Resolve(library, "curl_easy_perform", api.easy_perform) ||
      !Resolve(library, "curl_easy_getinfo", api.easy_getinfo) ||
      !Resolve(library, "curl_easy_cleanup", api.easy_cleanup) ||
      !Resolve(library, "curl_easy_strerror", api.easy_strerror)) {
    ::dlclose(library);
    return missing("it lacks the curl_easy_* functions");
  }
  if (CURLcode code = api.global_init(CURL_GLOBAL_DEFAULT); code != CURLE_OK) {
    return absl::InternalError(
        absl::StrCat("trust bundle: curl_global_init failed: ", api.easy_strerror(code)));
  }
  return &loaded->emplace(soname, api).first->second;
}

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
  ASSIGN_OR_RETURN(const CurlApi* api, LoadCurl(options.libcurl));
  std::unique_ptr<CURL, void (*)(CURL*)> curl(api->easy_init(), api->easy_cleanup);
  if (curl == nullptr) return absl::InternalError("trust bundle: curl_easy_init failed");
  Body body;
  char error[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  // A libcurl too old for an option must not quietly drop a restriction (https only, verified
  // peer): any option it refuses fails the download.
  CURLcode refused = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (CURLcode code = api->easy_setopt(c, option, value); code != CURLE_OK) refused = code;
  };
  set(CURLOPT_URL, url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "https");
  set(CURLOPT_REDIR_PROTOCOLS_STR, "https");
  set(CURLOPT_FOLLOWLOCATION, 1L);
  set(CURLOPT_MAXREDIRS, 5L);
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_file.empty()) {
    // Only these CAs: the system's directory of CAs would otherwise still be consulted.
    set(CURLOPT_CAINFO, options.ca_file.c_str());
    set(CURLOPT_CAPATH, static_cast<const char*>(nullptr));
  }
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  set(CURLOPT_NOSIGNAL, 1L);  // we are multi-threaded
  set(CURLOPT_ERRORBUFFER, static_cast<char*>(error));
  set(CURLOPT_WRITEFUNCTION, &Append);
  set(CURLOPT_WRITEDATA, static_cast<void*>(&body));
  set(CURLOPT_USERAGENT, "tessera-agent");
  if (refused != CURLE_OK) {
    return absl::FailedPreconditionError(
        absl::StrCat("trust bundle URL ", Quoted(shown), ": libcurl refused an option (",
                     api->easy_strerror(refused), "); it may be older than 7.85"));
  }
  CURLcode code = api->easy_perform(c);
  if (body.too_large) {
    return absl::FailedPreconditionError(absl::StrCat("trust bundle URL ", Quoted(shown),
                                                      ": answer larger than ",
                                                      kMaxBootstrapBundleBytes, " bytes"));
  }
  if (code != CURLE_OK) {
    std::string why = error[0] != '\0' ? std::string(error) : api->easy_strerror(code);
    std::string message = absl::StrCat("trust bundle URL ", Quoted(shown), ": ", why);
    if (IsConfigurationError(code)) return absl::FailedPreconditionError(message);
    return absl::UnavailableError(message);
  }
  long http_status = 0;
  api->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http_status);
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
