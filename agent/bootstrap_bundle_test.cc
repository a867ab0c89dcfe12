// The bootstrap trust bundle: PEM and SPIFFE documents (good, empty, malformed, wrong block
// types), files, and downloads from a local HTTPS server (cpp-httplib) with a test CA: a 200
// answer, HTTP errors, an untrusted certificate, plain http, a redirect to http, an oversized
// body, an unreachable port, credentials kept out of messages, a libcurl that cannot be loaded.
// The last test bootstraps a real agent from a URL against an in-process tessera-server.
#include "agent/bootstrap_bundle.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "agent/agent_test_util.h"
#include "agent/attestation_manager.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "spiffe/bundle.h"
#include "spiffe/bundle_json.h"
#include "spiffe/x509_test_util.h"

namespace tessera::agent {
namespace {

using spiffe::testing::Td;
using spiffe::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// An HTTPS server on 127.0.0.1 with a certificate (IP SAN 127.0.0.1) from its own test CA.
class HttpsServer {
 public:
  explicit HttpsServer(const TempDir& dir) {
    auto now = std::chrono::system_clock::now();
    auto ca = spiffe::testing::MakeRootCa(Td("https.test"), now).value();
    auto key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
    spiffe::testing::CraftOptions opts{.subject_cn = "127.0.0.1",
                                       .san = "IP:127.0.0.1,DNS:localhost",
                                       .ext_key_usage = "serverAuth",
                                       .not_before = now - std::chrono::minutes(1),
                                       .not_after = now + std::chrono::hours(1)};
    auto cert = spiffe::testing::Craft(opts, key.public_key(), ca).value();
    ca_file_ = dir.Write("https-ca.pem", ca.cert.ToPem());
    std::string cert_file = dir.Write("https-cert.pem", cert.ToPem());
    std::string key_file = dir.Write("https-key.pem", key.ToPkcs8Pem().value());
    server_ = std::make_unique<httplib::SSLServer>(cert_file.c_str(), key_file.c_str());
    EXPECT_TRUE(server_->is_valid());
    port_ = server_->bind_to_any_port("127.0.0.1");
    EXPECT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
  }
  ~HttpsServer() {
    server_->stop();
    thread_.join();
  }

  httplib::Server& http() { return *server_; }
  std::string Url(std::string_view path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  BundleFetchOptions Options() const {
    return {.ca_file = ca_file_, .timeout = std::chrono::seconds(5)};
  }

 private:
  std::string ca_file_;
  std::unique_ptr<httplib::SSLServer> server_;
  int port_ = 0;
  std::thread thread_;
};

std::vector<spiffe::Certificate> TwoRoots() {
  auto now = std::chrono::system_clock::now();
  return {spiffe::testing::MakeRootCa(Td("example.org"), now, spiffe::KeyType::kEcP256, "a")->cert,
          spiffe::testing::MakeRootCa(Td("example.org"), now, spiffe::KeyType::kEcP256, "b")->cert};
}

std::string SpiffeJson(const std::vector<spiffe::Certificate>& roots) {
  spiffe::Bundle bundle(Td("example.org"));
  bundle.SetX509Authorities(roots);
  return spiffe::SpiffeBundleToJson(bundle).value();
}

TEST(ParseBootstrapBundleTest, PemKeepsEveryCertificateInOrder) {
  auto roots = TwoRoots();
  auto parsed = ParseBootstrapBundle("# comment\n" + spiffe::ChainToPem(roots),
                                     TrustBundleFormat::kPem, Td("example.org"), "b.pem");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].ToDer(), roots[0].ToDer());
  EXPECT_EQ((*parsed)[1].ToDer(), roots[1].ToDer());
}

TEST(ParseBootstrapBundleTest, BadPemIsAnErrorNamingTheSource) {
  for (std::string text :
       {std::string(""), std::string("not pem at all"),
        spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256)->ToPkcs8Pem().value(),
        std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}) {
    auto parsed =
        ParseBootstrapBundle(text, TrustBundleFormat::kPem, Td("example.org"), "/etc/b.pem");
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(parsed.status()), HasSubstr("trust bundle /etc/b.pem: "));
  }
}

