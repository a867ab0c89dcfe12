#include "agent/sds/sds_protocol.h"

#include <string>
#include <vector>

#include "agent/workload/workload_test_util.h"
#include "gtest/gtest.h"

namespace tessera::agent {
namespace {

namespace discovery = envoy::service::discovery::v3;
namespace tls = envoy::extensions::transport_sockets::tls::v3;
using testing::EntrySpec;
using testing::Identity;
using testing::Pki;
using testing::Td;

const std::vector<std::string> kCaller = {"unix:uid:1000"};

class SdsProtocolTest : public ::testing::Test {
 protected:
  SdsProtocolTest() {
    web_ = Identity(pki_, {.id = "a",
                           .spiffe_id = "spiffe://example.org/web",
                           .selectors = kCaller,
                           .federates_with = {"other.org"}});
  }

  // The next snapshot with these identities.
  std::shared_ptr<const CacheSnapshot> Snapshot(std::vector<CachedIdentity> identities) {
    return std::make_shared<const CacheSnapshot>(Td("example.org"), ++generation_, pki_.Bundles(),
                                                 std::move(identities));
  }
  // web_ with a freshly minted SVID.
  CachedIdentity Rotated() {
    return CachedIdentity{web_.entry, pki_.Svid("spiffe://example.org/web")};
  }

  static discovery::DiscoveryRequest Request(std::vector<std::string> names,
                                             const std::string& version = "",
                                             const std::string& nonce = "") {
    discovery::DiscoveryRequest request;
    request.set_type_url(std::string(kSecretTypeUrl));
    request.set_version_info(version);
    request.set_response_nonce(nonce);
    for (std::string& name : names) request.add_resource_names(std::move(name));
    request.mutable_node()->set_id("sidecar");
    return request;
  }

  static std::vector<std::string> Names(const discovery::DiscoveryResponse& response) {
    std::vector<std::string> names;
    for (const auto& any : response.resources()) {
      tls::Secret secret;
      EXPECT_TRUE(any.UnpackTo(&secret));
      names.push_back(secret.name());
    }
    return names;
  }
  static std::vector<std::string> Names(const discovery::DeltaDiscoveryResponse& response) {
    std::vector<std::string> names;
    for (const auto& resource : response.resources()) {
      tls::Secret secret;
      EXPECT_TRUE(resource.resource().UnpackTo(&secret));
      EXPECT_EQ(secret.name(), resource.name());
      names.push_back(resource.name());
    }
    return names;
  }

  spiffe::SelectorSet selectors_ = *spiffe::SelectorSet::Parse(kCaller);
  Pki pki_ = Pki::Make();
  CachedIdentity web_;
  uint64_t generation_ = 0;
};

TEST_F(SdsProtocolTest, SotwFirstRequestAckNackAndStaleNonce) {
  SotwProtocol protocol({}, "pid 1");
  auto snapshot = Snapshot({web_});
  auto first = protocol.OnRequest(Request({"default", "ROOTCA"}), *snapshot, selectors_);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_value());
  const discovery::DiscoveryResponse& response = **first;
  EXPECT_EQ(response.version_info(), "1");
  EXPECT_EQ(response.type_url(), kSecretTypeUrl);
  EXPECT_EQ(response.nonce().size(), 8u);
  // Sorted by name, whatever the request's order.
  EXPECT_EQ(Names(response), (std::vector<std::string>{"ROOTCA", "default"}));

  // ACK, then NACK of the same version: nothing is sent again.
  auto ack = protocol.OnRequest(Request({"ROOTCA", "default"}, "1", response.nonce()), *snapshot,
                                selectors_);
  ASSERT_TRUE(ack.ok());
  EXPECT_FALSE(ack->has_value());
  discovery::DiscoveryRequest nack = Request({"default", "ROOTCA"}, "", response.nonce());
  nack.mutable_error_detail()->set_code(3);
  nack.mutable_error_detail()->set_message("bad secret");
  auto after_nack = protocol.OnRequest(nack, *snapshot, selectors_);
  ASSERT_TRUE(after_nack.ok());
  EXPECT_FALSE(after_nack->has_value());

  // A request with another nonce is stale, even if it asks for other names.
  auto stale = protocol.OnRequest(Request({"ALL"}, "1", "0badbad0"), *snapshot, selectors_);
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->has_value());

  // A change of names with the current nonce is answered with the new set.
  auto changed =
      protocol.OnRequest(Request({"ALL", "default"}, "1", response.nonce()), *snapshot, selectors_);
  ASSERT_TRUE(changed.ok());
  ASSERT_TRUE(changed->has_value());
  EXPECT_EQ((*changed)->version_info(), "2");
  EXPECT_NE((*changed)->nonce(), response.nonce());
  EXPECT_EQ(Names(**changed), (std::vector<std::string>{"ALL", "default"}));
}

