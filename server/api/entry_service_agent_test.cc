// EntryService's agent RPCs (GetAuthorizedEntries, SyncAuthorizedEntries) over real gRPC with
// TLS: which entries an agent gets (SPIRE-API-FACTS §8), output masks and the first sync request
// (§9), and who may call. The paged sync of more than 500 entries is in
// entry_service_agent_paging_test.cc.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/entry_service_agent_test_util.h"

namespace tessera::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// ---------------------------------------------------------------------------------------------
// Which entries

class AuthorizedSetTest : public EntryServiceAgentTest {
 protected:
  void SetUp() override {
    EntryServiceAgentTest::SetUp();
    if (HasFatalFailure()) return;
    agent_a_ = AddAgent(kAgentA, Selectors({"k8s:cluster:one", "k8s:zone:z1"}));
    agent_b_ = AddAgent(kAgentB, Selectors({"k8s:cluster:two"}));
    // Through the admin RPC: the service itself keeps the index current.
    direct_ = CreateViaAdmin(MakeEntry("spiffe://example.org/web", kAgentA, {"unix:uid:1"}));
    grandchild_ = CreateViaAdmin(
        MakeEntry("spiffe://example.org/web/sidecar", "spiffe://example.org/web", {"unix:uid:2"}));
    alias_one_ =
        CreateViaAdmin(MakeEntry("spiffe://example.org/cluster/one",
                                 "spiffe://example.org/spire/server", {"k8s:cluster:one"}));
    via_alias_ = CreateViaAdmin(
        MakeEntry("spiffe://example.org/db", "spiffe://example.org/cluster/one", {"unix:uid:3"}));
    // Not A's: parented to B; under an alias A's selectors do not satisfy (needs a selector A
    // lacks); in another agent's subtree.
    of_b_ = CreateViaAdmin(MakeEntry("spiffe://example.org/b-web", kAgentB, {"unix:uid:4"}));
    alias_strict_ = CreateViaAdmin(MakeEntry("spiffe://example.org/cluster/strict",
                                             "spiffe://example.org/spire/server",
                                             {"k8s:cluster:one", "k8s:zone:z2"}));
    under_strict_ = CreateViaAdmin(MakeEntry(
        "spiffe://example.org/strict-db", "spiffe://example.org/cluster/strict", {"unix:uid:5"}));
    ASSERT_FALSE(HasFailure());
  }

  std::optional<spiffe::ClientIdentity> agent_a_, agent_b_;
  std::string direct_, grandchild_, alias_one_, via_alias_, of_b_, alias_strict_, under_strict_;
};

