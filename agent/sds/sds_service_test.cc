// SdsService over a real endpoint, as Envoy uses it: StreamSecrets (first response, ACK, NACK,
// rotation, name changes, stale nonces, agent restarts, ALL with federation, unknown names),
// FetchSecrets, the unsynced agent, other callers and shutdown. DeltaSecrets: sds_delta_test.cc.
#include "agent/sds/sds_service.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "agent/sds/sds_test_util.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/create_channel_posix.h"
#include "gtest/gtest.h"

namespace tessera::agent::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

const std::string kWeb = "spiffe://example.org/web";

bool IsNonce(const std::string& nonce) {
  return nonce.size() == 8 && std::all_of(nonce.begin(), nonce.end(), [](char c) {
           return absl::ascii_isxdigit(static_cast<unsigned char>(c)) &&
                  !absl::ascii_isupper(static_cast<unsigned char>(c));
         });
}

class SdsServiceTest : public SdsFixture {};

TEST_F(SdsServiceTest, FirstResponseCarriesTheWorkloadsSvidAndBundle) {
  StartSds();
  CachedIdentity web = Web();
  PublishIdentities({web});
  auto stream = OpenSotw();
  ASSERT_TRUE(stream->Send(SotwRequest({kWeb, "ROOTCA"})));
  auto response = stream->Next();
  ASSERT_TRUE(response.has_value()) << stream->Status()->error_message();
  EXPECT_EQ(response->version_info(), "1");
  EXPECT_TRUE(IsNonce(response->nonce())) << response->nonce();
  EXPECT_EQ(response->type_url(), kSecretTypeUrl);
  std::vector<tls::Secret> secrets = Secrets(*response);
  ASSERT_THAT(Names(secrets), ElementsAre("ROOTCA", kWeb));  // sorted by name

  // The certificate is the one the Workload API serves this process on the same socket.
  absl::StatusOr<spiffe::X509Svid> svid = SvidOf(secrets[1]);
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->id.str(), kWeb);
  auto x509 = Client()->FetchX509Context();
  ASSERT_TRUE(x509.ok()) << x509.status();
  const spiffe::X509Svid& served = x509->default_svid().svid;
  EXPECT_EQ(svid->chain[0].ToDer(), served.chain[0].ToDer());
  EXPECT_EQ(svid->chain[0].ToDer(), web.svid->chain[0].ToDer());
  EXPECT_EQ(*svid->key.ToPkcs8Der(), *served.key.ToPkcs8Der());

  EXPECT_FALSE(secrets[0].has_tls_certificate());
  EXPECT_THAT(SpiffeTrustDomains(secrets[0]),
              ElementsAre(Pair("example.org", spiffe::X509AuthoritiesToPem(pki_.OwnBundle()))));
}

TEST_F(SdsServiceTest, AckAndNackSendNothingAndRotationIsPushed) {
  StartSds();
  CachedIdentity web = Web();
  PublishIdentities({web});
  auto stream = OpenSotw();
  ASSERT_TRUE(stream->Send(SotwRequest({kWeb})));
  auto first = stream->Next();
  ASSERT_TRUE(first.has_value());

  ASSERT_TRUE(stream->Send(SotwRequest({kWeb}, "1", first->nonce(), /*with_node=*/false)));
  EXPECT_FALSE(stream->Next(kQuiet).has_value()) << "an ACK was answered";
  discovery::DiscoveryRequest nack = SotwRequest({kWeb}, "1", first->nonce(), false);
  nack.mutable_error_detail()->set_code(3);
  nack.mutable_error_detail()->set_message("rejected by the test");
  ASSERT_TRUE(stream->Send(nack));
  EXPECT_FALSE(stream->Next(kQuiet).has_value()) << "a NACK made the agent resend";

  // A snapshot that changes only another workload's entries: nothing for this proxy.
  CachedIdentity stranger = Identity(
      pki_, {.id = "db", .spiffe_id = "spiffe://example.org/db", .selectors = {"unix:uid:4242"}});
  PublishIdentities({web, stranger});
  EXPECT_FALSE(stream->Next(kQuiet).has_value()) << "an unchanged state was pushed";

  CachedIdentity rotated = Rotated(web);
  PublishIdentities({rotated, stranger});
  auto pushed = stream->Next();
  ASSERT_TRUE(pushed.has_value());
  EXPECT_EQ(pushed->version_info(), "2");
  EXPECT_TRUE(IsNonce(pushed->nonce()));
  EXPECT_NE(pushed->nonce(), first->nonce());
  std::vector<tls::Secret> secrets = Secrets(*pushed);
  ASSERT_THAT(Names(secrets), ElementsAre(kWeb));
  EXPECT_EQ(LeafDer(secrets[0]), rotated.svid->chain[0].ToDer());
  EXPECT_NE(LeafDer(secrets[0]), web.svid->chain[0].ToDer());
}

