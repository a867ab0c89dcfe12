// CaManager signing: X509-SVIDs (workload, agent, server) and JWT-SVIDs, self-signed and under
// an upstream authority, checked with our verifier and the openssl CLI; signing under rotation.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/ca/ca_manager.h"
#include "server/ca/ca_test_util.h"
#include "spiffe/bundle.h"
#include "spiffe/jwt_svid.h"
#include "spiffe/x509_test_util.h"

namespace tessera::server::ca {
namespace {

using spiffe::Certificate;
using spiffe::testing::Ca;
using spiffe::testing::Id;
using spiffe::testing::RunCommand;
using spiffe::testing::Td;
using spiffe::testing::TempDir;
using spiffe::testing::TestNow;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::RecordingPublisher;
using testing::VerifyAgainst;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

class SigningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256);
    ASSERT_TRUE(key.ok());
    workload_key_.emplace(*std::move(key));
  }
  void Start(UpstreamAuthority* upstream = nullptr) {
    ca_ = std::make_unique<CaManager>(config_, CaManagerDeps{.clock = &clock_,
                                                             .key_manager = &keys_,
                                                             .journal_store = &journal_,
                                                             .publisher = &publisher_,
                                                             .upstream = upstream});
    absl::Status s = ca_->Initialize();
    ASSERT_TRUE(s.ok()) << s;
  }
  spiffe::PublicKey pub() const { return workload_key_->public_key(); }
  const spiffe::Bundle& bundle() const { return ca_->bundle()->bundle; }

  // `openssl verify` of `svid` against the published bundle at the clock's time.
  spiffe::testing::CommandResult OpensslVerify(const SignedX509Svid& svid) {
    std::string ca_file = dir_.Write("bundle.pem", spiffe::X509AuthoritiesToPem(bundle()));
    std::string leaf = dir_.Write("leaf.pem", svid.chain[0].ToPem());
    std::string cmd = "openssl verify -x509_strict -attime " +
                      spiffe::testing::EpochSeconds(clock_.Now()) + " -CAfile " + ca_file;
    if (svid.chain.size() > 1) {
      std::vector<Certificate> rest(svid.chain.begin() + 1, svid.chain.end());
      cmd += " -untrusted " + dir_.Write("untrusted.pem", spiffe::ChainToPem(rest));
    }
    return RunCommand(cmd + " " + leaf);
  }

  CaConfig config_ = testing::TestConfig();
  FakeClock clock_{TestNow()};
  MemoryKeyManager keys_;
  MemoryJournalStore journal_;
  RecordingPublisher publisher_;
  TempDir dir_;
  std::unique_ptr<CaManager> ca_;
  std::optional<spiffe::PrivateKey> workload_key_;
};

TEST_F(SigningTest, NotInitialized) {
  CaManager ca(config_,
               CaManagerDeps{.clock = &clock_, .key_manager = &keys_, .journal_store = &journal_});
  auto x = ca.SignX509Svid(pub(), Id("spiffe://example.org/w"), {}, seconds(0));
  EXPECT_EQ(x.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Message(x.status()), "ca: not initialized");
}

