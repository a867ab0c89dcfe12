// CaManager lifecycle: start, rotation timeline, persistence across restarts, failures.
#include "server/ca/ca_manager.h"

#include <chrono>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/ca/ca_test_util.h"
#include "spiffe/x509_test_util.h"

namespace tessera::server::ca {
namespace {

using spiffe::Certificate;
using spiffe::testing::Id;
using spiffe::testing::TempDir;
using spiffe::testing::TestNow;
using std::chrono::hours;
using std::chrono::seconds;
using ::testing::ElementsAre;
using testing::FlakyJournalStore;
using testing::FlakyKeyManager;
using ::testing::HasSubstr;
using testing::LogCapture;
using testing::RecordingPublisher;
using ::testing::UnorderedElementsAre;

std::vector<std::string> Kids(const BundleContents& b) {
  std::vector<std::string> kids;
  for (const auto& [kid, key] : b.bundle.jwt_authorities()) kids.push_back(kid);
  return kids;
}

class CaManagerTest : public ::testing::Test {
 protected:
  std::unique_ptr<CaManager> NewManager(KeyManager* keys = nullptr) {
    return std::make_unique<CaManager>(config_,
                                       CaManagerDeps{.clock = &clock_,
                                                     .key_manager = keys != nullptr ? keys : &keys_,
                                                     .journal_store = &journal_,
                                                     .publisher = &publisher_,
                                                     .upstream = nullptr});
  }
  std::unique_ptr<CaManager> Started() {
    auto ca = NewManager();
    absl::Status s = ca->Initialize();
    EXPECT_TRUE(s.ok()) << s;
    return ca;
  }
  // The SKI of the CA that signed `svid`'s leaf.
  static std::string IssuerKeyId(const SignedX509Svid& svid) {
    return svid.chain.front().AuthorityKeyId();
  }
  SignedX509Svid Leaf(const CaManager& ca) {
    auto key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256);
    EXPECT_TRUE(key.ok());
    auto svid = ca.SignX509Svid(key->public_key(), Id("spiffe://example.org/w"), {}, seconds(0));
    EXPECT_TRUE(svid.ok()) << svid.status();
    return *svid;
  }
  void AdvanceTo(hours h) { clock_.Set(TestNow() + h); }
  void AdvanceTo(seconds s) { clock_.Set(TestNow() + s); }