TEST_F(SdsProtocolTest, SotwPushesOnlyWhenTheProxysSecretsChange) {
  SotwProtocol protocol({}, "pid 1");
  auto first = protocol.OnRequest(Request({"default"}), *Snapshot({web_}), selectors_);
  ASSERT_TRUE(first.ok() && first->has_value());
  // Same SVID in a newer snapshot (another entry changed): nothing to send.
  CachedIdentity stranger = Identity(
      pki_, {.id = "z", .spiffe_id = "spiffe://example.org/db", .selectors = {"unix:uid:7"}});
  auto same = protocol.OnSnapshot(*Snapshot({web_, stranger}), selectors_);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->has_value());
  // Rotation: pushed with the next version.
  auto rotated = protocol.OnSnapshot(*Snapshot({Rotated()}), selectors_);
  ASSERT_TRUE(rotated.ok());
  ASSERT_TRUE(rotated->has_value());
  EXPECT_EQ((*rotated)->version_info(), "2");
  // The caller loses its identity: the named certificate is now unknown, the stream ends.
  auto gone = protocol.OnSnapshot(*Snapshot({stranger}), selectors_);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SdsProtocolTest, SotwAcceptsAnOldNonceOnANewStream) {
  SotwProtocol protocol({}, "pid 1");
  // After an agent restart the proxy reconnects with what it last had.
  auto answered =
      protocol.OnRequest(Request({"default"}, "7", "deadbeef"), *Snapshot({web_}), selectors_);
  ASSERT_TRUE(answered.ok());
  ASSERT_TRUE(answered->has_value());
  EXPECT_EQ((*answered)->version_info(), "1");
}

TEST_F(SdsProtocolTest, SotwWaitsForACertificateBeingMinted) {
  SotwProtocol protocol({}, "pid 1");
  CachedIdentity unminted{web_.entry, nullptr};
  auto waiting = protocol.OnRequest(Request({"default"}), *Snapshot({unminted}), selectors_);
  ASSERT_TRUE(waiting.ok());
  EXPECT_FALSE(waiting->has_value());
  auto minted = protocol.OnSnapshot(*Snapshot({web_}), selectors_);
  ASSERT_TRUE(minted.ok());
  ASSERT_TRUE(minted->has_value());
  EXPECT_EQ(Names(**minted), std::vector<std::string>{"default"});
}

TEST_F(SdsProtocolTest, SotwRefusesUnknownNamesWrongTypeAndBadMetadata) {
  SotwProtocol protocol({}, "pid 1");
  auto unknown = protocol.OnRequest(Request({"file-cert:/x"}), *Snapshot({web_}), selectors_);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("file-cert:/x"), std::string::npos);

  SotwProtocol typed({}, "pid 1");
  discovery::DiscoveryRequest clusters = Request({"default"});
  clusters.set_type_url("type.googleapis.com/envoy.config.cluster.v3.Cluster");
  EXPECT_EQ(typed.OnRequest(clusters, *Snapshot({web_}), selectors_).status().code(),
            absl::StatusCode::kInvalidArgument);

  SotwProtocol metadata({}, "pid 1");
  discovery::DiscoveryRequest bad = Request({"default"});
  (*bad.mutable_node()->mutable_metadata()->mutable_fields())["default_svid_name"].set_bool_value(
      true);
  EXPECT_EQ(metadata.OnRequest(bad, *Snapshot({web_}), selectors_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SdsProtocolTest, SotwNodeMetadataChangesTheAnswer) {
  SotwProtocol protocol({}, "pid 1");
  auto first = protocol.OnRequest(Request({"ROOTCA"}), *Snapshot({web_}), selectors_);
  ASSERT_TRUE(first.ok() && first->has_value());
  discovery::DiscoveryRequest again = Request({"ROOTCA"}, "1", (*first)->nonce());
  (*again.mutable_node()->mutable_metadata()->mutable_fields())["disable_spiffe_cert_validation"]
      .set_bool_value(true);
  auto second = protocol.OnRequest(again, *Snapshot({web_}), selectors_);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second->has_value());
  tls::Secret secret;
  ASSERT_TRUE((*second)->resources(0).UnpackTo(&secret));
  EXPECT_TRUE(secret.validation_context().has_trusted_ca());
}

discovery::DeltaDiscoveryRequest Delta(std::vector<std::string> subscribe,
                                       std::vector<std::string> unsubscribe = {}) {
  discovery::DeltaDiscoveryRequest request;
  request.set_type_url(std::string(kSecretTypeUrl));
  for (std::string& name : subscribe) request.add_resource_names_subscribe(std::move(name));
  for (std::string& name : unsubscribe) request.add_resource_names_unsubscribe(std::move(name));
  return request;
}