TEST_F(SdsServiceTest, ChangingNamesOnTheStreamSendsExactlyTheNewSet) {
  StartSds();
  CachedIdentity web = Web({"other.org"});
  PublishIdentities({web});
  auto stream = OpenSotw();
  ASSERT_TRUE(stream->Send(SotwRequest({kWeb, "ROOTCA"})));
  auto first = stream->Next();
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(stream->Send(SotwRequest({"default", "spiffe://other.org"}, "1", first->nonce())));
  auto second = stream->Next();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->version_info(), "2");
  std::vector<tls::Secret> secrets = Secrets(*second);
  ASSERT_THAT(Names(secrets), ElementsAre("default", "spiffe://other.org"));
  EXPECT_EQ(LeafDer(secrets[0]), web.svid->chain[0].ToDer());
  EXPECT_THAT(SpiffeTrustDomains(secrets[1]),
              ElementsAre(Pair("other.org", spiffe::X509AuthoritiesToPem(pki_.OtherBundle()))));
}

TEST_F(SdsServiceTest, StaleNoncesAreIgnoredExceptOnTheFirstRequestAfterARestart) {
  StartSds();
  PublishIdentities({Web()});
  std::string old_nonce;
  {
    auto stream = OpenSotw();
    ASSERT_TRUE(stream->Send(SotwRequest({kWeb})));
    auto first = stream->Next();
    ASSERT_TRUE(first.has_value());
    old_nonce = first->nonce();

    // Another nonce with other names: stale, ignored; the stream carries on.
    std::string wrong = old_nonce == "0badbad0" ? "0badbad1" : "0badbad0";
    ASSERT_TRUE(stream->Send(SotwRequest({"ROOTCA"}, "1", wrong, false)));
    EXPECT_FALSE(stream->Next(kQuiet).has_value()) << "a stale request was answered";
    ASSERT_TRUE(stream->Send(SotwRequest({"ROOTCA"}, "1", old_nonce, false)));
    auto second = stream->Next();
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->version_info(), "2");
    EXPECT_THAT(Names(Secrets(*second)), ElementsAre("ROOTCA"));
    old_nonce = second->nonce();

    // The agent restarts on the same socket: the open stream ends.
    endpoint_.reset();
    auto status = stream->Status();
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  StartSds();
  // Envoy reconnects with what it last had; the new agent never sent that nonce.
  auto stream = OpenSotw();
  ASSERT_TRUE(stream->Send(SotwRequest({"ROOTCA"}, "2", old_nonce)));
  auto response = stream->Next();
  ASSERT_TRUE(response.has_value()) << stream->Status()->error_message();
  EXPECT_EQ(response->version_info(), "1");
  EXPECT_NE(response->nonce(), old_nonce);
  EXPECT_THAT(Names(Secrets(*response)), ElementsAre("ROOTCA"));
}

TEST_F(SdsServiceTest, AllCarriesOwnAndFederatedBundlesAndFollowsFederation) {
  StartSds();
  CachedIdentity federated = Web({"other.org"});
  PublishIdentities({federated});
  auto stream = OpenSotw();
  ASSERT_TRUE(stream->Send(SotwRequest({"ALL"})));
  const std::string own_pem = spiffe::X509AuthoritiesToPem(pki_.OwnBundle());
  const std::string other_pem = spiffe::X509AuthoritiesToPem(pki_.OtherBundle());
  ASSERT_NE(own_pem, other_pem);
  auto expect_all = [&](const std::string& version, bool with_other) {
    auto response = stream->Next();
    ASSERT_TRUE(response.has_value()) << "version " << version;
    EXPECT_EQ(response->version_info(), version);
    std::vector<tls::Secret> secrets = Secrets(*response);
    ASSERT_THAT(Names(secrets), ElementsAre("ALL"));
    if (with_other) {
      EXPECT_THAT(SpiffeTrustDomains(secrets[0]),
                  ElementsAre(Pair("example.org", own_pem), Pair("other.org", other_pem)));
    } else {
      EXPECT_THAT(SpiffeTrustDomains(secrets[0]), ElementsAre(Pair("example.org", own_pem)));
    }
  };
  expect_all("1", true);

  // The entry no longer federates with other.org.
  CachedIdentity unfederated{Web().entry, federated.svid};
  PublishIdentities({unfederated});
  expect_all("2", false);
  // It does again.
  PublishIdentities({federated});
  expect_all("3", true);
  // other.org's bundle is gone from the agent.
  PublishIdentities({federated}, pki_.Bundles(/*with_other=*/false));
  expect_all("4", false);
}