  CaConfig config_ = testing::TestConfig();
  FakeClock clock_{TestNow()};
  FlakyKeyManager keys_;
  FlakyJournalStore journal_;
  RecordingPublisher publisher_;
};

TEST_F(CaManagerTest, FirstStart) {
  auto ca = NewManager();
  EXPECT_EQ(ca->bundle(), nullptr);
  EXPECT_EQ(ca->Tick().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(ca->Initialize().ok());
  CaStatus st = ca->GetStatus();
  ASSERT_TRUE(st.current_x509_ca.has_value());
  EXPECT_FALSE(st.next_x509_ca.has_value());
  EXPECT_EQ(st.current_jwt_kid.size(), 32u);
  EXPECT_TRUE(st.next_jwt_kid.empty());
  const Certificate& cert = *st.current_x509_ca;
  EXPECT_TRUE(cert.IsCa());
  EXPECT_THAT(cert.UriSans(), ElementsAre("spiffe://example.org"));
  EXPECT_EQ(cert.SubjectString(), "O=SPIFFE,C=US");
  EXPECT_EQ(cert.NotBefore(), TestNow() - seconds(10));
  EXPECT_EQ(cert.NotAfter(), TestNow() + hours(24));
  EXPECT_EQ(cert.public_key().type(), spiffe::KeyType::kEcP256);
  // The key lives in the key manager under the first A/B slot.
  ASSERT_OK_AND_ASSIGN(spiffe::PrivateKey key, keys_.inner.GetKey("x509-ca-a"));
  EXPECT_TRUE(key.public_key().Equals(cert.public_key()));
  ASSERT_TRUE(keys_.inner.GetKey("jwt-key-a").ok());

  ASSERT_EQ(publisher_.count(), 1u);
  BundleContents b = publisher_.last();
  EXPECT_EQ(b.bundle.sequence_number(), 1u);
  EXPECT_EQ(b.bundle.trust_domain().name(), "example.org");
  EXPECT_THAT(b.bundle.x509_authorities(), ElementsAre(cert));
  EXPECT_THAT(Kids(b), ElementsAre(st.current_jwt_kid));
  EXPECT_EQ(b.jwt_key_expiry.at(st.current_jwt_kid),
            std::chrono::system_clock::to_time_t(TestNow() + hours(24)));
  EXPECT_EQ(b.bundle, ca->bundle()->bundle);
  EXPECT_GE(journal_.saves.load(), 1);
}

TEST_F(CaManagerTest, KeyTypesAndTtlsFromConfig) {
  config_.key_type = spiffe::KeyType::kEcP384;
  config_.jwt_key_type = spiffe::KeyType::kRsa2048;
  config_.ca_ttl = hours(48);
  config_.jwt_key_ttl = hours(6);
  config_.ca_subject = {{"C", "DE"}, {"O", "Acme"}, {"CN", "Acme CA"}};
  auto ca = Started();
  CaStatus st = ca->GetStatus();
  EXPECT_EQ(st.current_x509_ca->public_key().type(), spiffe::KeyType::kEcP384);
  EXPECT_EQ(st.current_x509_ca->NotAfter(), TestNow() + hours(48));
  EXPECT_EQ(st.current_x509_ca->SubjectString(), "CN=Acme CA,O=Acme,C=DE");
  BundleContents b = *ca->bundle();
  EXPECT_EQ(b.bundle.FindJwtAuthority(st.current_jwt_kid)->type(), spiffe::KeyType::kRsa2048);
  EXPECT_EQ(b.jwt_key_expiry.at(st.current_jwt_kid),
            std::chrono::system_clock::to_time_t(TestNow() + hours(6)));
  // The JWT key rotates on its own schedule: next prepared at 3h, while the CA is untouched.
  AdvanceTo(hours(3));
  ASSERT_OK_AND_ASSIGN(bool changed, ca->Tick());
  EXPECT_TRUE(changed);
  EXPECT_FALSE(ca->GetStatus().next_x509_ca.has_value());
  EXPECT_FALSE(ca->GetStatus().next_jwt_kid.empty());
}

TEST_F(CaManagerTest, RotationTimeline) {
  auto ca = Started();
  const Certificate ca_a = *ca->GetStatus().current_x509_ca;
  const std::string kid_a = ca->GetStatus().current_jwt_kid;
  SignedX509Svid early = Leaf(*ca);
  EXPECT_EQ(IssuerKeyId(early), ca_a.SubjectKeyId());

  // Nothing happens before half-life.
  for (seconds t : {seconds(3600), seconds(12 * 3600 - 1)}) {
    AdvanceTo(t);
    ASSERT_OK_AND_ASSIGN(bool changed, ca->Tick());
    EXPECT_FALSE(changed) << t.count();
  }
  EXPECT_EQ(publisher_.count(), 1u);

  // Half-life: the next CA and JWT key are prepared and published at once, not used yet.
  AdvanceTo(hours(12));
  ASSERT_OK_AND_ASSIGN(bool prepared, ca->Tick());
  EXPECT_TRUE(prepared);
  CaStatus st = ca->GetStatus();
  ASSERT_TRUE(st.next_x509_ca.has_value());
  const Certificate ca_b = *st.next_x509_ca;
  const std::string kid_b = st.next_jwt_kid;
  EXPECT_EQ(*st.current_x509_ca, ca_a);
  EXPECT_EQ(ca_b.NotBefore(), TestNow() + hours(12) - seconds(10));
  EXPECT_EQ(ca_b.NotAfter(), TestNow() + hours(36));
  ASSERT_EQ(publisher_.count(), 2u);
  BundleContents b = publisher_.last();
  EXPECT_EQ(b.bundle.sequence_number(), 2u);
  EXPECT_THAT(b.bundle.x509_authorities(), ElementsAre(ca_a, ca_b));
  EXPECT_THAT(Kids(b), UnorderedElementsAre(kid_a, kid_b));
  EXPECT_EQ(IssuerKeyId(Leaf(*ca)), ca_a.SubjectKeyId());
  ASSERT_OK_AND_ASSIGN(spiffe::PrivateKey key_b, keys_.inner.GetKey("x509-ca-b"));
  EXPECT_TRUE(key_b.public_key().Equals(ca_b.public_key()));

  // Five sixths: B becomes current; the bundle does not change, so nothing is published.
  AdvanceTo(seconds(20 * 3600 - 1));
  ASSERT_OK_AND_ASSIGN(bool not_yet, ca->Tick());
  EXPECT_FALSE(not_yet);
  AdvanceTo(hours(20));
  ASSERT_OK_AND_ASSIGN(bool activated, ca->Tick());
  EXPECT_TRUE(activated);
  st = ca->GetStatus();
  EXPECT_EQ(*st.current_x509_ca, ca_b);
  EXPECT_FALSE(st.next_x509_ca.has_value());
  EXPECT_EQ(st.current_jwt_kid, kid_b);
  EXPECT_EQ(st.bundle_sequence, 2u);
  EXPECT_EQ(publisher_.count(), 2u);
  SignedX509Svid late = Leaf(*ca);
  EXPECT_EQ(IssuerKeyId(late), ca_b.SubjectKeyId());
  EXPECT_TRUE(testing::VerifyAgainst(late, ca->bundle()->bundle, clock_.Now()).ok());
  // What A signed is still trusted until it expires: A stays in the bundle.
  EXPECT_THAT(ca->bundle()->bundle.x509_authorities(), ElementsAre(ca_a, ca_b));

  // A expires at 24h: pruned, and in the same tick B (issued at 12h) is at half-life, so C is
  // prepared in A's key slot. One change, one sequence step.
  AdvanceTo(seconds(24 * 3600 - 1));
  ASSERT_OK_AND_ASSIGN(bool before_expiry, ca->Tick());
  EXPECT_FALSE(before_expiry);
  AdvanceTo(hours(24));
  ASSERT_OK_AND_ASSIGN(bool pruned, ca->Tick());
  EXPECT_TRUE(pruned);
  st = ca->GetStatus();
  ASSERT_TRUE(st.next_x509_ca.has_value());
  const Certificate ca_c = *st.next_x509_ca;
  ASSERT_EQ(publisher_.count(), 3u);
  b = publisher_.last();
  EXPECT_EQ(b.bundle.sequence_number(), 3u);
  EXPECT_THAT(b.bundle.x509_authorities(), ElementsAre(ca_b, ca_c));
  EXPECT_THAT(Kids(b), UnorderedElementsAre(kid_b, st.next_jwt_kid));
  EXPECT_EQ(b.jwt_key_expiry.count(kid_a), 0u);
  ASSERT_OK_AND_ASSIGN(spiffe::PrivateKey key_c, keys_.inner.GetKey("x509-ca-a"));
  EXPECT_TRUE(key_c.public_key().Equals(ca_c.public_key()));
  // An A-signed leaf no longer verifies against the bundle, even at a time it was valid.
  EXPECT_FALSE(testing::VerifyAgainst(early, b.bundle, TestNow() + hours(1)).ok());

  // And the cycle goes on: C active at 32h, B pruned at 36h.
  AdvanceTo(hours(32));
  ASSERT_TRUE(ca->Tick().ok());
  EXPECT_EQ(*ca->GetStatus().current_x509_ca, ca_c);
  AdvanceTo(hours(36));
  ASSERT_TRUE(ca->Tick().ok());
  b = publisher_.last();
  EXPECT_EQ(b.bundle.sequence_number(), 4u);
  EXPECT_EQ(b.bundle.x509_authorities().front(), ca_c);
  EXPECT_FALSE(b.bundle.HasX509Authority(ca_b));
}

TEST_F(CaManagerTest, LongCaActivatesAtMostSevenDaysEarly) {
  config_.ca_ttl = hours(24 * 90);
  auto ca = Started();
  AdvanceTo(hours(24 * 45));
  ASSERT_TRUE(ca->Tick().ok());
  ASSERT_TRUE(ca->GetStatus().next_x509_ca.has_value());
  // 5/6 of 90 days is day 75; the cap makes it day 83.
  AdvanceTo(hours(24 * 80));
  ASSERT_TRUE(ca->Tick().ok());
  EXPECT_TRUE(ca->GetStatus().next_x509_ca.has_value());
  AdvanceTo(hours(24 * 83));
  ASSERT_TRUE(ca->Tick().ok());
  EXPECT_FALSE(ca->GetStatus().next_x509_ca.has_value());
}

TEST_F(CaManagerTest, RestartKeepsCaAndBundle) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto disk, DiskKeyManager::Open(dir.path() + "/keys"));
  CaStatus before;
  BundleContents bundle_before{spiffe::Bundle(config_.trust_domain), {}};
  {
    auto ca = NewManager(disk.get());
    ASSERT_TRUE(ca->Initialize().ok());
    AdvanceTo(hours(13));
    ASSERT_TRUE(ca->Tick().ok());
    before = ca->GetStatus();
    bundle_before = *ca->bundle();
  }
  ASSERT_TRUE(before.next_x509_ca.has_value());
  ASSERT_OK_AND_ASSIGN(auto disk_again, DiskKeyManager::Open(dir.path() + "/keys"));
  RecordingPublisher publisher2;
  CaManager ca(config_, CaManagerDeps{.clock = &clock_,
                                      .key_manager = disk_again.get(),
                                      .journal_store = &journal_,
                                      .publisher = &publisher2});
  ASSERT_TRUE(ca.Initialize().ok());
  CaStatus after = ca.GetStatus();
  EXPECT_EQ(after.current_x509_ca, before.current_x509_ca);
  EXPECT_EQ(after.next_x509_ca, before.next_x509_ca);
  EXPECT_EQ(after.current_jwt_kid, before.current_jwt_kid);
  EXPECT_EQ(after.next_jwt_kid, before.next_jwt_kid);
  EXPECT_EQ(ca.bundle()->bundle, bundle_before.bundle);
  EXPECT_EQ(ca.bundle()->jwt_key_expiry, bundle_before.jwt_key_expiry);
  // Published once at start, same sequence number: nothing changed.
  ASSERT_EQ(publisher2.count(), 1u);
  EXPECT_EQ(publisher2.last().bundle.sequence_number(), 2u);
  // The restarted CA signs with the same key: leaves chain to the same CA.
  EXPECT_EQ(IssuerKeyId(Leaf(ca)), before.current_x509_ca->SubjectKeyId());
  ASSERT_OK_AND_ASSIGN(bool changed, ca.Tick());
  EXPECT_FALSE(changed);
}

