// SvidService's agent RPCs (BatchNewX509SVID, NewJWTSVID) over real gRPC with the service
// harness: an attested agent over mTLS, entries in the SQLite store and the index, the real CA.
// Issued X509-SVIDs are checked with our verifier and with the `openssl verify` CLI; JWT-SVIDs
// with our validator against the CA's JWT keys.
#include "server/api/svid_service.h"

#include <chrono>
#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/convert.h"
#include "server/api/service_test_util.h"
#include "spiffe/bundle.h"
#include "spiffe/csr.h"
#include "spiffe/jwt_svid.h"
#include "spiffe/x509_test_util.h"
#include "spiffe/x509_verify.h"

namespace tessera::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kAgent[] = "spiffe://example.org/spire/agent/x/1";
constexpr char kOtherAgent[] = "spiffe://example.org/spire/agent/x/2";

struct Item {
  std::string entry_id;
  std::string csr;
};

class SvidServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    service_ = std::make_unique<SvidService>(deps());
    StartServer({service_.get()});
    if (HasFatalFailure()) return;
    agent_ = AddAgent(kAgent);
    AddAgent(kOtherAgent);
    // The URI SAN an agent puts in its CSR is ignored: the entry decides the identity.
    csr_ = spiffe::CreateCsr(key_, Id("spiffe://example.org/ignored")).value();
  }

  // An entry created as EntryService does it: in the store, then in the index.
  std::string AddEntry(std::string_view spiffe_id, std::string_view parent_id,
                       std::vector<std::string> dns_names = {}, int32_t x509_ttl = 0,
                       int32_t jwt_ttl = 0, int64_t expires_at = 0) {
    Entry entry = MakeEntry(spiffe_id, parent_id, {"unix:uid:1000"});
    entry.dns_names = std::move(dns_names);
    entry.x509_svid_ttl = x509_ttl;
    entry.jwt_svid_ttl = jwt_ttl;
    entry.expires_at = expires_at;
    absl::StatusOr<Entry> created = store_->CreateEntry(entry);
    EXPECT_TRUE(created.ok()) << created.status();
    index_->Upsert(*created);
    return created->id;
  }

  grpc::Status Batch(const std::vector<Item>& items, svidv1::BatchNewX509SVIDResponse* out,
                     const std::shared_ptr<grpc::Channel>& channel = nullptr) {
    svidv1::BatchNewX509SVIDRequest request;
    for (const Item& item : items) {
      auto* params = request.add_params();
      params->set_entry_id(item.entry_id);
      params->set_csr(item.csr);
    }
    return BatchRequest(request, out, channel);
  }

  grpc::Status BatchRequest(const svidv1::BatchNewX509SVIDRequest& request,
                            svidv1::BatchNewX509SVIDResponse* out,
                            const std::shared_ptr<grpc::Channel>& channel = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return svidv1::SVID::NewStub(channel ? channel : AgentChannel())
        ->BatchNewX509SVID(&ctx, request, out);
  }

  grpc::Status NewJwt(std::string_view entry_id, std::vector<std::string> audience,
                      svidv1::NewJWTSVIDResponse* out,
                      const std::shared_ptr<grpc::Channel>& channel = nullptr) {
    svidv1::NewJWTSVIDRequest request;
    request.set_entry_id(std::string(entry_id));
    for (std::string& aud : audience) request.add_audience(std::move(aud));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return svidv1::SVID::NewStub(channel ? channel : AgentChannel())
        ->NewJWTSVID(&ctx, request, out);
  }

  std::shared_ptr<grpc::Channel> AgentChannel() {
    if (agent_channel_ == nullptr) agent_channel_ = TlsChannel(*agent_);
    return agent_channel_;
  }

  std::vector<spiffe::Certificate> Chain(const types::X509SVID& svid) {
    std::vector<spiffe::Certificate> chain;
    for (const std::string& der : svid.cert_chain()) {
      absl::StatusOr<spiffe::Certificate> cert = spiffe::Certificate::FromDer(der);
      EXPECT_TRUE(cert.ok()) << cert.status();
      if (cert.ok()) chain.push_back(*std::move(cert));
    }
    return chain;
  }

  spiffe::X509AuthoritiesSource Authorities() {
    return
        [this](const spiffe::TrustDomain& td) -> std::optional<std::vector<spiffe::Certificate>> {
          if (td != Td("example.org")) return std::nullopt;
          return ca_->bundle()->bundle.x509_authorities();
        };
  }

  int64_t NowUnix() {
    return std::chrono::system_clock::to_time_t(
        std::chrono::floor<std::chrono::seconds>(clock_.Now()));
  }

  std::unique_ptr<SvidService> service_;
  std::optional<spiffe::ClientIdentity> agent_;
  std::shared_ptr<grpc::Channel> agent_channel_;
  spiffe::PrivateKey key_ = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
  std::string csr_;
};

