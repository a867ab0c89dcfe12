// EntryService admin RPCs — create, get, delete, update — over real gRPC on the admin socket,
// backed by SQLite, the real EntryIndex and a recording notifier: per-item results, SPIRE's
// messages, index updates and announcements, and nothing written on failure.
#include "server/api/entry_service_test_util.h"

namespace tessera::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_F(EntryServiceTest, CreateStoresEntryIndexesItAndNotifiesTheAgent) {
  types::Entry in = ProtoEntry("/web", kAgentPath, {{"unix", "uid:1000"}});
  in.set_x509_svid_ttl(600);
  in.add_dns_names("web.example.org");
  in.set_hint("web");
  in.set_revision_number(42);  // server-owned: ignored
  in.set_created_at(7);        // server-owned: ignored
  auto resp = Create({in});
  ASSERT_EQ(resp.results_size(), 1);
  EXPECT_EQ(resp.results(0).status().code(), 0);
  EXPECT_EQ(resp.results(0).status().message(), "OK");
  const types::Entry& out = resp.results(0).entry();
  EXPECT_FALSE(out.id().empty());
  EXPECT_EQ(out.spiffe_id().path(), "/web");
  EXPECT_EQ(out.parent_id().path(), kAgentPath);
  EXPECT_EQ(out.x509_svid_ttl(), 600);
  EXPECT_THAT(out.dns_names(), ElementsAre("web.example.org"));
  EXPECT_EQ(out.hint(), "web");
  EXPECT_EQ(out.revision_number(), 0);
  EXPECT_EQ(out.created_at(), std::chrono::system_clock::to_time_t(clock_.Now()));

  ASSERT_OK_AND_ASSIGN(auto stored, store_->FetchEntry(out.id()));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->spiffe_id.str(), "spiffe://example.org/web");
  auto authorized = index_->AuthorizedEntries(Id(kAgent));
  ASSERT_EQ(authorized.size(), 1u);
  EXPECT_EQ(authorized[0]->id, out.id());
  EXPECT_THAT(TakeChanged(), ElementsAre(kAgent));
}

TEST_F(EntryServiceTest, CreateHonoursClientIdAndOutputMask) {
  types::Entry in = ProtoEntry("/db", kAgentPath, {{"unix", "uid:1"}});
  in.set_id("my-entry.1");
  types::EntryMask mask;
  mask.set_spiffe_id(true);
  auto resp = Create({in}, &mask);
  ASSERT_EQ(resp.results_size(), 1);
  EXPECT_EQ(resp.results(0).status().code(), 0);
  EXPECT_EQ(resp.results(0).entry().id(), "my-entry.1");
  EXPECT_EQ(resp.results(0).entry().spiffe_id().path(), "/db");
  EXPECT_FALSE(resp.results(0).entry().has_parent_id());
  EXPECT_EQ(resp.results(0).entry().selectors_size(), 0);
}

TEST_F(EntryServiceTest, CreateSimilarEntryReturnsAlreadyExistsWithTheExistingEntry) {
  types::Entry first = CreateOne("/web", kAgentPath, "uid:1000");
  TakeChanged();
  types::Entry again = ProtoEntry("/web", kAgentPath, {{"unix", "uid:1000"}});
  again.set_x509_svid_ttl(99);
  auto resp = Create({again, ProtoEntry("/web", kAgentPath, {{"unix", "uid:1000"}})});
  ASSERT_EQ(resp.results_size(), 2);
  for (const auto& r : resp.results()) {
    EXPECT_EQ(r.status().code(), grpc::StatusCode::ALREADY_EXISTS);
    EXPECT_EQ(r.status().message(), "similar entry already exists");
    EXPECT_EQ(r.entry().id(), first.id());
    EXPECT_EQ(r.entry().x509_svid_ttl(), 0);
  }
  EXPECT_EQ(StoredCount(), 1);
  EXPECT_TRUE(TakeChanged().empty());
}

