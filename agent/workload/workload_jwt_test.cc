// FetchJWTSVID and ValidateJWTSVID over a real endpoint, with a fake JwtSvidSource.
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "agent/workload/endpoint.h"
#include "agent/workload/workload_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::agent::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string Uid() { return "unix:uid:" + std::to_string(::geteuid()); }

class WorkloadJwtTest : public EndpointFixture {
 protected:
  // Two identities for this caller, the older one federating with other.org.
  void PublishTwo() {
    Publish({{.id = "b",
              .spiffe_id = "spiffe://example.org/second",
              .selectors = {Uid()},
              .created_at = 2,
              .hint = "second"},
             {.id = "a",
              .spiffe_id = "spiffe://example.org/first",
              .selectors = {Uid()},
              .created_at = 1,
              .hint = "first",
              .federates_with = {"other.org"}}});
  }

  absl::StatusOr<spiffe::JwtSvid> Verify(const std::string& token, const std::string& audience) {
    return spiffe::ParseAndValidateJwtSvid(token, pki_.Bundles(), {audience},
                                           std::chrono::system_clock::now());
  }
};

TEST_F(WorkloadJwtTest, FetchJwtSvidMintsOnePerIdentityInOrder) {
  StartEndpoint();
  PublishTwo();
  auto svids = Client()->FetchJwtSvids({"spiffe://example.org/db", "extra"});
  ASSERT_TRUE(svids.ok()) << svids.status();
  ASSERT_EQ(svids->size(), 2u);
  EXPECT_EQ((*svids)[0].svid.subject.str(), "spiffe://example.org/first");
  EXPECT_EQ((*svids)[0].hint, "first");
  EXPECT_EQ((*svids)[1].svid.subject.str(), "spiffe://example.org/second");
  EXPECT_EQ((*svids)[1].hint, "second");
  for (const auto& svid : *svids) {
    auto verified = Verify(svid.svid.token, "spiffe://example.org/db");
    ASSERT_TRUE(verified.ok()) << verified.status();
    EXPECT_EQ(verified->subject, svid.svid.subject);
  }
  EXPECT_EQ(jwt_source_.calls(), 2);
  EXPECT_THAT(jwt_source_.last_audience(), ElementsAre("spiffe://example.org/db", "extra"));
}

TEST_F(WorkloadJwtTest, FetchJwtSvidForOneRequestedIdentity) {
  StartEndpoint();
  PublishTwo();
  auto client = Client();
  auto one = client->FetchJwtSvids({"aud"}, Id("spiffe://example.org/second"));
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].svid.subject.str(), "spiffe://example.org/second");

  // An identity this caller is not entitled to.
  auto other = client->FetchJwtSvid({"aud"}, Id("spiffe://example.org/someone-else"));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(other.status()), HasSubstr("no identity issued"));
}

TEST_F(WorkloadJwtTest, FetchJwtSvidRequestChecks) {
  StartEndpoint();
  PublishTwo();
  auto stub = RawStub();
  {
    grpc::ClientContext context;
    AddHeader(context);
    ::JWTSVIDRequest request;
    ::JWTSVIDResponse response;
    grpc::Status status = stub->FetchJWTSVID(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(), "audience must be specified");
  }
  {
    grpc::ClientContext context;
    AddHeader(context);
    ::JWTSVIDRequest request;
    request.add_audience("aud");
    request.set_spiffe_id("foo");
    ::JWTSVIDResponse response;
    grpc::Status status = stub->FetchJWTSVID(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("invalid requested SPIFFE ID: "));
  }
  {
    grpc::ClientContext context;
    AddHeader(context);
    ::JWTSVIDRequest request;
    request.add_audience("aud");
    request.add_audience("");
    ::JWTSVIDResponse response;
    grpc::Status status = stub->FetchJWTSVID(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_EQ(jwt_source_.calls(), 0);
}

TEST_F(WorkloadJwtTest, FetchJwtSvidFromAnAsynchronousSource) {
  StartEndpoint();
  PublishTwo();
  jwt_source_.SetAsync(true);
  auto svids = Client()->FetchJwtSvids({"aud"});
  ASSERT_TRUE(svids.ok()) << svids.status();
  EXPECT_EQ(svids->size(), 2u);
}

TEST_F(WorkloadJwtTest, SourceFailureIsUnavailable) {
  StartEndpoint();
  PublishTwo();
  jwt_source_.SetError(absl::UnavailableError("server unreachable"));
  auto svid = Client()->FetchJwtSvid({"aud"});
  EXPECT_EQ(svid.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(svid.status()), HasSubstr("could not fetch JWT-SVID: server unreachable"));
}

TEST_F(WorkloadJwtTest, EntriesWithoutX509SvidStillGetJwtSvids) {
  StartEndpoint();
  Publish({{.id = "a",
            .spiffe_id = "spiffe://example.org/jwt-only",
            .selectors = {Uid()},
            .minted = false}});
  auto svid = Client()->FetchJwtSvid({"aud"});
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->svid.subject.str(), "spiffe://example.org/jwt-only");
}

TEST_F(WorkloadJwtTest, ValidateOwnTrustDomainToken) {
  StartEndpoint();
  PublishTwo();
  std::string token = pki_.Token("spiffe://example.org/peer", {"spiffe://example.org/me"},
                                 nlohmann::json{{"jti", "j-1"}, {"scope", {"read", "write"}}});
  auto validated = Client()->ValidateJwtSvid(token, "spiffe://example.org/me");
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->spiffe_id.str(), "spiffe://example.org/peer");
  const nlohmann::json& claims = validated->claims;
  EXPECT_EQ(claims["sub"], "spiffe://example.org/peer");
  // A single audience is written as a string in the token; it comes back as a list.
  EXPECT_EQ(claims["aud"], nlohmann::json::array({"spiffe://example.org/me"}));
  EXPECT_TRUE(claims["exp"].is_number());
  EXPECT_EQ(claims["jti"], "j-1");  // own trust domain: every claim
  EXPECT_EQ(claims["scope"], nlohmann::json::array({"read", "write"}));
}