TEST_F(SigningTest, WorkloadSvidSelfSigned) {
  Start();
  clock_.Advance(minutes(5));
  ASSERT_OK_AND_ASSIGN(SignedX509Svid svid,
                       ca_->SignX509Svid(pub(), Id("spiffe://example.org/web"),
                                         {"web.example.org", "web"}, seconds(0)));
  ASSERT_EQ(svid.chain.size(), 1u);  // the CA is a root in the bundle
  const Certificate& leaf = svid.chain[0];
  EXPECT_THAT(leaf.UriSans(), ElementsAre("spiffe://example.org/web"));
  EXPECT_THAT(leaf.DnsSans(), ElementsAre("web.example.org", "web"));
  EXPECT_EQ(leaf.SubjectString(), "CN=web.example.org,O=SPIRE,C=US");
  EXPECT_FALSE(leaf.IsCa());
  EXPECT_TRUE(leaf.public_key().Equals(pub()));
  EXPECT_EQ(svid.issued_at, clock_.Now());
  EXPECT_EQ(leaf.NotBefore(), clock_.Now() - seconds(10));
  EXPECT_EQ(leaf.NotAfter(), clock_.Now() + hours(1));
  EXPECT_EQ(svid.expires_at, leaf.NotAfter());

  ASSERT_OK_AND_ASSIGN(
      auto verified, spiffe::VerifyX509Svid(svid.chain, testing::SourceOf(bundle()), clock_.Now()));
  EXPECT_EQ(verified.id.str(), "spiffe://example.org/web");
  EXPECT_EQ(verified.chain.back(), *ca_->GetStatus().current_x509_ca);
  auto r = OpensslVerify(svid);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(": OK"));
  // And the check is real: an hour and a minute later the leaf has expired.
  clock_.Advance(hours(1) + minutes(1));
  EXPECT_NE(OpensslVerify(svid).exit_code, 0);
  EXPECT_FALSE(VerifyAgainst(svid, bundle(), clock_.Now()).ok());
}

TEST_F(SigningTest, TtlsAndCaps) {
  config_.default_x509_svid_ttl = minutes(30);
  Start();
  const TimePoint ca_expiry = ca_->GetStatus().current_x509_ca->NotAfter();
  auto sign = [&](seconds ttl) {
    return ca_->SignX509Svid(pub(), Id("spiffe://example.org/w"), {}, ttl);
  };
  ASSERT_OK_AND_ASSIGN(SignedX509Svid def, sign(seconds(0)));
  EXPECT_EQ(def.expires_at, TestNow() + minutes(30));
  ASSERT_OK_AND_ASSIGN(SignedX509Svid explicit_ttl, sign(seconds(90)));
  EXPECT_EQ(explicit_ttl.expires_at, TestNow() + seconds(90));
  // Longer than the CA has left: cut at the CA's expiry, never beyond.
  ASSERT_OK_AND_ASSIGN(SignedX509Svid capped, sign(hours(48)));
  EXPECT_EQ(capped.expires_at, ca_expiry);
  ASSERT_OK_AND_ASSIGN(SignedX509Svid absurd, sign(seconds::max()));
  EXPECT_EQ(absurd.expires_at, ca_expiry);
  clock_.Advance(hours(19));  // still the first CA, 5 h left
  ASSERT_OK_AND_ASSIGN(SignedX509Svid late, sign(hours(6)));
  EXPECT_EQ(late.expires_at, ca_expiry);

  auto negative = sign(seconds(-1));
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(negative.status()), HasSubstr("negative ttl"));
}

TEST_F(SigningTest, RejectsIdsOutsideTheTrustDomain) {
  Start();
  auto other = ca_->SignX509Svid(pub(), Id("spiffe://evil.org/w"), {}, seconds(0));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(other.status()),
            "ca: \"spiffe://evil.org/w\" is not in trust domain \"example.org\"");
  EXPECT_FALSE(ca_->SignAgentSvid(pub(), Id("spiffe://evil.org/spire/agent/x"), seconds(0)).ok());
  EXPECT_FALSE(ca_->SignJwtSvid(Id("spiffe://evil.org/w"), {"a"}, seconds(0)).ok());
  // The trust domain's own ID names the CA, never a workload.
  auto root = ca_->SignX509Svid(pub(), Id("spiffe://example.org"), {}, seconds(0));
  EXPECT_EQ(root.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SigningTest, CustomSubject) {
  Start();
  ASSERT_OK_AND_ASSIGN(SignedX509Svid svid,
                       ca_->SignX509Svid(pub(), Id("spiffe://example.org/w"), {}, seconds(0),
                                         spiffe::DistinguishedName{{"O", "Acme"}, {"CN", "w"}}));
  EXPECT_EQ(svid.chain[0].SubjectString(), "CN=w,O=Acme");
}

