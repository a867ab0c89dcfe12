// WorkloadApiClient against an in-process fake Workload API on a Unix socket: the security
// header, X.509 fetches and watches, errors, deadlines, reconnection.
#include "spiffe/workload_client.h"

#include <chrono>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/workload_client_test_util.h"

namespace tessera::spiffe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::WatchRecorder;
using testing::WorkloadApiTest;

using X509Events = WatchRecorder<X509Context>::Events;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

class WorkloadClientTest : public WorkloadApiTest {
 protected:
  // Two SVIDs of example.org (with hints) and a federated bundle for other.org.
  ::X509SVIDResponse TwoSvids() {
    ::X509SVIDResponse response;
    auto web = pki().Svid("spiffe://example.org/web", "internal");
    auto db = pki().Svid("spiffe://example.org/db", "external");
    EXPECT_TRUE(web.ok() && db.ok());
    *response.add_svids() = *web;
    *response.add_svids() = *db;
    (*response.mutable_federated_bundles())["spiffe://other.org"] = pki().other_root.cert.ToDer();
    return response;
  }
  ::X509SVIDResponse OneSvid(std::string_view id) {
    ::X509SVIDResponse response;
    auto svid = pki().Svid(id);
    EXPECT_TRUE(svid.ok()) << svid.status();
    *response.add_svids() = *svid;
    return response;
  }
};

std::vector<std::string> Ids(const X509Context& context) {
  std::vector<std::string> ids;
  for (const auto& svid : context.svids) ids.push_back(svid.svid.id.str());
  return ids;
}

// The fake itself refuses a call without the header, exactly as SPIRE does; the client's calls
// all carry it.
TEST_F(WorkloadClientTest, SecurityHeaderIsSentAndRequired) {
  fake_->SetX509(TwoSvids());
  auto channel = grpc::CreateChannel("unix://" + socket_path_, grpc::InsecureChannelCredentials());
  auto stub = ::SpiffeWorkloadAPI::NewStub(channel);
  grpc::ClientContext bare;
  bare.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ::ValidateJWTSVIDResponse ignored;
  grpc::Status refused = stub->ValidateJWTSVID(&bare, ::ValidateJWTSVIDRequest(), &ignored);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(refused.error_message(), "security header missing from request");

  grpc::ClientContext wrong_value;
  wrong_value.AddMetadata("workload.spiffe.io", "True");
  auto reader = stub->FetchX509SVID(&wrong_value, ::X509SVIDRequest());
  ::X509SVIDResponse response;
  EXPECT_FALSE(reader->Read(&response));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_EQ(fake_->calls_without_header(), 2);

  fake_->SetX509Bundles(pki().X509BundlesResponse());
  auto client = Client();
  EXPECT_TRUE(client->FetchX509Context().ok());
  EXPECT_TRUE(client->FetchX509Bundles().ok());
  // Refused for the token, not for a missing header.
  absl::StatusOr<ValidatedJwtSvid> validated = client->ValidateJwtSvid("a.b.c", "aud");
  EXPECT_EQ(validated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(validated.status()), Not(HasSubstr("security header")));
  EXPECT_EQ(fake_->calls(), 5);
  EXPECT_EQ(fake_->calls_without_header(), 2);
}