TEST_F(SdsProtocolTest, DeltaSendsOnlyWhatChanged) {
  DeltaProtocol protocol({}, "pid 1");
  auto first = protocol.OnRequest(Delta({"default", "ROOTCA"}), *Snapshot({web_}), selectors_);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ(Names(**first), (std::vector<std::string>{"ROOTCA", "default"}));
  EXPECT_EQ((*first)->system_version_info(), "1");
  EXPECT_EQ((*first)->type_url(), kSecretTypeUrl);

  discovery::DeltaDiscoveryRequest ack = Delta({});
  ack.set_response_nonce((*first)->nonce());
  auto acked = protocol.OnRequest(ack, *Snapshot({web_}), selectors_);
  ASSERT_TRUE(acked.ok());
  EXPECT_FALSE(acked->has_value());

  auto rotated = protocol.OnSnapshot(*Snapshot({Rotated()}), selectors_);
  ASSERT_TRUE(rotated.ok());
  ASSERT_TRUE(rotated->has_value());
  EXPECT_EQ(Names(**rotated), std::vector<std::string>{"default"});

  // A new subscription sends just the new resource; an unsubscribed one is forgotten and sent
  // again when subscribed again.
  auto more =
      protocol.OnRequest(Delta({"spiffe://other.org"}, {"ROOTCA"}), *Snapshot({web_}), selectors_);
  ASSERT_TRUE(more.ok());
  ASSERT_TRUE(more->has_value());
  EXPECT_EQ(Names(**more), (std::vector<std::string>{"default", "spiffe://other.org"}));
  auto back = protocol.OnRequest(Delta({"ROOTCA"}), *Snapshot({web_}), selectors_);
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ(Names(**back), std::vector<std::string>{"ROOTCA"});
}

TEST_F(SdsProtocolTest, DeltaReconnectWithInitialVersionsSendsNothingKnown) {
  DeltaProtocol before({}, "pid 1");
  auto snapshot = Snapshot({web_});
  auto first = before.OnRequest(Delta({"default", "ALL"}), *snapshot, selectors_);
  ASSERT_TRUE(first.ok() && first->has_value());

  DeltaProtocol after({}, "pid 1");  // the agent restarted
  discovery::DeltaDiscoveryRequest reconnect = Delta({"default", "ALL"});
  for (const auto& resource : (*first)->resources()) {
    (*reconnect.mutable_initial_resource_versions())[resource.name()] = resource.version();
  }
  auto nothing = after.OnRequest(reconnect, *Snapshot({web_}), selectors_);
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->has_value());
  // A stale version is replaced.
  DeltaProtocol stale({}, "pid 1");
  (*reconnect.mutable_initial_resource_versions())["default"] = "0123";
  auto resent = stale.OnRequest(reconnect, *Snapshot({web_}), selectors_);
  ASSERT_TRUE(resent.ok() && resent->has_value());
  EXPECT_EQ(Names(**resent), std::vector<std::string>{"default"});
}

TEST_F(SdsProtocolTest, DeltaRemovesWhatNoLongerExistsAndRefusesUnknownNames) {
  DeltaProtocol protocol({}, "pid 1");
  auto first =
      protocol.OnRequest(Delta({"spiffe://other.org", "default"}), *Snapshot({web_}), selectors_);
  ASSERT_TRUE(first.ok() && first->has_value());
  // The entry no longer federates with other.org.
  CachedIdentity local =
      Identity(pki_, {.id = "a", .spiffe_id = "spiffe://example.org/web", .selectors = kCaller});
  auto removed = protocol.OnSnapshot(*Snapshot({local}), selectors_);
  ASSERT_TRUE(removed.ok());
  ASSERT_TRUE(removed->has_value());
  EXPECT_EQ(std::vector<std::string>((*removed)->removed_resources().begin(),
                                     (*removed)->removed_resources().end()),
            std::vector<std::string>{"spiffe://other.org"});
  // Still subscribed and still gone: not reported again, not an error.
  auto quiet = protocol.OnSnapshot(*Snapshot({local}), selectors_);
  ASSERT_TRUE(quiet.ok());
  EXPECT_FALSE(quiet->has_value());

  // Back, then gone again: resent, then removed again.
  auto back = protocol.OnSnapshot(*Snapshot({web_}), selectors_);
  ASSERT_TRUE(back.ok() && back->has_value());
  // (web_ and local have different SVIDs: default is resent too.)
  EXPECT_EQ(Names(**back), (std::vector<std::string>{"default", "spiffe://other.org"}));
  auto again = protocol.OnSnapshot(*Snapshot({local}), selectors_);
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ(std::vector<std::string>((*again)->removed_resources().begin(),
                                     (*again)->removed_resources().end()),
            std::vector<std::string>{"spiffe://other.org"});

  auto unknown =
      protocol.OnRequest(Delta({"spiffe://nowhere.org"}), *Snapshot({local}), selectors_);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SdsProtocolTest, DeltaWildcardGetsEverything) {
  DeltaProtocol protocol({}, "pid 1");
  auto all = protocol.OnRequest(Delta({}), *Snapshot({web_}), selectors_);
  ASSERT_TRUE(all.ok() && all->has_value());
  EXPECT_EQ(Names(**all), (std::vector<std::string>{"spiffe://example.org", "spiffe://other.org",
                                                    "spiffe://example.org/web"}));
  // The identity goes away: its certificate and the federated bundle are removed.
  auto gone = protocol.OnSnapshot(*Snapshot({}), selectors_);
  ASSERT_TRUE(gone.ok() && gone->has_value());
  EXPECT_EQ((*gone)->removed_resources_size(), 2);
}

}  // namespace
}  // namespace tessera::agent
