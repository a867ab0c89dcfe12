// The service harness itself: the three kinds of caller it offers reach a real service as the
// authorizer sees them (local admin, anonymous TLS, attested agent), and an unregistered SVID is
// refused as an agent. BundleService stands in for any service.
#include "server/api/service_test_util.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/bundle_service.h"

namespace tessera::server::testing {
namespace {

namespace types = ::spire::api::types;

class ServiceHarnessTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    service_ = std::make_unique<BundleService>(deps());
    StartServer({service_.get()});
  }

  grpc::Status CountVia(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    bundlev1::CountBundlesResponse resp;
    return bundlev1::Bundle::NewStub(channel)->CountBundles(&ctx, {}, &resp);
  }
  grpc::Status FederatedVia(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    bundlev1::GetFederatedBundleRequest req;
    req.set_trust_domain("other.org");
    types::Bundle out;
    return bundlev1::Bundle::NewStub(channel)->GetFederatedBundle(&ctx, req, &out);
  }

  std::unique_ptr<BundleService> service_;
};

TEST_F(ServiceHarnessTest, OwnBundleIsTheCasAndOpenToAnonymousTls) {
  grpc::ClientContext ctx;
  types::Bundle out;
  grpc::Status s = bundlev1::Bundle::NewStub(TlsChannel())->GetBundle(&ctx, {}, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(out.x509_authorities_size(), 1);
  EXPECT_EQ(out.x509_authorities(0).asn1(), ca_->bundle()->bundle.x509_authorities()[0].ToDer());
}

TEST_F(ServiceHarnessTest, AdminSocketIsAdminAndTlsWithoutCertificateIsNot) {
  EXPECT_TRUE(CountVia(AdminChannel()).ok());
  grpc::Status s = CountVia(TlsChannel());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
}

TEST_F(ServiceHarnessTest, AttestedAgentPassesTheAgentCheckAndAStrangerDoesNot) {
  auto agent = AddAgent("spiffe://example.org/spire/agent/x/1");
  grpc::Status s = FederatedVia(TlsChannel(agent));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();

  s = FederatedVia(TlsChannel(IdentityFor("spiffe://example.org/spire/agent/x/2")));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("authorization denied"));
}

}  // namespace
}  // namespace tessera::server::testing