TEST_F(CaManagerTest, RestartAfterLongDowntimeCatchesUp) {
  Certificate ca_a = [&] {
    auto ca = Started();
    AdvanceTo(hours(12));
    EXPECT_TRUE(ca->Tick().ok());
    return *ca->GetStatus().current_x509_ca;
  }();
  const Certificate ca_b = [&] {
    auto st = NewManager()->GetStatus();  // not initialized: empty
    EXPECT_FALSE(st.current_x509_ca.has_value());
    auto j = DecodeJournal(**journal_.Load());
    EXPECT_TRUE(j.ok());
    return j->next_x509->ca_cert;
  }();
  // Down from 12h to 30h: A expired, B (valid until 36h) is activated and C prepared.
  AdvanceTo(hours(30));
  auto ca = Started();
  CaStatus st = ca->GetStatus();
  EXPECT_EQ(*st.current_x509_ca, ca_b);
  ASSERT_TRUE(st.next_x509_ca.has_value());
  BundleContents b = *ca->bundle();
  EXPECT_FALSE(b.bundle.HasX509Authority(ca_a));
  EXPECT_THAT(b.bundle.x509_authorities(), ElementsAre(ca_b, *st.next_x509_ca));
  EXPECT_EQ(b.bundle.sequence_number(), 3u);
}

