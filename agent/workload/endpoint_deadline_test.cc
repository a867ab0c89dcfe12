// The attestation deadline at the endpoint: an attestor that answers too late does not fail the
// call (it is answered at the deadline with what the others found), also after many calls that
// ended before their deadlines.
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/workload/endpoint.h"
#include "agent/workload/workload_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::agent::testing {
namespace {

using ::testing::ElementsAre;

class AttestationDeadlineTest : public EndpointFixture {
 protected:
  // With a 300 ms attestation timeout and an attestor that answers too late: the call is
  // answered at the deadline, with only the identity of the calling uid.
  void ExpectAnsweredAtTheDeadlineWithUidOnly() {
    auto start = std::chrono::steady_clock::now();
    auto context = Client()->FetchX509Context();
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(context.ok()) << context.status();
    EXPECT_THAT(Ids(*context), ElementsAre("spiffe://example.org/uid"));
    EXPECT_GE(took, std::chrono::milliseconds(250));
    EXPECT_LT(took, std::chrono::milliseconds(1200));
  }
};

TEST_F(AttestationDeadlineTest, SlowAttestorDoesNotFailTheCall) {
  auto slow = std::make_shared<FakeAttestor>("slow", std::vector<std::string>{"slow:x"},
                                             std::chrono::milliseconds(1500));
  WorkloadEndpointOptions options = Options();
  options.attestors.push_back(slow);
  options.attestation_timeout = std::chrono::milliseconds(300);
  StartEndpoint(std::move(options));
  Publish({{.id = "uid", .spiffe_id = "spiffe://example.org/uid", .selectors = {Uid(::geteuid())}},
           {.id = "slow", .spiffe_id = "spiffe://example.org/slow", .selectors = {"slow:x"}}});

  // The deadline answered with what the unix attestor found; the late answer is ignored.
  ExpectAnsweredAtTheDeadlineWithUidOnly();
}

TEST_F(AttestationDeadlineTest, DeadlineStillFiresAfterManyCallsEndedBeforeTheirs) {
  // Calls that ended are dropped from the deadline timer without waking it for each; the timer
  // must still wake for the first call that needs it.
  auto sometimes_slow = std::make_shared<FakeAttestor>("slow", std::vector<std::string>{"slow:x"});
  WorkloadEndpointOptions options = Options();
  options.attestors.push_back(sometimes_slow);
  options.attestation_timeout = std::chrono::milliseconds(300);
  StartEndpoint(std::move(options));
  Publish({{.id = "uid", .spiffe_id = "spiffe://example.org/uid", .selectors = {Uid(::geteuid())}},
           {.id = "slow",
            .spiffe_id = "spiffe://example.org/slow",
            .selectors = {Uid(::geteuid()), "slow:x"}}});
  for (int i = 0; i < 20; ++i) {
    auto context = Client()->FetchX509Context();
    ASSERT_TRUE(context.ok()) << context.status();
    EXPECT_THAT(Ids(*context),
                ElementsAre("spiffe://example.org/slow", "spiffe://example.org/uid"));
  }

  sometimes_slow->set_delay(std::chrono::milliseconds(1500));
  ExpectAnsweredAtTheDeadlineWithUidOnly();  // right after the quick calls
  ExpectAnsweredAtTheDeadlineWithUidOnly();  // and on its own
}

}  // namespace
}  // namespace tessera::agent::testing
