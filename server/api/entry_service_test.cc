// EntryService over real gRPC on a Unix socket (every caller there is local, hence admin), backed
// by a SqliteDataStore in a temp dir, a real EntryIndex and a recording ChangeNotifier.
#include "server/api/entry_service.h"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/api/caller_roles.h"
#include "server/datastore/datastore_test_util.h"

namespace tessera::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Id;
using testing::Td;
namespace types = ::spire::api::types;

class RecordingNotifier final : public ChangeNotifier {
 public:
  void EntriesChanged(const EntryIndex::AffectedAgents& agents) override {
    std::lock_guard lock(mu_);
    for (const auto& id : agents) changed_.push_back(id.str());
  }
  void BundleChanged() override {}
  std::vector<std::string> TakeChanged() {
    std::lock_guard lock(mu_);
    return std::exchange(changed_, {});
  }

 private:
  std::mutex mu_;
  std::vector<std::string> changed_;
};

types::SPIFFEID ProtoId(std::string td, std::string path) {
  types::SPIFFEID id;
  id.set_trust_domain(std::move(td));
  id.set_path(std::move(path));
  return id;
}

types::Entry ProtoEntry(std::string path, std::string parent_path,
                        std::vector<std::pair<std::string, std::string>> selectors) {
  types::Entry e;
  *e.mutable_spiffe_id() = ProtoId("example.org", std::move(path));
  *e.mutable_parent_id() = ProtoId("example.org", std::move(parent_path));
  for (auto& [type, value] : selectors) {
    auto* s = e.add_selectors();
    s->set_type(type);
    s->set_value(value);
  }
  return e;
}

constexpr char kAgent[] = "spiffe://example.org/spire/agent/join_token/abc";
constexpr char kAgentPath[] = "/spire/agent/join_token/abc";