TEST_F(CaManagerTest, CorruptJournalStartsFreshWithAnError) {
  auto first = Started();
  Certificate old = *first->GetStatus().current_x509_ca;
  first.reset();
  ASSERT_TRUE(journal_.inner.Save("{\"version\": 1, \"trust_domain\": 42}").ok());
  LogCapture log;
  auto ca = Started();
  EXPECT_NE(*ca->GetStatus().current_x509_ca, old);
  EXPECT_THAT(log.str(), HasSubstr("[error]"));
  EXPECT_THAT(log.str(), HasSubstr("ca journal"));
  EXPECT_THAT(log.str(), HasSubstr("starting over with a new CA and bundle"));
  EXPECT_THAT(ca->bundle()->bundle.x509_authorities(),
              ElementsAre(*ca->GetStatus().current_x509_ca));
  EXPECT_EQ(ca->bundle()->bundle.sequence_number(), 1u);
  // The journal was rewritten with the new state.
  ASSERT_OK_AND_ASSIGN(Journal j, DecodeJournal(**journal_.Load()));
  EXPECT_EQ(j.current_x509->ca_cert, *ca->GetStatus().current_x509_ca);

  for (const std::string& garbage : {std::string("\xff\xfe binary"), std::string()}) {
    ASSERT_TRUE(journal_.inner.Save(garbage).ok());
    EXPECT_TRUE(NewManager()->Initialize().ok());
  }
}

