// NewJWTSVID and an entry's additional_attributes.jwt_svid_include_jti (SPIRE-API-FACTS §7): the
// token carries a "jti" claim exactly when the entry asks for it, a fresh random one per token.
// Real gRPC with an attested agent over mTLS, the real CA, tokens validated against its bundle.
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/entry_service.h"
#include "server/api/service_test_util.h"
#include "server/api/svid_service.h"
#include "spiffe/bundle.h"
#include "spiffe/jwt_svid.h"
#include "spiffe/x509_test_util.h"

namespace tessera::server::testing {
namespace {

namespace entryv1 = ::spire::api::server::entry::v1;
namespace types = ::spire::api::types;

constexpr char kAgent[] = "spiffe://example.org/spire/agent/x/1";

class JwtJtiTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    svid_service_ = std::make_unique<SvidService>(deps());
    entry_service_ = std::make_unique<EntryService>(deps());
    StartServer({svid_service_.get(), entry_service_.get()});
    if (HasFatalFailure()) return;
    agent_channel_ = TlsChannel(AddAgent(kAgent));
  }

  std::string AddEntry(std::string_view spiffe_id, bool include_jti) {
    Entry entry = MakeEntry(spiffe_id, kAgent, {"unix:uid:1000"});
    entry.jwt_svid_include_jti = include_jti;
    absl::StatusOr<Entry> created = store_->CreateEntry(entry);
    EXPECT_TRUE(created.ok()) << created.status();
    index_->Upsert(*created);
    return created->id;
  }

  // The validated claims of a NewJWTSVID token for `entry_id`.
  nlohmann::json NewJwtClaims(const std::string& entry_id) {
    svidv1::NewJWTSVIDRequest request;
    request.set_entry_id(entry_id);
    request.add_audience("spiffe://example.org/db");
    svidv1::NewJWTSVIDResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status s = svidv1::SVID::NewStub(agent_channel_)->NewJWTSVID(&ctx, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return Validate(response.svid().token());
  }

  nlohmann::json Validate(const std::string& token) {
    spiffe::BundleSet bundles;
    bundles.Put(ca_->bundle()->bundle);
    absl::StatusOr<spiffe::JwtSvid> jwt =
        spiffe::ParseAndValidateJwtSvid(token, bundles, {"spiffe://example.org/db"}, clock_.Now());
    EXPECT_TRUE(jwt.ok()) << jwt.status();
    return jwt.ok() ? jwt->claims : nlohmann::json();
  }

  std::unique_ptr<SvidService> svid_service_;
  std::unique_ptr<EntryService> entry_service_;
  std::shared_ptr<grpc::Channel> agent_channel_;
};

TEST_F(JwtJtiTest, TokensCarryAFreshJtiExactlyWhenTheEntryAsks) {
  const std::string with = AddEntry("spiffe://example.org/with", true);
  const std::string without = AddEntry("spiffe://example.org/without", false);

  const std::regex uuid_v4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    nlohmann::json claims = NewJwtClaims(with);
    ASSERT_TRUE(claims.contains("jti")) << claims.dump();
    ASSERT_TRUE(claims["jti"].is_string()) << claims.dump();
    const std::string jti = claims["jti"].get<std::string>();
    EXPECT_TRUE(std::regex_match(jti, uuid_v4)) << jti;
    EXPECT_TRUE(seen.insert(jti).second) << "jti repeated: " << jti;
    EXPECT_EQ(claims["sub"], "spiffe://example.org/with");
  }
  EXPECT_EQ(seen.size(), 3u);

  nlohmann::json plain = NewJwtClaims(without);
  EXPECT_FALSE(plain.contains("jti")) << plain.dump();
  EXPECT_EQ(plain["sub"], "spiffe://example.org/without");
  // Nothing else is added: exactly SPIRE's claims.
  std::set<std::string> keys;
  for (const auto& [key, value] : plain.items()) keys.insert(key);
  EXPECT_EQ(keys, (std::set<std::string>{"sub", "aud", "exp", "iat"}));
  keys.clear();
  nlohmann::json with_jti = NewJwtClaims(with);
  for (const auto& [key, value] : with_jti.items()) keys.insert(key);
  EXPECT_EQ(keys, (std::set<std::string>{"sub", "aud", "exp", "iat", "jti"}));
}

TEST_F(JwtJtiTest, TurningTheAttributeOnAndOffThroughTheEntryServiceTakesEffect) {
  const std::string id = AddEntry("spiffe://example.org/web", false);
  EXPECT_FALSE(NewJwtClaims(id).contains("jti"));

  auto update = [&](bool include_jti) {
    entryv1::BatchUpdateEntryRequest request;
    types::Entry* entry = request.add_entries();
    entry->set_id(id);
    entry->mutable_additional_attributes()->set_jwt_svid_include_jti(include_jti);
    request.mutable_input_mask()->set_additional_attributes(true);
    entryv1::BatchUpdateEntryResponse response;
    grpc::ClientContext ctx;
    grpc::Status s =
        entryv1::Entry::NewStub(AdminChannel())->BatchUpdateEntry(&ctx, request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(response.results_size(), 1);
    ASSERT_EQ(response.results(0).status().code(), 0) << response.results(0).status().message();
  };
  update(true);
  nlohmann::json first = NewJwtClaims(id);
  nlohmann::json second = NewJwtClaims(id);
  ASSERT_TRUE(first.contains("jti"));
  ASSERT_TRUE(second.contains("jti"));
  EXPECT_NE(first["jti"], second["jti"]);
  update(false);
  EXPECT_FALSE(NewJwtClaims(id).contains("jti"));
}

TEST_F(JwtJtiTest, MintJwtSvidHasNoEntryAndNoJti) {
  AddEntry("spiffe://example.org/with", true);
  svidv1::MintJWTSVIDRequest request;
  request.mutable_id()->set_trust_domain("example.org");
  request.mutable_id()->set_path("/with");
  request.add_audience("spiffe://example.org/db");
  svidv1::MintJWTSVIDResponse response;
  grpc::ClientContext ctx;
  grpc::Status s = svidv1::SVID::NewStub(AdminChannel())->MintJWTSVID(&ctx, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  nlohmann::json claims = Validate(response.svid().token());
  EXPECT_EQ(claims["sub"], "spiffe://example.org/with");
  EXPECT_FALSE(claims.contains("jti")) << claims.dump();
}

}  // namespace
}  // namespace tessera::server::testing
