// `agent list|show|evict|ban|count` and `token generate` through CLI11 against the real
// AgentService over the admin socket.
#include <chrono>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/cli/cli_test_util.h"
#include "spire/api/server/agent/v1/agent.pb.h"

namespace tessera::server::testing {
namespace {

namespace agentv1 = ::spire::api::server::agent::v1;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kAgent1[] = "spiffe://example.org/spire/agent/x/1";
constexpr char kAgent2[] = "spiffe://example.org/spire/agent/x/2";

class AgentCliTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (HasFatalFailure()) return;
    AddAgent(kAgent1, Selectors({"k8s:cluster:c1", "k8s:zone:a"}));
    AddAgent(kAgent2, Selectors({"k8s:cluster:c2"}));
  }

  std::string Serial(std::string_view id) {
    auto node = store_->FetchAttestedNode(Id(id));
    EXPECT_TRUE(node.ok() && node->has_value());
    return node.ok() && node->has_value() ? (*node)->cert_serial : "";
  }
};

TEST_F(AgentCliTest, ListAndCount) {
  CliResult r = Run({"agent", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("Found 2 attested agents:\n\nSPIFFE ID         : " +
                                std::string(kAgent1) + "\nAttestation type  : join_token\n"));
  EXPECT_THAT(r.out, HasSubstr("Serial number     : " + Serial(kAgent1) + "\n"));
  EXPECT_THAT(r.out, HasSubstr("SPIFFE ID         : " + std::string(kAgent2) + "\n"));
  EXPECT_THAT(r.out, MatchesRegex("(.|\n)*Expiration time   : [0-9]{4}-[0-9]{2}-[0-9]{2} "
                                  "[0-9]{2}:[0-9]{2}:[0-9]{2} \\+0000 UTC\n(.|\n)*"));
  EXPECT_THAT(r.out, HasSubstr("Can re-attest     : false\n"));

  r = Run({"agent", "list", "--selector", "k8s:cluster:c1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("Found 1 attested agent:\n\n"));
  EXPECT_THAT(r.out, Not(HasSubstr(kAgent2)));

  r = Run({"agent", "list", "--selector", "k8s:cluster:c1", "--selector", "k8s:cluster:c2",
           "--match", "any", "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  agentv1::ListAgentsResponse list;
  ASSERT_TRUE(ParseJson(r.out, &list));
  EXPECT_EQ(list.agents_size(), 2);

  EXPECT_EQ(Run({"agent", "list", "--attestation-type", "x509pop"}).out,
            "No attested agents found\n");
  EXPECT_EQ(Run({"agent", "count"}).out, "2 attested agents\n");
  EXPECT_EQ(Run({"agent", "count", "--selector", "k8s:zone:a"}).out, "1 attested agent\n");
  r = Run({"agent", "count", "--output", "json"});
  agentv1::CountAgentsResponse count;
  ASSERT_TRUE(ParseJson(r.out, &count));
  EXPECT_EQ(count.count(), 2);
}

TEST_F(AgentCliTest, ShowBanEvict) {
  CliResult r = Run({"agent", "show", "--spiffe-id", kAgent1});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("Found an attested agent given its SPIFFE ID\n\nSPIFFE ID    "));
  EXPECT_THAT(r.out, HasSubstr("Selectors         : k8s:cluster:c1\n"
                               "Selectors         : k8s:zone:a\n"));

  r = Run({"agent", "ban", "--spiffe-id", kAgent1});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Agent banned successfully\n");
  EXPECT_EQ(Serial(kAgent1), "");
  r = Run({"agent", "show", "--spiffe-id", kAgent1, "--output", "json"});
  types::Agent agent;
  ASSERT_TRUE(ParseJson(r.out, &agent));
  EXPECT_TRUE(agent.banned());
  EXPECT_THAT(Run({"agent", "show", "--spiffe-id", kAgent1}).out,
              HasSubstr("Banned            : true\n"));
  EXPECT_EQ(Run({"agent", "count", "--banned"}).out, "1 attested agent\n");
  EXPECT_EQ(Run({"agent", "count", "--banned=false"}).out, "1 attested agent\n");

  r = Run({"agent", "evict", "--spiffe-id", kAgent1});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Agent evicted successfully\n");
  auto node = store_->FetchAttestedNode(Id(kAgent1));
  ASSERT_TRUE(node.ok());
  EXPECT_FALSE(node->has_value());
  EXPECT_EQ(Run({"agent", "count"}).out, "1 attested agent\n");
}

TEST_F(AgentCliTest, Refusals) {
  CliResult r = Run({"agent", "show"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "a SPIFFE ID is required\n");
  r = Run({"agent", "ban", "--spiffe-id", "example.org/agent"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("--spiffe-id \"example.org/agent\": invalid SPIFFE ID"));
  r = Run({"agent", "list", "--selector", "novalue:"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("--selector: invalid selector"));
  EXPECT_EQ(Serial(kAgent1).empty(), false);

  r = Run({"agent", "evict", "--spiffe-id", "spiffe://example.org/spire/agent/x/404"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to evict agent: agent not found\n");
  r = Run({"agent", "ban", "--spiffe-id", "spiffe://example.org/workload"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("failed to ban agent: invalid agent ID: "));
  EXPECT_THAT(r.err, HasSubstr("path is not in the agent namespace"));
  r = Run({"agent", "show", "--spiffe-id", "spiffe://example.org/spire/agent/x/404"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to get agent: agent not found\n");
}

TEST_F(AgentCliTest, TokenGenerate) {
  CliResult r = Run({"token", "generate"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_THAT(r.out, MatchesRegex("Token: [0-9a-f-]{36}\n"));
  std::string token = r.out.substr(7, 36);
  auto taken = store_->TakeJoinToken(token);
  ASSERT_TRUE(taken.ok()) << taken.status();
  int64_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  EXPECT_NEAR(taken->expires_at, now + 600, 5);  // spire-server's default TTL

  // With --spiffe-id the server registers the ID for the agent that will use the token.
  r = Run({"token", "generate", "--spiffe-id", "spiffe://example.org/node/web", "--ttl", "1h",
           "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  types::JoinToken json;
  ASSERT_TRUE(ParseJson(r.out, &json));
  EXPECT_NEAR(json.expires_at(), now + 3600, 5);
  auto entries = store_->ListAllEntries();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].spiffe_id.str(), "spiffe://example.org/node/web");
  EXPECT_EQ((*entries)[0].parent_id.str(),
            "spiffe://example.org/spire/agent/join_token/" + json.value());

  r = Run({"token", "generate", "--ttl", "0"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "--ttl must be at least one second\n");
  r = Run({"token", "generate", "--ttl", "soon"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("--ttl: invalid duration \"soon\""));
  r = Run({"token", "generate", "--spiffe-id", "spiffe://other.org/x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("failed to generate token: invalid agent ID: "));
  EXPECT_THAT(r.out, IsEmpty());
}

}  // namespace
}  // namespace tessera::server::testing