TEST_F(WorkloadClientTest, FetchX509ContextParsesSvidsAndBundles) {
  ::X509SVIDResponse served = TwoSvids();
  fake_->SetX509(served);
  absl::StatusOr<X509Context> context = Client()->FetchX509Context();
  ASSERT_TRUE(context.ok()) << context.status();

  EXPECT_THAT(Ids(*context), ElementsAre("spiffe://example.org/web", "spiffe://example.org/db"));
  EXPECT_EQ(context->default_svid().svid.id.str(), "spiffe://example.org/web");
  EXPECT_EQ(context->svids[0].hint, "internal");
  EXPECT_EQ(context->svids[1].hint, "external");
  for (int i = 0; i < 2; ++i) {
    const X509Svid& svid = context->svids[i].svid;
    // Leaf then intermediate, byte for byte what was served.
    ASSERT_EQ(svid.chain.size(), 2u);
    EXPECT_EQ(ChainToDer(svid.chain), served.svids(i).x509_svid());
    EXPECT_EQ(svid.chain[1], pki().intermediate.cert);
    // The key is the leaf's: it signs what the leaf's public key verifies.
    EXPECT_TRUE(svid.key.public_key().Equals(svid.chain[0].public_key()));
    absl::StatusOr<std::string> sig = svid.key.Sign("payload", Digest::kSha256);
    ASSERT_TRUE(sig.ok());
    EXPECT_TRUE(svid.chain[0].public_key().Verify("payload", *sig, Digest::kSha256).ok());
    // And the chain verifies against the bundle of its own trust domain only.
    auto authorities = [&](const TrustDomain& td) -> std::optional<std::vector<Certificate>> {
      const auto* certs = context->bundles.X509AuthoritiesFor(td);
      if (certs == nullptr) return std::nullopt;
      return *certs;
    };
    EXPECT_TRUE(VerifyX509Svid(svid.chain, authorities, std::chrono::system_clock::now()).ok());
  }

  ASSERT_EQ(context->bundles.size(), 2u);
  const Bundle* own = context->bundles.Find(testing::Td("example.org"));
  ASSERT_NE(own, nullptr);
  EXPECT_THAT(own->x509_authorities(), ElementsAre(pki().root.cert));
  const Bundle* other = context->bundles.Find(testing::Td("other.org"));
  ASSERT_NE(other, nullptr);
  EXPECT_THAT(other->x509_authorities(), ElementsAre(pki().other_root.cert));
}

TEST_F(WorkloadClientTest, HintsAndFederatedEntriesFollowTheStandard) {
  ::X509SVIDResponse served = TwoSvids();
  // A repeated hint: the first SVID with it wins.
  auto third = pki().Svid("spiffe://example.org/third", "internal");
  ASSERT_TRUE(third.ok());
  *served.add_svids() = *third;
  // A federated entry for the SVIDs' own trust domain does not replace their bundle; an empty
  // one withdraws trust.
  (*served.mutable_federated_bundles())["spiffe://example.org"] = pki().other_root.cert.ToDer();
  (*served.mutable_federated_bundles())["spiffe://gone.org"] = "";
  fake_->SetX509(served);

  absl::StatusOr<X509Context> context = Client()->FetchX509Context();
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_THAT(Ids(*context), ElementsAre("spiffe://example.org/web", "spiffe://example.org/db"));
  EXPECT_THAT(context->bundles.Find(testing::Td("example.org"))->x509_authorities(),
              ElementsAre(pki().root.cert));
  EXPECT_EQ(context->bundles.Find(testing::Td("gone.org")), nullptr);
  EXPECT_EQ(context->bundles.size(), 2u);
}

struct MalformedCase {
  std::string name;
  std::function<void(::X509SVIDResponse&, const testing::WorkloadPki&)> mutate;
  std::string error;
};

