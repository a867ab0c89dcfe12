// `bundle show|list|set|delete|count` through CLI11 against the real BundleService over the admin
// socket: the printed bundle is the CA (openssl agrees), federated bundles round-trip in both
// formats, and refusals are reported.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/cli/cli_test_util.h"
#include "spiffe/bundle.h"
#include "spiffe/bundle_json.h"
#include "spiffe/x509_test_util.h"
#include "spire/api/server/bundle/v1/bundle.pb.h"

namespace tessera::server::testing {
namespace {

namespace bundlev1 = ::spire::api::server::bundle::v1;
using spiffe::testing::RunCommand;
using spiffe::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

class BundleCliTest : public CliTest {
 protected:
  std::string CaPem() { return ca_->bundle()->bundle.x509_authorities()[0].ToPem(); }

  // A bundle of another trust domain, as PEM.
  std::string ForeignCaPem(std::string_view td = "other.org") {
    auto ca = spiffe::testing::MakeRootCa(Td(td), std::chrono::system_clock::now());
    EXPECT_TRUE(ca.ok());
    return ca.ok() ? ca->cert.ToPem() : "";
  }
};

TEST_F(BundleCliTest, ShowPemIsTheCaAndOpensslReadsIt) {
  CliResult r = Run({"bundle", "show"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, CaPem());
  TempDir tmp;
  std::string path = tmp.Write("bundle.pem", r.out);
  auto openssl = RunCommand("openssl x509 -noout -ext basicConstraints,subjectAltName -in " + path);
  EXPECT_EQ(openssl.exit_code, 0) << openssl.output;
  EXPECT_THAT(openssl.output, HasSubstr("CA:TRUE"));
  EXPECT_THAT(openssl.output, HasSubstr("URI:spiffe://example.org"));
}

TEST_F(BundleCliTest, ShowSpiffeAndJson) {
  CliResult r = Run({"bundle", "show", "--format", "spiffe"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto parsed = spiffe::ParseSpiffeBundle(Td("example.org"), r.out);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << r.out;
  EXPECT_EQ(parsed->x509_authorities(), ca_->bundle()->bundle.x509_authorities());
  EXPECT_EQ(parsed->sequence_number(), 1u);
  EXPECT_THAT(r.out, HasSubstr("\n    \"keys\""));  // indented like spire-server's

  r = Run({"bundle", "show", "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  types::Bundle bundle;
  ASSERT_TRUE(ParseJson(r.out, &bundle));
  EXPECT_EQ(bundle.trust_domain(), "example.org");
  ASSERT_EQ(bundle.x509_authorities_size(), 1);
  EXPECT_EQ(bundle.x509_authorities(0).asn1(), ca_->bundle()->bundle.x509_authorities()[0].ToDer());
}

TEST_F(BundleCliTest, SetListCountDeleteFederatedBundles) {
  TempDir tmp;
  std::string other_pem = ForeignCaPem("other.org");
  std::string path = tmp.Write("other.pem", other_pem);
  CliResult r = Run({"bundle", "set", "--id", "spiffe://other.org", "--path", path});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "bundle set.\n");
  EXPECT_EQ(notifier_.bundle_changes(), 1);

  // From standard input, in SPIFFE format.
  spiffe::Bundle third(Td("third.org"));
  auto third_ca = spiffe::testing::MakeRootCa(Td("third.org"), std::chrono::system_clock::now());
  ASSERT_TRUE(third_ca.ok());
  third.AddX509Authority(third_ca->cert);
  auto third_json = spiffe::SpiffeBundleToJson(third);
  ASSERT_TRUE(third_json.ok());
  r = Run({"bundle", "set", "--id", "third.org", "--format", "spiffe"}, *third_json);
  ASSERT_EQ(r.code, 0) << r.err;

  EXPECT_EQ(Run({"bundle", "count"}).out, "3 bundles\n");

  r = Run({"bundle", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "****************************************\n* other.org\n"
            "****************************************\n" +
                other_pem +
                "\n****************************************\n* third.org\n"
                "****************************************\n" +
                third_ca->cert.ToPem());

  r = Run({"bundle", "list", "--id", "other.org", "--format", "spiffe"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto parsed = spiffe::ParseSpiffeBundle(Td("other.org"), r.out);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->x509_authorities().size(), 1u);
  EXPECT_EQ(parsed->x509_authorities()[0].ToPem(), other_pem);

  r = Run({"bundle", "list", "--output", "json"});
  bundlev1::ListFederatedBundlesResponse list;
  ASSERT_TRUE(ParseJson(r.out, &list));
  EXPECT_EQ(list.bundles_size(), 2);

  r = Run({"bundle", "delete", "--id", "other.org"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "bundle deleted.\n");
  EXPECT_EQ(Run({"bundle", "count"}).out, "2 bundles\n");

  r = Run({"bundle", "delete", "--id", "other.org", "--mode", "dissociate"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to delete federated bundle \"other.org\": bundle not found\n");
  r = Run({"bundle", "list", "--id", "other.org"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("failed to get federated bundle \"other.org\": "));
}

TEST_F(BundleCliTest, DeleteRestrictRefusesWhileEntriesFederate) {
  TempDir tmp;
  ASSERT_EQ(
      Run({"bundle", "set", "--id", "other.org", "--path", tmp.Write("o.pem", ForeignCaPem())})
          .code,
      0);
  CliResult r = Run({"entry", "create", "--spiffe-id", "spiffe://example.org/web", "--parent-id",
                     "spiffe://example.org/spire/agent/x/1", "--selector", "unix:uid:1",
                     "--federates-with", "other.org"});
  ASSERT_EQ(r.code, 0) << r.err;
  r = Run({"bundle", "delete", "--id", "other.org"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("failed to delete federated bundle \"other.org\": "));
  EXPECT_EQ(Run({"bundle", "count"}).out, "2 bundles\n");
  r = Run({"bundle", "delete", "--id", "other.org", "--mode", "delete"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(StoredEntryCount(), 0);
}

TEST_F(BundleCliTest, Refusals) {
  TempDir tmp;
  // Before any RPC.
  CliResult r = Run({"bundle", "set", "--path", tmp.Write("x.pem", ForeignCaPem())});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "id is required\n");
  r = Run({"bundle", "set", "--id", "Bad Domain", "--path", tmp.Write("y.pem", ForeignCaPem())});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("--id \"Bad Domain\": "));
  r = Run({"bundle", "set", "--id", "other.org", "--path", tmp.path() + "/missing.pem"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("--path: "));
  r = Run({"bundle", "set", "--id", "other.org"}, "not a pem");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("cannot read the bundle (pem format): "));
  r = Run({"bundle", "set", "--id", "other.org", "--format", "spiffe"}, "{");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("cannot read the bundle (spiffe format): "));
  r = Run({"bundle", "delete"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "id is required\n");
  r = Run({"bundle", "delete", "--id", "other.org", "--mode", "erase"});
  EXPECT_NE(r.code, 0);  // CLI11 checks the choice
  EXPECT_EQ(notifier_.bundle_changes(), 0);

  // By the server.
  r = Run({"bundle", "set", "--id", "example.org"}, ForeignCaPem("example.org"));
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("the server's own trust domain is not allowed"));
  EXPECT_EQ(Run({"bundle", "count"}).out, "1 bundle\n");
  EXPECT_EQ(Run({"bundle", "list"}).out, "");
}

}  // namespace
}  // namespace tessera::server::testing