TEST_F(CaManagerTest, MissingKeysReplaceTheCaButKeepPublishedAuthorities) {
  auto first = Started();
  Certificate old = *first->GetStatus().current_x509_ca;
  first.reset();
  MemoryKeyManager empty;
  LogCapture log;
  auto ca = NewManager(&empty);
  ASSERT_TRUE(ca->Initialize().ok());
  Certificate fresh = *ca->GetStatus().current_x509_ca;
  EXPECT_NE(fresh, old);
  EXPECT_THAT(log.str(), HasSubstr("cannot reuse the current X.509 CA"));
  EXPECT_THAT(log.str(), HasSubstr("x509-ca-a"));
  EXPECT_THAT(log.str(), HasSubstr("cannot reuse the current JWT key"));
  // SVIDs the old CA signed stay verifiable until it expires.
  BundleContents b = *ca->bundle();
  EXPECT_THAT(b.bundle.x509_authorities(), ElementsAre(old, fresh));
  EXPECT_EQ(b.bundle.jwt_authorities().size(), 2u);
  EXPECT_EQ(b.bundle.sequence_number(), 2u);
}

TEST_F(CaManagerTest, KeyNotMatchingJournalIsReplaced) {
  Started().reset();
  ASSERT_TRUE(keys_.inner.GenerateKey("x509-ca-a", spiffe::KeyType::kEcP256).ok());
  LogCapture log;
  auto ca = Started();
  EXPECT_THAT(log.str(), HasSubstr("does not match the CA certificate"));
  ASSERT_OK_AND_ASSIGN(spiffe::PrivateKey key, keys_.inner.GetKey("x509-ca-a"));
  EXPECT_TRUE(key.public_key().Equals(ca->GetStatus().current_x509_ca->public_key()));
}

TEST_F(CaManagerTest, JournalOfAnotherTrustDomainIsNotReused) {
  Started().reset();
  config_.trust_domain = spiffe::testing::Td("other.org");
  LogCapture log;
  auto ca = Started();
  EXPECT_THAT(log.str(), HasSubstr("belongs to trust domain \"example.org\""));
  EXPECT_THAT(ca->GetStatus().current_x509_ca->UriSans(), ElementsAre("spiffe://other.org"));
  EXPECT_EQ(ca->bundle()->bundle.x509_authorities().size(), 1u);
}

TEST_F(CaManagerTest, UnreadableJournalStoreFailsStart) {
  journal_.fail_load = true;
  absl::Status s = NewManager()->Initialize();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("ca: load journal"));
}

TEST_F(CaManagerTest, KeyManagerFailureFailsStart) {
  keys_.fail_generate = true;
  auto ca = NewManager();
  absl::Status s = ca->Initialize();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("ca: no usable authority"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("hsm unplugged"));
  EXPECT_EQ(ca->SignJwtSvid(Id("spiffe://example.org/w"), {"a"}, seconds(0)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Recovers once the key manager does.
  keys_.fail_generate = false;
  EXPECT_TRUE(ca->Initialize().ok());
}

TEST_F(CaManagerTest, FailedPreparationIsRetriedAndCurrentKeepsSigning) {
  auto ca = Started();
  keys_.fail_generate = true;
  AdvanceTo(hours(12));
  absl::StatusOr<bool> r = ca->Tick();
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("prepare next X.509 CA"));
  EXPECT_TRUE(Leaf(*ca).chain.size() == 1);
  keys_.fail_generate = false;
  AdvanceTo(hours(13));
  ASSERT_OK_AND_ASSIGN(bool changed, ca->Tick());
  EXPECT_TRUE(changed);
  EXPECT_TRUE(ca->GetStatus().next_x509_ca.has_value());
}

TEST_F(CaManagerTest, PublishAndJournalFailuresAreRetried) {
  auto ca = Started();
  publisher_.set_fail(true);
  journal_.fail_save = true;
  AdvanceTo(hours(12));
  absl::StatusOr<bool> r = ca->Tick();
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("ca: save journal"));
  // The in-process bundle is up to date even though publishing failed.
  EXPECT_EQ(ca->bundle()->bundle.x509_authorities().size(), 2u);
  EXPECT_EQ(publisher_.count(), 1u);

  // Until the bundle holding the next CA is out, the next CA is not activated.
  journal_.fail_save = false;
  AdvanceTo(hours(20));
  EXPECT_FALSE(ca->Tick().ok());
  EXPECT_TRUE(ca->GetStatus().next_x509_ca.has_value());
  ASSERT_OK_AND_ASSIGN(Journal j, DecodeJournal(**journal_.Load()));
  EXPECT_TRUE(j.next_x509.has_value());

  publisher_.set_fail(false);
  AdvanceTo(hours(21));
  ASSERT_TRUE(ca->Tick().ok());
  EXPECT_EQ(publisher_.count(), 2u);
  EXPECT_EQ(publisher_.last().bundle.sequence_number(), 2u);
  ASSERT_TRUE(ca->Tick().ok());
  EXPECT_FALSE(ca->GetStatus().next_x509_ca.has_value());
}