TEST(ParseBootstrapBundleTest, SpiffeBundleYieldsItsX509Authorities) {
  auto roots = TwoRoots();
  auto parsed = ParseBootstrapBundle(SpiffeJson(roots), TrustBundleFormat::kSpiffe,
                                     Td("example.org"), "b.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[1].ToDer(), roots[1].ToDer());

  // PEM given where SPIFFE is configured, and a SPIFFE bundle with only JWT keys.
  auto pem = ParseBootstrapBundle(spiffe::ChainToPem(roots), TrustBundleFormat::kSpiffe,
                                  Td("example.org"), "b.json");
  ASSERT_FALSE(pem.ok());
  EXPECT_THAT(Message(pem.status()), HasSubstr("trust bundle b.json: not a SPIFFE bundle"));
  spiffe::Bundle jwt_only(Td("example.org"));
  ASSERT_TRUE(jwt_only
                  .AddJwtAuthority(
                      "k1", spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256)->public_key())
                  .ok());
  auto empty = ParseBootstrapBundle(spiffe::SpiffeBundleToJson(jwt_only).value(),
                                    TrustBundleFormat::kSpiffe, Td("example.org"), "b.json");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(Message(empty.status()), HasSubstr("no X.509 authorities"));
}

TEST(LoadBootstrapBundleTest, ReadsTheFileInTheConfiguredFormat) {
  TempDir dir;
  auto roots = TwoRoots();
  AgentConfig config(Td("example.org"));
  config.trust_bundle_path = dir.Write("bundle.json", SpiffeJson(roots));
  config.trust_bundle_format = TrustBundleFormat::kSpiffe;
  auto loaded = LoadBootstrapBundle(config);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->size(), 2u);

  config.trust_bundle_path = std::filesystem::path(dir.path()) / "missing.pem";
  loaded = LoadBootstrapBundle(config);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(loaded.status()), HasSubstr("missing.pem"));

  AgentConfig insecure(Td("example.org"));
  insecure.insecure_bootstrap = true;
  loaded = LoadBootstrapBundle(insecure);
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->empty());
}

TEST(FetchHttpsTest, DownloadsFromATrustedServerAndClassifiesFailures) {
  TempDir dir;
  HttpsServer https(dir);
  auto roots = TwoRoots();
  const std::string pem = spiffe::ChainToPem(roots);
  https.http().Get("/bundle.pem", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(pem, "application/x-pem-file");
  });
  https.http().Get("/busy",
                   [](const httplib::Request&, httplib::Response& res) { res.status = 503; });
  https.http().Get("/to-http", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("http://127.0.0.1:1/bundle.pem");
  });
  https.http().Get("/huge", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(kMaxBootstrapBundleBytes + 1, 'x'), "text/plain");
  });

  auto body = FetchHttps(https.Url("/bundle.pem"), https.Options());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, pem);

  auto missing = FetchHttps(https.Url("/nothing?token=secret"), https.Options());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(missing.status()), HasSubstr("HTTP status 404"));
  EXPECT_THAT(Message(missing.status()), Not(HasSubstr("secret")));

  auto busy = FetchHttps(https.Url("/busy"), https.Options());
  EXPECT_EQ(busy.status().code(), absl::StatusCode::kUnavailable) << busy.status();

  auto downgrade = FetchHttps(https.Url("/to-http"), https.Options());
  ASSERT_FALSE(downgrade.ok());
  EXPECT_EQ(downgrade.status().code(), absl::StatusCode::kFailedPrecondition) << downgrade.status();

  auto huge = FetchHttps(https.Url("/huge"), https.Options());
  ASSERT_FALSE(huge.ok());
  EXPECT_THAT(Message(huge.status()), HasSubstr("larger than"));

  // Without our CA the system store does not vouch for the server: no download.
  auto untrusted = FetchHttps(https.Url("/bundle.pem"), {.timeout = std::chrono::seconds(5)});
  ASSERT_FALSE(untrusted.ok());
  EXPECT_EQ(untrusted.status().code(), absl::StatusCode::kFailedPrecondition) << untrusted.status();

  // Credentials in the URL stay out of the message.
  std::string with_password = https.Url("/x");
  with_password.insert(std::string("https://").size(), "user:hunter2@");
  auto redacted = FetchHttps(with_password, https.Options());
  ASSERT_FALSE(redacted.ok());
  EXPECT_THAT(Message(redacted.status()), Not(HasSubstr("hunter2")));

  auto plain = FetchHttps("http://127.0.0.1:1/bundle.pem", https.Options());
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(plain.status()), HasSubstr("must use https"));
}