TEST_F(AuthorizedSetTest, GetAuthorizedEntriesReturnsExactlyTheAgentsEntriesWithAllFields) {
  entryv1::GetAuthorizedEntriesResponse resp;
  grpc::Status s = GetAuthorized(TlsChannel(agent_a_), nullptr, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(Ids(resp.entries()), UnorderedElementsAre(direct_, grandchild_, via_alias_));
  // No mask: every field, as stored.
  for (const types::Entry& e : resp.entries()) {
    EXPECT_TRUE(Same(e, Expected(e.id(), nullptr))) << e.DebugString();
    EXPECT_TRUE(e.has_parent_id());
  }

  entryv1::GetAuthorizedEntriesResponse resp_b;
  s = GetAuthorized(TlsChannel(agent_b_), nullptr, &resp_b);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(Ids(resp_b.entries()), ElementsAre(of_b_));
}

TEST_F(AuthorizedSetTest, SmallSyncSendsAllEntriesInOneResponseAndEndsTheStream) {
  SyncRequest first;
  *first.mutable_output_mask() = AgentMask();
  std::vector<SyncResponse> responses;
  grpc::Status s = SyncOnce(TlsChannel(agent_a_), first, &responses);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_FALSE(responses[0].more());
  EXPECT_THAT(responses[0].entry_revisions(), IsEmpty());
  EXPECT_THAT(Ids(responses[0].entries()), UnorderedElementsAre(direct_, grandchild_, via_alias_));
  const types::EntryMask mask = AgentMask();
  for (const types::Entry& e : responses[0].entries()) {
    EXPECT_TRUE(Same(e, Expected(e.id(), &mask))) << e.DebugString();
  }

  responses.clear();
  s = SyncOnce(TlsChannel(agent_b_), first, &responses);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_THAT(Ids(responses[0].entries()), ElementsAre(of_b_));
}

TEST_F(AuthorizedSetTest, DeletionThroughTheAdminApiShowsAtOnce) {
  entryv1::BatchDeleteEntryRequest del;
  del.add_ids(direct_);
  entryv1::BatchDeleteEntryResponse del_resp;
  auto ctx = Context();
  ASSERT_TRUE(
      entryv1::Entry::NewStub(AdminChannel())->BatchDeleteEntry(ctx.get(), del, &del_resp).ok());
  ASSERT_EQ(del_resp.results(0).status().code(), 0);

  entryv1::GetAuthorizedEntriesResponse resp;
  ASSERT_TRUE(GetAuthorized(TlsChannel(agent_a_), nullptr, &resp).ok());
  // The grandchild hung below the deleted entry's spiffe_id: it goes too.
  EXPECT_THAT(Ids(resp.entries()), ElementsAre(via_alias_));
}

TEST_F(AuthorizedSetTest, AgentWithoutEntriesGetsOneEmptyResponse) {
  auto lonely = AddAgent("spiffe://example.org/spire/agent/x/lonely");
  entryv1::GetAuthorizedEntriesResponse resp;
  ASSERT_TRUE(GetAuthorized(TlsChannel(lonely), nullptr, &resp).ok());
  EXPECT_THAT(resp.entries(), IsEmpty());

  std::vector<SyncResponse> responses;
  grpc::Status s = SyncOnce(TlsChannel(lonely), SyncRequest{}, &responses);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_THAT(responses[0].entries(), IsEmpty());
  EXPECT_THAT(responses[0].entry_revisions(), IsEmpty());
  EXPECT_FALSE(responses[0].more());
}

// ---------------------------------------------------------------------------------------------
// Masks and the first request

class MaskTest : public EntryServiceAgentTest {
 protected:
  void SetUp() override {
    EntryServiceAgentTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(store_->SetBundle(MakeBundle("other.org")).ok());
    agent_ = AddAgent(kAgentA);
    Entry full = MakeEntry("spiffe://example.org/full", kAgentA, {"unix:uid:1", "unix:gid:2"});
    full.x509_svid_ttl = 3600;
    full.jwt_svid_ttl = 600;
    full.dns_names = {"full.example.org"};
    full.federates_with = {Td("other.org")};
    full.admin = true;
    full.downstream = true;
    full.store_svid = true;
    full.hint = "external";
    full.expires_at = std::chrono::system_clock::to_time_t(clock_.Now()) + 86400;
    id_ = Put(full).id;
  }

  std::optional<spiffe::ClientIdentity> agent_;
  std::string id_;
};

TEST_F(MaskTest, AgentMaskReturnsOnlyTheAgentFields) {
  const types::EntryMask mask = AgentMask();
  entryv1::GetAuthorizedEntriesResponse resp;
  ASSERT_TRUE(GetAuthorized(TlsChannel(agent_), &mask, &resp).ok());
  ASSERT_EQ(resp.entries_size(), 1);
  const types::Entry& e = resp.entries(0);
  EXPECT_EQ(e.id(), id_);
  EXPECT_EQ(e.spiffe_id().path(), "/full");
  EXPECT_EQ(e.selectors_size(), 2);
  EXPECT_THAT(e.federates_with(), ElementsAre("other.org"));
  EXPECT_TRUE(e.admin());
  EXPECT_TRUE(e.downstream());
  EXPECT_TRUE(e.store_svid());
  EXPECT_EQ(e.hint(), "external");
  EXPECT_GT(e.created_at(), 0);
  // Not for agents.
  EXPECT_FALSE(e.has_parent_id());
  EXPECT_EQ(e.x509_svid_ttl(), 0);
  EXPECT_EQ(e.jwt_svid_ttl(), 0);
  EXPECT_THAT(e.dns_names(), IsEmpty());
  EXPECT_EQ(e.expires_at(), 0);

  SyncRequest first;
  *first.mutable_output_mask() = mask;
  std::vector<SyncResponse> responses;
  ASSERT_TRUE(SyncOnce(TlsChannel(agent_), first, &responses).ok());
  ASSERT_EQ(responses.size(), 1u);
  ASSERT_EQ(responses[0].entries_size(), 1);
  EXPECT_TRUE(Same(responses[0].entries(0), e)) << responses[0].entries(0).DebugString();
}

TEST_F(MaskTest, EmptyMaskLeavesOnlyTheId) {
  types::EntryMask none;
  entryv1::GetAuthorizedEntriesResponse resp;
  ASSERT_TRUE(GetAuthorized(TlsChannel(agent_), &none, &resp).ok());
  ASSERT_EQ(resp.entries_size(), 1);
  types::Entry only_id;
  only_id.set_id(id_);
  EXPECT_TRUE(Same(resp.entries(0), only_id)) << resp.entries(0).DebugString();

  // Sync needs the revision number, and nothing else.
  types::EntryMask revision_only;
  revision_only.set_revision_number(true);
  SyncRequest first;
  *first.mutable_output_mask() = revision_only;
  std::vector<SyncResponse> responses;
  ASSERT_TRUE(SyncOnce(TlsChannel(agent_), first, &responses).ok());
  ASSERT_EQ(responses.size(), 1u);
  ASSERT_EQ(responses[0].entries_size(), 1);
  EXPECT_TRUE(Same(responses[0].entries(0), only_id)) << responses[0].entries(0).DebugString();
}

TEST_F(MaskTest, SyncRefusesAMaskWithoutTheRevisionNumber) {
  SyncRequest first;
  *first.mutable_output_mask() = AgentMask();
  first.mutable_output_mask()->set_revision_number(false);
  std::vector<SyncResponse> responses;
  grpc::Status s = SyncOnce(TlsChannel(agent_), first, &responses);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "revision number cannot be masked");
  EXPECT_THAT(responses, IsEmpty());

  // A present but empty mask is a mask without the revision number.
  responses.clear();
  first.mutable_output_mask()->Clear();
  s = SyncOnce(TlsChannel(agent_), first, &responses);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "revision number cannot be masked");
}

