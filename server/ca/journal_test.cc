#include "server/ca/journal.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "spiffe/base64.h"
#include "spiffe/x509_test_util.h"

namespace tessera::server::ca {
namespace {

using spiffe::testing::Ca;
using spiffe::testing::Td;
using spiffe::testing::TestNow;
using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto root = spiffe::testing::MakeRootCa(Td("example.org"), TestNow());
    ASSERT_TRUE(root.ok());
    root_.emplace(*std::move(root));
    auto inter = spiffe::testing::MakeIntermediateCa(*root_, Td("example.org"), TestNow());
    ASSERT_TRUE(inter.ok());
    inter_.emplace(*std::move(inter));
    auto jwt = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP384);
    ASSERT_TRUE(jwt.ok());
    jwt_.emplace(*std::move(jwt));
  }

  Journal Full() const {
    Journal j;
    j.trust_domain = "example.org";
    j.bundle_sequence = 7;
    j.current_x509 = X509CaRecord{"x509-ca-a", root_->cert, {}, TestNow()};
    j.next_x509 = X509CaRecord{
        "x509-ca-b", inter_->cert, {inter_->cert, root_->cert}, TestNow() + std::chrono::hours(12)};
    j.current_jwt = JwtKeyRecord{"jwt-key-a", "kid-1", jwt_->public_key(), TestNow(),
                                 TestNow() + std::chrono::hours(24)};
    j.x509_authorities = {{root_->cert, TestNow() + std::chrono::hours(24)}};
    j.jwt_keys = {{"kid-1", jwt_->public_key(), TestNow() + std::chrono::hours(24)}};
    return j;
  }

  std::optional<Ca> root_;
  std::optional<Ca> inter_;
  std::optional<spiffe::PrivateKey> jwt_;
};

TEST_F(JournalTest, RoundTrip) {
  Journal in = Full();
  ASSERT_OK_AND_ASSIGN(std::string bytes, EncodeJournal(in));
  ASSERT_OK_AND_ASSIGN(Journal out, DecodeJournal(bytes));
  EXPECT_EQ(out.trust_domain, "example.org");
  EXPECT_EQ(out.bundle_sequence, 7u);
  ASSERT_TRUE(out.current_x509.has_value());
  EXPECT_EQ(out.current_x509->key_id, "x509-ca-a");
  EXPECT_EQ(out.current_x509->ca_cert, root_->cert);
  EXPECT_TRUE(out.current_x509->chain_tail.empty());
  EXPECT_EQ(out.current_x509->issued_at, TestNow());
  ASSERT_TRUE(out.next_x509.has_value());
  EXPECT_EQ(out.next_x509->chain_tail,
            (std::vector<spiffe::Certificate>{inter_->cert, root_->cert}));
  EXPECT_EQ(out.next_x509->issued_at, TestNow() + std::chrono::hours(12));
  ASSERT_TRUE(out.current_jwt.has_value());
  EXPECT_EQ(out.current_jwt->kid, "kid-1");
  EXPECT_TRUE(out.current_jwt->public_key.Equals(jwt_->public_key()));
  EXPECT_EQ(out.current_jwt->not_after, TestNow() + std::chrono::hours(24));
  EXPECT_FALSE(out.next_jwt.has_value());
  ASSERT_EQ(out.x509_authorities.size(), 1u);
  EXPECT_EQ(out.x509_authorities[0].cert, root_->cert);
  ASSERT_EQ(out.jwt_keys.size(), 1u);
  EXPECT_EQ(out.jwt_keys[0].kid, "kid-1");
  EXPECT_EQ(out.jwt_keys[0].expires_at, TestNow() + std::chrono::hours(24));
  // Encoding is deterministic: a decoded journal encodes to the same bytes.
  ASSERT_OK_AND_ASSIGN(std::string again, EncodeJournal(out));
  EXPECT_EQ(again, bytes);
}

TEST_F(JournalTest, NoPrivateKeyMaterial) {
  ASSERT_OK_AND_ASSIGN(std::string bytes, EncodeJournal(Full()));
  EXPECT_THAT(bytes, ::testing::Not(HasSubstr("PRIVATE")));
  ASSERT_OK_AND_ASSIGN(std::string der, jwt_->ToPkcs8Der());
  EXPECT_THAT(bytes, ::testing::Not(HasSubstr(spiffe::Base64Encode(der).substr(60, 40))));
}

