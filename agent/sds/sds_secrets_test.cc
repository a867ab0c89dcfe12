#include "agent/sds/sds_secrets.h"

#include <string>
#include <vector>

#include "agent/workload/workload_test_util.h"
#include "envoy/extensions/transport_sockets/tls/v3/common.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config.pb.h"
#include "gtest/gtest.h"
#include "spiffe/x509_verify.h"

namespace tessera::agent {
namespace {

namespace tls = envoy::extensions::transport_sockets::tls::v3;
using testing::EntrySpec;
using testing::Identity;
using testing::Pki;
using testing::Td;

const std::vector<std::string> kCaller = {"unix:uid:1000"};

class SdsSecretsTest : public ::testing::Test {
 protected:
  // A snapshot with `entries` and the own + other.org bundles (+ third.org when asked).
  std::shared_ptr<const CacheSnapshot> Snapshot(const std::vector<EntrySpec>& entries,
                                                bool server_reachable = true) {
    std::vector<CachedIdentity> identities;
    for (const EntrySpec& spec : entries) identities.push_back(Identity(pki_, spec));
    spiffe::BundleSet bundles = pki_.Bundles();
    spiffe::Bundle third(Td("a-third.org"));
    third.AddX509Authority(third_.cert);
    bundles.Put(third);
    return std::make_shared<const CacheSnapshot>(Td("example.org"), 1, bundles,
                                                 std::move(identities), server_reachable);
  }

  absl::StatusOr<SecretSet> Build(const CacheSnapshot& snapshot, std::vector<std::string> names,
                                  const SdsSettings& settings = {}) {
    return BuildSecrets(snapshot, *spiffe::SelectorSet::Parse(kCaller), names, settings);
  }

  static std::vector<std::string> Names(const SecretSet& set) {
    std::vector<std::string> names;
    for (const NamedSecret& secret : set.secrets) names.push_back(secret.name);
    return names;
  }

  // The trust domains and PEMs of a validation context that uses the SPIFFE validator.
  static std::vector<std::pair<std::string, std::string>> ValidatorDomains(
      const tls::Secret& secret) {
    EXPECT_TRUE(secret.has_validation_context());
    const auto& validator = secret.validation_context().custom_validator_config();
    EXPECT_EQ(validator.name(), "envoy.tls.cert_validator.spiffe");
    tls::SPIFFECertValidatorConfig config;
    EXPECT_TRUE(validator.typed_config().UnpackTo(&config));
    EXPECT_EQ(validator.typed_config().type_url(),
              "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
              "SPIFFECertValidatorConfig");
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& td : config.trust_domains()) {
      out.emplace_back(td.name(), td.trust_bundle().inline_bytes());
    }
    return out;
  }

  Pki pki_ = Pki::Make();
  spiffe::testing::Ca third_ = *spiffe::testing::MakeRootCa(
      Td("a-third.org"), std::chrono::system_clock::now(), spiffe::KeyType::kEcP256, "third");
};

TEST_F(SdsSecretsTest, CertificateByIdAndDefaultIsTheFirstIdentityWithItsKey) {
  auto snapshot = Snapshot(
      {{.id = "b", .spiffe_id = "spiffe://example.org/web", .selectors = kCaller, .created_at = 1},
       {.id = "a",
        .spiffe_id = "spiffe://example.org/admin",
        .selectors = kCaller,
        .created_at = 2}});
  auto set = Build(*snapshot, {"spiffe://example.org/admin", "default"});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_TRUE(set->unknown.empty());
  EXPECT_FALSE(set->waiting);
  ASSERT_EQ(Names(*set), (std::vector<std::string>{"spiffe://example.org/admin", "default"}));

  // "default" is the oldest entry (created_at 1): web. Its PEM parses back into the very SVID.
  const tls::TlsCertificate& cert = set->secrets[1].secret.tls_certificate();
  EXPECT_EQ(set->secrets[1].secret.name(), "default");
  auto svid = spiffe::ParseX509SvidPem(cert.certificate_chain().inline_bytes(),
                                       cert.private_key().inline_bytes());
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->id.str(), "spiffe://example.org/web");
  const CachedIdentity* web = snapshot->FindEntry("b");
  EXPECT_EQ(svid->chain[0].ToDer(), web->svid->chain[0].ToDer());
  EXPECT_NE(cert.private_key().inline_bytes().find("-----BEGIN PRIVATE KEY-----"),
            std::string::npos);
  // The version digests the certificate, not the key.
  EXPECT_EQ(set->secrets[1].version.size(), 24u);
  EXPECT_EQ(set->secrets[1].version.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST_F(SdsSecretsTest, BundleNamesUseTheSpiffeValidatorForOneTrustDomainEach) {
  auto snapshot = Snapshot({{.id = "a",
                             .spiffe_id = "spiffe://example.org/web",
                             .selectors = kCaller,
                             .federates_with = {"other.org"}}});
  auto set = Build(*snapshot, {"ROOTCA", "spiffe://example.org", "spiffe://other.org"});
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->secrets.size(), 3u);
  const std::string own_pem = spiffe::X509AuthoritiesToPem(pki_.OwnBundle());
  EXPECT_EQ(ValidatorDomains(set->secrets[0].secret),
            (std::vector<std::pair<std::string, std::string>>{{"example.org", own_pem}}));
  EXPECT_EQ(ValidatorDomains(set->secrets[1].secret), ValidatorDomains(set->secrets[0].secret));
  EXPECT_EQ(ValidatorDomains(set->secrets[2].secret),
            (std::vector<std::pair<std::string, std::string>>{
                {"other.org", spiffe::X509AuthoritiesToPem(pki_.OtherBundle())}}));
}

TEST_F(SdsSecretsTest, AllListsOwnAndFederatedTrustDomainsSorted) {
  auto snapshot = Snapshot({{.id = "a",
                             .spiffe_id = "spiffe://example.org/web",
                             .selectors = kCaller,
                             .federates_with = {"other.org", "a-third.org"}}});
  auto set = Build(*snapshot, {"ALL"});
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->secrets.size(), 1u);
  auto domains = ValidatorDomains(set->secrets[0].secret);
  ASSERT_EQ(domains.size(), 3u);
  EXPECT_EQ(domains[0].first, "a-third.org");
  EXPECT_EQ(domains[1].first, "example.org");
  EXPECT_EQ(domains[2].first, "other.org");
  EXPECT_EQ(domains[0].second, third_.cert.ToPem());
}

