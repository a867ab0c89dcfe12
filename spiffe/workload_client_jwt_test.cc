// WorkloadApiClient's JWT calls against the in-process fake Workload API: FetchJWTSVID,
// FetchJWTBundles, ValidateJWTSVID, their errors and deadlines.
#include <chrono>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/workload_client.h"
#include "spiffe/workload_client_internal.h"
#include "spiffe/workload_client_test_util.h"

namespace tessera::spiffe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Id;
using testing::Td;
using testing::WatchRecorder;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

class WorkloadClientJwtTest : public testing::WorkloadApiTest {
 protected:
  void SetUp() override {
    WorkloadApiTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_OK_AND_ASSIGN(BundleSet authorities, pki().JwtAuthorities());
    authorities_ = authorities;
    fake_->SetJwt(pki().jwt_key, pki().jwt_key_id,
                  {{Id("spiffe://example.org/web"), "internal"},
                   {Id("spiffe://example.org/db"), "external"},
                   {Id("spiffe://example.org/dup"), "internal"}},
                  authorities);
    ASSERT_OK_AND_ASSIGN(::JWTBundlesResponse bundles, pki().JwtBundlesResponse());
    fake_->SetJwtBundles(bundles);
    client_ = Client();
  }

  BundleSet authorities_;
  std::unique_ptr<WorkloadApiClient> client_;
};

TEST_F(WorkloadClientJwtTest, FetchJwtSvidReturnsTheDefaultIdentitysToken) {
  absl::StatusOr<WorkloadJwtSvid> svid = client_->FetchJwtSvid({"aud-1", "aud-2"});
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->svid.subject.str(), "spiffe://example.org/web");
  EXPECT_EQ(svid->hint, "internal");
  EXPECT_THAT(svid->svid.audience, ElementsAre("aud-1", "aud-2"));
  EXPECT_EQ(svid->svid.key_id, pki().jwt_key_id);
  EXPECT_GT(svid->svid.expiry, std::chrono::system_clock::now());
  // The request carried both audiences and no identity filter.
  ASSERT_TRUE(fake_->last_jwt_request().has_value());
  EXPECT_THAT(fake_->last_jwt_request()->audience(), ElementsAre("aud-1", "aud-2"));
  EXPECT_EQ(fake_->last_jwt_request()->spiffe_id(), "");
  // A real token: it validates against the trust domain's JWT authorities.
  absl::StatusOr<JwtSvid> validated = ParseAndValidateJwtSvid(
      svid->svid.token, authorities_, {"aud-2"}, std::chrono::system_clock::now());
  EXPECT_TRUE(validated.ok()) << validated.status();
}

TEST_F(WorkloadClientJwtTest, FetchJwtSvidsReturnsEveryIdentityWithUniqueHints) {
  absl::StatusOr<std::vector<WorkloadJwtSvid>> svids = client_->FetchJwtSvids({"aud"});
  ASSERT_TRUE(svids.ok()) << svids.status();
  // The third identity repeats the hint "internal": dropped, the first one wins.
  ASSERT_EQ(svids->size(), 2u);
  EXPECT_EQ((*svids)[0].svid.subject.str(), "spiffe://example.org/web");
  EXPECT_EQ((*svids)[1].svid.subject.str(), "spiffe://example.org/db");
  EXPECT_EQ((*svids)[1].hint, "external");
}

TEST_F(WorkloadClientJwtTest, FetchJwtSvidForOneIdentity) {
  absl::StatusOr<WorkloadJwtSvid> svid =
      client_->FetchJwtSvid({"aud"}, Id("spiffe://example.org/db"));
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->svid.subject.str(), "spiffe://example.org/db");
  EXPECT_EQ(fake_->last_jwt_request()->spiffe_id(), "spiffe://example.org/db");

  absl::StatusOr<WorkloadJwtSvid> denied =
      client_->FetchJwtSvid({"aud"}, Id("spiffe://example.org/not-mine"));
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Message(denied.status()), "workload api FetchJWTSVID: no identity issued");
}

