// BundleService over real gRPC on a Unix socket (every caller there is local, hence admin), backed
// by a SqliteDataStore in a temp dir and a recording ChangeNotifier.
#include "server/api/bundle_service.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/api/caller_roles.h"
#include "server/datastore/datastore_test_util.h"
#include "spiffe/x509_test_util.h"

namespace tessera::server {
namespace {

using ::testing::HasSubstr;
using testing::Td;
namespace types = ::spire::api::types;

class RecordingNotifier final : public ChangeNotifier {
 public:
  void EntriesChanged(const EntryIndex::AffectedAgents&) override {}
  void BundleChanged() override { ++bundle_changes; }
  std::atomic<int> bundle_changes{0};
};

class BundleServiceTest : public testing::DataStoreTest {
 protected:
  void SetUp() override {
    DataStoreTest::SetUp();
    if (HasFatalFailure()) return;
    index_ = std::make_unique<EntryIndex>(Td("example.org"), clock_);
    roles_ = std::make_unique<RegistryCallerRoles>(*store_);
    authorizer_ = std::make_unique<Authorizer>(
        std::vector<spiffe::SpiffeId>{},
        [](const spiffe::TrustDomain&) -> std::optional<std::vector<spiffe::Certificate>> {
          return std::nullopt;
        },
        *roles_, clock_);
    ServiceDeps deps{.trust_domain = Td("example.org"),
                     .datastore = store_.get(),
                     .index = index_.get(),
                     .authorizer = authorizer_.get(),
                     .notifier = &notifier_,
                     .clock = &clock_};
    service_ = std::make_unique<BundleService>(deps);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + (dir_ / "api.sock").string(),
                             grpc::InsecureServerCredentials());
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = bundlev1::Bundle::NewStub(grpc::CreateChannel("unix:" + (dir_ / "api.sock").string(),
                                                          grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    DataStoreTest::TearDown();
  }

  std::string NewCaDer() {
    auto ca = spiffe::testing::MakeRootCa(Td("example.org"), spiffe::testing::TestNow());
    EXPECT_TRUE(ca.ok()) << ca.status();
    return ca.ok() ? ca->cert.ToDer() : std::string();
  }
  // Stores the own bundle with one authority and a refresh hint.
  void SeedOwnBundle() {
    types::Bundle b;
    b.set_trust_domain("example.org");
    b.add_x509_authorities()->set_asn1(seed_der_);
    b.set_refresh_hint(300);
    b.set_sequence_number(1);
    ASSERT_TRUE(store_->SetBundle(b).ok());
  }
  grpc::Status Get(const types::BundleMask* mask, types::Bundle* out) {
    bundlev1::GetBundleRequest req;
    if (mask) *req.mutable_output_mask() = *mask;
    grpc::ClientContext ctx;
    return stub_->GetBundle(&ctx, req, out);
  }
  grpc::Status Append(const bundlev1::AppendBundleRequest& req, types::Bundle* out) {
    grpc::ClientContext ctx;
    return stub_->AppendBundle(&ctx, req, out);
  }

  std::string seed_der_ = NewCaDer();
  RecordingNotifier notifier_;
  std::unique_ptr<EntryIndex> index_;
  std::unique_ptr<RegistryCallerRoles> roles_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<BundleService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<bundlev1::Bundle::Stub> stub_;
};

TEST_F(BundleServiceTest, GetBundleNotFoundWithoutOwnBundle) {
  types::Bundle out;
  grpc::Status s = Get(nullptr, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "bundle not found");
}

TEST_F(BundleServiceTest, GetBundleReturnsEverythingWithoutMask) {
  SeedOwnBundle();
  types::Bundle out;
  ASSERT_TRUE(Get(nullptr, &out).ok());
  EXPECT_EQ(out.trust_domain(), "example.org");
  ASSERT_EQ(out.x509_authorities_size(), 1);
  EXPECT_EQ(out.x509_authorities(0).asn1(), seed_der_);
  EXPECT_EQ(out.refresh_hint(), 300);
  EXPECT_EQ(out.sequence_number(), 1);
}

TEST_F(BundleServiceTest, GetBundleOutputMaskKeepsTrustDomain) {
  SeedOwnBundle();
  types::BundleMask mask;
  mask.set_refresh_hint(true);
  types::Bundle out;
  ASSERT_TRUE(Get(&mask, &out).ok());
  EXPECT_EQ(out.trust_domain(), "example.org");
  EXPECT_EQ(out.x509_authorities_size(), 0);
  EXPECT_EQ(out.refresh_hint(), 300);
  EXPECT_EQ(out.sequence_number(), 0);
}

TEST_F(BundleServiceTest, AppendRejectsEmptyAndBadInput) {
  SeedOwnBundle();
  types::Bundle out;
  bundlev1::AppendBundleRequest empty;
  grpc::Status s = Append(empty, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "no authorities to append");

  bundlev1::AppendBundleRequest bad_cert;
  bad_cert.add_x509_authorities()->set_asn1("not der");
  s = Append(bad_cert, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  bundlev1::AppendBundleRequest no_kid;
  no_kid.add_jwt_authorities()->set_public_key("key");
  s = Append(no_kid, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(notifier_.bundle_changes.load(), 0);

  ASSERT_TRUE(Get(nullptr, &out).ok());
  EXPECT_EQ(out.x509_authorities_size(), 1);
  EXPECT_EQ(out.sequence_number(), 1);
}

TEST_F(BundleServiceTest, AppendAddsDedupesBumpsSequenceAndNotifies) {
  SeedOwnBundle();
  std::string new_der = NewCaDer();
  bundlev1::AppendBundleRequest req;
  req.add_x509_authorities()->set_asn1(seed_der_);  // already present
  req.add_x509_authorities()->set_asn1(new_der);
  types::Bundle out;
  grpc::Status s = Append(req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.trust_domain(), "example.org");
  ASSERT_EQ(out.x509_authorities_size(), 2);
  EXPECT_EQ(out.x509_authorities(0).asn1(), seed_der_);
  EXPECT_EQ(out.x509_authorities(1).asn1(), new_der);
  EXPECT_EQ(out.sequence_number(), 2);
  EXPECT_EQ(notifier_.bundle_changes.load(), 1);

  types::Bundle stored;
  ASSERT_TRUE(Get(nullptr, &stored).ok());
  EXPECT_EQ(stored.x509_authorities_size(), 2);
  EXPECT_EQ(stored.sequence_number(), 2);
}

TEST_F(BundleServiceTest, AppendAppliesOutputMask) {
  SeedOwnBundle();
  bundlev1::AppendBundleRequest req;
  req.add_x509_authorities()->set_asn1(NewCaDer());
  req.mutable_output_mask()->set_sequence_number(true);
  types::Bundle out;
  ASSERT_TRUE(Append(req, &out).ok());
  EXPECT_EQ(out.trust_domain(), "example.org");
  EXPECT_EQ(out.x509_authorities_size(), 0);
  EXPECT_EQ(out.sequence_number(), 2);
}

TEST_F(BundleServiceTest, CountBundles) {
  auto count = [&] {
    bundlev1::CountBundlesResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->CountBundles(&ctx, bundlev1::CountBundlesRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.count();
  };
  EXPECT_EQ(count(), 0);
  SeedOwnBundle();
  types::Bundle fed;
  fed.set_trust_domain("other.org");
  fed.add_x509_authorities()->set_asn1(NewCaDer());
  ASSERT_TRUE(store_->SetBundle(fed).ok());
  EXPECT_EQ(count(), 2);
}

TEST_F(BundleServiceTest, GetFederatedBundle) {
  SeedOwnBundle();
  std::string fed_der = NewCaDer();
  types::Bundle fed;
  fed.set_trust_domain("other.org");
  fed.add_x509_authorities()->set_asn1(fed_der);
  ASSERT_TRUE(store_->SetBundle(fed).ok());
  auto get = [&](std::string td, types::Bundle* out) {
    bundlev1::GetFederatedBundleRequest req;
    req.set_trust_domain(std::move(td));
    grpc::ClientContext ctx;
    return stub_->GetFederatedBundle(&ctx, req, out);
  };
  types::Bundle out;
  grpc::Status s = get("spiffe://other.org", &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.trust_domain(), "other.org");
  ASSERT_EQ(out.x509_authorities_size(), 1);
  EXPECT_EQ(out.x509_authorities(0).asn1(), fed_der);

  s = get("example.org", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "getting a federated bundle for the server's own trust domain is not allowed");
  s = get("missing.org", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "bundle not found");
  s = get("Not A Domain!", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("trust domain argument is not valid"));
}

}  // namespace
}  // namespace tessera::server