TEST_F(SdsSecretsTest, FederatedBundlesOnlyForTrustDomainsTheEntriesFederateWith) {
  auto snapshot = Snapshot({{.id = "a",
                             .spiffe_id = "spiffe://example.org/web",
                             .selectors = kCaller,
                             .federates_with = {"other.org"}}});
  auto all = Build(*snapshot, {"ALL"});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(ValidatorDomains(all->secrets[0].secret).size(), 2u);
  auto set = Build(*snapshot, {"spiffe://a-third.org"});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->unknown, std::vector<std::string>{"spiffe://a-third.org"});
}

TEST_F(SdsSecretsTest, UnknownNamesAreCollectedSortedAndNamedInTheError) {
  auto snapshot =
      Snapshot({{.id = "a", .spiffe_id = "spiffe://example.org/web", .selectors = kCaller},
                {.id = "z", .spiffe_id = "spiffe://example.org/db", .selectors = {"unix:uid:7"}}});
  auto set = Build(*snapshot, {"spiffe://example.org/db", "file-root:/etc/ca.pem", "ROOTCA",
                               "spiffe://example.org/db"});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(Names(*set), std::vector<std::string>{"ROOTCA"});
  EXPECT_EQ(set->unknown,
            (std::vector<std::string>{"file-root:/etc/ca.pem", "spiffe://example.org/db"}));
  absl::Status error = UnknownNamesError(set->unknown);
  EXPECT_EQ(error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(error.message(),
            "workload is not authorized for the requested identities [\"file-root:/etc/ca.pem\" "
            "\"spiffe://example.org/db\"]");
}

TEST_F(SdsSecretsTest, NoNamesMeansEverythingAndBundlesNeedNoIdentity) {
  auto snapshot = Snapshot({{.id = "a",
                             .spiffe_id = "spiffe://example.org/web",
                             .selectors = kCaller,
                             .federates_with = {"other.org"}},
                            {.id = "b",
                             .spiffe_id = "spiffe://example.org/web",
                             .selectors = kCaller,
                             .created_at = 5}});
  auto set = Build(*snapshot, {"", ""});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(Names(*set), (std::vector<std::string>{"spiffe://example.org", "spiffe://other.org",
                                                   "spiffe://example.org/web"}));

  auto stranger = BuildSecrets(*snapshot, *spiffe::SelectorSet::Parse({"unix:uid:9"}),
                               std::vector<std::string>{"ROOTCA"}, {});
  ASSERT_TRUE(stranger.ok());
  EXPECT_EQ(Names(*stranger), std::vector<std::string>{"ROOTCA"});
  auto no_cert = BuildSecrets(*snapshot, *spiffe::SelectorSet::Parse({"unix:uid:9"}),
                              std::vector<std::string>{"default"}, {});
  ASSERT_TRUE(no_cert.ok());
  EXPECT_EQ(no_cert->unknown, std::vector<std::string>{"default"});
}

TEST_F(SdsSecretsTest, CertificateBeingMintedWaitsOrIsUnavailableWithoutServer) {
  std::vector<EntrySpec> entries = {
      {.id = "a", .spiffe_id = "spiffe://example.org/web", .selectors = kCaller, .minted = false}};
  auto set = Build(*Snapshot(entries), {"spiffe://example.org/web", "ROOTCA"});
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(set->waiting);
  auto everything = Build(*Snapshot(entries), {});
  ASSERT_TRUE(everything.ok());
  EXPECT_TRUE(everything->waiting);
  auto away = Build(*Snapshot(entries, /*server_reachable=*/false), {"default"});
  EXPECT_EQ(away.status().code(), absl::StatusCode::kUnavailable);
  // Bundles alone do not wait for certificates.
  auto bundle = Build(*Snapshot(entries), {"ROOTCA"});
  ASSERT_TRUE(bundle.ok());
  EXPECT_FALSE(bundle->waiting);
}

TEST_F(SdsSecretsTest, DisabledValidatorGivesTrustedCaAndRefusesAll) {
  auto snapshot =
      Snapshot({{.id = "a", .spiffe_id = "spiffe://example.org/web", .selectors = kCaller}});
  SdsSettings settings{.disable_spiffe_cert_validation = true};
  auto set = Build(*snapshot, {"ROOTCA"}, settings);
  ASSERT_TRUE(set.ok());
  const auto& context = set->secrets[0].secret.validation_context();
  EXPECT_FALSE(context.has_custom_validator_config());
  EXPECT_EQ(context.trusted_ca().inline_bytes(), spiffe::X509AuthoritiesToPem(pki_.OwnBundle()));
  auto all = Build(*snapshot, {"ALL"}, settings);
  EXPECT_EQ(all.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(all.status().message().find("disable_spiffe_cert_validation"), std::string::npos);
}

TEST_F(SdsSecretsTest, VersionsFollowContent) {
  std::vector<EntrySpec> entries = {
      {.id = "a", .spiffe_id = "spiffe://example.org/web", .selectors = kCaller}};
  auto first = Build(*Snapshot(entries), {"ROOTCA", "default"});
  auto again = Build(*Snapshot(entries), {"ROOTCA", "default"});  // a new SVID is minted
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->secrets[0].version, again->secrets[0].version);
  EXPECT_NE(first->secrets[1].version, again->secrets[1].version);
  auto trusted = Build(*Snapshot(entries), {"ROOTCA"}, {.disable_spiffe_cert_validation = true});
  EXPECT_NE(trusted->secrets[0].version, first->secrets[0].version);
}

envoy::config::core::v3::Node NodeWith(const std::string& key, google::protobuf::Value value) {
  envoy::config::core::v3::Node node;
  node.set_id("sidecar");
  (*node.mutable_metadata()->mutable_fields())[key] = std::move(value);
  return node;
}

google::protobuf::Value StringValue(const std::string& s) {
  google::protobuf::Value v;
  v.set_string_value(s);
  return v;
}

TEST(SdsSettingsTest, NodeMetadataOverridesPerProxy) {
  SdsSettings defaults;
  auto renamed = SettingsForNode(defaults, NodeWith("default_svid_name", StringValue("mine")));
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  EXPECT_EQ(renamed->default_svid_name, "mine");
  EXPECT_EQ(renamed->default_bundle_name, "ROOTCA");

  google::protobuf::Value flag;
  flag.set_bool_value(true);
  auto disabled = SettingsForNode(defaults, NodeWith("disable_spiffe_cert_validation", flag));
  ASSERT_TRUE(disabled.ok());
  EXPECT_TRUE(disabled->disable_spiffe_cert_validation);
  auto as_string =
      SettingsForNode(defaults, NodeWith("disable_spiffe_cert_validation", StringValue("true")));
  ASSERT_TRUE(as_string.ok());
  EXPECT_TRUE(as_string->disable_spiffe_cert_validation);
}

TEST(SdsSettingsTest, BadOverridesAreRefusedNamingTheKey) {
  SdsSettings defaults;
  google::protobuf::Value number;
  number.set_number_value(1);
  auto wrong_type = SettingsForNode(defaults, NodeWith("default_bundle_name", number));
  EXPECT_EQ(wrong_type.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_type.status().message().find("default_bundle_name"), std::string::npos);
  auto bad_flag =
      SettingsForNode(defaults, NodeWith("disable_spiffe_cert_validation", StringValue("yes")));
  EXPECT_EQ(bad_flag.status().code(), absl::StatusCode::kInvalidArgument);
  auto collision = SettingsForNode(defaults, NodeWith("default_bundle_name", StringValue("ALL")));
  EXPECT_EQ(collision.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(collision.status().message().find("must differ"), std::string::npos);
}

TEST(SdsSettingsTest, EnvoyOlderThan118GetsTrustedCa) {
  auto settings_for = [](uint32_t major, uint32_t minor) {
    envoy::config::core::v3::Node node;
    auto* version = node.mutable_user_agent_build_version()->mutable_version();
    version->set_major_number(major);
    version->set_minor_number(minor);
    return SettingsForNode({}, node)->disable_spiffe_cert_validation;
  };
  EXPECT_TRUE(settings_for(1, 17));
  EXPECT_FALSE(settings_for(1, 18));
  EXPECT_FALSE(settings_for(2, 0));
  EXPECT_FALSE(
      SettingsForNode({}, envoy::config::core::v3::Node())->disable_spiffe_cert_validation);
}

}  // namespace
}  // namespace tessera::agent