TEST_F(EntryServiceTest, CreateBadEntriesAreRejectedPerItemAndNothingIsWritten) {
  CreateOne("/existing", kAgentPath, "uid:1");
  struct Case {
    std::string name;
    types::Entry entry;
    int code;
    std::string message;
  };
  std::vector<Case> cases;
  auto with = [](types::Entry e, auto edit) {
    edit(e);
    return e;
  };
  const types::Entry good = ProtoEntry("/w", kAgentPath, {{"unix", "uid:2"}});
  const int kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  // SPIFFE ID vectors that are not valid IDs.
  for (std::string td : {"", "Example.org", "exa mple.org", "example.org:80", "ex%41mple.org"}) {
    cases.push_back(
        {"td " + td,
         with(good, [&](types::Entry& e) { e.mutable_spiffe_id()->set_trust_domain(td); }),
         kInvalid, "failed to convert entry: invalid spiffe ID"});
  }
  for (std::string path : {"w", "/w/", "/a//b", "/./a", "/a/..", "/a/%41", "/a b", "/"}) {
    cases.push_back({"path " + path,
                     with(good, [&](types::Entry& e) { e.mutable_spiffe_id()->set_path(path); }),
                     kInvalid, "failed to convert entry: invalid spiffe ID"});
  }
  cases.push_back(
      {"spiffe id outside td",
       with(good, [](types::Entry& e) { e.mutable_spiffe_id()->set_trust_domain("other.org"); }),
       kInvalid, "failed to convert entry: invalid spiffe ID"});
  cases.push_back(
      {"reserved path",
       with(good, [](types::Entry& e) { e.mutable_spiffe_id()->set_path("/spire/agent/x"); }),
       kInvalid, "failed to convert entry: invalid spiffe ID"});
  cases.push_back({"no spiffe id", with(good, [](types::Entry& e) { e.clear_spiffe_id(); }),
                   kInvalid, "failed to convert entry: missing SPIFFE ID"});
  cases.push_back(
      {"parent outside td",
       with(good, [](types::Entry& e) { e.mutable_parent_id()->set_trust_domain("other.org"); }),
       kInvalid, "failed to convert entry: invalid parent ID"});
  cases.push_back({"parent bad path",
                   with(good, [](types::Entry& e) { e.mutable_parent_id()->set_path("/a//b"); }),
                   kInvalid, "failed to convert entry: invalid parent ID"});
  cases.push_back({"no selectors", with(good, [](types::Entry& e) { e.clear_selectors(); }),
                   kInvalid, "failed to convert entry: selector list is empty"});
  cases.push_back(
      {"selector type with colon",
       with(good, [](types::Entry& e) { e.mutable_selectors(0)->set_type("unix:uid"); }), kInvalid,
       "failed to convert entry: selector type contains ':'"});
  cases.push_back({"selector without type",
                   with(good, [](types::Entry& e) { e.mutable_selectors(0)->set_type(""); }),
                   kInvalid, "failed to convert entry: missing selector type"});
  cases.push_back({"selector without value",
                   with(good, [](types::Entry& e) { e.mutable_selectors(0)->set_value(""); }),
                   kInvalid, "failed to convert entry: missing selector value"});
  cases.push_back({"negative x509 ttl",
                   with(good, [](types::Entry& e) { e.set_x509_svid_ttl(-1); }), kInvalid,
                   "failed to convert entry: x509_svid_ttl must not be negative"});
  cases.push_back({"negative jwt ttl", with(good, [](types::Entry& e) { e.set_jwt_svid_ttl(-1); }),
                   kInvalid, "failed to convert entry: jwt_svid_ttl must not be negative"});
  cases.push_back({"bad entry id", with(good, [](types::Entry& e) { e.set_id("bad id!"); }),
                   kInvalid, "failed to create entry: datastore-validation:"});
  cases.push_back({"federated td without bundle",
                   with(good, [](types::Entry& e) { e.add_federates_with("other.org"); }),
                   grpc::StatusCode::INTERNAL,
                   "failed to create entry: unable to find federated bundle"});

  std::vector<types::Entry> batch;
  for (const auto& c : cases) batch.push_back(c.entry);
  TakeChanged();
  auto resp = Create(batch);
  ASSERT_EQ(resp.results_size(), static_cast<int>(cases.size()));
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    EXPECT_EQ(resp.results(i).status().code(), cases[i].code);
    EXPECT_THAT(resp.results(i).status().message(), HasSubstr(cases[i].message));
    EXPECT_FALSE(resp.results(i).has_entry());
  }
  EXPECT_EQ(StoredCount(), 1);
  EXPECT_EQ(CountRpc(), 1);
  EXPECT_TRUE(TakeChanged().empty());
}

