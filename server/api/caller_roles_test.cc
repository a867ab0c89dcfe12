#include "server/api/caller_roles.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/grpc_status.h"
#include "server/datastore/datastore_test_util.h"

namespace tessera::server {
namespace {

using spire::api::types::PermissionDeniedDetails;
using ::testing::HasSubstr;
using testing::MakeEntry;
using testing::MakeNode;

constexpr char kAgent[] = "spiffe://example.org/spire/agent/join_token/t";

PermissionDeniedDetails::Reason ReasonOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kPermissionDeniedDetailsUrl);
  PermissionDeniedDetails details;
  if (!payload.has_value() || !details.ParseFromString(std::string(*payload))) {
    ADD_FAILURE() << "no PermissionDeniedDetails in " << status;
  }
  return details.reason();
}

class CallerRolesTest : public testing::DataStoreTest {
 protected:
  void SetUp() override {
    DataStoreTest::SetUp();
    ca_.emplace(*spiffe::testing::MakeRootCa(testing::Td("example.org"), now_));
    roles_ = std::make_unique<RegistryCallerRoles>(*store_);
  }
  spiffe::Certificate Svid() {
    return spiffe::testing::MakeLeaf(*ca_, testing::Id(kAgent), now_)->cert;
  }

  std::chrono::system_clock::time_point now_ = spiffe::testing::TestNow();
  std::optional<spiffe::testing::Ca> ca_;
  std::unique_ptr<RegistryCallerRoles> roles_;
};

TEST_F(CallerRolesTest, AgentCheckFollowsSpiresOrder) {
  spiffe::Certificate svid = Svid();
  absl::Status s = roles_->CheckAgent(testing::Id(kAgent), svid, now_);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), std::string("agent \"") + kAgent + "\" is not attested");
  EXPECT_EQ(ReasonOf(s), PermissionDeniedDetails::AGENT_NOT_ATTESTED);

  ASSERT_TRUE(store_->CreateAttestedNode(MakeNode(kAgent, svid.SerialDecimal())).ok());
  EXPECT_TRUE(roles_->CheckAgent(testing::Id(kAgent), svid, now_).ok());

  s = roles_->CheckAgent(testing::Id(kAgent), svid, svid.NotAfter() + std::chrono::seconds(1));
  EXPECT_EQ(ReasonOf(s), PermissionDeniedDetails::AGENT_EXPIRED);
  EXPECT_THAT(std::string(s.message()), HasSubstr("SVID is expired"));

  spiffe::Certificate other = Svid();
  s = roles_->CheckAgent(testing::Id(kAgent), other, now_);
  EXPECT_EQ(ReasonOf(s), PermissionDeniedDetails::AGENT_NOT_ACTIVE);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("expected to have serial number \"" + svid.SerialDecimal() + "\"; has \"" +
                        other.SerialDecimal() + "\""));

  AttestedNode banned = MakeNode(kAgent, "");
  NodeMask mask;
  mask.cert_serial = true;
  ASSERT_TRUE(store_->UpdateAttestedNode(banned, mask).ok());
  s = roles_->CheckAgent(testing::Id(kAgent), svid, now_);
  EXPECT_EQ(ReasonOf(s), PermissionDeniedDetails::AGENT_BANNED);
}

TEST_F(CallerRolesTest, RenewedSvidIsPromotedOnFirstUseAndRetiresTheOldOne) {
  spiffe::Certificate old_svid = Svid();
  spiffe::Certificate new_svid = Svid();
  AttestedNode node = MakeNode(kAgent, old_svid.SerialDecimal());
  node.new_cert_serial = new_svid.SerialDecimal();
  node.new_cert_not_after = 1'900'000'000;
  ASSERT_TRUE(store_->CreateAttestedNode(node).ok());

  EXPECT_TRUE(roles_->CheckAgent(testing::Id(kAgent), old_svid, now_).ok());
  EXPECT_TRUE(roles_->CheckAgent(testing::Id(kAgent), new_svid, now_).ok());
  std::optional<AttestedNode> stored = *store_->FetchAttestedNode(testing::Id(kAgent));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->cert_serial, new_svid.SerialDecimal());
  EXPECT_EQ(stored->cert_not_after, 1'900'000'000);
  EXPECT_EQ(stored->new_cert_serial, "");
  EXPECT_EQ(ReasonOf(roles_->CheckAgent(testing::Id(kAgent), old_svid, now_)),
            PermissionDeniedDetails::AGENT_NOT_ACTIVE);
  EXPECT_TRUE(roles_->CheckAgent(testing::Id(kAgent), new_svid, now_).ok());
}

TEST_F(CallerRolesTest, AdminAndDownstreamComeFromEntries) {
  Entry admin = MakeEntry("spiffe://example.org/ci", kAgent, {"unix:uid:0"});
  admin.admin = true;
  ASSERT_TRUE(store_->CreateEntry(admin).ok());
  Entry nested = MakeEntry("spiffe://example.org/nested", kAgent, {"unix:uid:1"});
  nested.downstream = true;
  ASSERT_TRUE(store_->CreateEntry(nested).ok());
  ASSERT_TRUE(
      store_->CreateEntry(MakeEntry("spiffe://example.org/web", kAgent, {"unix:uid:2"})).ok());

  EXPECT_TRUE(roles_->IsAdminEntry(testing::Id("spiffe://example.org/ci")));
  EXPECT_FALSE(roles_->IsAdminEntry(testing::Id("spiffe://example.org/nested")));
  EXPECT_FALSE(roles_->IsAdminEntry(testing::Id("spiffe://example.org/web")));
  EXPECT_FALSE(roles_->IsAdminEntry(testing::Id("spiffe://example.org/unknown")));
  EXPECT_TRUE(roles_->IsDownstreamEntry(testing::Id("spiffe://example.org/nested")));
  EXPECT_FALSE(roles_->IsDownstreamEntry(testing::Id("spiffe://example.org/ci")));
}

}  // namespace
}  // namespace tessera::server
