// Test-only fixture for the admin CLI tests: the real Entry, Bundle, Agent and SVID services
// served by the shared ServiceTest harness (real SQLite store, real CA, admin Unix socket), and a
// Run() that drives the CLI through CLI11 parsing with string streams, as an operator would from
// the shell. One fixture per test; not thread-safe.
#pragma once

#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/api/agent_service.h"
#include "server/api/bundle_service.h"
#include "server/api/entry_service.h"
#include "server/api/service_test_util.h"
#include "server/api/svid_service.h"
#include "server/cli/admin_cli.h"

namespace tessera::server::testing {

namespace types = ::spire::api::types;

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

class CliTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    entry_service_ = std::make_unique<EntryService>(deps());
    bundle_service_ = std::make_unique<BundleService>(deps());
    agent_service_ =
        std::make_unique<AgentService>(deps(), AgentServiceOptions{.join_token_enabled = true});
    svid_service_ = std::make_unique<SvidService>(deps());
    StartServer(
        {entry_service_.get(), bundle_service_.get(), agent_service_.get(), svid_service_.get()});
  }

  // Runs `tessera-server <args...> --socket-path <the test server's socket>`, with `input` as
  // standard input.
  CliResult Run(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), "tessera-server");
    args.push_back("--socket-path");
    args.push_back(socket_path());
    return RunRaw(std::move(args), input);
  }

  // Runs exactly `args` (args[0] is the program name).
  static CliResult RunRaw(const std::vector<std::string>& args, const std::string& input = "") {
    std::ostringstream out;
    std::ostringstream err;
    std::istringstream in(input);
    CliResult result;
    result.code = cli::RunAdminCli(args, out, err, in);
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  // Parses protojson output into `message`.
  template <typename Message>
  static ::testing::AssertionResult ParseJson(const std::string& json, Message* message) {
    auto status = google::protobuf::util::JsonStringToMessage(json, message);
    if (!status.ok()) {
      return ::testing::AssertionFailure() << status.ToString() << " in: " << json;
    }
    return ::testing::AssertionSuccess();
  }

  int64_t StoredEntryCount() {
    auto count = store_->CountEntries(EntryFilter{});
    EXPECT_TRUE(count.ok()) << count.status();
    return count.value_or(-1);
  }

  std::unique_ptr<EntryService> entry_service_;
  std::unique_ptr<BundleService> bundle_service_;
  std::unique_ptr<AgentService> agent_service_;
  std::unique_ptr<SvidService> svid_service_;
};

}  // namespace tessera::server::testing
