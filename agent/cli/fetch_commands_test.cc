// `api fetch x509|jwt|bundles` and `api validate jwt` through CLI11 against the fake Workload
// API: the printed fields are those of the served SVIDs, files written with --write are accepted
// by openssl (and the key is private), JSON output has the Workload API response shape and never
// a private key, JWT-SVIDs printed validate, and invalid input exits 1 with a clear message.
#include <sys/stat.h>

#include <chrono>
#include <string>
#include <vector>

#include "agent/cli/cli_test_util.h"
#include "agent/cli/command.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "spiffe/base64.h"
#include "spiffe/bundle_json.h"
#include "spiffe/certificate.h"
#include "spiffe/jwt_svid.h"

namespace tessera::agent::cli::testing {
namespace {

using spiffe::testing::Id;
using spiffe::testing::RunCommand;
using spiffe::testing::Td;
using spiffe::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

std::vector<spiffe::Certificate> Chain(const ::X509SVID& svid) {
  auto chain = spiffe::ParseDerChain(svid.x509_svid());
  EXPECT_TRUE(chain.ok()) << chain.status();
  return chain.value_or(std::vector<spiffe::Certificate>{});
}

mode_t FileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

std::string Decode(const nlohmann::json& value) {
  if (!value.is_string()) return "<not a string>";
  auto bytes = spiffe::Base64Decode(value.get<std::string>());
  return bytes.ok() ? *bytes : "<not base64>";
}

class FetchCliTest : public AgentCliTest {};

TEST_F(FetchCliTest, X509PrintsEverySvidWithItsBundles) {
  CliResult r = Run({"api", "fetch", "x509"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, IsEmpty());
  EXPECT_THAT(r.out, StartsWith("Received 2 svids after "));
  std::vector<spiffe::Certificate> web = Chain(web_);
  std::vector<spiffe::Certificate> db = Chain(db_);
  ASSERT_EQ(web.size(), 2u);
  const spiffe::Certificate& root = pki().root.cert;
  const spiffe::Certificate& other = pki().other_root.cert;
  const std::string web_block =
      "\n\nSPIFFE ID:\t\tspiffe://example.org/web\n"
      "Hint:\t\t\tweb\n"
      "Serial:\t\t\t" +
      web[0].SerialHex() + "\nSVID Valid After:\t" + FormatTime(web[0].NotBefore()) +
      "\nSVID Valid Until:\t" + FormatTime(web[0].NotAfter()) +
      "\nIntermediates:\t\t1\n"
      "Intermediate #1 Valid After:\t" +
      FormatTime(web[1].NotBefore()) + "\nIntermediate #1 Valid Until:\t" +
      FormatTime(web[1].NotAfter()) + "\nCA #1 Valid After:\t" + FormatTime(root.NotBefore()) +
      "\nCA #1 Valid Until:\t" + FormatTime(root.NotAfter()) +
      "\n[spiffe://other.org] CA #1 Valid After:\t" + FormatTime(other.NotBefore()) +
      "\n[spiffe://other.org] CA #1 Valid Until:\t" + FormatTime(other.NotAfter()) + "\n\n";
  EXPECT_THAT(r.out, HasSubstr(web_block));
  EXPECT_THAT(r.out,
              HasSubstr("SPIFFE ID:\t\tspiffe://example.org/db\nHint:\t\t\tdb\nSerial:\t\t\t" +
                        db[0].SerialHex() + "\n"));
  // Go's time layout, in UTC.
  EXPECT_EQ(FormatTime(std::chrono::system_clock::from_time_t(1'800'000'000)),
            "2027-01-15 08:00:00 +0000 UTC");
  EXPECT_THAT(r.out, Not(HasSubstr("PRIVATE KEY")));
  EXPECT_EQ(fake_->calls_without_header(), 0);
}

TEST_F(FetchCliTest, X509WriteProducesFilesOpensslAccepts) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/out";
  CliResult r = Run({"api", "fetch", "x509", "--write", dir});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Writing SVID #0 to file " + dir +
                               "/svid.0.pem.\n"
                               "Writing key #0 to file " +
                               dir +
                               "/svid.0.key.\n"
                               "Writing bundle #0 to file " +
                               dir +
                               "/bundle.0.pem.\n"
                               "Writing federated bundle #0 for trust domain spiffe://other.org "
                               "to file " +
                               dir +
                               "/federated_bundle.0.0.pem.\n"
                               "Writing SVID #1 to file " +
                               dir + "/svid.1.pem.\n"));

  auto san = RunCommand("openssl x509 -noout -ext subjectAltName -in " + dir + "/svid.0.pem");
  ASSERT_EQ(san.exit_code, 0) << san.output;
  EXPECT_THAT(san.output, HasSubstr("URI:spiffe://example.org/web"));
  san = RunCommand("openssl x509 -noout -ext subjectAltName -in " + dir + "/svid.1.pem");
  EXPECT_THAT(san.output, HasSubstr("URI:spiffe://example.org/db"));

  // The chain file holds leaf and intermediate and verifies against the bundle file.
  auto verify = RunCommand("openssl verify -CAfile " + dir + "/bundle.0.pem -untrusted " + dir +
                           "/svid.0.pem " + dir + "/svid.0.pem");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_THAT(verify.output, HasSubstr(": OK"));

  // The key is the leaf's, private to the owner; the others are readable.
  EXPECT_EQ(FileMode(dir + "/svid.0.key"), 0600u);
  EXPECT_EQ(FileMode(dir + "/svid.1.key"), 0600u);
  EXPECT_EQ(FileMode(dir + "/svid.0.pem"), 0644u);
  auto cert_key = RunCommand("openssl x509 -noout -pubkey -in " + dir + "/svid.0.pem");
  auto file_key = RunCommand("openssl pkey -pubout -in " + dir + "/svid.0.key");
  ASSERT_EQ(file_key.exit_code, 0) << file_key.output;
  EXPECT_EQ(cert_key.output, file_key.output);

  ASSERT_OK_AND_ASSIGN(std::string bundle, ReadFileToString(dir + "/bundle.1.pem"));
  EXPECT_EQ(bundle, pki().root.cert.ToPem());
  ASSERT_OK_AND_ASSIGN(std::string federated, ReadFileToString(dir + "/federated_bundle.1.0.pem"));
  EXPECT_EQ(federated, pki().other_root.cert.ToPem());
}

TEST_F(FetchCliTest, X509JsonHasTheResponseShapeWithoutKeys) {
  CliResult r = Run({"api", "fetch", "x509", "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(doc.is_object()) << r.out;
  ASSERT_TRUE(doc["svids"].is_array());
  ASSERT_EQ(doc["svids"].size(), 2u);
  const nlohmann::json& web = doc["svids"][0];
  EXPECT_EQ(web["spiffe_id"], kWeb);
  EXPECT_EQ(web["hint"], "web");
  EXPECT_EQ(Decode(web["x509_svid"]), web_.x509_svid());
  EXPECT_EQ(Decode(web["bundle"]), pki().root.cert.ToDer());
  EXPECT_FALSE(web.contains("x509_svid_key"));
  EXPECT_EQ(doc["svids"][1]["spiffe_id"], kDb);
  EXPECT_EQ(doc["crl"], nlohmann::json::array());
  EXPECT_EQ(Decode(doc["federated_bundles"]["spiffe://other.org"]), pki().other_root.cert.ToDer());
  EXPECT_EQ(doc["federated_bundles"].size(), 1u);
  EXPECT_THAT(r.out, Not(HasSubstr(spiffe::Base64Encode(web_.x509_svid_key()))));
}

TEST_F(FetchCliTest, X509JsonWithWriteKeepsStdoutParseable) {
  TempDir tmp;
  CliResult r = Run({"api", "fetch", "x509", "--output", "json", "--write", tmp.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(nlohmann::json::parse(r.out, nullptr, false).is_discarded()) << r.out;
  EXPECT_EQ(FileMode(tmp.path() + "/svid.0.key"), 0600u);

  // --silent: files only.
  const std::string quiet = tmp.path() + "/quiet";
  r = Run({"api", "fetch", "x509", "--silent", "--write", quiet});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(FileMode(quiet + "/svid.1.key"), 0600u);
  EXPECT_EQ(FileMode(quiet + "/federated_bundle.1.0.pem"), 0644u);
}

TEST_F(FetchCliTest, X509FailuresExitOne) {
  fake_->SetX509Error(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no identity issued"));
  CliResult r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to fetch X509-SVIDs: no identity issued\n");
  EXPECT_THAT(r.out, IsEmpty());

  // An SVID that its own bundle does not validate is refused, as spire-agent does.
  ::X509SVID bad = web_;
  bad.set_bundle(pki().other_root.cert.ToDer());
  fake_->SetX509(X509Response({bad}));
  r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("\"spiffe://example.org/web\" SVID failed verification"));

  TempDir tmp;
  const std::string file = tmp.Write("not-a-dir", "x");
  fake_->SetX509(X509Response({web_}));
  r = Run({"api", "fetch", "x509", "--write", file});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot create --write directory " + file));
}

TEST_F(FetchCliTest, JwtPrintsTokensForEveryAudienceAndTheBundles) {
  CliResult r = Run({"api", "fetch", "jwt", "--audience", "aud-a", "--audience", "aud-b,aud-c"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto request = fake_->last_jwt_request();
  ASSERT_TRUE(request.has_value());
  EXPECT_THAT(std::vector<std::string>(request->audience().begin(), request->audience().end()),
              ElementsAre("aud-a", "aud-b", "aud-c"));
  EXPECT_EQ(request->spiffe_id(), "");

  // token(<id>):\n\t<token>\n for each identity, then bundle(<td>):\n\t<jwks>\n.
  std::vector<std::string> lines;
  for (size_t start = 0; start < r.out.size();) {
    size_t end = r.out.find('\n', start);
    lines.push_back(r.out.substr(start, end - start));
    start = end + 1;
  }
  ASSERT_EQ(lines.size(), 8u) << r.out;
  EXPECT_EQ(lines[0], "token(spiffe://example.org/web):");
  EXPECT_EQ(lines[2], "token(spiffe://example.org/db):");
  ASSERT_OK_AND_ASSIGN(spiffe::BundleSet authorities, pki().JwtAuthorities());
  ASSERT_THAT(lines[1], StartsWith("\t"));
  ASSERT_OK_AND_ASSIGN(spiffe::JwtSvid web,
                       spiffe::ParseAndValidateJwtSvid(lines[1].substr(1), authorities, {"aud-b"},
                                                       std::chrono::system_clock::now()));
  EXPECT_EQ(web.subject, Id(kWeb));
  EXPECT_THAT(web.audience, ElementsAre("aud-a", "aud-b", "aud-c"));
  EXPECT_EQ(lines[4], "bundle(spiffe://example.org):");
  ASSERT_OK_AND_ASSIGN(spiffe::Bundle own,
                       spiffe::ParseJwtBundleJwks(Td("example.org"), lines[5].substr(1)));
  EXPECT_NE(own.FindJwtAuthority(pki().jwt_key_id), nullptr);
  EXPECT_EQ(lines[6], "bundle(spiffe://other.org):");
}

TEST_F(FetchCliTest, JwtForOneIdentityAsJson) {
  CliResult r = Run(
      {"api", "fetch", "jwt", "--audience", "db-clients", "--spiffe-id", kDb, "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(fake_->last_jwt_request()->spiffe_id(), kDb);
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(doc.is_array()) << r.out;
  ASSERT_EQ(doc.size(), 2u);
  ASSERT_EQ(doc[0]["svids"].size(), 1u);
  EXPECT_EQ(doc[0]["svids"][0]["spiffe_id"], kDb);
  EXPECT_EQ(doc[0]["svids"][0]["hint"], "db");
  ASSERT_OK_AND_ASSIGN(spiffe::JwtSvid token,
                       spiffe::ParseJwtSvidInsecure(doc[0]["svids"][0]["svid"].get<std::string>()));
  EXPECT_EQ(token.subject, Id(kDb));
  ASSERT_OK_AND_ASSIGN(
      spiffe::Bundle other,
      spiffe::ParseJwtBundleJwks(Td("other.org"), Decode(doc[1]["bundles"]["spiffe://other.org"])));
  EXPECT_NE(other.FindJwtAuthority(pki().other_jwt_key_id), nullptr);
}

TEST_F(FetchCliTest, JwtRefusesBadFlagsBeforeAnyCall) {
  int calls = fake_->calls();
  CliResult r = Run({"api", "fetch", "jwt"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "at least one --audience is required\n");
  r = Run({"api", "fetch", "jwt", "--audience", "a", "--spiffe-id", "spiffe://Example.org/x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("--spiffe-id \"spiffe://Example.org/x\": "));
  EXPECT_EQ(fake_->calls(), calls);

  r = Run({"api", "fetch", "jwt", "--audience", "a", "--spiffe-id", "spiffe://example.org/nobody"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to fetch JWT-SVIDs: no identity issued\n");
}

TEST_F(FetchCliTest, BundlesAsPemAndJson) {
  CliResult r = Run({"api", "fetch", "bundles"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "****************************************\n"
            "* spiffe://example.org\n"
            "****************************************\n" +
                pki().root.cert.ToPem() +
                "\n****************************************\n"
                "* spiffe://other.org\n"
                "****************************************\n" +
                pki().other_root.cert.ToPem());

  r = Run({"api", "fetch", "bundles", "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << r.out;
  EXPECT_EQ(Decode(doc["bundles"]["spiffe://example.org"]), pki().root.cert.ToDer());
  EXPECT_EQ(Decode(doc["bundles"]["spiffe://other.org"]), pki().other_root.cert.ToDer());

  fake_->SetX509BundlesError(
      grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no identity issued"));
  r = Run({"api", "fetch", "bundles"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to fetch X.509 bundles: no identity issued\n");
}

class ValidateCliTest : public AgentCliTest {
 protected:
  std::string Token(const std::vector<std::string>& audience,
                    std::chrono::seconds ttl = std::chrono::minutes(5)) {
    auto now = std::chrono::system_clock::now();
    spiffe::JwtSvidClaims claims{.subject = Id(kWeb),
                                 .audience = audience,
                                 .expiry = now + ttl,
                                 .issued_at = now - std::chrono::minutes(10),
                                 .extra = {{"jti", "token-1"}}};
    auto token = spiffe::SignJwtSvid(claims, pki().jwt_key, pki().jwt_key_id);
    EXPECT_TRUE(token.ok()) << token.status();
    return token.value_or("");
  }
};

TEST_F(ValidateCliTest, ValidTokenPrintsIdAndClaims) {
  CliResult r = Run({"api", "validate", "jwt", "--audience", "svc", "--svid", Token({"svc"})});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out,
              StartsWith("SVID is valid.\nSPIFFE ID : spiffe://example.org/web\nClaims    : {"));
  EXPECT_THAT(r.out, HasSubstr("\"jti\":\"token-1\""));
  EXPECT_THAT(r.out, HasSubstr("\"sub\":\"spiffe://example.org/web\""));

  r = Run({"api", "validate", "jwt", "--audience", "svc", "--svid", Token({"svc"}), "--output",
           "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << r.out;
  EXPECT_EQ(doc["spiffe_id"], kWeb);
  EXPECT_EQ(doc["claims"]["jti"], "token-1");
  EXPECT_TRUE(doc["claims"]["exp"].is_number_integer());
}

TEST_F(ValidateCliTest, InvalidTokensExitOne) {
  CliResult r = Run({"api", "validate", "jwt", "--audience", "other", "--svid", Token({"svc"})});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("SVID is not valid: "));
  EXPECT_THAT(r.out, IsEmpty());

  r = Run({"api", "validate", "jwt", "--audience", "svc", "--svid",
           Token({"svc"}, std::chrono::seconds(-60))});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("SVID is not valid: "));

  r = Run({"api", "validate", "jwt", "--audience", "svc", "--svid", "not.a.token"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("SVID is not valid: "));

  r = Run({"api", "validate", "jwt", "--svid", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "--audience is required\n");
  r = Run({"api", "validate", "jwt", "--audience", "svc"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "--svid is required\n");
}

}  // namespace
}  // namespace tessera::agent::cli::testing
