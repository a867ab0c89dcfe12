// `x509 mint`, `jwt mint` and `healthcheck` through CLI11 against the real SvidService and
// BundleService over the admin socket: minted SVIDs verify with openssl against the bundle the
// command wrote, the key file is private, tokens validate against the CA's JWT keys.
#include <sys/stat.h>

#include <chrono>
#include <string>

#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/cli/cli_test_util.h"
#include "spiffe/base64.h"
#include "spiffe/bundle.h"
#include "spiffe/certificate.h"
#include "spiffe/jwt_svid.h"
#include "spiffe/key.h"
#include "spiffe/x509_test_util.h"
#include "spire/api/server/svid/v1/svid.pb.h"

namespace tessera::server::testing {
namespace {

namespace svidv1 = ::spire::api::server::svid::v1;
using spiffe::testing::RunCommand;
using spiffe::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

class SvidCliTest : public CliTest {};

TEST_F(SvidCliTest, X509MintWritesFilesThatOpensslVerifies) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/out";
  CliResult r = Run({"x509", "mint", "--spiffe-id", "spiffe://example.org/db", "--dns",
                     "db.example.org", "--ttl", "10m", "--write", dir});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "X509-SVID written to " + dir + "/svid.pem\nPrivate key written to " + dir +
                       "/key.pem\nRoot CAs written to " + dir + "/bundle.pem\n");
  EXPECT_THAT(r.err, IsEmpty());