TEST_F(WorkloadJwtTest, ValidateRejectsWrongAudienceAndUnknownTrustDomain) {
  StartEndpoint();
  PublishTwo();
  auto client = Client();
  std::string token = pki_.Token("spiffe://example.org/peer", {"spiffe://example.org/other"});
  auto wrong = client->ValidateJwtSvid(token, "spiffe://example.org/me");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(wrong.status()), HasSubstr("audience mismatch"));

  // Signed by a key of a trust domain the agent has no bundle for.
  auto stranger_key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256);
  auto stranger = spiffe::SignJwtSvid(
      spiffe::JwtSvidClaims{.subject = Id("spiffe://stranger.org/w"),
                            .audience = {"aud"},
                            .expiry = std::chrono::system_clock::now() + std::chrono::minutes(5)},
      *stranger_key, "k");
  ASSERT_TRUE(stranger.ok());
  auto unknown = client->ValidateJwtSvid(*stranger, "aud");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(unknown.status()), HasSubstr("stranger.org"));

  // The own trust domain's name with a key that is not in its bundle.
  auto forged = spiffe::SignJwtSvid(
      spiffe::JwtSvidClaims{.subject = Id("spiffe://example.org/admin"),
                            .audience = {"aud"},
                            .expiry = std::chrono::system_clock::now() + std::chrono::minutes(5)},
      *stranger_key, "own-key");
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(client->ValidateJwtSvid(*forged, "aud").status().code(),
            absl::StatusCode::kInvalidArgument);

  auto garbage = client->ValidateJwtSvid("not-a-token", "aud");
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument);

  auto expired = client->ValidateJwtSvid(
      pki_.Token("spiffe://example.org/peer", {"aud"}, nullptr, std::chrono::seconds(-600)), "aud");
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(expired.status()), HasSubstr("expired"));
}

TEST_F(WorkloadJwtTest, ValidateRequestChecks) {
  StartEndpoint();
  PublishTwo();
  auto stub = RawStub();
  {
    grpc::ClientContext context;
    AddHeader(context);
    ::ValidateJWTSVIDRequest request;
    request.set_svid("a.b.c");
    ::ValidateJWTSVIDResponse response;
    grpc::Status status = stub->ValidateJWTSVID(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(), "audience must be specified");
  }
  {
    grpc::ClientContext context;
    AddHeader(context);
    ::ValidateJWTSVIDRequest request;
    request.set_audience("aud");
    ::ValidateJWTSVIDResponse response;
    grpc::Status status = stub->ValidateJWTSVID(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(), "svid must be specified");
  }
}

TEST_F(WorkloadJwtTest, ForeignTokensNeedFederationAndLoseUnlistedClaims) {
  WorkloadEndpointOptions options = Options();
  options.allowed_foreign_jwt_claims = {"scope"};
  StartEndpoint(std::move(options));
  std::string token = pki_.Token("spiffe://other.org/svc", {"aud", "second"},
                                 nlohmann::json{{"jti", "j-2"}, {"scope", "read"}});

  // Not federated with other.org: its keys are not used for this caller.
  Publish({{.id = "a", .spiffe_id = "spiffe://example.org/me", .selectors = {Uid()}}});
  auto client = Client();
  auto refused = client->ValidateJwtSvid(token, "aud");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(refused.status()), HasSubstr("other.org"));

  PublishTwo();  // the first identity federates with other.org
  auto validated = client->ValidateJwtSvid(token, "aud");
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->spiffe_id.str(), "spiffe://other.org/svc");
  std::vector<std::string> names;
  for (const auto& [name, value] : validated->claims.items()) names.push_back(name);
  // iat and jti are dropped; scope is allowed by configuration.
  EXPECT_THAT(names, UnorderedElementsAre("sub", "aud", "exp", "scope"));
  EXPECT_EQ(validated->claims["aud"], nlohmann::json::array({"aud", "second"}));
}

TEST_F(WorkloadJwtTest, CallerWithoutIdentityCanStillValidate) {
  // As SPIRE: validation needs no identity of the caller's own (only federation does).
  StartEndpoint();
  Publish({{.id = "x", .spiffe_id = "spiffe://example.org/x", .selectors = {"unix:uid:4242"}}});
  auto validated =
      Client()->ValidateJwtSvid(pki_.Token("spiffe://example.org/peer", {"aud"}), "aud");
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->spiffe_id.str(), "spiffe://example.org/peer");
}

}  // namespace
}  // namespace tessera::agent::testing