TEST(FetchHttpsTest, AnUnreachableServerIsUnavailable) {
  // Bind and close a port: nothing listens there now.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  const int port = ntohs(addr.sin_port);
  auto begin = std::chrono::steady_clock::now();
  auto result = FetchHttps("https://127.0.0.1:" + std::to_string(port) + "/b.pem",
                           {.timeout = std::chrono::seconds(5)});
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(2));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
}

// libcurl is loaded at the first download; without it the download fails with a message that
// says what to install, and a bundle file still works.
TEST(FetchHttpsTest, AMissingLibcurlIsAnErrorSayingWhatToDo) {
  TempDir dir;
  HttpsServer https(dir);
  https.http().Get("/bundle.pem", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("unused", "text/plain");
  });
  BundleFetchOptions options = https.Options();
  options.libcurl = "libtessera-test-no-such-curl.so.4";
  auto result = FetchHttps(https.Url("/bundle.pem"), options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition) << result.status();
  EXPECT_THAT(Message(result.status()), HasSubstr("libtessera-test-no-such-curl.so.4"));
  EXPECT_THAT(Message(result.status()), HasSubstr("trust_bundle_path"));

  // The real library still loads afterwards.
  auto body = FetchHttps(https.Url("/bundle.pem"), https.Options());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "unused");
}

// trust_bundle_url end to end: the agent downloads the server's bundle in SPIFFE format over
// HTTPS and attests against a real tessera-server.
TEST(BootstrapFromUrlTest, AgentAttestsWithABundleFromAnHttpsUrl) {
  TempDir dir;
  testing::TestServer server(std::filesystem::path(dir.path()) / "srv");
  server.Start();
  HttpsServer https(dir);
  spiffe::Bundle bundle(Td("example.org"));
  bundle.SetX509Authorities(server.Roots());
  const std::string json = spiffe::SpiffeBundleToJson(bundle).value();
  int downloads = 0;
  https.http().Get("/bundle", [&](const httplib::Request&, httplib::Response& res) {
    ++downloads;
    res.set_content(json, "application/json");
  });

  AgentConfig config(Td("example.org"));
  config.server_addresses = {{.host = "127.0.0.1", .port = server.port()}};
  config.data_dir = std::filesystem::path(dir.path()) / "agent";
  config.trust_bundle_url = https.Url("/bundle");
  config.trust_bundle_format = TrustBundleFormat::kSpiffe;
  AttestationOptions options;
  options.bundle_fetch = https.Options();
  auto manager = AttestationManager::Create(config, server.NewToken(), options);
  ASSERT_TRUE(manager.ok()) << manager.status();
  ASSERT_TRUE((*manager)->Start(std::stop_token()).ok()) << (*manager)->Health();
  EXPECT_EQ(downloads, 1);
  ASSERT_NE((*manager)->CurrentAgentState(), nullptr);
  EXPECT_EQ((*manager)->CurrentAgentState()->bundle[0].ToDer(), server.Roots()[0].ToDer());

  // A URL serving someone else's CA: the server is not trusted, the agent keeps retrying (it
  // cannot tell a wrong bundle from an unreachable server) until stopped.
  auto other = TwoRoots();
  https.http().Get("/other", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(spiffe::ChainToPem(other), "application/x-pem-file");
  });
  config.data_dir = std::filesystem::path(dir.path()) / "agent2";
  config.trust_bundle_url = https.Url("/other");
  config.trust_bundle_format = TrustBundleFormat::kPem;
  options.initial_backoff = std::chrono::milliseconds(50);
  options.max_backoff = std::chrono::milliseconds(100);
  auto refused = AttestationManager::Create(config, server.NewToken(), options);
  ASSERT_TRUE(refused.ok());
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    stop.request_stop();
  });
  absl::Status started = (*refused)->Start(stop.get_token());
  EXPECT_EQ(started.code(), absl::StatusCode::kCancelled) << started;
  EXPECT_EQ((*refused)->CurrentAgentState(), nullptr);
  EXPECT_EQ((*refused)->Health().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tessera::agent