  struct stat st {};
  ASSERT_EQ(::stat((dir + "/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir + "/svid.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);

  auto verify = RunCommand("openssl verify -CAfile " + dir + "/bundle.pem " + dir + "/svid.pem");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_THAT(verify.output, HasSubstr(": OK"));

  // The key is the certificate's, and the certificate is what was asked for.
  auto cert_key = RunCommand("openssl x509 -noout -pubkey -in " + dir + "/svid.pem");
  auto file_key = RunCommand("openssl pkey -pubout -in " + dir + "/key.pem");
  ASSERT_EQ(cert_key.exit_code, 0) << cert_key.output;
  ASSERT_EQ(file_key.exit_code, 0) << file_key.output;
  EXPECT_EQ(cert_key.output, file_key.output);
  ASSERT_OK_AND_ASSIGN(std::string svid_pem, ReadFileToString(dir + "/svid.pem"));
  ASSERT_OK_AND_ASSIGN(auto chain, spiffe::ParsePemChain(svid_pem));
  ASSERT_EQ(chain.size(), 1u);
  EXPECT_THAT(chain[0].UriSans(), ElementsAre("spiffe://example.org/db"));
  EXPECT_THAT(chain[0].DnsSans(), ElementsAre("db.example.org"));
  EXPECT_FALSE(chain[0].IsCa());
  auto lifetime = chain[0].NotAfter() - std::chrono::system_clock::now();
  EXPECT_GT(lifetime, std::chrono::minutes(9));
  EXPECT_LE(lifetime, std::chrono::minutes(10));
  ASSERT_OK_AND_ASSIGN(std::string bundle_pem, ReadFileToString(dir + "/bundle.pem"));
  EXPECT_EQ(bundle_pem, ca_->bundle()->bundle.x509_authorities()[0].ToPem());

  // The bundle `bundle show` prints verifies it too.
  CliResult show = Run({"bundle", "show"});
  ASSERT_EQ(show.code, 0) << show.err;
  std::string shown = tmp.Write("shown.pem", show.out);
  verify = RunCommand("openssl verify -CAfile " + shown + " " + dir + "/svid.pem");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

TEST_F(SvidCliTest, X509MintPrintsPemsOrJson) {
  CliResult r = Run({"x509", "mint", "--spiffe-id", "spiffe://example.org/db"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_THAT(r.out, StartsWith("X509-SVID:\n-----BEGIN CERTIFICATE-----\n"));
  size_t key_at = r.out.find("\nPrivate key:\n-----BEGIN PRIVATE KEY-----\n");
  size_t roots_at = r.out.find("\nRoot CAs:\n-----BEGIN CERTIFICATE-----\n");
  ASSERT_NE(key_at, std::string::npos);
  ASSERT_NE(roots_at, std::string::npos);
  ASSERT_OK_AND_ASSIGN(auto svid, spiffe::ParsePemChain(r.out.substr(0, key_at)));
  ASSERT_OK_AND_ASSIGN(auto key, spiffe::PrivateKey::FromPem(r.out.substr(key_at + 14)));
  EXPECT_TRUE(key.public_key().Equals(svid[0].public_key()));
  ASSERT_OK_AND_ASSIGN(auto roots, spiffe::ParsePemChain(r.out.substr(roots_at)));
  EXPECT_EQ(roots, ca_->bundle()->bundle.x509_authorities());

  r = Run({"x509", "mint", "--spiffe-id", "spiffe://example.org/db", "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto json = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << r.out;
  ASSERT_EQ(json["x509_svid"].size(), 1u);
  ASSERT_OK_AND_ASSIGN(std::string der,
                       spiffe::Base64Decode(json["x509_svid"][0].get<std::string>()));
  ASSERT_OK_AND_ASSIGN(auto cert, spiffe::Certificate::FromDer(der));
  ASSERT_OK_AND_ASSIGN(std::string key_der,
                       spiffe::Base64Decode(json["private_key"].get<std::string>()));
  ASSERT_OK_AND_ASSIGN(auto json_key, spiffe::PrivateKey::FromPkcs8Der(key_der));
  EXPECT_TRUE(json_key.public_key().Equals(cert.public_key()));
  EXPECT_EQ(json["root_cas"].size(), 1u);
}

TEST_F(SvidCliTest, X509MintRefusals) {
  CliResult r = Run({"x509", "mint"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "a SPIFFE ID is required\n");
  r = Run({"x509", "mint", "--spiffe-id", "spiffe://example.org/db", "--ttl", "1y"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("--ttl: invalid duration \"1y\""));
  r = Run({"x509", "mint", "--spiffe-id", "spiffe://example.org/spire/agent/x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("failed to mint X509-SVID: "));
  EXPECT_THAT(r.err, HasSubstr("reserved namespace"));
  r = Run({"x509", "mint", "--spiffe-id", "spiffe://other.org/db"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("failed to mint X509-SVID: "));
  EXPECT_THAT(r.out, IsEmpty());
}

TEST_F(SvidCliTest, JwtMintPrintsATokenThatValidates) {
  CliResult r = Run({"jwt", "mint", "--spiffe-id", "spiffe://example.org/api", "--audience",
                     "svc-a", "--audience", "svc-b", "--ttl", "2m"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_FALSE(r.out.empty());
  ASSERT_EQ(r.out.back(), '\n');
  std::string token = r.out.substr(0, r.out.size() - 1);
  spiffe::BundleSet bundles;
  bundles.Put(ca_->bundle()->bundle);
  auto now = std::chrono::system_clock::now();
  ASSERT_OK_AND_ASSIGN(auto svid, spiffe::ParseAndValidateJwtSvid(token, bundles, {"svc-b"}, now));
  EXPECT_EQ(svid.subject.str(), "spiffe://example.org/api");
  EXPECT_THAT(svid.audience, ElementsAre("svc-a", "svc-b"));
  EXPECT_LE(svid.expiry - now, std::chrono::minutes(2));
  EXPECT_GT(svid.expiry - now, std::chrono::seconds(100));
  // Not for another audience.
  EXPECT_FALSE(spiffe::ParseAndValidateJwtSvid(token, bundles, {"svc-c"}, now).ok());

  r = Run({"jwt", "mint", "--spiffe-id", "spiffe://example.org/api", "--audience", "x", "--output",
           "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  svidv1::MintJWTSVIDResponse response;
  ASSERT_TRUE(ParseJson(r.out, &response));
  EXPECT_TRUE(spiffe::ParseAndValidateJwtSvid(response.svid().token(), bundles, {"x"}, now).ok());

  TempDir tmp;
  r = Run({"jwt", "mint", "--spiffe-id", "spiffe://example.org/api", "--audience", "x", "--write",
           tmp.path() + "/token"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "JWT-SVID written to " + tmp.path() + "/token\n");
  ASSERT_OK_AND_ASSIGN(std::string written, ReadFileToString(tmp.path() + "/token"));
  EXPECT_TRUE(spiffe::ParseAndValidateJwtSvid(written, bundles, {"x"}, now).ok());
  struct stat st {};
  ASSERT_EQ(::stat((tmp.path() + "/token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SvidCliTest, JwtMintRefusals) {
  CliResult r = Run({"jwt", "mint", "--spiffe-id", "spiffe://example.org/api"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "at least one audience must be specified\n");
  r = Run({"jwt", "mint", "--audience", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "a SPIFFE ID is required\n");
  r = Run({"jwt", "mint", "--spiffe-id", "spiffe://example.org/api", "--audience", ""});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "--audience must not be empty\n");
  r = Run({"jwt", "mint", "--spiffe-id", "spiffe://example.org/spire/server", "--audience", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("failed to mint JWT-SVID: "));
  EXPECT_THAT(r.out, IsEmpty());
}

TEST_F(SvidCliTest, HealthcheckUpAndDown) {
  CliResult r = Run({"healthcheck"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Server is healthy.\n");
  r = Run({"healthcheck", "--output", "json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"healthy\":true}\n");

  server_->Shutdown();
  server_.reset();
  r = Run({"healthcheck"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("cannot reach tessera-server at " + socket_path() + ": "));
  EXPECT_THAT(r.out, IsEmpty());

  r = RunRaw({"tessera-server", "healthcheck", "--socket-path", "/nonexistent/api.sock"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("cannot reach tessera-server at /nonexistent/api.sock: "));
}

}  // namespace
}  // namespace tessera::server::testing