TEST_F(SdsServiceTest, UnknownNamesEndTheStreamNamingThemSorted) {
  StartSds();
  PublishIdentities({Web()});
  auto stream = OpenSotw();
  ASSERT_TRUE(stream->Send(SotwRequest({"spiffe://example.org/not-mine", kWeb, "file-root:/x"})));
  EXPECT_FALSE(stream->Next().has_value());
  auto status = stream->Status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status->error_message(),
            "workload is not authorized for the requested identities "
            "[\"file-root:/x\" \"spiffe://example.org/not-mine\"]");
}

TEST_F(SdsServiceTest, FetchSecretsServesWhatTheStreamServes) {
  StartSds();
  PublishIdentities({Web({"other.org"})});
  const std::vector<std::string> names = {kWeb, "ROOTCA", "ALL"};
  auto stream = OpenSotw();
  ASSERT_TRUE(stream->Send(SotwRequest(names)));
  auto streamed = stream->Next();
  ASSERT_TRUE(streamed.has_value());

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  discovery::DiscoveryResponse fetched;
  grpc::Status status = stub_->FetchSecrets(&context, SotwRequest(names), &fetched);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(fetched.version_info(), "");
  EXPECT_EQ(fetched.nonce(), "");
  EXPECT_EQ(fetched.type_url(), kSecretTypeUrl);
  std::map<std::string, tls::Secret> by_name;
  for (tls::Secret& secret : Secrets(fetched)) by_name.emplace(secret.name(), std::move(secret));
  ASSERT_EQ(by_name.size(), 3u);
  for (const tls::Secret& secret : Secrets(*streamed)) {
    ASSERT_TRUE(by_name.contains(secret.name())) << secret.name();
    EXPECT_TRUE(
        google::protobuf::util::MessageDifferencer::Equals(secret, by_name.at(secret.name())))
        << secret.name();
  }
  EXPECT_FALSE(by_name.at(kWeb).tls_certificate().private_key().inline_bytes().empty());

  grpc::ClientContext unknown_context;
  unknown_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  status = stub_->FetchSecrets(&unknown_context, SotwRequest({"ROOTCA", "spiffe://example.org/db"}),
                               &fetched);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("[\"spiffe://example.org/db\"]"));
}

TEST_F(SdsServiceTest, SettingsRenameTheDefaultResources) {
  StartSds({.default_svid_name = "my-svid",
            .default_bundle_name = "my-bundle",
            .default_all_bundles_name = "my-all"});
  CachedIdentity web = Web();
  PublishIdentities({web});
  auto stream = OpenSotw();
  ASSERT_TRUE(stream->Send(SotwRequest({"my-svid", "my-bundle", "my-all"})));
  auto response = stream->Next();
  ASSERT_TRUE(response.has_value()) << stream->Status()->error_message();
  std::vector<tls::Secret> secrets = Secrets(*response);
  ASSERT_THAT(Names(secrets), ElementsAre("my-all", "my-bundle", "my-svid"));
  EXPECT_EQ(LeafDer(secrets[2]), web.svid->chain[0].ToDer());
  // The usual names mean nothing here.
  auto other = OpenSotw();
  ASSERT_TRUE(other->Send(SotwRequest({"default", "ROOTCA"})));
  auto status = other->Status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status->error_message(), HasSubstr("[\"ROOTCA\" \"default\"]"));
}

TEST_F(SdsServiceTest, NodeMetadataAndOldEnvoysChangeTheSettings) {
  StartSds();
  PublishIdentities({Web()});
  // An Envoy older than 1.18 has no SPIFFE validator: the bundle comes as trusted_ca.
  auto old_envoy = OpenSotw();
  discovery::DiscoveryRequest request = SotwRequest({"ROOTCA", "spiffe://example.org"});
  request.mutable_node()->mutable_user_agent_build_version()->mutable_version()->set_minor_number(
      17);
  ASSERT_TRUE(old_envoy->Send(request));
  auto response = old_envoy->Next();
  ASSERT_TRUE(response.has_value()) << old_envoy->Status()->error_message();
  for (const tls::Secret& secret : Secrets(*response)) {
    EXPECT_FALSE(secret.validation_context().has_custom_validator_config()) << secret.name();
    EXPECT_EQ(secret.validation_context().trusted_ca().inline_bytes(),
              spiffe::X509AuthoritiesToPem(pki_.OwnBundle()))
        << secret.name();
  }
  // The proxy renames the default certificate in its node metadata.
  auto renamed = OpenSotw();
  request = SotwRequest({"my-cert"});
  (*request.mutable_node()->mutable_metadata()->mutable_fields())["default_svid_name"]
      .set_string_value("my-cert");
  ASSERT_TRUE(renamed->Send(request));
  response = renamed->Next();
  ASSERT_TRUE(response.has_value()) << renamed->Status()->error_message();
  std::vector<tls::Secret> secrets = Secrets(*response);
  ASSERT_THAT(Names(secrets), ElementsAre("my-cert"));
  EXPECT_TRUE(SvidOf(secrets[0]).ok());
}