TEST_F(MaskTest, SyncRefusesIdsOnTheFirstRequest) {
  SyncRequest first;
  *first.mutable_output_mask() = AgentMask();
  first.add_ids(id_);
  std::vector<SyncResponse> responses;
  grpc::Status s = SyncOnce(TlsChannel(agent_), first, &responses);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "specifying IDs on initial request is not supported");
  EXPECT_THAT(responses, IsEmpty());
}

TEST_F(MaskTest, NoMaskOnSyncMeansEveryField) {
  std::vector<SyncResponse> responses;
  ASSERT_TRUE(SyncOnce(TlsChannel(agent_), SyncRequest{}, &responses).ok());
  ASSERT_EQ(responses.size(), 1u);
  ASSERT_EQ(responses[0].entries_size(), 1);
  EXPECT_TRUE(Same(responses[0].entries(0), Expected(id_, nullptr)));
  EXPECT_EQ(responses[0].entries(0).x509_svid_ttl(), 3600);
}

TEST_F(MaskTest, ClientLeavingBeforeTheFirstRequestEndsTheStreamNormally) {
  Stream s = OpenSync(TlsChannel(agent_));
  s.rw->WritesDone();
  SyncResponse resp;
  EXPECT_FALSE(s.rw->Read(&resp));
  grpc::Status status = s.rw->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// ---------------------------------------------------------------------------------------------
// Authorization

class AgentAuthTest : public EntryServiceAgentTest {
 protected:
  grpc::Status SyncStatus(const std::shared_ptr<grpc::Channel>& channel) {
    std::vector<SyncResponse> responses;
    SyncRequest first;
    *first.mutable_output_mask() = AgentMask();
    grpc::Status s = SyncOnce(channel, first, &responses);
    EXPECT_THAT(responses, IsEmpty());
    return s;
  }
  grpc::Status GetStatus(const std::shared_ptr<grpc::Channel>& channel) {
    entryv1::GetAuthorizedEntriesResponse resp;
    grpc::Status s = GetAuthorized(channel, nullptr, &resp);
    EXPECT_THAT(resp.entries(), IsEmpty());
    return s;
  }
};

TEST_F(AgentAuthTest, AnonymousTlsCallerIsRefused) {
  Put(MakeEntry("spiffe://example.org/web", kAgentA, {"unix:uid:1"}));
  for (grpc::Status s : {GetStatus(TlsChannel()), SyncStatus(TlsChannel())}) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(s.error_message(), "caller does not have an X509-SVID");
  }
}