TEST_F(JournalTest, EmptyJournal) {
  Journal in;
  in.trust_domain = "td";
  ASSERT_OK_AND_ASSIGN(std::string bytes, EncodeJournal(in));
  ASSERT_OK_AND_ASSIGN(Journal out, DecodeJournal(bytes));
  EXPECT_FALSE(out.current_x509 || out.next_x509 || out.current_jwt || out.next_jwt);
  EXPECT_TRUE(out.x509_authorities.empty());
}

TEST_F(JournalTest, Corruptions) {
  ASSERT_OK_AND_ASSIGN(std::string good, EncodeJournal(Full()));
  nlohmann::json doc = nlohmann::json::parse(good);
  struct Case {
    std::function<void(nlohmann::json&)> mutate;
    std::string error;
  };
  const Case cases[] = {
      {[](auto& d) { d["version"] = 2; }, "unknown version 2"},
      {[](auto& d) { d.erase("version"); }, "missing \"version\""},
      {[](auto& d) { d["trust_domain"] = 5; }, "\"trust_domain\" is not a string"},
      {[](auto& d) { d["bundle_sequence"] = -1; }, "\"bundle_sequence\" is out of range"},
      {[](auto& d) { d["bundle_sequence"] = 1.5; }, "\"bundle_sequence\" is not an integer"},
      {[](auto& d) { d["x509_cas"] = nlohmann::json::array(); }, "x509_cas: not an object"},
      {[](auto& d) { d["x509_cas"]["current"]["ca_cert"] = "!!"; }, "x509_cas.current"},
      {[](auto& d) { d["x509_cas"]["current"]["ca_cert"] = "AAAA"; }, "\"ca_cert\""},
      {[](auto& d) { d["x509_cas"]["next"]["chain_tail"] = {1}; }, "non-string"},
      {[](auto& d) { d["x509_cas"]["current"].erase("key_id"); }, "missing \"key_id\""},
      {[](auto& d) { d["x509_cas"]["current"]["issued_at"] = 1e300; }, "not an integer"},
      {[](auto& d) { d["x509_cas"]["current"]["issued_at"] = 999999999999999; }, "out of range"},
      {[](auto& d) { d["jwt_keys"]["current"]["kid"] = ""; }, "empty \"kid\""},
      {[](auto& d) { d["jwt_keys"]["current"]["public_key"] = "AAAA"; }, "\"public_key\""},
      {[](auto& d) { d.erase("published_x509_authorities"); }, "published_x509_authorities"},
      {[](auto& d) { d["published_jwt_keys"] = {"x"}; }, "published_jwt_keys: holds a non-object"},
      {[](auto& d) { d["published_jwt_keys"][0].erase("expires_at"); }, "missing \"expires_at\""},
  };
  for (const Case& c : cases) {
    nlohmann::json bad = doc;
    c.mutate(bad);
    auto r = DecodeJournal(bad.dump());
    ASSERT_FALSE(r.ok()) << c.error;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.error;
    EXPECT_THAT(Message(r.status()), HasSubstr("ca journal")) << c.error;
    EXPECT_THAT(Message(r.status()), HasSubstr(c.error));
  }
}

TEST_F(JournalTest, NotJson) {
  for (std::string_view bytes :
       {"", "{", "null", "[]", "\x01\x02", "{\"version\":1,\"version\":1}"}) {
    auto r = DecodeJournal(bytes);
    EXPECT_FALSE(r.ok()) << bytes;
    EXPECT_THAT(Message(r.status()), HasSubstr("ca journal")) << bytes;
  }
  EXPECT_FALSE(DecodeJournal(std::string(kMaxJournalBytes + 1, ' ')).ok());
}

TEST(MemoryJournalStoreTest, LoadSave) {
  MemoryJournalStore store;
  ASSERT_OK_AND_ASSIGN(auto empty, store.Load());
  EXPECT_FALSE(empty.has_value());
  ASSERT_TRUE(store.Save("abc").ok());
  ASSERT_OK_AND_ASSIGN(auto got, store.Load());
  EXPECT_EQ(got, "abc");
}

}  // namespace
}  // namespace tessera::server::ca