TEST_F(EntryServiceTest, CreateMixedBatchWritesOnlyTheGoodItems) {
  auto resp =
      Create({ProtoEntry("/a", kAgentPath, {{"unix", "uid:1"}}), ProtoEntry("/b", kAgentPath, {}),
              ProtoEntry("/a", kAgentPath, {{"unix", "uid:1"}})});
  ASSERT_EQ(resp.results_size(), 3);
  EXPECT_EQ(resp.results(0).status().code(), 0);
  EXPECT_EQ(resp.results(1).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resp.results(2).status().code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(resp.results(2).entry().id(), resp.results(0).entry().id());
  EXPECT_EQ(StoredCount(), 1);
}

TEST_F(EntryServiceTest, GetEntry) {
  types::Entry created = CreateOne("/web", kAgentPath, "uid:1000");
  types::Entry got;
  ASSERT_TRUE(Get(created.id(), &got).ok());
  EXPECT_EQ(got.SerializeAsString(), created.SerializeAsString());

  entryv1::GetEntryRequest req;
  req.set_id(created.id());
  req.mutable_output_mask()->set_hint(true);
  grpc::ClientContext ctx;
  types::Entry masked;
  ASSERT_TRUE(stub_->GetEntry(&ctx, req, &masked).ok());
  EXPECT_EQ(masked.id(), created.id());
  EXPECT_FALSE(masked.has_spiffe_id());

  grpc::Status missing_id = Get("", &got);
  EXPECT_EQ(missing_id.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(missing_id.error_message(), "missing ID");
  grpc::Status not_found = Get("nope", &got);
  EXPECT_EQ(not_found.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(not_found.error_message(), "entry not found");
}

TEST_F(EntryServiceTest, BatchDeleteEntry) {
  types::Entry a = CreateOne("/a", kAgentPath, "uid:1");
  types::Entry b = CreateOne("/b", kAgentPath, "uid:2");
  TakeChanged();
  entryv1::BatchDeleteEntryRequest req;
  req.add_ids(a.id());
  req.add_ids("");
  req.add_ids("missing");
  req.add_ids(a.id());
  entryv1::BatchDeleteEntryResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->BatchDeleteEntry(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.results_size(), 4);
  EXPECT_EQ(resp.results(0).id(), a.id());
  EXPECT_EQ(resp.results(0).status().code(), 0);
  EXPECT_EQ(resp.results(0).status().message(), "OK");
  EXPECT_EQ(resp.results(1).id(), "");
  EXPECT_EQ(resp.results(1).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resp.results(1).status().message(), "missing entry ID");
  EXPECT_EQ(resp.results(2).id(), "missing");
  EXPECT_EQ(resp.results(2).status().code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(resp.results(2).status().message(), "entry not found");
  EXPECT_EQ(resp.results(3).status().code(), grpc::StatusCode::NOT_FOUND);

  EXPECT_EQ(StoredCount(), 1);
  types::Entry got;
  EXPECT_EQ(Get(a.id(), &got).error_code(), grpc::StatusCode::NOT_FOUND);
  auto authorized = index_->AuthorizedEntries(Id(kAgent));
  ASSERT_EQ(authorized.size(), 1u);
  EXPECT_EQ(authorized[0]->id, b.id());
  EXPECT_THAT(TakeChanged(), ElementsAre(kAgent));
}

TEST_F(EntryServiceTest, BatchUpdateEntryWithoutMaskReplacesEveryField) {
  types::Entry created = CreateOne("/web", kAgentPath, "uid:1000");
  TakeChanged();
  types::Entry in = ProtoEntry("/web2", kAgentPath, {{"unix", "uid:2000"}});
  in.set_id(created.id());
  in.set_jwt_svid_ttl(300);
  entryv1::BatchUpdateEntryRequest req;
  *req.add_entries() = in;
  entryv1::BatchUpdateEntryResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->BatchUpdateEntry(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.results_size(), 1);
  EXPECT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
  EXPECT_EQ(resp.results(0).entry().spiffe_id().path(), "/web2");
  EXPECT_EQ(resp.results(0).entry().jwt_svid_ttl(), 300);
  EXPECT_EQ(resp.results(0).entry().revision_number(), 1);
  ASSERT_OK_AND_ASSIGN(auto stored, store_->FetchEntry(created.id()));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->spiffe_id.str(), "spiffe://example.org/web2");
  EXPECT_EQ(stored->selectors, testing::Selectors({"unix:uid:2000"}));
  auto authorized = index_->AuthorizedEntries(Id(kAgent));
  ASSERT_EQ(authorized.size(), 1u);
  EXPECT_EQ(authorized[0]->spiffe_id.str(), "spiffe://example.org/web2");
  EXPECT_THAT(TakeChanged(), ElementsAre(kAgent));
}

TEST_F(EntryServiceTest, BatchUpdateEntryValidatesOnlyMaskedFields) {
  types::Entry created = CreateOne("/web", kAgentPath, "uid:1000");
  // Only the hint is masked: the missing IDs and selectors are not looked at.
  types::Entry hint_only;
  hint_only.set_id(created.id());
  hint_only.set_hint("new-hint");
  // Masked selectors that are empty are refused.
  types::Entry bad_selectors;
  bad_selectors.set_id(created.id());
  types::Entry unknown;
  unknown.set_id("unknown");
  types::Entry no_id;
  entryv1::BatchUpdateEntryRequest req;
  *req.add_entries() = hint_only;
  *req.add_entries() = unknown;
  *req.add_entries() = no_id;
  req.mutable_input_mask()->set_hint(true);
  entryv1::BatchUpdateEntryResponse resp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->BatchUpdateEntry(&ctx, req, &resp).ok());
  }
  ASSERT_EQ(resp.results_size(), 3);
  EXPECT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
  EXPECT_EQ(resp.results(0).entry().hint(), "new-hint");
  EXPECT_EQ(resp.results(0).entry().spiffe_id().path(), "/web");
  EXPECT_EQ(resp.results(0).entry().selectors_size(), 1);
  EXPECT_EQ(resp.results(0).entry().revision_number(), 1);
  EXPECT_EQ(resp.results(1).status().code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(resp.results(1).status().message(), HasSubstr("failed to update entry"));
  EXPECT_EQ(resp.results(2).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(2).status().message(), HasSubstr("missing ID"));

  entryv1::BatchUpdateEntryRequest req2;
  *req2.add_entries() = bad_selectors;
  req2.mutable_input_mask()->set_selectors(true);
  req2.mutable_output_mask()->set_revision_number(true);
  entryv1::BatchUpdateEntryResponse resp2;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->BatchUpdateEntry(&ctx, req2, &resp2).ok());
  }
  ASSERT_EQ(resp2.results_size(), 1);
  EXPECT_EQ(resp2.results(0).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resp2.results(0).status().message(), "failed to convert entry: selector list is empty");
  ASSERT_OK_AND_ASSIGN(auto stored, store_->FetchEntry(created.id()));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->revision_number, 1);
  EXPECT_EQ(stored->hint, "new-hint");
  EXPECT_EQ(stored->selectors, testing::Selectors({"unix:uid:1000"}));
}

}  // namespace
}  // namespace tessera::server::testing
