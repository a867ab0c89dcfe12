// Test-only fixture for the agent client command tests: the fake Workload API of
// spiffe/workload_client_test_util.h on a Unix socket, loaded with two X509-SVIDs (web and db, of
// example.org, with hints), a federated other.org bundle, X.509 and JWT bundles and JWT minting;
// and Run(), which drives the commands through CLI11 parsing with string streams, as a user
// would from the shell. SyncStream is an ostream a command may write on one thread while the
// test reads it on another. One fixture per test; not thread-safe beyond SyncStream.
#pragma once

#include <mutex>
#include <optional>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <string>
#include <utility>
#include <vector>

#include "agent/cli/api_cli.h"
#include "gtest/gtest.h"
#include "spiffe/workload_client_test_util.h"

namespace tessera::agent::cli::testing {

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

// An ostream whose contents another thread may read at any time. Unbuffered: every write goes
// through the mutex.
class SyncStream : public std::ostream {
 public:
  SyncStream() : std::ostream(&buf_) {}
  std::string str() const { return buf_.str(); }

 private:
  class Buf : public std::streambuf {
   public:
    std::string str() const {
      std::lock_guard lock(mu_);
      return data_;
    }

   protected:
    int_type overflow(int_type c) override {
      if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
      std::lock_guard lock(mu_);
      data_.push_back(traits_type::to_char_type(c));
      return c;
    }
    std::streamsize xsputn(const char* s, std::streamsize n) override {
      std::lock_guard lock(mu_);
      data_.append(s, static_cast<size_t>(n));
      return n;
    }

   private:
    mutable std::mutex mu_;
    std::string data_;
  };
  Buf buf_;
};

class AgentCliTest : public spiffe::testing::WorkloadApiTest {
 protected:
  static constexpr char kWeb[] = "spiffe://example.org/web";
  static constexpr char kDb[] = "spiffe://example.org/db";

  void SetUp() override {
    WorkloadApiTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_OK_AND_ASSIGN(web_, pki().Svid(kWeb, "web"));
    ASSERT_OK_AND_ASSIGN(db_, pki().Svid(kDb, "db"));
    fake_->SetX509(X509Response({web_, db_}));
    fake_->SetX509Bundles(pki().X509BundlesResponse());
    ASSERT_OK_AND_ASSIGN(::JWTBundlesResponse jwt_bundles, pki().JwtBundlesResponse());
    fake_->SetJwtBundles(jwt_bundles);
    ASSERT_OK_AND_ASSIGN(spiffe::BundleSet authorities, pki().JwtAuthorities());
    fake_->SetJwt(pki().jwt_key, pki().jwt_key_id,
                  {{spiffe::testing::Id(kWeb), "web"}, {spiffe::testing::Id(kDb), "db"}},
                  authorities);
  }

  // A response with these SVIDs and other.org as a federated bundle.
  ::X509SVIDResponse X509Response(const std::vector<::X509SVID>& svids) const {
    ::X509SVIDResponse response;
    for (const ::X509SVID& svid : svids) *response.add_svids() = svid;
    (*response.mutable_federated_bundles())["spiffe://other.org"] = pki().other_root.cert.ToDer();
    return response;
  }

  // No SPIFFE_ENDPOINT_SOCKET, and a default socket where nothing listens: only --socket-path
  // reaches the fake.
  static ApiCliOptions IsolatedOptions() {
    return ApiCliOptions{.default_socket_path = "/nonexistent/tessera-cli-test/api.sock",
                         .endpoint_socket_env = [] { return std::optional<std::string>(); }};
  }

  // Runs `tessera-agent <args...> --socket-path <the fake's socket>`.
  CliResult Run(std::vector<std::string> args) {
    args.push_back("--socket-path");
    args.push_back(socket_path_);
    return RunWith(std::move(args), IsolatedOptions());
  }

  // Runs `tessera-agent <args...>` exactly.
  static CliResult RunWith(std::vector<std::string> args, ApiCliOptions options) {
    args.insert(args.begin(), "tessera-agent");
    std::ostringstream out;
    std::ostringstream err;
    CliResult result;
    result.code = RunApiCli(args, out, err, std::move(options));
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  ::X509SVID web_;
  ::X509SVID db_;
};

}  // namespace tessera::agent::cli::testing
