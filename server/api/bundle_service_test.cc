// BundleService's own-bundle RPCs (GetBundle, AppendBundle, CountBundles), GetFederatedBundle,
// ListFederatedBundles (SPIRE's paging) and who may call each method, over real gRPC on the shared
// service harness: the admin socket (local, hence admin), anonymous TLS and an attested agent's
// mTLS. The federated-bundle batch RPCs are in bundle_service_federated_test.cc.
#include "server/api/bundle_service.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/api/service_test_util.h"
#include "spiffe/x509_test_util.h"

namespace tessera::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
namespace types = ::spire::api::types;

constexpr char kAgentId[] = "spiffe://example.org/spire/agent/x/1";

std::string NewCaDer(std::string_view td) {
  auto ca = spiffe::testing::MakeRootCa(Td(td), spiffe::testing::TestNow());
  EXPECT_TRUE(ca.ok()) << ca.status();
  return ca.ok() ? ca->cert.ToDer() : std::string();
}

class BundleServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    service_ = std::make_unique<BundleService>(deps());
    StartServer({service_.get()});
    if (HasFatalFailure()) return;
    admin_ = bundlev1::Bundle::NewStub(AdminChannel());
  }

  // Replaces the harness's own bundle with one authority and a refresh hint.
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
    return admin_->GetBundle(&ctx, req, out);
  }
  grpc::Status Append(const bundlev1::AppendBundleRequest& req, types::Bundle* out) {
    grpc::ClientContext ctx;
    return admin_->AppendBundle(&ctx, req, out);
  }

  bundlev1::ListFederatedBundlesResponse List(int32_t page_size, std::string token,
                                              grpc::Status* status = nullptr,
                                              const types::BundleMask* mask = nullptr) {
    bundlev1::ListFederatedBundlesRequest req;
    req.set_page_size(page_size);
    req.set_page_token(std::move(token));
    if (mask != nullptr) *req.mutable_output_mask() = *mask;
    bundlev1::ListFederatedBundlesResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = admin_->ListFederatedBundles(&ctx, req, &resp);
    if (status != nullptr) {
      *status = s;
    } else {
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    return resp;
  }
  void StoreFederated(std::string_view td) {
    types::Bundle b;
    b.set_trust_domain(std::string(td));
    b.add_x509_authorities()->set_asn1(NewCaDer(td));
    b.set_refresh_hint(60);
    ASSERT_TRUE(store_->SetBundle(b).ok());
  }

  std::string seed_der_ = NewCaDer("example.org");
  std::unique_ptr<BundleService> service_;
  std::unique_ptr<bundlev1::Bundle::Stub> admin_;
};

TEST_F(BundleServiceTest, GetBundleNotFoundWithoutOwnBundle) {
  ASSERT_TRUE(store_->DeleteBundle(Td("example.org"), BundleDeleteMode::kRestrict).ok());
  types::Bundle out;
  grpc::Status s = Get(nullptr, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "bundle not found");
}

TEST_F(BundleServiceTest, GetBundleIsTheHarnessCasBundleAndOpenToAnonymousTls) {
  grpc::ClientContext ctx;
  types::Bundle out;
  grpc::Status s = bundlev1::Bundle::NewStub(TlsChannel())->GetBundle(&ctx, {}, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.trust_domain(), "example.org");
  ASSERT_EQ(out.x509_authorities_size(), 1);
  EXPECT_EQ(out.x509_authorities(0).asn1(), ca_->bundle()->bundle.x509_authorities()[0].ToDer());
  EXPECT_EQ(out.sequence_number(), 1);
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
  EXPECT_THAT(s.error_message(), HasSubstr("failed to convert authorities"));

  bundlev1::AppendBundleRequest bad_key;
  bad_key.add_jwt_authorities()->set_public_key("key");
  bad_key.mutable_jwt_authorities(0)->set_key_id("k1");
  s = Append(bad_key, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              StartsWith("failed to convert authorities: unable to parse JWT authority: "));

  bundlev1::AppendBundleRequest no_kid;
  no_kid.add_jwt_authorities()->set_public_key(
      spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256)->public_key().ToDer().value());
  s = Append(no_kid, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "failed to convert authorities: unable to parse JWT authority: missing key ID");
  EXPECT_EQ(notifier_.bundle_changes(), 0);

  ASSERT_TRUE(Get(nullptr, &out).ok());
  EXPECT_EQ(out.x509_authorities_size(), 1);
  EXPECT_EQ(out.sequence_number(), 1);
}

