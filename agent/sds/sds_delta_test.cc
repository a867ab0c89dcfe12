// DeltaSecrets over a real endpoint, as Envoy uses it: subscription, ACK, a rotation resending
// only what changed, a reconnect announcing what the proxy already holds, and removal.
#include <map>
#include <string>
#include <vector>

#include "agent/sds/sds_service.h"
#include "agent/sds/sds_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::agent::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

discovery::DeltaDiscoveryRequest Subscribe(const std::vector<std::string>& names) {
  discovery::DeltaDiscoveryRequest request;
  request.set_type_url(std::string(kSecretTypeUrl));
  SetEnvoyNode(request.mutable_node());
  for (const std::string& name : names) request.add_resource_names_subscribe(name);
  return request;
}

discovery::DeltaDiscoveryRequest Ack(const std::string& nonce) {
  discovery::DeltaDiscoveryRequest request;
  request.set_type_url(std::string(kSecretTypeUrl));
  request.set_response_nonce(nonce);
  return request;
}

std::vector<std::string> Keys(const std::map<std::string, discovery::Resource>& resources) {
  std::vector<std::string> keys;
  for (const auto& [name, resource] : resources) keys.push_back(name);
  return keys;
}

tls::Secret SecretOf(const discovery::Resource& resource) {
  tls::Secret secret;
  EXPECT_TRUE(resource.resource().UnpackTo(&secret));
  return secret;
}

class SdsDeltaTest : public SdsFixture {};

TEST_F(SdsDeltaTest, SendsOnlyWhatTheProxyDoesNotHoldAcrossRestarts) {
  StartSds();
  CachedIdentity web = Web();
  PublishIdentities({web});
  std::map<std::string, std::string> held;  // name -> version, as Envoy keeps them
  {
    auto stream = OpenDelta();
    ASSERT_TRUE(stream->Send(Subscribe({"default", "ROOTCA"})));
    auto first = stream->Next();
    ASSERT_TRUE(first.has_value()) << stream->Status()->error_message();
    EXPECT_EQ(first->type_url(), kSecretTypeUrl);
    EXPECT_EQ(first->system_version_info(), "1");
    EXPECT_EQ(first->nonce().size(), 8u);
    EXPECT_TRUE(first->removed_resources().empty());
    auto resources = ByName(*first);
    ASSERT_THAT(Keys(resources), ElementsAre("ROOTCA", "default"));
    EXPECT_EQ(LeafDer(SecretOf(resources["default"])), web.svid->chain[0].ToDer());
    EXPECT_THAT(SpiffeTrustDomains(SecretOf(resources["ROOTCA"])),
                ElementsAre(Pair("example.org", spiffe::X509AuthoritiesToPem(pki_.OwnBundle()))));
    for (const auto& [name, resource] : resources) held[name] = resource.version();

    ASSERT_TRUE(stream->Send(Ack(first->nonce())));
    EXPECT_FALSE(stream->Next(kQuiet).has_value()) << "an ACK was answered";

    // Rotation: only the certificate is resent, with a new version.
    CachedIdentity rotated = Rotated(web);
    PublishIdentities({rotated});
    auto second = stream->Next();
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->system_version_info(), "2");
    EXPECT_NE(second->nonce(), first->nonce());
    resources = ByName(*second);
    ASSERT_THAT(Keys(resources), ElementsAre("default"));
    EXPECT_NE(resources["default"].version(), held["default"]);
    EXPECT_EQ(LeafDer(SecretOf(resources["default"])), rotated.svid->chain[0].ToDer());
    held["default"] = resources["default"].version();
    ASSERT_TRUE(stream->Send(Ack(second->nonce())));
    web = rotated;

    endpoint_.reset();
    auto status = stream->Status();
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->error_code(), grpc::StatusCode::UNAVAILABLE);
  }

  // A new agent on the same socket; Envoy reconnects announcing what it holds.
  StartSds();
  auto stream = OpenDelta();
  discovery::DeltaDiscoveryRequest reconnect = Subscribe({"default", "ROOTCA"});
  reconnect.mutable_initial_resource_versions()->insert(held.begin(), held.end());
  ASSERT_TRUE(stream->Send(reconnect));
  EXPECT_FALSE(stream->Next(kQuiet).has_value()) << "resources the proxy holds were resent";

  CachedIdentity rotated = Rotated(web);
  PublishIdentities({rotated});
  auto pushed = stream->Next();
  ASSERT_TRUE(pushed.has_value());
  EXPECT_EQ(pushed->system_version_info(), "1");
  auto resources = ByName(*pushed);
  ASSERT_THAT(Keys(resources), ElementsAre("default"));
  EXPECT_EQ(LeafDer(SecretOf(resources["default"])), rotated.svid->chain[0].ToDer());
  ASSERT_TRUE(stream->Send(Ack(pushed->nonce())));

  // The workload loses its entry: "default" is removed, the stream stays open.
  Publish({{.id = "db", .spiffe_id = "spiffe://example.org/db", .selectors = {"unix:uid:4242"}}});
  auto removed = stream->Next();
  ASSERT_TRUE(removed.has_value()) << stream->Status()->error_message();
  EXPECT_TRUE(removed->resources().empty());
  EXPECT_THAT(removed->removed_resources(), ElementsAre("default"));
  // And gets it back.
  PublishIdentities({rotated});
  auto back = stream->Next();
  ASSERT_TRUE(back.has_value()) << stream->Status()->error_message();
  EXPECT_THAT(Keys(ByName(*back)), ElementsAre("default"));
  ASSERT_TRUE(stream->Send(Ack(back->nonce())));
  // And loses it again: removed again, or the proxy would keep using the stale certificate.
  Publish({{.id = "db", .spiffe_id = "spiffe://example.org/db", .selectors = {"unix:uid:4242"}}});
  auto removed_again = stream->Next();
  ASSERT_TRUE(removed_again.has_value()) << "the second removal was not sent";
  EXPECT_THAT(removed_again->removed_resources(), ElementsAre("default"));
}

TEST_F(SdsDeltaTest, WildcardAndUnknownSubscriptions) {
  StartSds();
  CachedIdentity web = Web({"other.org"});
  PublishIdentities({web});
  auto stream = OpenDelta();
  ASSERT_TRUE(stream->Send(Subscribe({})));  // nothing named: everything the caller may have
  auto first = stream->Next();
  ASSERT_TRUE(first.has_value()) << stream->Status()->error_message();
  EXPECT_THAT(Keys(ByName(*first)), ElementsAre("spiffe://example.org", "spiffe://example.org/web",
                                                "spiffe://other.org"));

  // A name the caller has nothing for ends the stream.
  discovery::DeltaDiscoveryRequest more = Ack(first->nonce());
  more.add_resource_names_subscribe("spiffe://example.org/not-mine");
  ASSERT_TRUE(stream->Send(more));
  auto status = stream->Status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status->error_message(),
            "workload is not authorized for the requested identities "
            "[\"spiffe://example.org/not-mine\"]");
}

}  // namespace
}  // namespace tessera::agent::testing