TEST_F(SdsServiceTest, CertificateBeingMintedDelaysTheResponse) {
  StartSds();
  EntrySpec pending{.id = "web", .spiffe_id = kWeb, .selectors = {SelfUid()}, .minted = false};
  Publish({pending});
  auto stream = OpenSotw();
  ASSERT_TRUE(stream->Send(SotwRequest({"default", "ROOTCA"})));
  EXPECT_FALSE(stream->Next(kQuiet).has_value()) << "answered without the certificate";
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  discovery::DiscoveryResponse fetched;
  grpc::Status status = stub_->FetchSecrets(&context, SotwRequest({"default"}), &fetched);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("being minted"));

  CachedIdentity minted = Web();
  PublishIdentities({minted});
  auto response = stream->Next();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->version_info(), "1");
  std::vector<tls::Secret> secrets = Secrets(*response);
  ASSERT_THAT(Names(secrets), ElementsAre("ROOTCA", "default"));
  EXPECT_EQ(LeafDer(secrets[1]), minted.svid->chain[0].ToDer());

  // Without a certificate and without the server, waiting is pointless: the stream ends.
  auto other = OpenSotw();
  PublishIdentities({Identity(pki_, pending)}, {}, /*server_reachable=*/false);
  ASSERT_TRUE(other->Send(SotwRequest({"default"})));
  auto ended = other->Status();
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(ended->error_message(), HasSubstr("cannot reach the server"));
}

TEST_F(SdsServiceTest, UnavailableUntilTheCacheHasSynced) {
  StartSds();
  auto stream = OpenSotw();
  stream->Send(SotwRequest({"default"}));
  auto status = stream->Status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status->error_message(), HasSubstr("has not synced"));
  auto delta = OpenDelta();
  status = delta->Status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::UNAVAILABLE);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  discovery::DiscoveryResponse fetched;
  EXPECT_EQ(stub_->FetchSecrets(&context, SotwRequest({"default"}), &fetched).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SdsServiceTest, CallerOfAnotherUidWithoutEntryGetsInvalidArgument) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching uid needs root";
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  StartSds();
  PublishIdentities({Web()});
  ChildConnection child(socket_path_, 65534, 65534, /*exit_after_handover=*/false);
  ASSERT_TRUE(child.ok());
  int fd = child.TakeFd();
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  auto stub = envoy::service::secret::v3::SecretDiscoveryService::NewStub(
      grpc::CreateInsecureChannelFromFd("sds-test", fd));
  SotwStream stream([&](grpc::ClientContext* context) { return stub->StreamSecrets(context); });
  ASSERT_TRUE(stream.Send(SotwRequest({"default"})));
  auto status = stream.Status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status->error_message(), HasSubstr("[\"default\"]"));
  // This process's own stream on the same endpoint is served.
  auto mine = OpenSotw();
  ASSERT_TRUE(mine->Send(SotwRequest({"default"})));
  EXPECT_TRUE(mine->Next().has_value());
}

TEST_F(SdsServiceTest, ShutdownEndsOpenStreamsWithUnavailable) {
  StartSds();
  PublishIdentities({Web()});
  auto stream = OpenSotw();
  ASSERT_TRUE(stream->Send(SotwRequest({"default"})));
  ASSERT_TRUE(stream->Next().has_value());
  auto delta = OpenDelta();
  discovery::DeltaDiscoveryRequest subscribe;
  subscribe.add_resource_names_subscribe("ROOTCA");
  ASSERT_TRUE(delta->Send(subscribe));
  ASSERT_TRUE(delta->Next().has_value());

  auto start = std::chrono::steady_clock::now();
  endpoint_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  for (auto status : {stream->Status(), delta->Status()}) {
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(status->error_message(), "agent is shutting down");
  }
  start = std::chrono::steady_clock::now();
  endpoint_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

}  // namespace
}  // namespace tessera::agent::testing