TEST_F(SigningTest, AgentSvid) {
  config_.agent_ttl = hours(2);
  Start();
  spiffe::SpiffeId agent = Id("spiffe://example.org/spire/agent/join_token/abc");
  ASSERT_OK_AND_ASSIGN(SignedX509Svid svid, ca_->SignAgentSvid(pub(), agent, seconds(0)));
  ASSERT_EQ(svid.chain.size(), 1u);
  EXPECT_THAT(svid.chain[0].UriSans(), ElementsAre(agent.str()));
  EXPECT_THAT(svid.chain[0].DnsSans(), IsEmpty());
  EXPECT_EQ(svid.chain[0].SubjectString(), "O=SPIRE,C=US");
  EXPECT_EQ(svid.expires_at, TestNow() + hours(2));
  EXPECT_TRUE(VerifyAgainst(svid, bundle(), TestNow()).ok());
  ASSERT_OK_AND_ASSIGN(SignedX509Svid short_svid, ca_->SignAgentSvid(pub(), agent, seconds(60)));
  EXPECT_EQ(short_svid.expires_at, TestNow() + seconds(60));
}

TEST_F(SigningTest, ServerSvidAndRenewal) {
  Start();
  ASSERT_OK_AND_ASSIGN(ServerSvid server, ca_->IssueServerSvid());
  const SignedX509Svid& svid = server.svid;
  EXPECT_THAT(svid.chain[0].UriSans(), ElementsAre("spiffe://example.org/spire/server"));
  EXPECT_TRUE(svid.chain[0].public_key().Equals(server.key.public_key()));
  EXPECT_EQ(server.key.type(), spiffe::KeyType::kEcP256);
  EXPECT_EQ(svid.expires_at, TestNow() + hours(1));
  ASSERT_OK_AND_ASSIGN(auto verified,
                       spiffe::VerifyX509Svid(svid.chain, testing::SourceOf(bundle()), TestNow()));
  EXPECT_EQ(verified.id.str(), "spiffe://example.org/spire/server");
  EXPECT_FALSE(ShouldRenew(svid, TestNow()));
  EXPECT_FALSE(ShouldRenew(svid, TestNow() + minutes(29) + seconds(59)));
  EXPECT_TRUE(ShouldRenew(svid, TestNow() + minutes(30)));
  ASSERT_OK_AND_ASSIGN(SignedX509Svid again, ca_->SignServerSvid(server.key.public_key()));
  EXPECT_NE(again.chain[0].SerialHex(), svid.chain[0].SerialHex());
  ASSERT_OK_AND_ASSIGN(ServerSvid rsa, ca_->IssueServerSvid(spiffe::KeyType::kRsa2048));
  EXPECT_EQ(rsa.key.type(), spiffe::KeyType::kRsa2048);
}

TEST_F(SigningTest, JwtSvid) {
  Start();
  clock_.Advance(seconds(7));
  spiffe::BundleSet set;
  set.Put(bundle());
  ASSERT_OK_AND_ASSIGN(SignedJwtSvid jwt,
                       ca_->SignJwtSvid(Id("spiffe://example.org/w"), {"db", "cache"}, seconds(0)));
  EXPECT_EQ(jwt.issued_at, clock_.Now());
  EXPECT_EQ(jwt.expires_at, clock_.Now() + minutes(5));
  ASSERT_OK_AND_ASSIGN(spiffe::JwtSvid parsed,
                       spiffe::ParseAndValidateJwtSvid(jwt.token, set, {"cache"}, clock_.Now()));
  EXPECT_EQ(parsed.subject.str(), "spiffe://example.org/w");
  EXPECT_THAT(parsed.audience, ElementsAre("db", "cache"));
  EXPECT_EQ(parsed.key_id, ca_->GetStatus().current_jwt_kid);
  EXPECT_EQ(parsed.algorithm, spiffe::JwtAlgorithm::kEs256);
  EXPECT_EQ(parsed.claims["iat"], std::chrono::system_clock::to_time_t(clock_.Now()));
  EXPECT_EQ(parsed.claims["exp"], std::chrono::system_clock::to_time_t(jwt.expires_at));
  EXPECT_FALSE(parsed.claims.contains("iss"));
  // Expired five minutes on (plus the validator's leeway), and audience-bound.
  EXPECT_FALSE(
      spiffe::ParseAndValidateJwtSvid(jwt.token, set, {"cache"}, clock_.Now() + minutes(6)).ok());
  EXPECT_FALSE(spiffe::ParseAndValidateJwtSvid(jwt.token, set, {"other"}, clock_.Now()).ok());
}