TEST_F(BundleServiceTest, AppendAddsDedupesBumpsSequenceAndNotifies) {
  SeedOwnBundle();
  std::string new_der = NewCaDer("example.org");
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
  EXPECT_EQ(notifier_.bundle_changes(), 1);

  types::Bundle stored;
  ASSERT_TRUE(Get(nullptr, &stored).ok());
  EXPECT_EQ(stored.x509_authorities_size(), 2);
  EXPECT_EQ(stored.sequence_number(), 2);
}

TEST_F(BundleServiceTest, AppendAppliesOutputMask) {
  SeedOwnBundle();
  bundlev1::AppendBundleRequest req;
  req.add_x509_authorities()->set_asn1(NewCaDer("example.org"));
  req.mutable_output_mask()->set_sequence_number(true);
  types::Bundle out;
  ASSERT_TRUE(Append(req, &out).ok());
  EXPECT_EQ(out.trust_domain(), "example.org");
  EXPECT_EQ(out.x509_authorities_size(), 0);
  EXPECT_EQ(out.sequence_number(), 2);
}

TEST_F(BundleServiceTest, CountBundlesIncludesTheOwnBundle) {
  auto count = [&] {
    bundlev1::CountBundlesResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = admin_->CountBundles(&ctx, bundlev1::CountBundlesRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.count();
  };
  EXPECT_EQ(count(), 1);
  types::Bundle fed;
  fed.set_trust_domain("other.org");
  fed.add_x509_authorities()->set_asn1(NewCaDer("other.org"));
  ASSERT_TRUE(store_->SetBundle(fed).ok());
  EXPECT_EQ(count(), 2);
  ASSERT_TRUE(store_->DeleteBundle(Td("example.org"), BundleDeleteMode::kRestrict).ok());
  ASSERT_TRUE(store_->DeleteBundle(Td("other.org"), BundleDeleteMode::kRestrict).ok());
  EXPECT_EQ(count(), 0);
}

TEST_F(BundleServiceTest, GetFederatedBundle) {
  std::string fed_der = NewCaDer("other.org");
  types::Bundle fed;
  fed.set_trust_domain("other.org");
  fed.add_x509_authorities()->set_asn1(fed_der);
  fed.set_refresh_hint(30);
  ASSERT_TRUE(store_->SetBundle(fed).ok());
  auto get = [&](std::string td, types::Bundle* out, const types::BundleMask* mask = nullptr) {
    bundlev1::GetFederatedBundleRequest req;
    req.set_trust_domain(std::move(td));
    if (mask != nullptr) *req.mutable_output_mask() = *mask;
    grpc::ClientContext ctx;
    return admin_->GetFederatedBundle(&ctx, req, out);
  };
  types::Bundle out;
  grpc::Status s = get("spiffe://other.org", &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.trust_domain(), "other.org");
  ASSERT_EQ(out.x509_authorities_size(), 1);
  EXPECT_EQ(out.x509_authorities(0).asn1(), fed_der);
  EXPECT_EQ(out.refresh_hint(), 30);

  types::BundleMask mask;
  mask.set_refresh_hint(true);
  types::Bundle masked;
  ASSERT_TRUE(get("other.org", &masked, &mask).ok());
  EXPECT_EQ(masked.trust_domain(), "other.org");
  EXPECT_EQ(masked.x509_authorities_size(), 0);
  EXPECT_EQ(masked.refresh_hint(), 30);

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

TEST_F(BundleServiceTest, AgentMayGetFederatedBundlesButStrangersMayNot) {
  types::Bundle fed;
  fed.set_trust_domain("other.org");
  fed.add_x509_authorities()->set_asn1(NewCaDer("other.org"));
  ASSERT_TRUE(store_->SetBundle(fed).ok());
  bundlev1::GetFederatedBundleRequest req;
  req.set_trust_domain("other.org");

  types::Bundle out;
  grpc::ClientContext agent_ctx;
  grpc::Status s = bundlev1::Bundle::NewStub(TlsChannel(AddAgent(kAgentId)))
                       ->GetFederatedBundle(&agent_ctx, req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.trust_domain(), "other.org");

  grpc::ClientContext anonymous_ctx;
  s = bundlev1::Bundle::NewStub(TlsChannel())->GetFederatedBundle(&anonymous_ctx, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// --- ListFederatedBundles ---

TEST_F(BundleServiceTest, ListLeavesOutTheOwnBundle) {
  bundlev1::ListFederatedBundlesResponse resp = List(0, "");
  EXPECT_THAT(resp.bundles(), IsEmpty());
  EXPECT_EQ(resp.next_page_token(), "");

  for (std::string_view td : {"a.org", "b.org", "c.org"}) StoreFederated(td);
  resp = List(0, "");
  ASSERT_EQ(resp.bundles_size(), 3);
  EXPECT_EQ(resp.bundles(0).trust_domain(), "a.org");
  EXPECT_EQ(resp.bundles(1).trust_domain(), "b.org");
  EXPECT_EQ(resp.bundles(2).trust_domain(), "c.org");
  EXPECT_EQ(resp.bundles(0).x509_authorities_size(), 1);
  EXPECT_EQ(resp.bundles(0).refresh_hint(), 60);
  EXPECT_EQ(resp.next_page_token(), "");
}

TEST_F(BundleServiceTest, ListAppliesOutputMask) {
  StoreFederated("a.org");
  types::BundleMask mask;
  mask.set_refresh_hint(true);
  bundlev1::ListFederatedBundlesResponse resp = List(0, "", nullptr, &mask);
  ASSERT_EQ(resp.bundles_size(), 1);
  EXPECT_EQ(resp.bundles(0).trust_domain(), "a.org");
  EXPECT_EQ(resp.bundles(0).refresh_hint(), 60);
  EXPECT_EQ(resp.bundles(0).x509_authorities_size(), 0);

  types::BundleMask none;
  resp = List(0, "", nullptr, &none);
  ASSERT_EQ(resp.bundles_size(), 1);
  EXPECT_EQ(resp.bundles(0).trust_domain(), "a.org");
  EXPECT_EQ(resp.bundles(0).refresh_hint(), 0);
}

// SPIRE's paging: the own bundle (stored first) still takes its slot in the store's page, so the
// first page comes back short; the listing ends on an empty page with an empty token.
TEST_F(BundleServiceTest, ListPagesToTheEnd) {
  for (std::string_view td : {"a.org", "b.org", "c.org"}) StoreFederated(td);
  for (int32_t page_size : {1, 2, 3}) {
    SCOPED_TRACE(page_size);
    std::vector<std::vector<std::string>> pages;
    std::string token;
    do {
      bundlev1::ListFederatedBundlesResponse resp = List(page_size, token);
      ASSERT_LE(resp.bundles_size(), page_size);
      pages.emplace_back();
      for (const auto& b : resp.bundles()) pages.back().push_back(b.trust_domain());
      token = resp.next_page_token();
      ASSERT_LT(pages.size(), 10u) << "paging does not end";
    } while (!token.empty());
    using Page = std::vector<std::string>;
    if (page_size == 1) {
      EXPECT_THAT(pages, ElementsAre(Page{}, Page{"a.org"}, Page{"b.org"}, Page{"c.org"}, Page{}));
    } else if (page_size == 2) {
      EXPECT_THAT(pages, ElementsAre(Page{"a.org"}, Page{"b.org", "c.org"}, Page{}));
    } else {
      EXPECT_THAT(pages, ElementsAre(Page{"a.org", "b.org"}, Page{"c.org"}, Page{}));
    }
  }
}

TEST_F(BundleServiceTest, ListIgnoresTokenWithoutPageSizeAndFailsOnGarbageToken) {
  StoreFederated("a.org");
  bundlev1::ListFederatedBundlesResponse resp = List(-1, "garbage");
  ASSERT_EQ(resp.bundles_size(), 1);
  EXPECT_EQ(resp.next_page_token(), "");

  grpc::Status s;
  List(2, "garbage", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(s.error_message(), StartsWith("failed to list bundles: "));
}

// Every admin method refuses an attested agent with SPIRE's message, and writes nothing.
TEST_F(BundleServiceTest, AdminMethodsRefuseAgents) {
  auto stub = bundlev1::Bundle::NewStub(TlsChannel(AddAgent(kAgentId)));
  types::Bundle fed;
  fed.set_trust_domain("other.org");
  fed.add_x509_authorities()->set_asn1(NewCaDer("other.org"));
  auto expect_denied = [](const grpc::Status& s, std::string_view method) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method;
    EXPECT_EQ(s.error_message(),
              absl::StrCat("authorization denied for method /spire.api.server.bundle.v1.Bundle/",
                           AsAbsl(method)));
  };
  {
    grpc::ClientContext ctx;
    bundlev1::AppendBundleRequest req;
    req.add_x509_authorities()->set_asn1(NewCaDer("example.org"));
    types::Bundle out;
    expect_denied(stub->AppendBundle(&ctx, req, &out), "AppendBundle");
  }
  {
    grpc::ClientContext ctx;
    bundlev1::CountBundlesResponse out;
    expect_denied(stub->CountBundles(&ctx, {}, &out), "CountBundles");
  }
  {
    grpc::ClientContext ctx;
    bundlev1::ListFederatedBundlesResponse out;
    expect_denied(stub->ListFederatedBundles(&ctx, {}, &out), "ListFederatedBundles");
  }
  {
    grpc::ClientContext ctx;
    bundlev1::BatchCreateFederatedBundleRequest req;
    *req.add_bundle() = fed;
    bundlev1::BatchCreateFederatedBundleResponse out;
    expect_denied(stub->BatchCreateFederatedBundle(&ctx, req, &out), "BatchCreateFederatedBundle");
  }
  {
    grpc::ClientContext ctx;
    bundlev1::BatchSetFederatedBundleRequest req;
    *req.add_bundle() = fed;
    bundlev1::BatchSetFederatedBundleResponse out;
    expect_denied(stub->BatchSetFederatedBundle(&ctx, req, &out), "BatchSetFederatedBundle");
  }
  ASSERT_TRUE(store_->SetBundle(fed).ok());
  types::Bundle changed = fed;
  changed.set_refresh_hint(99);
  {
    grpc::ClientContext ctx;
    bundlev1::BatchUpdateFederatedBundleRequest req;
    *req.add_bundle() = changed;
    bundlev1::BatchUpdateFederatedBundleResponse out;
    expect_denied(stub->BatchUpdateFederatedBundle(&ctx, req, &out), "BatchUpdateFederatedBundle");
  }
  {
    grpc::ClientContext ctx;
    bundlev1::BatchDeleteFederatedBundleRequest req;
    req.add_trust_domains("other.org");
    req.set_mode(bundlev1::BatchDeleteFederatedBundleRequest::DELETE);
    bundlev1::BatchDeleteFederatedBundleResponse out;
    expect_denied(stub->BatchDeleteFederatedBundle(&ctx, req, &out), "BatchDeleteFederatedBundle");
  }

  // Nothing was written: the federated bundle is as stored above, the own bundle untouched.
  ASSERT_OK_AND_ASSIGN(std::optional<Bundle> stored, store_->FetchBundle(Td("other.org")));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->refresh_hint(), 0);
  ASSERT_OK_AND_ASSIGN(std::optional<Bundle> own, store_->FetchBundle(Td("example.org")));
  ASSERT_TRUE(own.has_value());
  EXPECT_EQ(own->x509_authorities_size(), 1);
  EXPECT_EQ(own->sequence_number(), 1);
  EXPECT_EQ(notifier_.bundle_changes(), 0);
}

TEST_F(BundleServiceTest, AdminMethodsRefuseAnonymousTls) {
  auto stub = bundlev1::Bundle::NewStub(TlsChannel());
  grpc::ClientContext ctx;
  bundlev1::BatchCreateFederatedBundleRequest req;
  types::Bundle* fed = req.add_bundle();
  fed->set_trust_domain("other.org");
  fed->add_x509_authorities()->set_asn1(NewCaDer("other.org"));
  bundlev1::BatchCreateFederatedBundleResponse out;
  grpc::Status s = stub->BatchCreateFederatedBundle(&ctx, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_OK_AND_ASSIGN(std::optional<Bundle> stored, store_->FetchBundle(Td("other.org")));
  EXPECT_FALSE(stored.has_value());
}

}  // namespace
}  // namespace tessera::server::testing