TEST_F(WorkloadClientTest, MalformedX509ResponsesAreRefused) {
  const std::vector<MalformedCase> cases = {
      {"no svids", [](auto& r, auto&) { r.clear_svids(); }, "svids is empty"},
      {"empty id", [](auto& r, auto&) { r.mutable_svids(0)->clear_spiffe_id(); },
       "svids[0]: spiffe_id is empty"},
      {"bad id", [](auto& r, auto&) { r.mutable_svids(0)->set_spiffe_id("spiffe://EX/x"); },
       "svids[0]: spiffe_id: "},
      {"empty bundle", [](auto& r, auto&) { r.mutable_svids(1)->clear_bundle(); },
       "svids[1] (spiffe://example.org/db): bundle is empty"},
      {"empty key", [](auto& r, auto&) { r.mutable_svids(0)->clear_x509_svid_key(); },
       "x509_svid_key is empty"},
      {"empty chain", [](auto& r, auto&) { r.mutable_svids(0)->clear_x509_svid(); },
       "x509_svid is empty"},
      {"key of another svid",
       [](auto& r, auto&) { r.mutable_svids(0)->set_x509_svid_key(r.svids(1).x509_svid_key()); },
       "private key does not match the leaf"},
      {"id not the certificate's",
       [](auto& r, auto&) { r.mutable_svids(0)->set_spiffe_id("spiffe://example.org/other"); },
       "the certificate is for spiffe://example.org/web"},
      {"garbage bundle", [](auto& r, auto&) { r.mutable_svids(0)->set_bundle("junk"); },
       "svids[0] (spiffe://example.org/web): bundle"},
      {"hint too long",
       [](auto& r, auto&) { r.mutable_svids(1)->set_hint(std::string(1025, 'h')); },
       "hint longer than 1024 bytes"},
      {"federated key with a path",
       [](auto& r, auto& pki) {
         (*r.mutable_federated_bundles())["spiffe://other.org/x"] = pki.other_root.cert.ToDer();
       },
       "federated_bundles[\"spiffe://other.org/x\"]: bundle key \"spiffe://other.org/x\" is not "
       "a trust domain ID"},
  };
  auto client = Client();
  for (const MalformedCase& c : cases) {
    SCOPED_TRACE(c.name);
    ::X509SVIDResponse response = TwoSvids();
    c.mutate(response, pki());
    fake_->SetX509(response);
    absl::StatusOr<X509Context> context = client->FetchX509Context();
    ASSERT_FALSE(context.ok());
    EXPECT_EQ(context.status().code(), absl::StatusCode::kInternal);
    EXPECT_THAT(Message(context.status()),
                HasSubstr("workload api FetchX509SVID: malformed response: "));
    EXPECT_THAT(Message(context.status()), HasSubstr(c.error));
  }
}