TEST_F(AgentAuthTest, LocalAdminIsNotAnAgent) {
  for (grpc::Status s : {GetStatus(AdminChannel()), SyncStatus(AdminChannel())}) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(s.error_message(), HasSubstr("authorization denied for method /spire.api.server"));
  }
}

TEST_F(AgentAuthTest, UnattestedSvidIsRefusedWithTheReason) {
  // A CA-signed SVID with an agent ID that has no node record, though entries hang below it.
  Put(MakeEntry("spiffe://example.org/web", kAgentA, {"unix:uid:1"}));
  auto stranger = IdentityFor(kAgentA);
  grpc::Status s = GetStatus(TlsChannel(stranger));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), std::string("authorization denied for method ") + kGetMethod +
                                   ": agent \"" + kAgentA + "\" is not attested");
  EXPECT_EQ(DetailsReason(s), Reason::AGENT_NOT_ATTESTED);

  s = SyncStatus(TlsChannel(stranger));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), std::string("authorization denied for method ") + kSyncMethod +
                                   ": agent \"" + kAgentA + "\" is not attested");
  EXPECT_EQ(DetailsReason(s), Reason::AGENT_NOT_ATTESTED);
}

TEST_F(AgentAuthTest, BannedAgentIsRefused) {
  auto agent = AddAgent(kAgentA);
  Put(MakeEntry("spiffe://example.org/web", kAgentA, {"unix:uid:1"}));
  entryv1::GetAuthorizedEntriesResponse before;
  ASSERT_TRUE(GetAuthorized(TlsChannel(agent), nullptr, &before).ok());
  ASSERT_EQ(before.entries_size(), 1);
  AttestedNode banned = MakeNode(kAgentA, "");
  NodeMask mask;
  mask.cert_serial = true;
  mask.new_cert_serial = true;
  ASSERT_TRUE(store_->UpdateAttestedNode(banned, mask).ok());

  for (grpc::Status s : {GetStatus(TlsChannel(agent)), SyncStatus(TlsChannel(agent))}) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(s.error_message(), HasSubstr(std::string("agent \"") + kAgentA + "\" is banned"));
    EXPECT_EQ(DetailsReason(s), Reason::AGENT_BANNED);
  }
}

TEST_F(AgentAuthTest, AgentCannotCallAdminRpcs) {
  auto agent = AddAgent(kAgentA);
  entryv1::ListEntriesResponse resp;
  auto ctx = Context();
  grpc::Status s = entryv1::Entry::NewStub(TlsChannel(agent))->ListEntries(ctx.get(), {}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(resp.entries(), IsEmpty());
}

}  // namespace
}  // namespace tessera::server::testing
