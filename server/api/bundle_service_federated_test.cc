// BundleService's federated-bundle batch RPCs over real gRPC (the harness's admin socket): per-item
// results in order, output and input masks, what is (and is not) written, the notifications, and
// the effect of deleting a bundle on the entries that federate with it, in the store and in the
// entry index. ListFederatedBundles is tested in bundle_service_test.cc.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/api/bundle_service.h"
#include "server/api/service_test_util.h"
#include "spiffe/x509_test_util.h"

namespace tessera::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::StartsWith;
namespace types = ::spire::api::types;
using DeleteRequest = bundlev1::BatchDeleteFederatedBundleRequest;

constexpr char kAgentId[] = "spiffe://example.org/spire/agent/x/1";
constexpr char kInvalidTdChars[] =
    "trust domain argument is not valid: invalid SPIFFE ID: trust domain characters are limited "
    "to lowercase letters, numbers, dots, dashes, and underscores";
constexpr char kMissingTd[] =
    "trust domain argument is not valid: invalid SPIFFE ID: trust domain is missing";

std::string NewCaDer(std::string_view td) {
  auto ca = spiffe::testing::MakeRootCa(Td(td), spiffe::testing::TestNow());
  EXPECT_TRUE(ca.ok()) << ca.status();
  return ca.ok() ? ca->cert.ToDer() : std::string();
}

std::string NewJwtKeyDer() {
  return spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256)
      .value()
      .public_key()
      .ToDer()
      .value();
}

types::Bundle Fed(std::string_view td, std::string_view der, int64_t hint = 0, uint64_t seq = 0) {
  types::Bundle b;
  b.set_trust_domain(std::string(td));
  if (!der.empty()) b.add_x509_authorities()->set_asn1(std::string(der));
  b.set_refresh_hint(hint);
  b.set_sequence_number(seq);
  return b;
}

void ExpectStatus(const types::Status& status, grpc::StatusCode code, std::string_view message) {
  EXPECT_EQ(status.code(), static_cast<int32_t>(code)) << status.message();
  EXPECT_EQ(status.message(), message);
}

std::vector<std::string> Ders(const types::Bundle& bundle) {
  std::vector<std::string> out;
  for (const auto& cert : bundle.x509_authorities()) out.push_back(cert.asn1());
  return out;
}

class FederatedBundleTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    service_ = std::make_unique<BundleService>(deps());
    StartServer({service_.get()});
    if (HasFatalFailure()) return;
    admin_ = bundlev1::Bundle::NewStub(AdminChannel());
  }

  // The batch RPCs, expected to succeed as a whole (their items may fail).
  bundlev1::BatchCreateFederatedBundleResponse Create(
      const bundlev1::BatchCreateFederatedBundleRequest& req) {
    bundlev1::BatchCreateFederatedBundleResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = admin_->BatchCreateFederatedBundle(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  bundlev1::BatchUpdateFederatedBundleResponse Update(
      const bundlev1::BatchUpdateFederatedBundleRequest& req) {
    bundlev1::BatchUpdateFederatedBundleResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = admin_->BatchUpdateFederatedBundle(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  bundlev1::BatchSetFederatedBundleResponse Set(
      const bundlev1::BatchSetFederatedBundleRequest& req) {
    bundlev1::BatchSetFederatedBundleResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = admin_->BatchSetFederatedBundle(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  bundlev1::BatchDeleteFederatedBundleResponse Delete(std::vector<std::string> tds,
                                                      DeleteRequest::Mode mode) {
    DeleteRequest req;
    for (auto& td : tds) req.add_trust_domains(std::move(td));
    req.set_mode(mode);
    bundlev1::BatchDeleteFederatedBundleResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = admin_->BatchDeleteFederatedBundle(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  std::optional<Bundle> Stored(std::string_view td) {
    absl::StatusOr<std::optional<Bundle>> b = store_->FetchBundle(Td(td));
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? *b : std::nullopt;
  }
  // The own bundle is still the harness's: the CA's certificate, sequence 1.
  void ExpectOwnBundleUntouched() {
    std::optional<Bundle> own = Stored("example.org");
    ASSERT_TRUE(own.has_value());
    EXPECT_THAT(Ders(*own), ElementsAre(ca_->bundle()->bundle.x509_authorities()[0].ToDer()));
    EXPECT_EQ(own->sequence_number(), 1);
  }
  void StoreFederated(std::string_view td) {
    ASSERT_TRUE(store_->SetBundle(Fed(td, NewCaDer(td), 60)).ok());
  }

  std::unique_ptr<BundleService> service_;
  std::unique_ptr<bundlev1::Bundle::Stub> admin_;
};

// --- BatchCreateFederatedBundle ---

TEST_F(FederatedBundleTest, CreateReportsEachItemInOrderAndWritesOnlyValidOnes) {
  std::string der_a = NewCaDer("a.org");
  std::string jwt_der = NewJwtKeyDer();
  bundlev1::BatchCreateFederatedBundleRequest req;
  *req.add_bundle() = Fed("a.org", der_a, 60, 3);
  *req.add_bundle() = Fed("example.org", NewCaDer("example.org"));
  *req.add_bundle() = Fed("spiffe://example.org", NewCaDer("example.org"));
  *req.add_bundle() = Fed("Not Valid!", NewCaDer("a.org"));
  *req.add_bundle() = Fed("a.org", NewCaDer("a.org"), 99);  // already exists
  *req.add_bundle() = Fed("b.org", "not der");
  types::Bundle no_kid = Fed("c.org", "");
  no_kid.add_jwt_authorities()->set_public_key(jwt_der);
  *req.add_bundle() = no_kid;
  types::Bundle with_jwt = Fed("spiffe://d.org", "");
  types::JWTKey* key = with_jwt.add_jwt_authorities();
  key->set_public_key(jwt_der);
  key->set_key_id("k1");
  key->set_expires_at(1234);
  *req.add_bundle() = with_jwt;

  bundlev1::BatchCreateFederatedBundleResponse resp = Create(req);
  ASSERT_EQ(resp.results_size(), 8);
  ExpectStatus(resp.results(0).status(), grpc::StatusCode::OK, "OK");
  const types::Bundle& a = resp.results(0).bundle();
  EXPECT_EQ(a.trust_domain(), "a.org");
  EXPECT_THAT(Ders(a), ElementsAre(der_a));
  EXPECT_EQ(a.refresh_hint(), 60);
  EXPECT_EQ(a.sequence_number(), 3);
  ExpectStatus(resp.results(1).status(), grpc::StatusCode::INVALID_ARGUMENT,
               "creating a federated bundle for the server's own trust domain is not allowed");
  ExpectStatus(resp.results(2).status(), grpc::StatusCode::INVALID_ARGUMENT,
               "creating a federated bundle for the server's own trust domain is not allowed");
  ExpectStatus(resp.results(3).status(), grpc::StatusCode::INVALID_ARGUMENT, kInvalidTdChars);
  ExpectStatus(resp.results(4).status(), grpc::StatusCode::ALREADY_EXISTS, "bundle already exists");
  EXPECT_EQ(resp.results(5).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(5).status().message(),
              StartsWith("failed to convert bundle: unable to parse X.509 authority: "));
  ExpectStatus(resp.results(6).status(), grpc::StatusCode::INVALID_ARGUMENT,
               "failed to convert bundle: unable to parse JWT authority: missing key ID");
  ExpectStatus(resp.results(7).status(), grpc::StatusCode::OK, "OK");
  const types::Bundle& d = resp.results(7).bundle();
  EXPECT_EQ(d.trust_domain(), "d.org");
  ASSERT_EQ(d.jwt_authorities_size(), 1);
  EXPECT_EQ(d.jwt_authorities(0).key_id(), "k1");
  EXPECT_EQ(d.jwt_authorities(0).public_key(), jwt_der);
  EXPECT_EQ(d.jwt_authorities(0).expires_at(), 1234);
  for (int i = 1; i <= 6; ++i) EXPECT_FALSE(resp.results(i).has_bundle()) << i;

  // Stored: a.org as first created (not the duplicate), d.org by name; nothing else.
  std::optional<Bundle> stored_a = Stored("a.org");
  ASSERT_TRUE(stored_a.has_value());
  EXPECT_THAT(Ders(*stored_a), ElementsAre(der_a));
  EXPECT_EQ(stored_a->refresh_hint(), 60);
  std::optional<Bundle> stored_d = Stored("d.org");
  ASSERT_TRUE(stored_d.has_value());
  EXPECT_EQ(stored_d->trust_domain(), "d.org");
  EXPECT_FALSE(Stored("b.org").has_value());
  EXPECT_FALSE(Stored("c.org").has_value());
  EXPECT_EQ(store_->CountBundles().value(), 3);
  ExpectOwnBundleUntouched();
  EXPECT_EQ(notifier_.bundle_changes(), 1);
  EXPECT_EQ(notifier_.entry_changes(), 0);
}

TEST_F(FederatedBundleTest, CreateAppliesOutputMask) {
  bundlev1::BatchCreateFederatedBundleRequest req;
  *req.add_bundle() = Fed("a.org", NewCaDer("a.org"), 60, 3);
  req.mutable_output_mask()->set_refresh_hint(true);
  bundlev1::BatchCreateFederatedBundleResponse resp = Create(req);
  ASSERT_EQ(resp.results_size(), 1);
  ExpectStatus(resp.results(0).status(), grpc::StatusCode::OK, "OK");
  EXPECT_EQ(resp.results(0).bundle().trust_domain(), "a.org");
  EXPECT_EQ(resp.results(0).bundle().refresh_hint(), 60);
  EXPECT_EQ(resp.results(0).bundle().x509_authorities_size(), 0);
  EXPECT_EQ(resp.results(0).bundle().sequence_number(), 0);
  // The mask shapes the answer only.
  EXPECT_EQ(Stored("a.org")->x509_authorities_size(), 1);
  EXPECT_EQ(Stored("a.org")->sequence_number(), 3);
}

TEST_F(FederatedBundleTest, CreateStoresConcatenatedCertificatesApartAndRefusesKeyConflicts) {
  std::string der1 = NewCaDer("a.org");
  std::string der2 = NewCaDer("a.org");
  types::Bundle concatenated = Fed("a.org", der1 + der2);
  concatenated.mutable_x509_authorities(0)->set_tainted(true);
  types::Bundle conflict = Fed("b.org", NewCaDer("b.org"));
  for (int i = 0; i < 2; ++i) {
    types::JWTKey* key = conflict.add_jwt_authorities();
    key->set_key_id("same");
    key->set_public_key(NewJwtKeyDer());
  }
  bundlev1::BatchCreateFederatedBundleRequest req;
  *req.add_bundle() = concatenated;
  *req.add_bundle() = conflict;
  bundlev1::BatchCreateFederatedBundleResponse resp = Create(req);
  ASSERT_EQ(resp.results_size(), 2);
  ExpectStatus(resp.results(0).status(), grpc::StatusCode::OK, "OK");
  EXPECT_THAT(Ders(resp.results(0).bundle()), ElementsAre(der1, der2));
  std::optional<Bundle> stored = Stored("a.org");
  ASSERT_TRUE(stored.has_value());
  EXPECT_THAT(Ders(*stored), ElementsAre(der1, der2));
  EXPECT_TRUE(stored->x509_authorities(0).tainted());
  EXPECT_TRUE(stored->x509_authorities(1).tainted());
  EXPECT_EQ(resp.results(1).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(1).status().message(), StartsWith("failed to convert bundle: "));
  EXPECT_FALSE(Stored("b.org").has_value());
}

TEST_F(FederatedBundleTest, BatchesThatChangeNothingAnnounceNothing) {
  bundlev1::BatchCreateFederatedBundleRequest create;
  *create.add_bundle() = Fed("example.org", NewCaDer("example.org"));
  *create.add_bundle() = Fed("", NewCaDer("a.org"));
  bundlev1::BatchCreateFederatedBundleResponse created = Create(create);
  ASSERT_EQ(created.results_size(), 2);
  ExpectStatus(created.results(1).status(), grpc::StatusCode::INVALID_ARGUMENT, kMissingTd);

  EXPECT_EQ(Create({}).results_size(), 0);
  EXPECT_EQ(Update({}).results_size(), 0);
  EXPECT_EQ(Set({}).results_size(), 0);
  EXPECT_EQ(Delete({}, DeleteRequest::DELETE).results_size(), 0);
  EXPECT_EQ(notifier_.bundle_changes(), 0);
  EXPECT_EQ(notifier_.entry_changes(), 0);
  EXPECT_EQ(store_->CountBundles().value(), 1);
}

// --- BatchUpdateFederatedBundle ---

TEST_F(FederatedBundleTest, UpdateHonoursInputAndOutputMasks) {
  std::string der_a = NewCaDer("a.org");
  types::Bundle original = Fed("a.org", der_a, 60, 5);
  types::JWTKey* key = original.add_jwt_authorities();
  key->set_key_id("k1");
  key->set_public_key(NewJwtKeyDer());
  ASSERT_TRUE(store_->SetBundle(original).ok());

  // No input mask: every field is replaced (the JWT key goes).
  std::string der_b = NewCaDer("a.org");
  bundlev1::BatchUpdateFederatedBundleRequest all;
  *all.add_bundle() = Fed("spiffe://a.org", der_b, 120, 6);
  bundlev1::BatchUpdateFederatedBundleResponse resp = Update(all);
  ASSERT_EQ(resp.results_size(), 1);
  ExpectStatus(resp.results(0).status(), grpc::StatusCode::OK, "OK");
  EXPECT_EQ(resp.results(0).bundle().trust_domain(), "a.org");
  EXPECT_THAT(Ders(resp.results(0).bundle()), ElementsAre(der_b));
  EXPECT_EQ(resp.results(0).bundle().refresh_hint(), 120);
  EXPECT_EQ(resp.results(0).bundle().sequence_number(), 6);
  EXPECT_EQ(resp.results(0).bundle().jwt_authorities_size(), 0);
  std::optional<Bundle> stored = Stored("a.org");
  ASSERT_TRUE(stored.has_value());
  EXPECT_THAT(Ders(*stored), ElementsAre(der_b));
  EXPECT_EQ(stored->jwt_authorities_size(), 0);
  EXPECT_EQ(stored->refresh_hint(), 120);

  // Input mask: only the refresh hint is taken; the output mask hides the sequence number.
  bundlev1::BatchUpdateFederatedBundleRequest masked;
  *masked.add_bundle() = Fed("a.org", NewCaDer("a.org"), 300, 9);
  masked.mutable_input_mask()->set_refresh_hint(true);
  masked.mutable_output_mask()->set_refresh_hint(true);
  masked.mutable_output_mask()->set_x509_authorities(true);
  resp = Update(masked);
  ASSERT_EQ(resp.results_size(), 1);
  ExpectStatus(resp.results(0).status(), grpc::StatusCode::OK, "OK");
  EXPECT_EQ(resp.results(0).bundle().refresh_hint(), 300);
  EXPECT_THAT(Ders(resp.results(0).bundle()), ElementsAre(der_b));
  EXPECT_EQ(resp.results(0).bundle().sequence_number(), 0);
  stored = Stored("a.org");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->refresh_hint(), 300);
  EXPECT_THAT(Ders(*stored), ElementsAre(der_b));
  EXPECT_EQ(stored->sequence_number(), 6);
  EXPECT_EQ(notifier_.bundle_changes(), 2);
}

TEST_F(FederatedBundleTest, UpdateFailuresWriteNothing) {
  std::string der_a = NewCaDer("a.org");
  ASSERT_TRUE(store_->SetBundle(Fed("a.org", der_a, 60, 5)).ok());
  bundlev1::BatchUpdateFederatedBundleRequest req;
  *req.add_bundle() = Fed("missing.org", NewCaDer("missing.org"));
  *req.add_bundle() = Fed("example.org", NewCaDer("example.org"));
  *req.add_bundle() = Fed("a.org", "not der", 999);  // the whole bundle is validated
  *req.add_bundle() = Fed("", NewCaDer("a.org"));
  req.mutable_input_mask()->set_refresh_hint(true);
  bundlev1::BatchUpdateFederatedBundleResponse resp = Update(req);
  ASSERT_EQ(resp.results_size(), 4);
  ExpectStatus(resp.results(0).status(), grpc::StatusCode::NOT_FOUND, "bundle not found");
  ExpectStatus(resp.results(1).status(), grpc::StatusCode::INVALID_ARGUMENT,
               "updating a federated bundle for the server's own trust domain is not allowed");
  EXPECT_EQ(resp.results(2).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(2).status().message(),
              StartsWith("failed to convert bundle: unable to parse X.509 authority: "));
  ExpectStatus(resp.results(3).status(), grpc::StatusCode::INVALID_ARGUMENT, kMissingTd);
  for (const auto& result : resp.results()) EXPECT_FALSE(result.has_bundle());

  std::optional<Bundle> stored = Stored("a.org");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->refresh_hint(), 60);
  EXPECT_THAT(Ders(*stored), ElementsAre(der_a));
  EXPECT_FALSE(Stored("missing.org").has_value());
  ExpectOwnBundleUntouched();
  EXPECT_EQ(notifier_.bundle_changes(), 0);
}

// --- BatchSetFederatedBundle ---

TEST_F(FederatedBundleTest, SetCreatesOrReplacesAndRefusesOwnAndInvalid) {
  ASSERT_TRUE(store_->SetBundle(Fed("a.org", NewCaDer("a.org"), 60, 5)).ok());
  std::string der_b = NewCaDer("a.org");
  std::string der_c = NewCaDer("b.org");
  bundlev1::BatchSetFederatedBundleRequest req;
  *req.add_bundle() = Fed("a.org", der_b, 10);
  *req.add_bundle() = Fed("spiffe://b.org", der_c, 0, 2);
  *req.add_bundle() = Fed("example.org", NewCaDer("example.org"));
  *req.add_bundle() = Fed("c.org", "not der");
  *req.add_bundle() = Fed("Not Valid!", NewCaDer("c.org"));
  req.mutable_output_mask()->set_x509_authorities(true);
  bundlev1::BatchSetFederatedBundleResponse resp = Set(req);
  ASSERT_EQ(resp.results_size(), 5);
  ExpectStatus(resp.results(0).status(), grpc::StatusCode::OK, "OK");
  EXPECT_EQ(resp.results(0).bundle().trust_domain(), "a.org");
  EXPECT_THAT(Ders(resp.results(0).bundle()), ElementsAre(der_b));
  EXPECT_EQ(resp.results(0).bundle().refresh_hint(), 0);  // masked out
  ExpectStatus(resp.results(1).status(), grpc::StatusCode::OK, "OK");
  EXPECT_EQ(resp.results(1).bundle().trust_domain(), "b.org");
  EXPECT_THAT(Ders(resp.results(1).bundle()), ElementsAre(der_c));
  ExpectStatus(resp.results(2).status(), grpc::StatusCode::INVALID_ARGUMENT,
               "setting a federated bundle for the server's own trust domain is not allowed");
  EXPECT_EQ(resp.results(3).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(3).status().message(),
              StartsWith("failed to convert bundle: unable to parse X.509 authority: "));
  ExpectStatus(resp.results(4).status(), grpc::StatusCode::INVALID_ARGUMENT, kInvalidTdChars);
  for (int i = 2; i < 5; ++i) EXPECT_FALSE(resp.results(i).has_bundle()) << i;

  std::optional<Bundle> a = Stored("a.org");
  ASSERT_TRUE(a.has_value());
  EXPECT_THAT(Ders(*a), ElementsAre(der_b));
  EXPECT_EQ(a->refresh_hint(), 10);
  EXPECT_EQ(a->sequence_number(), 0);  // replaced as sent, not merged
  std::optional<Bundle> b = Stored("b.org");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->sequence_number(), 2);
  EXPECT_FALSE(Stored("c.org").has_value());
  ExpectOwnBundleUntouched();
  EXPECT_EQ(notifier_.bundle_changes(), 1);
}

// --- BatchDeleteFederatedBundle ---

class DeleteFederatedBundleTest : public FederatedBundleTest {
 protected:
  void SetUp() override {
    FederatedBundleTest::SetUp();
    if (HasFatalFailure()) return;
    StoreFederated("a.org");
    StoreFederated("b.org");
    AddAgent(kAgentId);
    e1_ = AddEntry("spiffe://example.org/w1", {Td("a.org")});
    e2_ = AddEntry("spiffe://example.org/w2", {Td("a.org"), Td("b.org")});
    e3_ = AddEntry("spiffe://example.org/w3", {});
    ASSERT_EQ(index_->AuthorizedEntries(Id(kAgentId)).size(), 3u);
    notifier_.Clear();
  }

  Entry AddEntry(std::string_view spiffe_id, std::vector<spiffe::TrustDomain> federates_with) {
    Entry entry = MakeEntry(spiffe_id, kAgentId, {"unix:uid:1000"});
    entry.federates_with = std::move(federates_with);
    absl::StatusOr<Entry> created = store_->CreateEntry(entry);
    EXPECT_TRUE(created.ok()) << created.status();
    if (!created.ok()) return entry;
    index_->Upsert(*created);
    return *created;
  }
  std::optional<Entry> Fetch(const Entry& entry) {
    absl::StatusOr<std::optional<Entry>> fetched = store_->FetchEntry(entry.id);
    EXPECT_TRUE(fetched.ok()) << fetched.status();
    return fetched.ok() ? *fetched : std::nullopt;
  }
  // The agent's authorized entries by id, from the index.
  std::map<std::string, Entry> Authorized() {
    std::map<std::string, Entry> out;
    for (const auto& entry : index_->AuthorizedEntries(Id(kAgentId)))
      out.emplace(entry->id, *entry);
    return out;
  }

  // Set in SetUp (Entry has no default state).
  std::optional<Entry> e1_, e2_, e3_;
};

TEST_F(DeleteFederatedBundleTest, RestrictRefusesWhileEntriesFederate) {
  for (DeleteRequest::Mode mode : {DeleteRequest::RESTRICT, DeleteRequest::Mode{}}) {
    bundlev1::BatchDeleteFederatedBundleResponse resp = Delete({"a.org"}, mode);
    ASSERT_EQ(resp.results_size(), 1);
    EXPECT_EQ(resp.results(0).trust_domain(), "a.org");
    ExpectStatus(resp.results(0).status(), grpc::StatusCode::FAILED_PRECONDITION,
                 "failed to delete federated bundle: datastore-sql: cannot delete bundle; "
                 "federated with 2 registration entries");
  }
  EXPECT_TRUE(Stored("a.org").has_value());
  EXPECT_EQ(Fetch(*e1_), e1_);
  EXPECT_EQ(Fetch(*e2_), e2_);
  EXPECT_EQ(Authorized().size(), 3u);
  EXPECT_EQ(notifier_.bundle_changes(), 0);
  EXPECT_EQ(notifier_.entry_changes(), 0);
}

TEST_F(DeleteFederatedBundleTest, DeleteModeDeletesTheEntriesAndUpdatesTheIndex) {
  bundlev1::BatchDeleteFederatedBundleResponse resp = Delete({"a.org"}, DeleteRequest::DELETE);
  ASSERT_EQ(resp.results_size(), 1);
  EXPECT_EQ(resp.results(0).trust_domain(), "a.org");
  ExpectStatus(resp.results(0).status(), grpc::StatusCode::OK, "OK");

  EXPECT_FALSE(Stored("a.org").has_value());
  EXPECT_TRUE(Stored("b.org").has_value());
  EXPECT_FALSE(Fetch(*e1_).has_value());
  EXPECT_FALSE(Fetch(*e2_).has_value());
  EXPECT_EQ(Fetch(*e3_), e3_);
  std::map<std::string, Entry> authorized = Authorized();
  ASSERT_EQ(authorized.size(), 1u);
  EXPECT_TRUE(authorized.contains(e3_->id));
  // Both entries concern the one agent: it is announced once, in one announcement.
  EXPECT_THAT(notifier_.agents(), ElementsAre(kAgentId));
  EXPECT_EQ(notifier_.entry_changes(), 1);
  EXPECT_EQ(notifier_.bundle_changes(), 1);
}

TEST_F(DeleteFederatedBundleTest, DissociateTrimsFederatesWithAndUpdatesTheIndex) {
  bundlev1::BatchDeleteFederatedBundleResponse resp = Delete({"a.org"}, DeleteRequest::DISSOCIATE);
  ASSERT_EQ(resp.results_size(), 1);
  ExpectStatus(resp.results(0).status(), grpc::StatusCode::OK, "OK");

  EXPECT_FALSE(Stored("a.org").has_value());
  std::optional<Entry> e1 = Fetch(*e1_);
  ASSERT_TRUE(e1.has_value());
  EXPECT_THAT(e1->federates_with, IsEmpty());
  EXPECT_EQ(e1->revision_number, e1_->revision_number + 1);
  std::optional<Entry> e2 = Fetch(*e2_);
  ASSERT_TRUE(e2.has_value());
  EXPECT_THAT(e2->federates_with, ElementsAre(Td("b.org")));
  EXPECT_EQ(Fetch(*e3_), e3_);

  std::map<std::string, Entry> authorized = Authorized();
  ASSERT_EQ(authorized.size(), 3u);
  EXPECT_EQ(authorized.at(e1_->id), *e1);
  EXPECT_EQ(authorized.at(e2_->id), *e2);
  EXPECT_THAT(notifier_.agents(), ElementsAre(kAgentId));
  EXPECT_EQ(notifier_.entry_changes(), 1);
  EXPECT_EQ(notifier_.bundle_changes(), 1);
}

TEST_F(DeleteFederatedBundleTest, ReportsEachItemInOrder) {
  ASSERT_TRUE(store_->SetBundle(Fed("c.org", NewCaDer("c.org"))).ok());
  bundlev1::BatchDeleteFederatedBundleResponse resp =
      Delete({"example.org", "", "Not Valid!", "missing.org", "spiffe://c.org", "c.org"},
             DeleteRequest::DELETE);
  ASSERT_EQ(resp.results_size(), 6);
  EXPECT_EQ(resp.results(0).trust_domain(), "example.org");
  ExpectStatus(resp.results(0).status(), grpc::StatusCode::INVALID_ARGUMENT,
               "removing the bundle for the server trust domain is not allowed");
  EXPECT_EQ(resp.results(1).trust_domain(), "");
  ExpectStatus(resp.results(1).status(), grpc::StatusCode::INVALID_ARGUMENT, kMissingTd);
  EXPECT_EQ(resp.results(2).trust_domain(), "Not Valid!");
  ExpectStatus(resp.results(2).status(), grpc::StatusCode::INVALID_ARGUMENT, kInvalidTdChars);
  EXPECT_EQ(resp.results(3).trust_domain(), "missing.org");
  ExpectStatus(resp.results(3).status(), grpc::StatusCode::NOT_FOUND, "bundle not found");
  EXPECT_EQ(resp.results(4).trust_domain(), "spiffe://c.org");
  ExpectStatus(resp.results(4).status(), grpc::StatusCode::OK, "OK");
  EXPECT_EQ(resp.results(5).trust_domain(), "c.org");
  ExpectStatus(resp.results(5).status(), grpc::StatusCode::NOT_FOUND, "bundle not found");

  EXPECT_FALSE(Stored("c.org").has_value());
  ExpectOwnBundleUntouched();
  EXPECT_EQ(store_->CountBundles().value(), 3);  // own, a.org, b.org
  EXPECT_EQ(notifier_.bundle_changes(), 1);
  EXPECT_EQ(notifier_.entry_changes(), 0);  // no entry federated with c.org
}

TEST_F(DeleteFederatedBundleTest, UnknownModeRefusesTheWholeCall) {
  DeleteRequest req;
  req.add_trust_domains("a.org");
  req.set_mode(static_cast<DeleteRequest::Mode>(7));
  bundlev1::BatchDeleteFederatedBundleResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = admin_->BatchDeleteFederatedBundle(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "failed to parse deletion mode: unhandled delete mode \"7\"");
  EXPECT_TRUE(Stored("a.org").has_value());
  EXPECT_EQ(Fetch(*e1_), e1_);
  EXPECT_EQ(notifier_.bundle_changes(), 0);
}

}  // namespace
}  // namespace tessera::server::testing