TEST_F(WorkloadClientTest, FetchErrorsCarryCodeAndServerMessage) {
  auto client = Client();
  fake_->SetX509Error(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no identity issued"));
  absl::StatusOr<X509Context> denied = client->FetchX509Context();
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Message(denied.status()), "workload api FetchX509SVID: no identity issued");

  fake_->SetX509Error(grpc::Status(grpc::StatusCode::UNAVAILABLE, "workload attestation failed"));
  EXPECT_EQ(client->FetchX509Context().status().code(), absl::StatusCode::kUnavailable);

  fake_->SetX509BundlesError(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad request"));
  absl::StatusOr<BundleSet> bundles = client->FetchX509Bundles();
  EXPECT_EQ(bundles.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(bundles.status()), "workload api FetchX509Bundles: bad request");
}

TEST_F(WorkloadClientTest, FetchHasADeadline) {
  // Nothing scripted: the stream stays silent.
  WorkloadApiClientOptions options = FastOptions();
  options.timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<X509Context> context = Client(options)->FetchX509Context();
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(context.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(elapsed, std::chrono::milliseconds(250));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST_F(WorkloadClientTest, NoServerIsUnavailable) {
  server_.reset();
  absl::StatusOr<X509Context> context = Client()->FetchX509Context();
  EXPECT_EQ(context.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(context.status()), HasSubstr("workload api FetchX509SVID: "));
}

TEST_F(WorkloadClientTest, WaitForReadyWaitsForALateServer) {
  server_.reset();
  WorkloadApiClientOptions options = FastOptions();
  options.wait_for_ready = true;
  auto client = Client(options);
  ::X509SVIDResponse late = OneSvid("spiffe://example.org/late");
  std::jthread starter([this, &late] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    RestartWithNewFake().SetX509(late);
  });
  absl::StatusOr<X509Context> context = client->FetchX509Context();
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_THAT(Ids(*context), ElementsAre("spiffe://example.org/late"));
}

TEST_F(WorkloadClientTest, WatchDeliversEveryCompleteStateAndStopsPromptly) {
  fake_->SetX509(TwoSvids());
  auto client = Client();
  WatchRecorder<X509Context> recorder;
  absl::Status result = absl::UnknownError("not returned");
  std::stop_source stop;
  std::jthread watcher(
      [&] { result = client->WatchX509Context(std::ref(recorder), stop.get_token()); });

  ASSERT_TRUE(recorder.WaitForCount(1));
  // Rotation: the complete new state, with the federated bundle gone.
  fake_->SetX509(OneSvid("spiffe://example.org/rotated"));
  ASSERT_TRUE(recorder.WaitForCount(2));
  fake_->SetX509(OneSvid("spiffe://example.org/again"));
  ASSERT_TRUE(recorder.WaitForCount(3));

  auto start = std::chrono::steady_clock::now();
  stop.request_stop();
  watcher.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_TRUE(result.ok()) << result;

  X509Events events = recorder.events();
  ASSERT_EQ(events.size(), 3u);
  for (const auto& e : events) ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(Ids(*events[0]), ElementsAre("spiffe://example.org/web", "spiffe://example.org/db"));
  EXPECT_EQ(events[0]->bundles.size(), 2u);
  EXPECT_THAT(Ids(*events[1]), ElementsAre("spiffe://example.org/rotated"));
  EXPECT_EQ(events[1]->bundles.size(), 1u);
  EXPECT_THAT(Ids(*events[2]), ElementsAre("spiffe://example.org/again"));
  // The stream was cancelled on the server side too.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (fake_->open_streams() != 0 && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(fake_->open_streams(), 0);
}

TEST_F(WorkloadClientTest, StopInterruptsABackoffWait) {
  server_.reset();
  WorkloadApiClientOptions options = FastOptions();
  options.initial_backoff = std::chrono::seconds(30);
  options.max_backoff = std::chrono::seconds(60);
  auto client = Client(options);
  WatchRecorder<X509Context> recorder;
  std::stop_source stop;
  std::jthread watcher(
      [&] { (void)client->WatchX509Context(std::ref(recorder), stop.get_token()); });
  ASSERT_TRUE(recorder.WaitForCount(1));
  EXPECT_EQ(recorder.events()[0].status().code(), absl::StatusCode::kUnavailable);
  auto start = std::chrono::steady_clock::now();
  stop.request_stop();
  watcher.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_EQ(recorder.events().size(), 1u);
}

TEST_F(WorkloadClientTest, WatchReconnectsAfterTheServerRestarts) {
  fake_->SetX509(OneSvid("spiffe://example.org/before"));
  auto client = Client();
  WatchRecorder<X509Context> recorder;
  std::stop_source stop;
  std::jthread watcher(
      [&] { (void)client->WatchX509Context(std::ref(recorder), stop.get_token()); });
  ASSERT_TRUE(recorder.WaitForCount(1));

  // Down for a while: the watch reports Unavailable and keeps retrying, with backoff.
  server_.reset();
  ASSERT_TRUE(recorder.WaitFor([](const X509Events& e) {
    return e.size() >= 6 && e.back().status().code() == absl::StatusCode::kUnavailable;
  }));
  // Back on the same path, with a new identity. The client finds it within about its own
  // max_backoff (gRPC's default reconnection backoff would keep the channel down for seconds).
  RestartWithNewFake().SetX509(OneSvid("spiffe://example.org/after"));
  auto restarted = std::chrono::steady_clock::now();
  ASSERT_TRUE(recorder.WaitFor([](const X509Events& e) { return e.back().ok(); }));
  EXPECT_LT(std::chrono::steady_clock::now() - restarted, std::chrono::milliseconds(1500));
  stop.request_stop();
  watcher.join();

  X509Events events = recorder.events();
  EXPECT_THAT(Ids(*events.front()), ElementsAre("spiffe://example.org/before"));
  EXPECT_THAT(Ids(*events.back()), ElementsAre("spiffe://example.org/after"));
  for (size_t i = 1; i + 1 < events.size(); ++i) {
    EXPECT_FALSE(events[i].ok());
    EXPECT_THAT(Message(events[i].status()), HasSubstr("workload api FetchX509SVID: "));
  }
}

TEST_F(WorkloadClientTest, PermissionDeniedIsAnErrorStateNotTheEnd) {
  fake_->SetX509Error(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no identity issued"));
  auto client = Client();
  WatchRecorder<X509Context> recorder;
  std::stop_source stop;
  absl::Status result = absl::UnknownError("not returned");
  std::jthread watcher(
      [&] { result = client->WatchX509Context(std::ref(recorder), stop.get_token()); });
  // Retried with backoff: several denials.
  ASSERT_TRUE(recorder.WaitForCount(2));
  fake_->SetX509(OneSvid("spiffe://example.org/granted"));
  ASSERT_TRUE(recorder.WaitFor([](const X509Events& e) { return e.back().ok(); }));
  // Losing every identity ends the stream with PermissionDenied; the watch carries on.
  fake_->SetX509Error(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no identity issued"));
  ASSERT_TRUE(recorder.WaitFor([](const X509Events& e) { return !e.back().ok(); }));
  fake_->SetX509(OneSvid("spiffe://example.org/regranted"));
  ASSERT_TRUE(recorder.WaitFor([](const X509Events& e) { return e.back().ok(); }));
  stop.request_stop();
  watcher.join();
  EXPECT_TRUE(result.ok()) << result;

  X509Events events = recorder.events();
  EXPECT_EQ(events[0].status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Message(events[0].status()), "workload api FetchX509SVID: no identity issued");
  EXPECT_THAT(Ids(*events.back()), ElementsAre("spiffe://example.org/regranted"));
}

TEST_F(WorkloadClientTest, InvalidArgumentEndsTheWatch) {
  fake_->SetX509Error(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad request"));
  WatchRecorder<X509Context> recorder;
  absl::Status result = Client()->WatchX509Context(std::ref(recorder), std::stop_token());
  EXPECT_EQ(result.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(result), "workload api FetchX509SVID: bad request");
  ASSERT_EQ(recorder.events().size(), 1u);
  EXPECT_EQ(recorder.events()[0].status(), result);
}

TEST_F(WorkloadClientTest, UnimplementedEndsTheWatch) {
  fake_->SetX509BundlesError(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not here"));
  WatchRecorder<BundleSet> recorder;
  absl::Status result = Client()->WatchX509Bundles(std::ref(recorder), std::stop_token());
  EXPECT_EQ(result.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(recorder.events().size(), 1u);
}

TEST_F(WorkloadClientTest, MalformedMessageIsReportedAndTheStreamGoesOn) {
  fake_->SetX509(OneSvid("spiffe://example.org/one"));
  auto client = Client();
  WatchRecorder<X509Context> recorder;
  std::stop_source stop;
  std::jthread watcher(
      [&] { (void)client->WatchX509Context(std::ref(recorder), stop.get_token()); });
  ASSERT_TRUE(recorder.WaitForCount(1));
  fake_->SetX509(::X509SVIDResponse());  // no SVIDs: to be discarded
  ASSERT_TRUE(recorder.WaitForCount(2));
  fake_->SetX509(OneSvid("spiffe://example.org/two"));
  ASSERT_TRUE(recorder.WaitForCount(3));
  stop.request_stop();
  watcher.join();
  X509Events events = recorder.events();
  EXPECT_EQ(events[1].status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(Message(events[1].status()), HasSubstr("malformed response: svids is empty"));
  ASSERT_TRUE(events[2].ok());
  EXPECT_THAT(Ids(*events[2]), ElementsAre("spiffe://example.org/two"));
  // Still the same stream: one call in all.
  EXPECT_EQ(fake_->calls(), 1);
}

TEST_F(WorkloadClientTest, X509BundlesFetchAndWatch) {
  fake_->SetX509Bundles(pki().X509BundlesResponse());
  auto client = Client();
  absl::StatusOr<BundleSet> bundles = client->FetchX509Bundles();
  ASSERT_TRUE(bundles.ok()) << bundles.status();
  ASSERT_EQ(bundles->size(), 2u);
  EXPECT_THAT(bundles->Find(testing::Td("example.org"))->x509_authorities(),
              ElementsAre(pki().root.cert));
  EXPECT_THAT(bundles->Find(testing::Td("other.org"))->x509_authorities(),
              ElementsAre(pki().other_root.cert));

  WatchRecorder<BundleSet> recorder;
  std::stop_source stop;
  std::jthread watcher(
      [&] { (void)client->WatchX509Bundles(std::ref(recorder), stop.get_token()); });
  ASSERT_TRUE(recorder.WaitForCount(1));
  // Federation with other.org withdrawn (empty entry), own bundle with two authorities.
  ::X509BundlesResponse next;
  (*next.mutable_bundles())["spiffe://example.org"] =
      pki().root.cert.ToDer() + pki().intermediate.cert.ToDer();
  (*next.mutable_bundles())["spiffe://other.org"] = "";
  fake_->SetX509Bundles(next);
  ASSERT_TRUE(recorder.WaitForCount(2));
  stop.request_stop();
  watcher.join();
  auto events = recorder.events();
  ASSERT_TRUE(events[1].ok()) << events[1].status();
  EXPECT_EQ(events[1]->size(), 1u);
  EXPECT_THAT(events[1]->Find(testing::Td("example.org"))->x509_authorities(),
              ElementsAre(pki().root.cert, pki().intermediate.cert));

  fake_->SetX509Bundles(::X509BundlesResponse());
  EXPECT_THAT(Message(client->FetchX509Bundles().status()),
              HasSubstr("malformed response: bundles is empty"));
}

TEST(WorkloadClientTcpTest, FetchesOverTcp) {
  testing::FakeWorkloadApi fake;
  ASSERT_OK_AND_ASSIGN(testing::WorkloadPki pki, testing::WorkloadPki::Make());
  fake.SetX509Bundles(pki.X509BundlesResponse());
  testing::FakeWorkloadServer server(&fake, "127.0.0.1:0");
  ASSERT_TRUE(server.started());
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<WorkloadApiClient> client,
      WorkloadApiClient::Create({.address = "tcp://127.0.0.1:" + std::to_string(server.port())}));
  absl::StatusOr<BundleSet> bundles = client->FetchX509Bundles();
  ASSERT_TRUE(bundles.ok()) << bundles.status();
  EXPECT_EQ(bundles->size(), 2u);
}

TEST_F(WorkloadClientTest, CreateForChannelUsesTheGivenChannel) {
  fake_->SetX509Bundles(pki().X509BundlesResponse());
  std::unique_ptr<WorkloadApiClient> client =
      WorkloadApiClient::CreateForChannel(server_->InProcessChannel());
  EXPECT_EQ(client->target(), "");
  absl::StatusOr<BundleSet> bundles = client->FetchX509Bundles();
  ASSERT_TRUE(bundles.ok()) << bundles.status();
  EXPECT_EQ(bundles->size(), 2u);
  EXPECT_EQ(fake_->calls_without_header(), 0);
}

TEST(WorkloadClientCreateTest, BadAddressIsRefused) {
  absl::StatusOr<std::unique_ptr<WorkloadApiClient>> client =
      WorkloadApiClient::Create({.address = "unix://host/x.sock"});
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::spiffe