TEST_F(WorkloadClientJwtTest, EmptyAudienceIsRefusedBeforeAnyCall) {
  for (const std::vector<std::string>& audience :
       {std::vector<std::string>{}, std::vector<std::string>{"a", ""}}) {
    absl::StatusOr<WorkloadJwtSvid> svid = client_->FetchJwtSvid(audience);
    EXPECT_EQ(svid.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Message(svid.status()), "workload api FetchJWTSVID: audience must be specified");
  }
  EXPECT_EQ(client_->ValidateJwtSvid("tok", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(client_->ValidateJwtSvid("", "aud").status()),
              HasSubstr("svid must be specified"));
  EXPECT_EQ(fake_->calls(), 0);
}

TEST_F(WorkloadClientJwtTest, FetchJwtBundlesPerTrustDomain) {
  absl::StatusOr<BundleSet> bundles = client_->FetchJwtBundles();
  ASSERT_TRUE(bundles.ok()) << bundles.status();
  ASSERT_EQ(bundles->size(), 2u);
  const PublicKey* own = bundles->FindJwtAuthority(Td("example.org"), pki().jwt_key_id);
  ASSERT_NE(own, nullptr);
  EXPECT_TRUE(own->Equals(pki().jwt_key.public_key()));
  const PublicKey* other = bundles->FindJwtAuthority(Td("other.org"), pki().other_jwt_key_id);
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(other->Equals(pki().other_jwt_key.public_key()));
  // Never pooled: the other domain's key is not found under example.org.
  EXPECT_EQ(bundles->FindJwtAuthority(Td("example.org"), pki().other_jwt_key_id), nullptr);

  // The fetched bundles are enough to validate a fetched token locally.
  absl::StatusOr<WorkloadJwtSvid> svid = client_->FetchJwtSvid({"aud"});
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_TRUE(
      ParseAndValidateJwtSvid(svid->svid.token, *bundles, {"aud"}, std::chrono::system_clock::now())
          .ok());
}

TEST_F(WorkloadClientJwtTest, MalformedJwtBundlesAreRefused) {
  ::JWTBundlesResponse bad;
  (*bad.mutable_bundles())["spiffe://example.org"] = R"({"keys":[{"kty":"EC"}]})";
  fake_->SetJwtBundles(bad);
  absl::StatusOr<BundleSet> bundles = client_->FetchJwtBundles();
  EXPECT_EQ(bundles.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(Message(bundles.status()),
              HasSubstr("workload api FetchJWTBundles: malformed response: "
                        "bundles[\"spiffe://example.org\"]: "));
}

TEST_F(WorkloadClientJwtTest, WatchJwtBundlesSeesRotation) {
  WatchRecorder<BundleSet> recorder;
  std::stop_source stop;
  std::jthread watcher(
      [&] { (void)client_->WatchJwtBundles(std::ref(recorder), stop.get_token()); });
  ASSERT_TRUE(recorder.WaitForCount(1));
  // A new key for example.org only.
  ASSERT_OK_AND_ASSIGN(PrivateKey next_key, PrivateKey::Generate(KeyType::kEcP256));
  Bundle own(Td("example.org"));
  ASSERT_TRUE(own.AddJwtAuthority("jwt-key-2", next_key.public_key()).ok());
  ASSERT_OK_AND_ASSIGN(std::string jwks, JwtBundleToJwks(own));
  ::JWTBundlesResponse next;
  (*next.mutable_bundles())["spiffe://example.org"] = jwks;
  fake_->SetJwtBundles(next);
  ASSERT_TRUE(recorder.WaitForCount(2));
  stop.request_stop();
  watcher.join();
  auto events = recorder.events();
  ASSERT_TRUE(events[0].ok() && events[1].ok());
  EXPECT_EQ(events[0]->size(), 2u);
  EXPECT_EQ(events[1]->size(), 1u);
  EXPECT_NE(events[1]->FindJwtAuthority(Td("example.org"), "jwt-key-2"), nullptr);
  EXPECT_EQ(events[1]->FindJwtAuthority(Td("example.org"), pki().jwt_key_id), nullptr);
}

TEST_F(WorkloadClientJwtTest, ValidateJwtSvidReturnsIdAndClaims) {
  absl::StatusOr<WorkloadJwtSvid> svid = client_->FetchJwtSvid({"aud"});
  ASSERT_TRUE(svid.ok()) << svid.status();
  absl::StatusOr<ValidatedJwtSvid> validated = client_->ValidateJwtSvid(svid->svid.token, "aud");
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->spiffe_id.str(), "spiffe://example.org/web");
  EXPECT_EQ(validated->claims["sub"], "spiffe://example.org/web");
  EXPECT_EQ(validated->claims["aud"], "aud");
  EXPECT_EQ(validated->claims["jti"], "fake-jti");
  // Whole numbers come back as integers, equal to the token's own.
  ASSERT_TRUE(validated->claims["exp"].is_number_integer()) << validated->claims.dump();
  EXPECT_EQ(validated->claims["exp"], svid->svid.claims["exp"]);
}

TEST_F(WorkloadClientJwtTest, ValidateJwtSvidSurfacesTheAgentsReason) {
  absl::StatusOr<WorkloadJwtSvid> svid = client_->FetchJwtSvid({"aud"});
  ASSERT_TRUE(svid.ok()) << svid.status();
  absl::StatusOr<ValidatedJwtSvid> wrong = client_->ValidateJwtSvid(svid->svid.token, "other");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(wrong.status()), HasSubstr("workload api ValidateJWTSVID: "));
  EXPECT_THAT(Message(wrong.status()), HasSubstr("audience"));

  absl::StatusOr<ValidatedJwtSvid> garbage = client_->ValidateJwtSvid("not-a-token", "aud");
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(WorkloadClientJwtTest, UnaryCallsHaveADeadline) {
  fake_->SetUnaryDelay(std::chrono::seconds(5));
  WorkloadApiClientOptions options = FastOptions();
  options.timeout = std::chrono::milliseconds(200);
  auto client = Client(options);
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<WorkloadJwtSvid> svid = client->FetchJwtSvid({"aud"});
  EXPECT_EQ(svid.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(Message(svid.status()), HasSubstr("workload api FetchJWTSVID: "));
  absl::StatusOr<ValidatedJwtSvid> validated = client->ValidateJwtSvid("a.b.c", "aud");
  EXPECT_EQ(validated.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

// Conversions the fake never produces.
TEST(WorkloadClientConvertTest, JwtSvidWhoseSubjectDiffersFromItsIdIsMalformed) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  JwtSvidClaims claims{.subject = Id("spiffe://example.org/a"),
                       .audience = {"aud"},
                       .expiry = std::chrono::system_clock::now() + std::chrono::minutes(5)};
  ASSERT_OK_AND_ASSIGN(std::string token, SignJwtSvid(claims, key, "kid"));
  ::JWTSVIDResponse response;
  ::JWTSVID* svid = response.add_svids();
  svid->set_spiffe_id("spiffe://example.org/b");
  svid->set_svid(token);
  auto parsed = internal::JwtSvidsFromResponse(response);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(Message(parsed.status()), HasSubstr("the token's subject is spiffe://example.org/a"));

  svid->set_svid("");
  EXPECT_THAT(Message(internal::JwtSvidsFromResponse(response).status()),
              HasSubstr("svid is empty"));
  EXPECT_THAT(Message(internal::JwtSvidsFromResponse(::JWTSVIDResponse()).status()),
              HasSubstr("svids is empty"));
}

TEST(WorkloadClientConvertTest, ValidateResponseNeedsIdAndClaims) {
  ::ValidateJWTSVIDResponse response;
  EXPECT_THAT(Message(internal::ValidatedJwtSvidFromResponse(response).status()),
              HasSubstr("spiffe_id is empty"));
  response.set_spiffe_id("spiffe://example.org/a");
  EXPECT_THAT(Message(internal::ValidatedJwtSvidFromResponse(response).status()),
              HasSubstr("claims are missing"));
}

TEST(WorkloadClientConvertTest, StructToJsonKeepsTypes) {
  google::protobuf::Struct in;
  auto& fields = *in.mutable_fields();
  fields["int"].set_number_value(1800000000);
  fields["neg"].set_number_value(-3);
  fields["frac"].set_number_value(1.5);
  fields["huge"].set_number_value(1e300);
  fields["s"].set_string_value("x");
  fields["b"].set_bool_value(true);
  fields["n"].set_null_value(google::protobuf::NULL_VALUE);
  auto* list = fields["l"].mutable_list_value();
  list->add_values()->set_string_value("a");
  list->add_values()->set_number_value(2);
  (*fields["o"].mutable_struct_value()->mutable_fields())["k"].set_string_value("v");
  nlohmann::json out = internal::StructToJson(in);
  EXPECT_EQ(out.dump(),
            R"({"b":true,"frac":1.5,"huge":1e+300,"int":1800000000,"l":["a",2],"n":null,)"
            R"("neg":-3,"o":{"k":"v"},"s":"x"})");
}

TEST(WorkloadClientConvertTest, BundleKeys) {
  EXPECT_EQ(internal::TrustDomainFromBundleKey("spiffe://example.org")->name(), "example.org");
  EXPECT_EQ(internal::TrustDomainFromBundleKey("example.org")->name(), "example.org");
  EXPECT_FALSE(internal::TrustDomainFromBundleKey("spiffe://example.org/x").ok());
  EXPECT_FALSE(internal::TrustDomainFromBundleKey("https://example.org").ok());
  EXPECT_FALSE(internal::TrustDomainFromBundleKey("Example.org").ok());
  EXPECT_FALSE(internal::TrustDomainFromBundleKey("").ok());
}

}  // namespace
}  // namespace tessera::spiffe
