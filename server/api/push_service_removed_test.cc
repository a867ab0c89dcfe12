// PushService and agents that are banned or deleted: their open streams end with
// PermissionDenied (directly, and through AgentService's BanAgent / DeleteAgent), other agents'
// streams are untouched, and a removed agent cannot open a new one.
#include <optional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/agent_service.h"
#include "server/api/push_service.h"
#include "server/api/push_test_util.h"
#include "server/api/service_test_util.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"

namespace tessera::server::testing {
namespace {

namespace agentv1 = ::spire::api::server::agent::v1;
using ::testing::HasSubstr;

// The stream ended with PermissionDenied because its agent was removed.
void ExpectEndedAsRemoved(WatchClient& client) {
  std::optional<grpc::Status> status = client.WaitEnd(kWait);
  ASSERT_TRUE(status.has_value()) << "the stream is still open";
  EXPECT_EQ(status->error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status->error_message(), "agent is banned or was deleted");
}

TEST_F(PushServiceTest, AgentRemovedEndsEveryStreamOfThatAgentOnly) {
  Start();
  auto identity_a = AddAgent(kAgentA);
  WatchClient a1(TlsChannel(identity_a));
  WatchClient a2(TlsChannel(identity_a));
  WatchClient b(TlsChannel(AddAgent(kAgentB)));
  for (WatchClient* client : {&a1, &a2, &b}) ASSERT_TRUE(client->Next(kWait).has_value());

  push_->AgentRemoved(Id(kAgentA));
  for (WatchClient* client : {&a1, &a2}) {
    // One last hint to sync (where the agent learns it was removed), then the end.
    std::optional<Notification> last = client->Next(kWait);
    ASSERT_TRUE(last.has_value());
    EXPECT_TRUE(last->entries_changed());
    ExpectEndedAsRemoved(*client);
  }
  EXPECT_EQ(WaitForOpenStreams(1), 1u);

  // An agent without streams: nothing happens; the other agent is still notified.
  push_->AgentRemoved(Id(kAgentC));
  push_->EntriesChanged({Id(kAgentA), Id(kAgentB)});
  auto n = b.Next(kWait);
  ASSERT_TRUE(n.has_value());
  EXPECT_TRUE(n->entries_changed());
  EXPECT_EQ(push_->open_streams(), 1u);
}

class PushAndAgentServiceTest : public PushServiceTest {
 protected:
  void StartWithAgentService() {
    push_ = std::make_unique<PushService>(*authorizer_, [this] { return sequence_.load(); });
    ServiceDeps service_deps = deps();
    service_deps.notifier = push_.get();
    agents_ = std::make_unique<AgentService>(service_deps, AgentServiceOptions{});
    StartServer({push_.get(), agents_.get()});
  }

  grpc::Status Admin(bool ban, std::string_view agent_path) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    google::protobuf::Empty out;
    auto stub = agentv1::Agent::NewStub(AdminChannel());
    if (ban) {
      agentv1::BanAgentRequest request;
      request.mutable_id()->set_trust_domain("example.org");
      request.mutable_id()->set_path(std::string(agent_path));
      return stub->BanAgent(&ctx, request, &out);
    }
    agentv1::DeleteAgentRequest request;
    request.mutable_id()->set_trust_domain("example.org");
    request.mutable_id()->set_path(std::string(agent_path));
    return stub->DeleteAgent(&ctx, request, &out);
  }

  std::unique_ptr<AgentService> agents_;
};

TEST_F(PushAndAgentServiceTest, BannedAndDeletedAgentsStreamsEndAndStayClosed) {
  StartWithAgentService();
  auto identity_a = AddAgent(kAgentA);
  auto identity_b = AddAgent(kAgentB);
  WatchClient a(TlsChannel(identity_a));
  WatchClient b(TlsChannel(identity_b));
  WatchClient c(TlsChannel(AddAgent(kAgentC)));
  for (WatchClient* client : {&a, &b, &c}) ASSERT_TRUE(client->Next(kWait).has_value());

  grpc::Status banned = Admin(/*ban=*/true, "/spire/agent/x/a");
  ASSERT_TRUE(banned.ok()) << banned.error_message();
  ExpectEndedAsRemoved(a);
  grpc::Status deleted = Admin(/*ban=*/false, "/spire/agent/x/b");
  ASSERT_TRUE(deleted.ok()) << deleted.error_message();
  ExpectEndedAsRemoved(b);
  EXPECT_EQ(WaitForOpenStreams(1), 1u);
  EXPECT_FALSE(c.Next(kQuiet).has_value());  // the third agent heard nothing of it

  // Reconnecting with the same SVID is refused by the authorizer.
  for (const auto* identity : {&identity_a, &identity_b}) {
    WatchClient again(TlsChannel(*identity));
    std::optional<grpc::Status> status = again.WaitEnd(kWait);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(status->error_message(), HasSubstr("authorization denied"));
  }
  EXPECT_EQ(WaitForOpenStreams(1), 1u);
}

}  // namespace
}  // namespace tessera::server::testing