TEST_F(CaManagerTest, ExpiredCaWithoutReplacementRefusesToSign) {
  auto ca = Started();
  keys_.fail_generate = true;
  AdvanceTo(hours(25));
  auto key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256);
  auto svid = ca->SignX509Svid(key->public_key(), Id("spiffe://example.org/w"), {}, seconds(0));
  EXPECT_EQ(svid.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(svid.status().message()), HasSubstr("X.509 CA expired"));
  auto jwt = ca->SignJwtSvid(Id("spiffe://example.org/w"), {"a"}, seconds(0));
  EXPECT_EQ(jwt.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(ca->Tick().ok());
  EXPECT_EQ(ca->SignJwtSvid(Id("spiffe://example.org/w"), {"a"}, seconds(0)).status().code(),
            absl::StatusCode::kUnavailable);
  keys_.fail_generate = false;
  ASSERT_TRUE(ca->Tick().ok());
  EXPECT_TRUE(
      ca->SignX509Svid(key->public_key(), Id("spiffe://example.org/w"), {}, seconds(0)).ok());
}

TEST(CaConfigTest, Validate) {
  CaConfig ok = testing::TestConfig();
  EXPECT_TRUE(ValidateCaConfig(ok).ok());
  struct Case {
    std::function<void(CaConfig&)> mutate;
    std::string error;
  };
  const Case cases[] = {
      {[](CaConfig& c) { c.ca_ttl = seconds(0); }, "ca_ttl must be positive, got 0s"},
      {[](CaConfig& c) { c.ca_ttl = seconds(-5); }, "ca_ttl must be positive"},
      {[](CaConfig& c) { c.ca_ttl = hours(24 * 365 * 11); }, "ca_ttl is longer than 10 years"},
      {[](CaConfig& c) { c.default_x509_svid_ttl = seconds(0); }, "default_x509_svid_ttl"},
      {[](CaConfig& c) { c.default_jwt_svid_ttl = seconds(-1); }, "default_jwt_svid_ttl"},
      {[](CaConfig& c) { c.jwt_key_ttl = seconds(-1); }, "jwt_key_ttl"},
      {[](CaConfig& c) { c.agent_ttl = seconds(-1); }, "agent_ttl"},
      {[](CaConfig& c) {
         c.upstream = DiskUpstreamConfig{"", "k", ""};
       },
       "cert_file_path"},
      {[](CaConfig& c) {
         c.upstream = DiskUpstreamConfig{"c", "", ""};
       },
       "key_file_path"},
  };
  for (const Case& c : cases) {
    CaConfig bad = ok;
    c.mutate(bad);
    absl::Status s = ValidateCaConfig(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.error;
    EXPECT_THAT(std::string(s.message()), HasSubstr("ca config: "));
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.error));
  }
  CaConfig zero_defaults = ok;
  zero_defaults.jwt_key_ttl = seconds(0);
  zero_defaults.agent_ttl = seconds(0);
  EXPECT_TRUE(ValidateCaConfig(zero_defaults).ok());
  EXPECT_EQ(zero_defaults.EffectiveJwtKeyTtl(), hours(24));
  EXPECT_EQ(zero_defaults.EffectiveAgentTtl(), hours(1));
}

}  // namespace
}  // namespace tessera::server::ca
