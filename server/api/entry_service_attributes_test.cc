// Entry.additional_attributes (jwt_svid_include_jti, disable_x509_svid_prefetch) end to end through
// EntryService over real gRPC: the admin RPCs store and return them under output masks, update
// them under SPIRE's single input-mask bit, and the agent RPCs hand them to agents under the
// mask spire-agent sends (SPIRE-API-FACTS §1, §9, §10).
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/entry_service_agent_test_util.h"

namespace tessera::server::testing {
namespace {

using ::testing::UnorderedElementsAre;
using Attributes = types::Entry::AdditionalAttributes;

Attributes MakeAttributes(bool jti, bool no_prefetch) {
  Attributes attributes;
  attributes.set_jwt_svid_include_jti(jti);
  attributes.set_disable_x509_svid_prefetch(no_prefetch);
  return attributes;
}

// "jti=<0|1> prefetch-off=<0|1>", or "absent", for readable expectations.
std::string Describe(const types::Entry& entry) {
  if (!entry.has_additional_attributes()) return "absent";
  return "jti=" + std::to_string(entry.additional_attributes().jwt_svid_include_jti()) +
         " prefetch-off=" +
         std::to_string(entry.additional_attributes().disable_x509_svid_prefetch());
}

class EntryAttributesTest : public EntryServiceAgentTest {
 protected:
  void SetUp() override {
    EntryServiceAgentTest::SetUp();
    if (HasFatalFailure()) return;
    agent_ = AddAgent(kAgentA);
    admin_ = entryv1::Entry::NewStub(AdminChannel());
  }

  types::Entry ProtoEntry(const std::string& path, std::optional<Attributes> attributes) {
    types::Entry e =
        EntryToProto(MakeEntry("spiffe://example.org" + path, kAgentA, {"unix:uid:1"}));
    e.clear_id();
    e.clear_additional_attributes();
    if (attributes.has_value()) *e.mutable_additional_attributes() = *attributes;
    return e;
  }