class EntryServiceTest : public testing::DataStoreTest {
 protected:
  void SetUp() override {
    DataStoreTest::SetUp();
    if (HasFatalFailure()) return;
    index_ = std::make_unique<EntryIndex>(Td("example.org"), clock_);
    index_->UpsertNode(Id(kAgent), {});
    roles_ = std::make_unique<RegistryCallerRoles>(*store_);
    authorizer_ = std::make_unique<Authorizer>(
        std::vector<spiffe::SpiffeId>{},
        [](const spiffe::TrustDomain&) -> std::optional<std::vector<spiffe::Certificate>> {
          return std::nullopt;
        },
        *roles_, clock_);
    ServiceDeps deps{.trust_domain = Td("example.org"),
                     .datastore = store_.get(),
                     .index = index_.get(),
                     .authorizer = authorizer_.get(),
                     .notifier = &notifier_,
                     .clock = &clock_};
    service_ = std::make_unique<EntryService>(deps);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + (dir_ / "api.sock").string(),
                             grpc::InsecureServerCredentials());
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = entryv1::Entry::NewStub(grpc::CreateChannel("unix:" + (dir_ / "api.sock").string(),
                                                        grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    DataStoreTest::TearDown();
  }

  entryv1::BatchCreateEntryResponse Create(std::vector<types::Entry> entries,
                                           const types::EntryMask* mask = nullptr) {
    entryv1::BatchCreateEntryRequest req;
    for (auto& e : entries) *req.add_entries() = std::move(e);
    if (mask) *req.mutable_output_mask() = *mask;
    entryv1::BatchCreateEntryResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->BatchCreateEntry(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  // Creates one valid entry and returns it as the server answered.
  types::Entry CreateOne(std::string path, std::string parent_path, std::string selector) {
    auto resp = Create({ProtoEntry(std::move(path), std::move(parent_path), {{"unix", selector}})});
    EXPECT_EQ(resp.results_size(), 1);
    EXPECT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
    return resp.results(0).entry();
  }
  grpc::Status Get(std::string id, types::Entry* out) {
    entryv1::GetEntryRequest req;
    req.set_id(std::move(id));
    grpc::ClientContext ctx;
    return stub_->GetEntry(&ctx, req, out);
  }
  // The CountEntries RPC; -1 when it fails.
  int CountRpc(const entryv1::CountEntriesRequest::Filter& filter = {}) {
    entryv1::CountEntriesRequest req;
    *req.mutable_filter() = filter;
    entryv1::CountEntriesResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->CountEntries(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return s.ok() ? resp.count() : -1;
  }
  // ListEntries with `filter`, page by page; returns the SPIFFE ID paths in order.
  std::vector<std::string> ListPaths(const entryv1::ListEntriesRequest::Filter& filter,
                                     int page_size = 0, std::vector<int>* page_sizes = nullptr) {
    std::vector<std::string> paths;
    std::string token;
    for (int i = 0; i < 100; ++i) {
      entryv1::ListEntriesRequest req;
      *req.mutable_filter() = filter;
      req.set_page_size(page_size);
      req.set_page_token(token);
      entryv1::ListEntriesResponse resp;
      grpc::ClientContext ctx;
      grpc::Status s = stub_->ListEntries(&ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      if (page_sizes) page_sizes->push_back(resp.entries_size());
      for (const auto& e : resp.entries()) paths.push_back(e.spiffe_id().path());
      token = resp.next_page_token();
      if (token.empty()) break;
    }
    return paths;
  }
  int64_t StoredCount() {
    auto n = store_->CountEntries({});
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }

  RecordingNotifier notifier_;
  std::unique_ptr<EntryIndex> index_;
  std::unique_ptr<RegistryCallerRoles> roles_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<EntryService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<entryv1::Entry::Stub> stub_;
};

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
  EXPECT_EQ(out.created_at(), 1'800'000'000);

  ASSERT_OK_AND_ASSIGN(auto stored, store_->FetchEntry(out.id()));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->spiffe_id.str(), "spiffe://example.org/web");
  auto authorized = index_->AuthorizedEntries(Id(kAgent));
  ASSERT_EQ(authorized.size(), 1u);
  EXPECT_EQ(authorized[0]->id, out.id());
  EXPECT_THAT(notifier_.TakeChanged(), ElementsAre(kAgent));
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
  notifier_.TakeChanged();
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
  EXPECT_TRUE(notifier_.TakeChanged().empty());
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
  notifier_.TakeChanged();
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
  EXPECT_TRUE(notifier_.TakeChanged().empty());
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
  notifier_.TakeChanged();
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
  EXPECT_THAT(notifier_.TakeChanged(), ElementsAre(kAgent));
}

TEST_F(EntryServiceTest, BatchUpdateEntryWithoutMaskReplacesEveryField) {
  types::Entry created = CreateOne("/web", kAgentPath, "uid:1000");
  notifier_.TakeChanged();
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
  EXPECT_THAT(notifier_.TakeChanged(), ElementsAre(kAgent));
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

class EntryListTest : public EntryServiceTest {
 protected:
  void SetUp() override {
    EntryServiceTest::SetUp();
    if (HasFatalFailure()) return;
    auto c = ProtoEntry("/c", "/other", {{"unix", "uid:1"}});
    c.set_hint("h");
    auto d = ProtoEntry("/d", kAgentPath, {{"unix", "uid:9"}});
    d.set_downstream(true);
    auto resp = Create({ProtoEntry("/a", kAgentPath, {{"unix", "uid:1"}}),
                        ProtoEntry("/b", kAgentPath, {{"unix", "uid:2"}, {"unix", "gid:1"}}), c, d,
                        ProtoEntry("/e", kAgentPath, {{"k8s", "ns:x"}})});
    for (const auto& r : resp.results()) ASSERT_EQ(r.status().code(), 0) << r.status().message();
  }
  static types::SelectorMatch Match(std::vector<std::pair<std::string, std::string>> selectors,
                                    types::SelectorMatch::MatchBehavior match) {
    types::SelectorMatch m;
    for (auto& [type, value] : selectors) {
      auto* s = m.add_selectors();
      s->set_type(type);
      s->set_value(value);
    }
    m.set_match(match);
    return m;
  }
};

TEST_F(EntryListTest, PaginationEndsOnAnEmptyPage) {
  std::vector<int> sizes;
  EXPECT_THAT(ListPaths({}, 2, &sizes), ElementsAre("/a", "/b", "/c", "/d", "/e"));
  EXPECT_THAT(sizes, ElementsAre(2, 2, 1, 0));
  sizes.clear();
  EXPECT_THAT(ListPaths({}, 0, &sizes), ElementsAre("/a", "/b", "/c", "/d", "/e"));
  EXPECT_THAT(sizes, ElementsAre(5));
  EXPECT_EQ(CountRpc(), 5);
}

TEST_F(EntryListTest, Filters) {
  using Filter = entryv1::ListEntriesRequest::Filter;
  Filter by_id;
  *by_id.mutable_by_spiffe_id() = ProtoId("example.org", "/b");
  EXPECT_THAT(ListPaths(by_id), ElementsAre("/b"));

  Filter by_parent;
  *by_parent.mutable_by_parent_id() = ProtoId("example.org", "/other");
  EXPECT_THAT(ListPaths(by_parent), ElementsAre("/c"));

  Filter exact;
  *exact.mutable_by_selectors() = Match({{"unix", "uid:1"}}, types::SelectorMatch::MATCH_EXACT);
  EXPECT_THAT(ListPaths(exact), ElementsAre("/a", "/c"));
  Filter superset;
  *superset.mutable_by_selectors() =
      Match({{"unix", "uid:2"}}, types::SelectorMatch::MATCH_SUPERSET);
  EXPECT_THAT(ListPaths(superset), ElementsAre("/b"));
  Filter any;
  *any.mutable_by_selectors() =
      Match({{"unix", "gid:1"}, {"k8s", "ns:x"}}, types::SelectorMatch::MATCH_ANY);
  EXPECT_THAT(ListPaths(any), ElementsAre("/b", "/e"));
  Filter subset;
  *subset.mutable_by_selectors() =
      Match({{"unix", "uid:1"}, {"unix", "uid:9"}}, types::SelectorMatch::MATCH_SUBSET);
  EXPECT_THAT(ListPaths(subset), ElementsAre("/a", "/c", "/d"));

  Filter hint;
  hint.mutable_by_hint()->set_value("h");
  EXPECT_THAT(ListPaths(hint), ElementsAre("/c"));
  Filter downstream;
  downstream.mutable_by_downstream()->set_value(true);
  EXPECT_THAT(ListPaths(downstream), ElementsAre("/d"));

  // AND of conditions, and the same filter on CountEntries.
  Filter both = exact;
  *both.mutable_by_parent_id() = ProtoId("example.org", kAgentPath);
  EXPECT_THAT(ListPaths(both), ElementsAre("/a"));
  entryv1::CountEntriesRequest::Filter count_filter;
  *count_filter.mutable_by_selectors() = exact.by_selectors();
  EXPECT_EQ(CountRpc(count_filter), 2);
  count_filter.mutable_by_downstream()->set_value(false);
  EXPECT_EQ(CountRpc(count_filter), 2);
  count_filter.mutable_by_hint()->set_value("h");
  EXPECT_EQ(CountRpc(count_filter), 1);
}

TEST_F(EntryListTest, MalformedFiltersAreInvalidArgument) {
  using Filter = entryv1::ListEntriesRequest::Filter;
  std::vector<std::pair<Filter, std::string>> cases;
  Filter f;
  *f.mutable_by_spiffe_id() = ProtoId("other.org", "/a");
  cases.push_back({f, "malformed by_spiffe_id filter"});
  f.Clear();
  *f.mutable_by_spiffe_id() = ProtoId("example.org", "/a//b");
  cases.push_back({f, "malformed by_spiffe_id filter"});
  f.Clear();
  *f.mutable_by_parent_id() = ProtoId("other.org", "/spire/agent/x");
  cases.push_back({f, "malformed by_parent_id filter"});
  f.Clear();
  f.mutable_by_selectors();
  cases.push_back({f, "malformed by_selectors filter"});
  f.Clear();
  *f.mutable_by_selectors() = Match({{"unix:x", "1"}}, types::SelectorMatch::MATCH_ANY);
  cases.push_back({f, "malformed by_selectors filter"});
  f.Clear();
  f.mutable_by_federates_with();
  cases.push_back({f, "malformed by_federates_with filter"});
  f.Clear();
  f.mutable_by_federates_with()->add_trust_domains("Not A TD");
  cases.push_back({f, "malformed by_federates_with filter"});
  for (const auto& [filter, message] : cases) {
    SCOPED_TRACE(filter.ShortDebugString());
    entryv1::ListEntriesRequest req;
    *req.mutable_filter() = filter;
    entryv1::ListEntriesResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->ListEntries(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr(message));

    entryv1::CountEntriesRequest count_req;
    count_req.mutable_filter()->ParseFromString(filter.SerializeAsString());
    entryv1::CountEntriesResponse count_resp;
    grpc::ClientContext count_ctx;
    grpc::Status cs = stub_->CountEntries(&count_ctx, count_req, &count_resp);
    EXPECT_EQ(cs.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(cs.error_message(), HasSubstr(message));
  }
}

TEST_F(EntryListTest, OutputMaskAndBadPageToken) {
  entryv1::ListEntriesRequest req;
  req.mutable_output_mask()->set_hint(true);
  req.mutable_filter()->mutable_by_hint()->set_value("h");
  entryv1::ListEntriesResponse resp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->ListEntries(&ctx, req, &resp).ok());
  }
  ASSERT_EQ(resp.entries_size(), 1);
  EXPECT_FALSE(resp.entries(0).id().empty());
  EXPECT_EQ(resp.entries(0).hint(), "h");
  EXPECT_FALSE(resp.entries(0).has_spiffe_id());
  EXPECT_EQ(resp.entries(0).selectors_size(), 0);

  entryv1::ListEntriesRequest bad;
  bad.set_page_size(2);
  bad.set_page_token("garbage");
  grpc::ClientContext ctx;
  grpc::Status s = stub_->ListEntries(&ctx, bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("failed to list entries"));
}

}  // namespace
}  // namespace tessera::server