TEST_F(SigningTest, JwtSvidClaimsAndCaps) {
  config_.jwt_issuer = "https://oidc.example.org";
  config_.default_jwt_svid_ttl = minutes(1);
  config_.jwt_key_ttl = hours(2);
  Start();
  spiffe::BundleSet set;
  set.Put(bundle());
  auto validate = [&](const SignedJwtSvid& jwt) {
    return spiffe::ParseAndValidateJwtSvid(jwt.token, set, {"a"}, jwt.issued_at);
  };
  ASSERT_OK_AND_ASSIGN(SignedJwtSvid plain,
                       ca_->SignJwtSvid(Id("spiffe://example.org/w"), {"a"}, seconds(0)));
  EXPECT_EQ(plain.expires_at, TestNow() + minutes(1));
  ASSERT_OK_AND_ASSIGN(spiffe::JwtSvid p, validate(plain));
  EXPECT_EQ(p.claims["iss"], "https://oidc.example.org");

  ASSERT_OK_AND_ASSIGN(
      SignedJwtSvid extra,
      ca_->SignJwtSvid(Id("spiffe://example.org/w"), {"a"}, seconds(30),
                       nlohmann::json{{"jti", "abc"}, {"iss", "https://other.example"}}));
  ASSERT_OK_AND_ASSIGN(spiffe::JwtSvid e, validate(extra));
  EXPECT_EQ(e.claims["jti"], "abc");
  EXPECT_EQ(e.claims["iss"], "https://other.example");
  EXPECT_EQ(extra.expires_at, TestNow() + seconds(30));

  // Cut at the JWT key's expiry.
  ASSERT_OK_AND_ASSIGN(SignedJwtSvid capped,
                       ca_->SignJwtSvid(Id("spiffe://example.org/w"), {"a"}, hours(5)));
  EXPECT_EQ(capped.expires_at, TestNow() + hours(2));
  EXPECT_EQ(capped.expires_at,
            std::chrono::system_clock::from_time_t(
                ca_->bundle()->jwt_key_expiry.at(ca_->GetStatus().current_jwt_kid)));

  auto no_aud = ca_->SignJwtSvid(Id("spiffe://example.org/w"), {}, seconds(0));
  EXPECT_EQ(Message(no_aud.status()), "ca: at least one audience is required");
  EXPECT_EQ(ca_->SignJwtSvid(Id("spiffe://example.org/w"), {"a"}, seconds(-3)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ca_->SignJwtSvid(Id("spiffe://example.org/w"), {"a"}, seconds(0),
                                nlohmann::json{{"sub", "spiffe://example.org/x"}})
                   .ok());
  EXPECT_FALSE(
      ca_->SignJwtSvid(Id("spiffe://example.org/w"), {"a"}, seconds(0), nlohmann::json(5)).ok());
}

TEST_F(SigningTest, RsaCa) {
  config_.key_type = spiffe::KeyType::kRsa2048;
  Start();
  ASSERT_OK_AND_ASSIGN(SignedX509Svid svid,
                       ca_->SignX509Svid(pub(), Id("spiffe://example.org/w"), {}, seconds(0)));
  EXPECT_EQ(OpensslVerify(svid).exit_code, 0);
  ASSERT_OK_AND_ASSIGN(SignedJwtSvid jwt,
                       ca_->SignJwtSvid(Id("spiffe://example.org/w"), {"a"}, seconds(0)));
  spiffe::BundleSet set;
  set.Put(bundle());
  ASSERT_OK_AND_ASSIGN(auto parsed,
                       spiffe::ParseAndValidateJwtSvid(jwt.token, set, {"a"}, TestNow()));
  EXPECT_EQ(parsed.algorithm, spiffe::JwtAlgorithm::kRs256);
}

// ---- upstream authority ----

class UpstreamSigningTest : public SigningTest {
 protected:
  void SetUp() override {
    SigningTest::SetUp();
    auto root = spiffe::testing::MakeRootCa(Td("corp.example"), TestNow() - hours(1),
                                            spiffe::KeyType::kEcP384, "corp root");
    ASSERT_TRUE(root.ok());
    root_.emplace(*std::move(root));
  }
  std::optional<Ca> root_;
};

TEST_F(UpstreamSigningTest, RootUpstream) {
  DiskUpstreamAuthority upstream({.cert_file_path = dir_.Write("up.crt", root_->cert.ToPem()),
                                  .key_file_path = dir_.Write("up.key", *root_->key.ToPkcs8Pem()),
                                  .bundle_file_path = ""});
  Start(&upstream);
  const Certificate ours = *ca_->GetStatus().current_x509_ca;
  EXPECT_EQ(ours.AuthorityKeyId(), root_->cert.SubjectKeyId());
  // The bundle publishes the upstream root, not our intermediate.
  EXPECT_THAT(bundle().x509_authorities(), ElementsAre(root_->cert));
  ASSERT_OK_AND_ASSIGN(SignedX509Svid svid,
                       ca_->SignX509Svid(pub(), Id("spiffe://example.org/w"), {}, seconds(0)));
  EXPECT_THAT(svid.chain, ElementsAre(::testing::_, ours));
  EXPECT_TRUE(VerifyAgainst(svid, bundle(), TestNow()).ok());
  auto r = OpensslVerify(svid);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // Without our intermediate the leaf does not verify: the chain really is needed.
  SignedX509Svid leaf_only = svid;
  leaf_only.chain.erase(leaf_only.chain.begin() + 1, leaf_only.chain.end());
  EXPECT_FALSE(VerifyAgainst(leaf_only, bundle(), TestNow()).ok());
  EXPECT_NE(OpensslVerify(leaf_only).exit_code, 0);

  // Rotation under an upstream: the root stays the only X.509 authority; new leaves chain
  // through the new intermediate.
  clock_.Set(TestNow() + hours(12));
  ASSERT_TRUE(ca_->Tick().ok());
  EXPECT_THAT(bundle().x509_authorities(), ElementsAre(root_->cert));
  EXPECT_EQ(bundle().sequence_number(), 2u);  // the new JWT key changed the bundle
  clock_.Set(TestNow() + hours(20));
  ASSERT_TRUE(ca_->Tick().ok());
  const Certificate next = *ca_->GetStatus().current_x509_ca;
  EXPECT_NE(next, ours);
  ASSERT_OK_AND_ASSIGN(SignedX509Svid later,
                       ca_->SignX509Svid(pub(), Id("spiffe://example.org/w"), {}, seconds(0)));
  EXPECT_EQ(later.chain[1], next);
  EXPECT_EQ(OpensslVerify(later).exit_code, 0);
}

TEST_F(UpstreamSigningTest, IntermediateUpstreamChainAndCap) {
  ASSERT_OK_AND_ASSIGN(Ca up_int, spiffe::testing::MakeIntermediateCa(*root_, Td("corp.example"),
                                                                      TestNow(), "corp issuing"));
  DiskUpstreamAuthority upstream(
      {.cert_file_path = dir_.Write("up.crt", up_int.cert.ToPem() + root_->cert.ToPem()),
       .key_file_path = dir_.Write("up.key", *up_int.key.ToPkcs8Pem()),
       .bundle_file_path = ""});
  config_.ca_ttl = hours(48);  // longer than the upstream's 12 h: cut to it
  Start(&upstream);
  const Certificate ours = *ca_->GetStatus().current_x509_ca;
  EXPECT_EQ(ours.NotAfter(), up_int.cert.NotAfter());
  EXPECT_THAT(bundle().x509_authorities(), ElementsAre(root_->cert));
  ASSERT_OK_AND_ASSIGN(
      SignedX509Svid svid,
      ca_->SignAgentSvid(pub(), Id("spiffe://example.org/spire/agent/x/1"), hours(100)));
  EXPECT_THAT(svid.chain, ElementsAre(::testing::_, ours, up_int.cert));
  EXPECT_EQ(svid.expires_at, up_int.cert.NotAfter());
  EXPECT_TRUE(VerifyAgainst(svid, bundle(), TestNow()).ok());
  auto r = OpensslVerify(svid);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // Rotation is timed on the shortened life: next prepared at 6 h.
  clock_.Set(TestNow() + hours(6));
  ASSERT_TRUE(ca_->Tick().ok());
  EXPECT_TRUE(ca_->GetStatus().next_x509_ca.has_value());
}

TEST_F(UpstreamSigningTest, BrokenUpstreamFailsStart) {
  DiskUpstreamAuthority upstream({.cert_file_path = dir_.Write("up.crt", root_->cert.ToPem()),
                                  .key_file_path = dir_.path() + "/missing.key",
                                  .bundle_file_path = ""});
  CaManager ca(config_, CaManagerDeps{.clock = &clock_,
                                      .key_manager = &keys_,
                                      .journal_store = &journal_,
                                      .upstream = &upstream});
  absl::Status s = ca.Initialize();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(Message(s), HasSubstr("upstream authority"));
  EXPECT_THAT(Message(s), HasSubstr("no usable authority"));
}

// ---- concurrency ----

TEST_F(SigningTest, SigningWhileRotating) {
  Start();
  constexpr int kThreads = 4;
  constexpr int kMaxPerThread = 150;
  std::atomic<bool> stop = false;
  std::vector<std::vector<SignedX509Svid>> x509(kThreads);
  std::vector<std::vector<SignedJwtSvid>> jwts(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kMaxPerThread && !stop.load(); ++i) {
        auto svid = ca_->SignX509Svid(pub(), Id("spiffe://example.org/w"), {}, seconds(0));
        auto jwt = ca_->SignJwtSvid(Id("spiffe://example.org/w"), {"aud"}, seconds(0));
        if (!svid.ok() || !jwt.ok()) {
          errors[t] = std::string(svid.ok() ? jwt.status().message() : svid.status().message());
          return;
        }
        x509[t].push_back(*std::move(svid));
        jwts[t].push_back(*std::move(jwt));
        if (ca_->bundle() == nullptr) errors[t] = "bundle vanished";
      }
    });
  }
  // Three CA lifetimes in 30-minute steps: every prepare, activate and prune happens while the
  // threads sign.
  for (int step = 0; step < 3 * 48; ++step) {
    clock_.Advance(minutes(30));
    absl::StatusOr<bool> r = ca_->Tick();
    ASSERT_TRUE(r.ok()) << r.status();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  stop = true;
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[t], "") << t;

  // Every SVID chains to an authority that had been published by the time it was signed.
  std::vector<BundleContents> published = publisher_.published();
  ASSERT_GE(published.size(), 6u);
  std::set<std::string> issuers;
  size_t count = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (const SignedX509Svid& svid : x509[t]) {
      ++count;
      issuers.insert(svid.chain[0].AuthorityKeyId());
      bool ok = std::any_of(published.begin(), published.end(), [&](const BundleContents& b) {
        return VerifyAgainst(svid, b.bundle, svid.issued_at).ok();
      });
      EXPECT_TRUE(ok) << "X509-SVID issued at " << svid.issued_at.time_since_epoch().count();
    }
    for (const SignedJwtSvid& jwt : jwts[t]) {
      bool ok = std::any_of(published.begin(), published.end(), [&](const BundleContents& b) {
        spiffe::BundleSet set;
        set.Put(b.bundle);
        return spiffe::ParseAndValidateJwtSvid(jwt.token, set, {"aud"}, jwt.issued_at).ok();
      });
      EXPECT_TRUE(ok);
    }
  }
  EXPECT_GT(count, 0u);
  std::cout << count << " SVIDs from " << issuers.size() << " CAs\n";
}

}  // namespace
}  // namespace tessera::server::ca