// The CSR with one bit of its signature flipped: still well-formed, no longer proof of
// possession.
std::string BreakSignature(std::string csr) {
  csr.back() = static_cast<char>(csr.back() ^ 0x01);
  return csr;
}

void ExpectStatus(const svidv1::BatchNewX509SVIDResponse::Result& result, grpc::StatusCode code,
                  std::string_view message_prefix) {
  EXPECT_EQ(result.status().code(), static_cast<int32_t>(code)) << result.status().message();
  EXPECT_THAT(result.status().message(), StartsWith(std::string(message_prefix)));
  EXPECT_FALSE(result.has_svid());
}

TEST_F(SvidServiceTest, IssuesAnSvidForTheEntryThatBothVerifiersAccept) {
  std::string entry_id =
      AddEntry("spiffe://example.org/web", kAgent, {"web.example.org", "api.example.org"}, 600);
  svidv1::BatchNewX509SVIDResponse out;
  grpc::Status s = Batch({{entry_id, csr_}}, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(out.results_size(), 1);
  const auto& result = out.results(0);
  EXPECT_EQ(result.status().code(), 0);
  EXPECT_EQ(result.status().message(), "OK");
  ASSERT_TRUE(result.has_svid());
  EXPECT_EQ(result.svid().id().trust_domain(), "example.org");
  EXPECT_EQ(result.svid().id().path(), "/web");

  std::vector<spiffe::Certificate> chain = Chain(result.svid());
  ASSERT_EQ(chain.size(), 1u);  // a self-signed CA: the leaf alone
  const spiffe::Certificate& leaf = chain[0];
  EXPECT_TRUE(leaf.public_key().Equals(key_.public_key()));
  EXPECT_THAT(leaf.UriSans(), ElementsAre("spiffe://example.org/web"));
  EXPECT_THAT(leaf.DnsSans(), ElementsAre("web.example.org", "api.example.org"));
  EXPECT_THAT(leaf.SubjectString(), HasSubstr("O=SPIRE"));
  EXPECT_THAT(leaf.SubjectString(), HasSubstr("CN=web.example.org"));
  EXPECT_FALSE(leaf.IsCa());
  EXPECT_EQ(result.svid().expires_at(), std::chrono::system_clock::to_time_t(leaf.NotAfter()));
  EXPECT_EQ(result.svid().expires_at(), NowUnix() + 600);

  ASSERT_OK_AND_ASSIGN(spiffe::VerifiedX509Svid verified,
                       spiffe::VerifyX509Svid(chain, Authorities(), clock_.Now()));
  EXPECT_EQ(verified.id.str(), "spiffe://example.org/web");

  spiffe::testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string bundle_pem;
  for (const auto& cert : ca_->bundle()->bundle.x509_authorities()) bundle_pem += cert.ToPem();
  std::string bundle = dir.Write("bundle.pem", bundle_pem);
  std::string svid = dir.Write("svid.pem", leaf.ToPem());
  spiffe::testing::CommandResult verify =
      spiffe::testing::RunCommand("openssl verify -CAfile " + bundle + " " + svid);
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_THAT(verify.output, HasSubstr(": OK"));
}

TEST_F(SvidServiceTest, TtlZeroIsTheDefaultAndAHugeTtlIsCutAtTheCasExpiry) {
  std::string default_ttl = AddEntry("spiffe://example.org/a", kAgent);
  std::string huge_ttl = AddEntry("spiffe://example.org/b", kAgent, {}, INT32_MAX);
  svidv1::BatchNewX509SVIDResponse out;
  grpc::Status s = Batch({{default_ttl, csr_}, {huge_ttl, csr_}}, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(out.results_size(), 2);
  EXPECT_EQ(out.results(0).svid().expires_at(), NowUnix() + 3600);
  std::optional<spiffe::Certificate> ca_cert = ca_->GetStatus().current_x509_ca;
  ASSERT_TRUE(ca_cert.has_value());
  int64_t ca_not_after = std::chrono::system_clock::to_time_t(ca_cert->NotAfter());
  EXPECT_EQ(out.results(1).svid().expires_at(), ca_not_after);
  EXPECT_LT(out.results(1).svid().expires_at(), NowUnix() + 25 * 3600);
}

TEST_F(SvidServiceTest, PerItemErrorsComeInRequestOrderBesideSuccesses) {
  std::string mine = AddEntry("spiffe://example.org/mine", kAgent);
  std::string theirs = AddEntry("spiffe://example.org/theirs", kOtherAgent);
  std::string pem = spiffe::CreateCsrPem(key_, Id("spiffe://example.org/ignored")).value();
  svidv1::BatchNewX509SVIDResponse out;
  grpc::Status s = Batch(
      {
          {mine, csr_},                      // 0 OK
          {"", csr_},                        // 1 missing entry ID
          {mine, ""},                        // 2 missing CSR
          {"", ""},                          // 3 the entry ID is checked first
          {theirs, csr_},                    // 4 another agent's entry
          {"no-such-entry", csr_},           // 5 unknown entry: the same answer
          {theirs, "garbage"},               // 6 authorization before the CSR
          {mine, "garbage"},                 // 7 malformed
          {mine, BreakSignature(csr_)},      // 8 bad signature
          {mine, pem},                       // 9 PEM is not the wire format
          {mine, csr_ + std::string(1, 0)},  // 10 trailing data
          {mine, csr_},                      // 11 OK again
      },
      &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(out.results_size(), 12);
  EXPECT_EQ(out.results(0).status().code(), 0);
  EXPECT_EQ(out.results(0).svid().id().path(), "/mine");
  ExpectStatus(out.results(1), grpc::StatusCode::INVALID_ARGUMENT, "missing entry ID");
  EXPECT_EQ(out.results(1).status().message(), "missing entry ID");
  ExpectStatus(out.results(2), grpc::StatusCode::INVALID_ARGUMENT, "missing CSR");
  EXPECT_EQ(out.results(2).status().message(), "missing CSR");
  ExpectStatus(out.results(3), grpc::StatusCode::INVALID_ARGUMENT, "missing entry ID");
  for (int i : {4, 5, 6}) {
    ExpectStatus(out.results(i), grpc::StatusCode::NOT_FOUND, "entry not found or not authorized");
    EXPECT_EQ(out.results(i).status().message(), "entry not found or not authorized");
  }
  ExpectStatus(out.results(7), grpc::StatusCode::INVALID_ARGUMENT, "malformed CSR: ");
  ExpectStatus(out.results(8), grpc::StatusCode::INVALID_ARGUMENT, "invalid CSR signature: ");
  ExpectStatus(out.results(9), grpc::StatusCode::INVALID_ARGUMENT, "malformed CSR: ");
  ExpectStatus(out.results(10), grpc::StatusCode::INVALID_ARGUMENT, "malformed CSR: ");
  EXPECT_EQ(out.results(11).status().code(), 0);
  EXPECT_EQ(out.results(11).status().message(), "OK");
  EXPECT_EQ(Chain(out.results(11).svid()).size(), 1u);
  // Issuing writes nothing and announces nothing.
  EXPECT_EQ(notifier_.entry_changes(), 0);
}

TEST_F(SvidServiceTest, DescendantsAndAliasChildrenAreAuthorizedButExpiredEntriesAreNot) {
  // kAgent -> /parent -> /child; an alias matching the agent's node selectors -> /via-alias.
  AddEntry("spiffe://example.org/parent", kAgent);
  std::string child = AddEntry("spiffe://example.org/child", "spiffe://example.org/parent");
  auto selectors = Selectors({"x:zone:a"});
  Entry alias = MakeEntry("spiffe://example.org/alias", kServerId, {"x:zone:a"});
  absl::StatusOr<Entry> stored = store_->CreateEntry(alias);
  ASSERT_TRUE(stored.ok()) << stored.status();
  index_->Upsert(*stored);
  std::string via_alias = AddEntry("spiffe://example.org/via-alias", "spiffe://example.org/alias");
  std::string expired = AddEntry("spiffe://example.org/expired", kAgent, {}, 0, 0, NowUnix() - 1);

  svidv1::BatchNewX509SVIDResponse out;
  ASSERT_TRUE(Batch({{child, csr_}, {via_alias, csr_}, {expired, csr_}}, &out).ok());
  ASSERT_EQ(out.results_size(), 3);
  EXPECT_EQ(out.results(0).svid().id().path(), "/child");
  ExpectStatus(out.results(1), grpc::StatusCode::NOT_FOUND, "entry not found or not authorized");
  ExpectStatus(out.results(2), grpc::StatusCode::NOT_FOUND, "entry not found or not authorized");

  auto zoned = TlsChannel(AddAgent("spiffe://example.org/spire/agent/x/4", selectors));
  svidv1::BatchNewX509SVIDResponse zoned_out;
  ASSERT_TRUE(Batch({{via_alias, csr_}, {child, csr_}}, &zoned_out, zoned).ok());
  ASSERT_EQ(zoned_out.results_size(), 2);
  EXPECT_EQ(zoned_out.results(0).status().code(), 0) << zoned_out.results(0).status().message();
  EXPECT_EQ(zoned_out.results(0).svid().id().path(), "/via-alias");
  ExpectStatus(zoned_out.results(1), grpc::StatusCode::NOT_FOUND, "entry not found");
}

TEST_F(SvidServiceTest, EmptyAndOversizedBatchesAreRefusedWhole) {
  svidv1::BatchNewX509SVIDResponse out;
  grpc::Status s = Batch({}, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "missing parameters");

  // Items that fail before any signing keep the limit test cheap.
  std::string mine = AddEntry("spiffe://example.org/mine", kAgent);
  svidv1::BatchNewX509SVIDRequest request;
  for (size_t i = 0; i < SvidService::kMaxBatchParams; ++i)
    request.add_params()->set_entry_id(mine);
  svidv1::BatchNewX509SVIDResponse full;
  s = BatchRequest(request, &full);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(full.results_size(), static_cast<int>(SvidService::kMaxBatchParams));
  EXPECT_EQ(full.results(999).status().message(), "missing CSR");

  request.add_params()->set_entry_id(mine);
  svidv1::BatchNewX509SVIDResponse over;
  s = BatchRequest(request, &over);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "too many parameters: 1001 exceeds the limit of 1000 per request");
  EXPECT_EQ(over.results_size(), 0);
}

TEST_F(SvidServiceTest, ABatchOfManyEntriesIsSignedInOrder) {
  std::vector<Item> items;
  for (int i = 0; i < 100; ++i) {
    items.push_back({AddEntry("spiffe://example.org/w/" + std::to_string(i), kAgent), csr_});
  }
  svidv1::BatchNewX509SVIDResponse out;
  ASSERT_TRUE(Batch(items, &out).ok());
  ASSERT_EQ(out.results_size(), 100);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(out.results(i).status().code(), 0) << i << out.results(i).status().message();
    EXPECT_EQ(out.results(i).svid().id().path(), "/w/" + std::to_string(i));
    EXPECT_THAT(Chain(out.results(i).svid())[0].UriSans(),
                ElementsAre("spiffe://example.org/w/" + std::to_string(i)));
  }
}

// A batch large enough to be minted on several threads: every item gets its own answer in its
// own slot, the SVIDs carry their own CSR's key, failures stay where they were asked.
TEST_F(SvidServiceTest, ALargeBatchKeepsEveryItemInItsPlace) {
  constexpr int kItems = 48;
  std::string theirs = AddEntry("spiffe://example.org/theirs", kOtherAgent);
  std::vector<Item> items;
  std::vector<spiffe::PublicKey> keys;
  for (int i = 0; i < kItems; ++i) {
    ASSERT_OK_AND_ASSIGN(spiffe::PrivateKey key,
                         spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256));
    ASSERT_OK_AND_ASSIGN(std::string csr,
                         spiffe::CreateCsr(key, Id("spiffe://example.org/ignored")));
    keys.push_back(key.public_key());
    std::string entry = AddEntry("spiffe://example.org/p/" + std::to_string(i), kAgent);
    if (i % 4 == 1) csr = BreakSignature(csr);
    if (i % 4 == 3) entry = theirs;
    items.push_back({entry, csr});
  }
  svidv1::BatchNewX509SVIDResponse out;
  grpc::Status s = Batch(items, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(out.results_size(), kItems);
  for (int i = 0; i < kItems; ++i) {
    SCOPED_TRACE(i);
    const auto& result = out.results(i);
    if (i % 4 == 1) {
      ExpectStatus(result, grpc::StatusCode::INVALID_ARGUMENT, "invalid CSR signature: ");
    } else if (i % 4 == 3) {
      ExpectStatus(result, grpc::StatusCode::NOT_FOUND, "entry not found or not authorized");
    } else {
      ASSERT_EQ(result.status().code(), 0) << result.status().message();
      EXPECT_EQ(result.svid().id().path(), "/p/" + std::to_string(i));
      std::vector<spiffe::Certificate> chain = Chain(result.svid());
      ASSERT_EQ(chain.size(), 1u);
      EXPECT_TRUE(chain[0].public_key().Equals(keys[static_cast<size_t>(i)]));
      EXPECT_THAT(chain[0].UriSans(), ElementsAre("spiffe://example.org/p/" + std::to_string(i)));
      ASSERT_OK_AND_ASSIGN(spiffe::VerifiedX509Svid verified,
                           spiffe::VerifyX509Svid(chain, Authorities(), clock_.Now()));
      EXPECT_EQ(verified.id.str(), "spiffe://example.org/p/" + std::to_string(i));
    }
  }
}

TEST_F(SvidServiceTest, OnlyAttestedAgentsOverMtlsMayCallTheAgentRpcs) {
  std::string mine = AddEntry("spiffe://example.org/mine", kAgent);
  std::vector<std::pair<std::string, std::shared_ptr<grpc::Channel>>> strangers = {
      {"anonymous TLS", TlsChannel()},
      {"admin socket", AdminChannel()},
      {"unattested agent ID", TlsChannel(IdentityFor("spiffe://example.org/spire/agent/x/9"))},
      {"workload SVID", TlsChannel(IdentityFor("spiffe://example.org/mine"))},
  };
  for (const auto& [who, channel] : strangers) {
    svidv1::BatchNewX509SVIDResponse out;
    grpc::Status s = Batch({{mine, csr_}}, &out, channel);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
    EXPECT_EQ(out.results_size(), 0) << who;
    svidv1::NewJWTSVIDResponse jwt;
    s = NewJwt(mine, {"aud"}, &jwt, channel);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
    EXPECT_TRUE(jwt.svid().token().empty()) << who;
  }
  svidv1::BatchNewX509SVIDResponse out;
  grpc::Status s = Batch({{mine, csr_}}, &out, TlsChannel());
  EXPECT_EQ(s.error_message(), "caller does not have an X509-SVID");
  s = Batch({{mine, csr_}}, &out, AdminChannel());
  EXPECT_EQ(s.error_message(),
            "authorization denied for method /spire.api.server.svid.v1.SVID/BatchNewX509SVID");
}

TEST_F(SvidServiceTest, NewJwtSvidIsSignedForTheEntryAndValidatesAgainstTheBundle) {
  std::string entry_id = AddEntry("spiffe://example.org/jwt", kAgent, {}, 0, 120);
  svidv1::NewJWTSVIDResponse out;
  grpc::Status s = NewJwt(entry_id, {"spiffe://example.org/db", "extra"}, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.svid().id().path(), "/jwt");
  EXPECT_EQ(out.svid().issued_at(), NowUnix());
  EXPECT_EQ(out.svid().expires_at(), NowUnix() + 120);

  spiffe::BundleSet bundles;
  bundles.Put(ca_->bundle()->bundle);
  ASSERT_OK_AND_ASSIGN(
      spiffe::JwtSvid jwt,
      spiffe::ParseAndValidateJwtSvid(out.svid().token(), bundles, {"extra"}, clock_.Now()));
  EXPECT_EQ(jwt.subject.str(), "spiffe://example.org/jwt");
  EXPECT_THAT(jwt.audience, ElementsAre("spiffe://example.org/db", "extra"));
  EXPECT_EQ(jwt.claims["exp"].get<int64_t>(), out.svid().expires_at());
  EXPECT_EQ(jwt.claims["iat"].get<int64_t>(), out.svid().issued_at());
  EXPECT_EQ(jwt.key_id, ca_->GetStatus().current_jwt_kid);

  // jwt_svid_ttl 0 is the CA's default of five minutes.
  std::string default_ttl = AddEntry("spiffe://example.org/jwt-default", kAgent);
  ASSERT_TRUE(NewJwt(default_ttl, {"a"}, &out).ok());
  EXPECT_EQ(out.svid().expires_at(), NowUnix() + 300);
}

TEST_F(SvidServiceTest, NewJwtSvidRefusesUnauthorizedEntriesAndMissingAudiences) {
  std::string mine = AddEntry("spiffe://example.org/mine", kAgent);
  std::string theirs = AddEntry("spiffe://example.org/theirs", kOtherAgent);
  struct Case {
    std::string entry_id;
    std::vector<std::string> audience;
    grpc::StatusCode code;
    std::string message;
  };
  std::vector<Case> cases = {
      {theirs, {"a"}, grpc::StatusCode::NOT_FOUND, "entry not found or not authorized"},
      {"", {"a"}, grpc::StatusCode::NOT_FOUND, "entry not found or not authorized"},
      {"unknown", {"a"}, grpc::StatusCode::NOT_FOUND, "entry not found or not authorized"},
      // Authorization comes before the audience check.
      {theirs, {}, grpc::StatusCode::NOT_FOUND, "entry not found or not authorized"},
      {mine, {}, grpc::StatusCode::INVALID_ARGUMENT, "at least one audience is required"},
      {mine,
       {"a", ""},
       grpc::StatusCode::INVALID_ARGUMENT,
       "audience must not contain empty values"},
  };
  for (const Case& c : cases) {
    svidv1::NewJWTSVIDResponse out;
    grpc::Status s = NewJwt(c.entry_id, c.audience, &out);
    EXPECT_EQ(s.error_code(), c.code) << c.entry_id << ": " << s.error_message();
    EXPECT_EQ(s.error_message(), c.message);
    EXPECT_FALSE(out.has_svid());
  }
}

}  // namespace
}  // namespace tessera::server::testing