  entryv1::BatchCreateEntryResponse Create(const std::vector<types::Entry>& entries,
                                           const types::EntryMask* output_mask = nullptr) {
    entryv1::BatchCreateEntryRequest req;
    for (const types::Entry& e : entries) *req.add_entries() = e;
    if (output_mask != nullptr) *req.mutable_output_mask() = *output_mask;
    entryv1::BatchCreateEntryResponse resp;
    auto ctx = Context();
    grpc::Status s = admin_->BatchCreateEntry(ctx.get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    for (const auto& result : resp.results()) {
      EXPECT_EQ(result.status().code(), 0) << result.status().message();
    }
    return resp;
  }

  entryv1::BatchUpdateEntryResponse Update(const types::Entry& entry,
                                           const types::EntryMask* input_mask) {
    entryv1::BatchUpdateEntryRequest req;
    *req.add_entries() = entry;
    if (input_mask != nullptr) *req.mutable_input_mask() = *input_mask;
    entryv1::BatchUpdateEntryResponse resp;
    auto ctx = Context();
    grpc::Status s = admin_->BatchUpdateEntry(ctx.get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.results_size(), 1);
    return resp;
  }

  Entry Stored(const std::string& id) {
    auto stored = store_->FetchEntry(id);
    EXPECT_TRUE(stored.ok() && stored->has_value()) << id;
    // A missing entry has already failed the test; a placeholder lets the caller go on.
    if (!stored.ok() || !stored->has_value()) {
      return MakeEntry("spiffe://example.org/missing", "spiffe://example.org/missing", {"x:y"});
    }
    return **stored;
  }

  // The agent's view of one entry through GetAuthorizedEntries with spire-agent's mask.
  types::Entry AgentView(const std::string& id) {
    types::EntryMask mask = AgentMask();
    entryv1::GetAuthorizedEntriesResponse resp;
    grpc::Status s = GetAuthorized(TlsChannel(agent_), &mask, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    for (const types::Entry& e : resp.entries()) {
      if (e.id() == id) return e;
    }
    ADD_FAILURE() << "entry " << id << " not authorized";
    return {};
  }

  std::optional<spiffe::ClientIdentity> agent_;
  std::unique_ptr<entryv1::Entry::Stub> admin_;
};

TEST_F(EntryAttributesTest, CreateStoresThemAndGetAndListReturnThem) {
  entryv1::BatchCreateEntryResponse resp =
      Create({ProtoEntry("/jti", MakeAttributes(true, false)),
              ProtoEntry("/lazy", MakeAttributes(false, true)), ProtoEntry("/plain", std::nullopt),
              ProtoEntry("/both", MakeAttributes(true, true))});
  ASSERT_EQ(resp.results_size(), 4);
  const std::string jti = resp.results(0).entry().id();
  const std::string lazy = resp.results(1).entry().id();
  const std::string plain = resp.results(2).entry().id();
  const std::string both = resp.results(3).entry().id();
  // No output mask: every field, the attributes included even when both are false.
  EXPECT_EQ(Describe(resp.results(0).entry()), "jti=1 prefetch-off=0");
  EXPECT_EQ(Describe(resp.results(1).entry()), "jti=0 prefetch-off=1");
  EXPECT_EQ(Describe(resp.results(2).entry()), "jti=0 prefetch-off=0");
  EXPECT_EQ(Describe(resp.results(3).entry()), "jti=1 prefetch-off=1");

  EXPECT_TRUE(Stored(jti).jwt_svid_include_jti);
  EXPECT_FALSE(Stored(jti).disable_x509_svid_prefetch);
  EXPECT_TRUE(Stored(lazy).disable_x509_svid_prefetch);
  EXPECT_FALSE(Stored(plain).jwt_svid_include_jti || Stored(plain).disable_x509_svid_prefetch);

  types::Entry got;
  {
    entryv1::GetEntryRequest req;
    req.set_id(lazy);
    auto ctx = Context();
    ASSERT_TRUE(admin_->GetEntry(ctx.get(), req, &got).ok());
    EXPECT_EQ(Describe(got), "jti=0 prefetch-off=1");
    // A mask without the bit leaves the field out; with only the bit, it is all there is.
    req.mutable_output_mask()->set_hint(true);
    auto ctx2 = Context();
    ASSERT_TRUE(admin_->GetEntry(ctx2.get(), req, &got).ok());
    EXPECT_EQ(Describe(got), "absent");
    req.mutable_output_mask()->set_hint(false);
    req.mutable_output_mask()->set_additional_attributes(true);
    auto ctx3 = Context();
    ASSERT_TRUE(admin_->GetEntry(ctx3.get(), req, &got).ok());
    EXPECT_EQ(Describe(got), "jti=0 prefetch-off=1");
    EXPECT_FALSE(got.has_spiffe_id());
  }

  entryv1::ListEntriesRequest list;
  list.mutable_output_mask()->set_additional_attributes(true);
  entryv1::ListEntriesResponse listed;
  auto ctx = Context();
  ASSERT_TRUE(admin_->ListEntries(ctx.get(), list, &listed).ok());
  ASSERT_EQ(listed.entries_size(), 4);
  std::vector<std::string> seen;
  for (const types::Entry& e : listed.entries()) seen.push_back(e.id() + " " + Describe(e));
  EXPECT_THAT(
      seen, UnorderedElementsAre(jti + " jti=1 prefetch-off=0", lazy + " jti=0 prefetch-off=1",
                                 plain + " jti=0 prefetch-off=0", both + " jti=1 prefetch-off=1"));

  // Create's output mask applies too.
  types::EntryMask without;
  without.set_spiffe_id(true);
  entryv1::BatchCreateEntryResponse masked =
      Create({ProtoEntry("/masked", MakeAttributes(true, true))}, &without);
  EXPECT_EQ(Describe(masked.results(0).entry()), "absent");
  EXPECT_TRUE(Stored(masked.results(0).entry().id()).jwt_svid_include_jti);
}

TEST_F(EntryAttributesTest, TheyDoNotMakeAnEntryDissimilar) {
  entryv1::BatchCreateEntryResponse first = Create({ProtoEntry("/web", std::nullopt)});
  entryv1::BatchCreateEntryRequest req;
  *req.add_entries() = ProtoEntry("/web", MakeAttributes(true, true));
  entryv1::BatchCreateEntryResponse again;
  auto ctx = Context();
  ASSERT_TRUE(admin_->BatchCreateEntry(ctx.get(), req, &again).ok());
  ASSERT_EQ(again.results_size(), 1);
  EXPECT_EQ(again.results(0).status().code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(again.results(0).status().message(), "similar entry already exists");
  // The existing entry comes back as it is stored.
  EXPECT_EQ(again.results(0).entry().id(), first.results(0).entry().id());
  EXPECT_EQ(Describe(again.results(0).entry()), "jti=0 prefetch-off=0");
  EXPECT_EQ(store_->CountEntries({}).value_or(-1), 1);
}

TEST_F(EntryAttributesTest, UpdateFollowsTheInputMaskBitAndReachesTheAgent) {
  entryv1::BatchCreateEntryResponse created = Create({ProtoEntry("/web", std::nullopt)});
  const types::Entry& original = created.results(0).entry();
  const std::string id = original.id();
  EXPECT_EQ(Describe(AgentView(id)), "jti=0 prefetch-off=0");
  notifier_.Clear();

  // Only the attributes bit: both flags are set, other fields keep their stored values.
  types::Entry change;
  change.set_id(id);
  change.set_hint("ignored");
  *change.mutable_additional_attributes() = MakeAttributes(true, true);
  types::EntryMask attributes_only;
  attributes_only.set_additional_attributes(true);
  entryv1::BatchUpdateEntryResponse resp = Update(change, &attributes_only);
  ASSERT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
  EXPECT_EQ(Describe(resp.results(0).entry()), "jti=1 prefetch-off=1");
  EXPECT_EQ(resp.results(0).entry().hint(), "");
  EXPECT_EQ(resp.results(0).entry().revision_number(), 1);
  Entry stored = Stored(id);
  EXPECT_TRUE(stored.jwt_svid_include_jti);
  EXPECT_TRUE(stored.disable_x509_svid_prefetch);
  EXPECT_EQ(stored.hint, "");
  EXPECT_THAT(notifier_.agents(), ::testing::ElementsAre(kAgentA));
  EXPECT_EQ(Describe(AgentView(id)), "jti=1 prefetch-off=1");

  // Another field's bit leaves them alone.
  types::EntryMask hint_only;
  hint_only.set_hint(true);
  change.clear_additional_attributes();
  change.set_hint("h");
  resp = Update(change, &hint_only);
  ASSERT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
  EXPECT_EQ(Describe(resp.results(0).entry()), "jti=1 prefetch-off=1");
  EXPECT_EQ(resp.results(0).entry().hint(), "h");

  // The bit with the message absent clears both.
  resp = Update(change, &attributes_only);
  ASSERT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
  EXPECT_EQ(Describe(resp.results(0).entry()), "jti=0 prefetch-off=0");
  EXPECT_FALSE(Stored(id).jwt_svid_include_jti);

  // One flag at a time.
  *change.mutable_additional_attributes() = MakeAttributes(false, true);
  resp = Update(change, &attributes_only);
  EXPECT_EQ(Describe(resp.results(0).entry()), "jti=0 prefetch-off=1");
  EXPECT_EQ(Describe(AgentView(id)), "jti=0 prefetch-off=1");

  // No input mask: every field is the client's (spire-controller-manager's way), these included.
  types::Entry full = original;
  *full.mutable_additional_attributes() = MakeAttributes(true, false);
  resp = Update(full, nullptr);
  ASSERT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
  EXPECT_EQ(Describe(resp.results(0).entry()), "jti=1 prefetch-off=0");
  full.clear_additional_attributes();
  resp = Update(full, nullptr);
  EXPECT_EQ(Describe(resp.results(0).entry()), "jti=0 prefetch-off=0");
  EXPECT_EQ(resp.results(0).entry().revision_number(), 6);
  EXPECT_EQ(Stored(id).revision_number, 6);

  // A rejected update changes nothing.
  types::Entry bad = full;
  bad.clear_selectors();
  *bad.mutable_additional_attributes() = MakeAttributes(true, true);
  resp = Update(bad, nullptr);
  EXPECT_EQ(resp.results(0).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resp.results(0).status().message(), "failed to convert entry: selector list is empty");
  EXPECT_FALSE(Stored(id).jwt_svid_include_jti);
  EXPECT_EQ(Stored(id).revision_number, 6);
}

TEST_F(EntryAttributesTest, AgentRpcsReturnThemUnderSpireAgentsMask) {
  entryv1::BatchCreateEntryResponse created = Create(
      {ProtoEntry("/jti", MakeAttributes(true, false)),
       ProtoEntry("/lazy", MakeAttributes(false, true)), ProtoEntry("/plain", std::nullopt)});
  const std::string jti = created.results(0).entry().id();
  const std::string lazy = created.results(1).entry().id();
  const std::string plain = created.results(2).entry().id();

  const types::EntryMask mask = AgentMask();
  entryv1::GetAuthorizedEntriesResponse got;
  ASSERT_TRUE(GetAuthorized(TlsChannel(agent_), &mask, &got).ok());
  std::vector<std::string> seen;
  for (const types::Entry& e : got.entries()) {
    seen.push_back(e.id() + " " + Describe(e));
    EXPECT_FALSE(e.has_parent_id());  // still masked as spire-agent asks
  }
  EXPECT_THAT(seen,
              UnorderedElementsAre(jti + " jti=1 prefetch-off=0", lazy + " jti=0 prefetch-off=1",
                                   plain + " jti=0 prefetch-off=0"));

  SyncRequest first;
  *first.mutable_output_mask() = mask;
  std::vector<SyncResponse> responses;
  ASSERT_TRUE(SyncOnce(TlsChannel(agent_), first, &responses).ok());
  ASSERT_EQ(responses.size(), 1u);
  seen.clear();
  for (const types::Entry& e : responses[0].entries()) seen.push_back(e.id() + " " + Describe(e));
  EXPECT_THAT(seen,
              UnorderedElementsAre(jti + " jti=1 prefetch-off=0", lazy + " jti=0 prefetch-off=1",
                                   plain + " jti=0 prefetch-off=0"));

  // A mask without the bit (an older agent) does not get them.
  types::EntryMask older = mask;
  older.set_additional_attributes(false);
  ASSERT_TRUE(GetAuthorized(TlsChannel(agent_), &older, &got).ok());
  for (const types::Entry& e : got.entries()) EXPECT_EQ(Describe(e), "absent") << e.id();
}

TEST_F(EntryAttributesTest, PagedSyncServesThemWithTheRequestedEntries) {
  // More than a page, straight into the index (the agent RPCs read nothing else).
  const size_t n = EntryService::kSyncPageSize + 3;
  for (size_t i = 0; i < n; ++i) {
    char suffix[16];
    std::snprintf(suffix, sizeof(suffix), "%05zu", i);
    Entry entry = MakeEntry(std::string("spiffe://example.org/p/") + suffix, kAgentA,
                            {"unix:uid:" + std::to_string(i)});
    entry.id = std::string("p-") + suffix;
    entry.jwt_svid_include_jti = i % 2 == 0;
    entry.disable_x509_svid_prefetch = i % 3 == 0;
    index_->Upsert(entry);
  }
  Stream s = OpenSync(TlsChannel(agent_));
  SyncRequest first;
  *first.mutable_output_mask() = AgentMask();
  ASSERT_TRUE(s.rw->Write(first));
  size_t revisions = 0;
  while (true) {
    SyncResponse page = s.Read();
    revisions += static_cast<size_t>(page.entry_revisions_size());
    if (!page.more() || HasFailure()) break;
  }
  ASSERT_EQ(revisions, n);
  SyncRequest ask;
  ask.add_ids("p-00000");
  ask.add_ids("p-00001");
  ask.add_ids("p-00003");
  ASSERT_TRUE(s.rw->Write(ask));
  SyncResponse entries = s.Read();
  EXPECT_FALSE(entries.more());
  std::vector<std::string> seen;
  for (const types::Entry& e : entries.entries()) seen.push_back(e.id() + " " + Describe(e));
  EXPECT_THAT(seen,
              ::testing::ElementsAre("p-00000 jti=1 prefetch-off=1", "p-00001 jti=0 prefetch-off=0",
                                     "p-00003 jti=0 prefetch-off=1"));
  ASSERT_TRUE(s.rw->WritesDone());
  grpc::Status status = s.rw->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

}  // namespace
}  // namespace tessera::server::testing
