// The X.509 and bundle RPCs of the Workload API over a real endpoint: what a caller receives, when
// streams send, how they end, the security header, and a thousand open streams.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/workload/endpoint.h"
#include "agent/workload/workload_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/bundle_json.h"
#include "spiffe/workload_client_test_util.h"

namespace tessera::agent::testing {
namespace {

using spiffe::testing::WatchRecorder;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string Uid() { return "unix:uid:" + std::to_string(::geteuid()); }

std::vector<std::string> Keys(const google::protobuf::Map<std::string, std::string>& map) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : map) keys.push_back(key);
  return keys;
}

// Runs a WatchX509Context on its own thread until destroyed.
class X509Watch {
 public:
  explicit X509Watch(const spiffe::WorkloadApiClient& client)
      : thread_([this, &client](std::stop_token stop) {
          absl::Status ended = client.WatchX509Context(
              [this](const absl::StatusOr<spiffe::X509Context>& e) { recorder_(e); }, stop);
          EXPECT_TRUE(ended.ok()) << ended;
        }) {}
  WatchRecorder<spiffe::X509Context>& recorder() { return recorder_; }

 private:
  WatchRecorder<spiffe::X509Context> recorder_;
  std::jthread thread_;  // last: stopped and joined first
};

class WorkloadApiTest : public EndpointFixture {};

TEST_F(WorkloadApiTest, FetchX509SvidServesEveryIdentityDefaultFirst) {
  StartEndpoint();
  CachedIdentity newer = Identity(pki_, {.id = "a-newer",
                                         .spiffe_id = "spiffe://example.org/newer",
                                         .selectors = {Uid()},
                                         .created_at = 200,
                                         .hint = "internal"});
  CachedIdentity older = Identity(pki_, {.id = "z-older",
                                         .spiffe_id = "spiffe://example.org/older",
                                         .selectors = {Uid()},
                                         .created_at = 100,
                                         .hint = "external",
                                         .federates_with = {"other.org"}});
  PublishIdentities({newer, older});

  // The raw response, field by field.
  auto stub = RawStub();
  grpc::ClientContext context;
  AddHeader(context);
  auto reader = stub->FetchX509SVID(&context, ::X509SVIDRequest());
  ::X509SVIDResponse response;
  ASSERT_TRUE(reader->Read(&response));
  ASSERT_EQ(response.svids_size(), 2);
  const ::X509SVID& first = response.svids(0);
  EXPECT_EQ(first.spiffe_id(), "spiffe://example.org/older");
  EXPECT_EQ(first.hint(), "external");
  EXPECT_EQ(first.x509_svid(), spiffe::ChainToDer(older.svid->chain));
  EXPECT_EQ(first.x509_svid_key(), *older.svid->key.ToPkcs8Der());
  EXPECT_EQ(first.bundle(), pki_.root.cert.ToDer());
  EXPECT_EQ(response.svids(1).spiffe_id(), "spiffe://example.org/newer");
  EXPECT_EQ(response.svids(1).hint(), "internal");
  EXPECT_EQ(response.svids(1).bundle(), pki_.root.cert.ToDer());
  // Federated bundles of the trust domains the served entries federate with, never the own one.
  EXPECT_THAT(Keys(response.federated_bundles()), ElementsAre("spiffe://other.org"));
  EXPECT_EQ(response.federated_bundles().at("spiffe://other.org"), pki_.other_root.cert.ToDer());
  EXPECT_TRUE(response.crl().empty());
  context.TryCancel();

  // What the real client makes of it.
  auto x509 = Client()->FetchX509Context();
  ASSERT_TRUE(x509.ok()) << x509.status();
  EXPECT_THAT(Ids(*x509), ElementsAre("spiffe://example.org/older", "spiffe://example.org/newer"));
  EXPECT_EQ(x509->default_svid().hint, "external");
  EXPECT_EQ(x509->bundles.size(), 2u);
  ASSERT_NE(x509->bundles.Find(Td("other.org")), nullptr);
  EXPECT_EQ(x509->bundles.Find(Td("other.org"))->x509_authorities().front().ToDer(),
            pki_.other_root.cert.ToDer());
}

TEST_F(WorkloadApiTest, DuplicateHintsKeepTheOlderEntry) {
  StartEndpoint();
  Publish(
      {{.id = "b",
        .spiffe_id = "spiffe://example.org/b",
        .selectors = {Uid()},
        .created_at = 2,
        .hint = "db"},
       {.id = "a",
        .spiffe_id = "spiffe://example.org/a",
        .selectors = {Uid()},
        .created_at = 1,
        .hint = "db"},
       {.id = "c", .spiffe_id = "spiffe://example.org/c", .selectors = {Uid()}, .created_at = 3}});
  auto x509 = Client()->FetchX509Context();
  ASSERT_TRUE(x509.ok()) << x509.status();
  EXPECT_THAT(Ids(*x509), ElementsAre("spiffe://example.org/a", "spiffe://example.org/c"));
}

TEST_F(WorkloadApiTest, EntriesBeingMintedAreNotServedAndTheCallerWaits) {
  StartEndpoint();
  Publish({{.id = "minted",
            .spiffe_id = "spiffe://example.org/minted",
            .selectors = {Uid()},
            .created_at = 2},
           {.id = "pending",
            .spiffe_id = "spiffe://example.org/pending",
            .selectors = {Uid()},
            .created_at = 1,
            .minted = false}});
  auto x509 = Client()->FetchX509Context();
  ASSERT_TRUE(x509.ok()) << x509.status();
  EXPECT_THAT(Ids(*x509), ElementsAre("spiffe://example.org/minted"));

  // Only an entry still being minted: no answer yet, and no denial.
  Publish({{.id = "pending",
            .spiffe_id = "spiffe://example.org/pending",
            .selectors = {Uid()},
            .minted = false}});
  auto client = Client();
  X509Watch watch(*client);
  EXPECT_FALSE(watch.recorder().WaitForCount(1, absl::Milliseconds(300)));
  Publish({{.id = "pending", .spiffe_id = "spiffe://example.org/pending", .selectors = {Uid()}}});
  ASSERT_TRUE(watch.recorder().WaitForCount(1));
  auto events = watch.recorder().events();
  ASSERT_TRUE(events[0].ok()) << events[0].status();
  EXPECT_THAT(Ids(*events[0]), ElementsAre("spiffe://example.org/pending"));
}

TEST_F(WorkloadApiTest, CallerWithoutSvidsIsToldWhenTheServerIsUnreachable) {
  StartEndpoint();
  // Its only SVID is gone (expired) and the agent cannot reach the server to mint another:
  // UNAVAILABLE at once rather than a call that waits indefinitely.
  PublishIdentities({Identity(pki_, {.id = "gone",
                                     .spiffe_id = "spiffe://example.org/gone",
                                     .selectors = {Uid()},
                                     .minted = false})},
                    {}, /*server_reachable=*/false);
  auto x509 = Client()->FetchX509Context();
  EXPECT_EQ(x509.status().code(), absl::StatusCode::kUnavailable) << x509.status();
  EXPECT_THAT(std::string(x509.status().message()), HasSubstr("cannot reach the server"));

  // Back in touch and minted: served again.
  Publish({{.id = "gone", .spiffe_id = "spiffe://example.org/gone", .selectors = {Uid()}}});
  x509 = Client()->FetchX509Context();
  ASSERT_TRUE(x509.ok()) << x509.status();
  EXPECT_THAT(Ids(*x509), ElementsAre("spiffe://example.org/gone"));
}

TEST_F(WorkloadApiTest, WatchSeesRotationAsCompleteNewStateAndNothingWhenUnchanged) {
  StartEndpoint();
  CachedIdentity first = Identity(
      pki_,
      {.id = "e1", .spiffe_id = "spiffe://example.org/one", .selectors = {Uid()}, .created_at = 1});
  PublishIdentities({first});
  auto client = Client();
  X509Watch watch(*client);
  ASSERT_TRUE(watch.recorder().WaitForCount(1));

  // A new snapshot with the same content for this caller (another caller's entry changed).
  CachedIdentity unrelated = Identity(
      pki_, {.id = "x", .spiffe_id = "spiffe://example.org/x", .selectors = {"unix:uid:4242"}});
  PublishIdentities({first, unrelated});
  EXPECT_FALSE(watch.recorder().WaitForCount(2, absl::Milliseconds(300)));

  // Rotation of e1 plus a new entry: one message with the complete new state.
  CachedIdentity rotated = first;
  rotated.svid = pki_.Svid("spiffe://example.org/one");
  CachedIdentity second = Identity(
      pki_,
      {.id = "e2", .spiffe_id = "spiffe://example.org/two", .selectors = {Uid()}, .created_at = 2});
  PublishIdentities({rotated, second, unrelated});
  ASSERT_TRUE(watch.recorder().WaitForCount(2));
  auto events = watch.recorder().events();
  ASSERT_TRUE(events[0].ok() && events[1].ok());
  EXPECT_THAT(Ids(*events[0]), ElementsAre("spiffe://example.org/one"));
  EXPECT_EQ(events[0]->svids[0].svid.chain[0].ToDer(), first.svid->chain[0].ToDer());
  EXPECT_THAT(Ids(*events[1]), ElementsAre("spiffe://example.org/one", "spiffe://example.org/two"));
  EXPECT_EQ(events[1]->svids[0].svid.chain[0].ToDer(), rotated.svid->chain[0].ToDer());
  EXPECT_NE(events[1]->svids[0].svid.chain[0].ToDer(), first.svid->chain[0].ToDer());
}

TEST_F(WorkloadApiTest, LosingEveryIdentityEndsTheStreamWithPermissionDenied) {
  StartEndpoint();
  Publish({{.id = "e1", .spiffe_id = "spiffe://example.org/one", .selectors = {Uid()}}});
  auto stub = RawStub();
  grpc::ClientContext context;
  AddHeader(context);
  auto reader = stub->FetchX509SVID(&context, ::X509SVIDRequest());
  ::X509SVIDResponse response;
  ASSERT_TRUE(reader->Read(&response));

  Publish({{.id = "e2", .spiffe_id = "spiffe://example.org/two", .selectors = {"unix:uid:4242"}}});
  EXPECT_FALSE(reader->Read(&response));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message(), "no identity issued");
}

TEST_F(WorkloadApiTest, NoIdentityIsPermissionDenied) {
  StartEndpoint();
  Publish({{.id = "e", .spiffe_id = "spiffe://example.org/x", .selectors = {"unix:uid:4242"}}});
  auto client = Client();
  auto x509 = client->FetchX509Context();
  EXPECT_EQ(x509.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(x509.status()), HasSubstr("no identity issued"));
  EXPECT_EQ(client->FetchX509Bundles().status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(client->FetchJwtBundles().status().code(), absl::StatusCode::kPermissionDenied);
  auto jwt = client->FetchJwtSvid({"aud"});
  EXPECT_EQ(jwt.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(jwt.status()), HasSubstr("no identity issued"));
}

TEST_F(WorkloadApiTest, SecurityHeaderIsRequired) {
  StartEndpoint();
  Publish({{.id = "e", .spiffe_id = "spiffe://example.org/x", .selectors = {Uid()}}});
  auto stub = RawStub();
  auto expect_missing = [](const grpc::Status& status, const char* what) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << what;
    EXPECT_EQ(status.error_message(), "security header missing from request") << what;
  };
  {
    grpc::ClientContext context;
    auto reader = stub->FetchX509SVID(&context, ::X509SVIDRequest());
    ::X509SVIDResponse response;
    EXPECT_FALSE(reader->Read(&response));
    expect_missing(reader->Finish(), "FetchX509SVID");
  }
  {
    grpc::ClientContext context;
    auto reader = stub->FetchX509Bundles(&context, ::X509BundlesRequest());
    ::X509BundlesResponse response;
    EXPECT_FALSE(reader->Read(&response));
    expect_missing(reader->Finish(), "FetchX509Bundles");
  }
  {
    grpc::ClientContext context;
    auto reader = stub->FetchJWTBundles(&context, ::JWTBundlesRequest());
    ::JWTBundlesResponse response;
    EXPECT_FALSE(reader->Read(&response));
    expect_missing(reader->Finish(), "FetchJWTBundles");
  }
  {
    grpc::ClientContext context;
    ::JWTSVIDRequest request;
    request.add_audience("aud");
    ::JWTSVIDResponse response;
    expect_missing(stub->FetchJWTSVID(&context, request, &response), "FetchJWTSVID");
  }
  {
    grpc::ClientContext context;
    ::ValidateJWTSVIDRequest request;
    request.set_audience("aud");
    request.set_svid("x.y.z");
    ::ValidateJWTSVIDResponse response;
    expect_missing(stub->ValidateJWTSVID(&context, request, &response), "ValidateJWTSVID");
  }
  {
    grpc::ClientContext context;
    auto reader = stub->FetchWITSVID(&context, ::WITSVIDRequest());
    ::WITSVIDResponse response;
    EXPECT_FALSE(reader->Read(&response));
    expect_missing(reader->Finish(), "FetchWITSVID");
  }
  {
    // The value is case-sensitive.
    grpc::ClientContext context;
    context.AddMetadata("workload.spiffe.io", "TRUE");
    auto reader = stub->FetchX509SVID(&context, ::X509SVIDRequest());
    ::X509SVIDResponse response;
    EXPECT_FALSE(reader->Read(&response));
    expect_missing(reader->Finish(), "wrong value");
  }
  {
    // Exactly one value.
    grpc::ClientContext context;
    context.AddMetadata("workload.spiffe.io", "true");
    context.AddMetadata("workload.spiffe.io", "true");
    auto reader = stub->FetchX509SVID(&context, ::X509SVIDRequest());
    ::X509SVIDResponse response;
    EXPECT_FALSE(reader->Read(&response));
    expect_missing(reader->Finish(), "two values");
  }
  {
    // With the header, the WIT profile is simply not offered.
    grpc::ClientContext context;
    AddHeader(context);
    auto reader = stub->FetchWITBundles(&context, ::WITBundlesRequest());
    ::WITBundlesResponse response;
    EXPECT_FALSE(reader->Read(&response));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
}

TEST_F(WorkloadApiTest, UnavailableUntilTheCacheHasSynced) {
  StartEndpoint();
  auto client = Client();
  auto x509 = client->FetchX509Context();
  EXPECT_EQ(x509.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(x509.status()), HasSubstr("has not synced"));
  EXPECT_EQ(client->FetchX509Bundles().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client->FetchJwtBundles().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client->FetchJwtSvid({"aud"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(
      client->ValidateJwtSvid(pki_.Token("spiffe://example.org/x", {"aud"}), "aud").status().code(),
      absl::StatusCode::kUnavailable);

  // A watch started before the first sync gets the state once it is there.
  X509Watch watch(*client);
  Publish({{.id = "e", .spiffe_id = "spiffe://example.org/x", .selectors = {Uid()}}});
  ASSERT_TRUE(watch.recorder().WaitFor(
      [](const auto& events) { return !events.empty() && events.back().ok(); }));
}

TEST_F(WorkloadApiTest, BundleStreamsSendOwnAndFederatedAndSkipEqualMessages) {
  StartEndpoint();
  std::vector<EntrySpec> entries = {{.id = "e",
                                     .spiffe_id = "spiffe://example.org/x",
                                     .selectors = {Uid()},
                                     .federates_with = {"other.org"}}};
  Publish(entries);
  auto client = Client();

  auto x509 = client->FetchX509Bundles();
  ASSERT_TRUE(x509.ok()) << x509.status();
  ASSERT_EQ(x509->size(), 2u);
  EXPECT_EQ(x509->Find(Td("example.org"))->x509_authorities().front().ToDer(),
            pki_.root.cert.ToDer());
  EXPECT_EQ(x509->Find(Td("other.org"))->x509_authorities().front().ToDer(),
            pki_.other_root.cert.ToDer());

  auto jwt = client->FetchJwtBundles();
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  ASSERT_EQ(jwt->size(), 2u);
  ASSERT_NE(jwt->Find(Td("example.org"))->FindJwtAuthority("own-key"), nullptr);
  ASSERT_NE(jwt->Find(Td("other.org"))->FindJwtAuthority("other-key"), nullptr);

  // Raw JWT bundles stream: JWKS documents, then nothing for an equal state.
  auto stub = RawStub();
  grpc::ClientContext context;
  AddHeader(context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto reader = stub->FetchJWTBundles(&context, ::JWTBundlesRequest());
  ::JWTBundlesResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_THAT(Keys(response.bundles()),
              UnorderedElementsAre("spiffe://example.org", "spiffe://other.org"));
  auto own =
      spiffe::ParseJwtBundleJwks(Td("example.org"), response.bundles().at("spiffe://example.org"));
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_TRUE(own->x509_authorities().empty());
  EXPECT_NE(own->FindJwtAuthority("own-key"), nullptr);

  Publish(entries);  // new generation, same bundles: skipped
  spiffe::BundleSet changed = pki_.Bundles();
  spiffe::Bundle own_bundle = pki_.OwnBundle();
  ASSERT_TRUE(own_bundle.AddJwtAuthority("new-key", pki_.other_jwt_key.public_key()).ok());
  changed.Put(own_bundle);
  Publish(entries, changed);
  ASSERT_TRUE(reader->Read(&response));
  own =
      spiffe::ParseJwtBundleJwks(Td("example.org"), response.bundles().at("spiffe://example.org"));
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_NE(own->FindJwtAuthority("new-key"), nullptr);  // the equal state was never sent
  context.TryCancel();
}

TEST_F(WorkloadApiTest, ClientThatNeverReadsCostsOneMessageAndGetsTheNewestState) {
  StartEndpoint();
  std::vector<EntrySpec> entries = {
      {.id = "e", .spiffe_id = "spiffe://example.org/x", .selectors = {Uid()}}};
  Publish(entries);
  // A small, fixed flow-control window: what this client has not read stays on the server.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  auto stub = ::SpiffeWorkloadAPI::NewStub(grpc::CreateCustomChannel(
      "unix://" + socket_path_, grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  AddHeader(context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto reader = stub->FetchJWTBundles(&context, ::JWTBundlesRequest());
  ::JWTBundlesResponse response;
  ASSERT_TRUE(reader->Read(&response));

  // Big messages (many keys), far more than HTTP/2 flow control lets through unread.
  constexpr int kSnapshots = 300;
  auto start = std::chrono::steady_clock::now();
  for (int i = 1; i <= kSnapshots; ++i) {
    spiffe::Bundle own = pki_.OwnBundle();
    for (int k = 0; k < 40; ++k) {
      ASSERT_TRUE(own.AddJwtAuthority("gen-" + std::to_string(i) + "-key-" + std::to_string(k),
                                      pki_.jwt_key.public_key())
                      .ok());
    }
    spiffe::BundleSet bundles;
    bundles.Put(std::move(own));
    Publish(entries, bundles);
  }
  // Publishing never waited for the reader.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_EQ(endpoint_->open_streams(), 1u);

  int received = 0;
  bool newest = false;
  while (!newest && reader->Read(&response)) {
    ++received;
    auto own = spiffe::ParseJwtBundleJwks(Td("example.org"),
                                          response.bundles().at("spiffe://example.org"));
    ASSERT_TRUE(own.ok()) << own.status();
    newest = own->FindJwtAuthority("gen-" + std::to_string(kSnapshots) + "-key-0") != nullptr;
  }
  EXPECT_TRUE(newest);
  RecordProperty("messages_received", received);
  EXPECT_LT(received, kSnapshots / 2) << "states were queued instead of collapsed";
  context.TryCancel();
}

TEST_F(WorkloadApiTest, ShutdownEndsOpenStreamsWithUnavailable) {
  StartEndpoint();
  Publish({{.id = "e", .spiffe_id = "spiffe://example.org/x", .selectors = {Uid()}}});
  auto stub = RawStub();
  grpc::ClientContext context;
  AddHeader(context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto reader = stub->FetchX509SVID(&context, ::X509SVIDRequest());
  ::X509SVIDResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(endpoint_->open_streams(), 1u);

  endpoint_->Shutdown();
  EXPECT_FALSE(reader->Read(&response));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "agent is shutting down");
  EXPECT_EQ(endpoint_->open_streams(), 0u);
}

// A callback-API client stream: no thread per stream on the client side either.
class BundlesReader final : public grpc::ClientReadReactor<::X509BundlesResponse> {
 public:
  BundlesReader(::SpiffeWorkloadAPI::Stub& stub, std::atomic<int>& first, std::atomic<int>& changed,
                std::string marker)
      : first_(first), changed_(changed), marker_(std::move(marker)) {
    context_.AddMetadata(std::string(spiffe::kWorkloadApiHeaderKey),
                         std::string(spiffe::kWorkloadApiHeaderValue));
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    stub.async()->FetchX509Bundles(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (++messages_ == 1) ++first_;
    auto it = response_.bundles().find("spiffe://example.org");
    if (it != response_.bundles().end() && it->second.find(marker_) != std::string::npos) {
      ++changed_;
    }
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    done_ = true;
  }
  void Cancel() { context_.TryCancel(); }
  bool WaitDone() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done_), absl::Seconds(30));
  }

 private:
  grpc::ClientContext context_;
  ::X509BundlesRequest request_;
  ::X509BundlesResponse response_;
  std::atomic<int>& first_;
  std::atomic<int>& changed_;
  const std::string marker_;
  int messages_ = 0;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

TEST_F(WorkloadApiTest, AThousandStreamsDoNotPinThreads) {
  StartEndpoint();
  std::vector<EntrySpec> entries = {
      {.id = "e", .spiffe_id = "spiffe://example.org/x", .selectors = {Uid()}}};
  Publish(entries);

  std::vector<std::unique_ptr<::SpiffeWorkloadAPI::Stub>> stubs;
  for (int i = 0; i < 4; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    stubs.push_back(::SpiffeWorkloadAPI::NewStub(grpc::CreateCustomChannel(
        "unix://" + socket_path_, grpc::InsecureChannelCredentials(), args)));
  }
  // The second root: its DER is what marks the changed bundle.
  ASSERT_OK_AND_ASSIGN(
      spiffe::testing::Ca new_root,
      spiffe::testing::MakeRootCa(Td("example.org"), std::chrono::system_clock::now(),
                                  spiffe::KeyType::kEcP256, "rotated-root"));
  const std::string marker = new_root.cert.ToDer();

  std::atomic<int> first{0};
  std::atomic<int> changed{0};
  std::vector<std::unique_ptr<BundlesReader>> readers;
  constexpr int kWarmup = 20;
  constexpr int kStreams = 1000;
  for (int i = 0; i < kWarmup; ++i) {
    readers.push_back(std::make_unique<BundlesReader>(*stubs[i % 4], first, changed, marker));
  }
  ASSERT_TRUE(Eventually([&] { return first.load() == kWarmup; }));
  int threads_before = ThreadCount();

  for (int i = kWarmup; i < kStreams; ++i) {
    readers.push_back(std::make_unique<BundlesReader>(*stubs[i % 4], first, changed, marker));
  }
  ASSERT_TRUE(Eventually([&] { return first.load() == kStreams; }, std::chrono::seconds(60)))
      << first.load() << " streams got their first message";
  EXPECT_EQ(endpoint_->open_streams(), static_cast<size_t>(kStreams));

  spiffe::BundleSet bundles = pki_.Bundles();
  spiffe::Bundle own = pki_.OwnBundle();
  own.AddX509Authority(new_root.cert);
  bundles.Put(own);
  auto publish_start = std::chrono::steady_clock::now();
  Publish(entries, bundles);
  ASSERT_TRUE(Eventually([&] { return changed.load() == kStreams; }, std::chrono::seconds(60)))
      << changed.load() << " streams saw the change";
  auto fan_out = std::chrono::steady_clock::now() - publish_start;
  int threads_after = ThreadCount();
  RecordProperty("threads_before", threads_before);
  RecordProperty("threads_after", threads_after);
  RecordProperty(
      "fan_out_ms",
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(fan_out).count()));
  // A thread per stream would add about a thousand.
  EXPECT_LT(threads_after - threads_before, 32)
      << "threads before " << threads_before << ", after " << threads_after;

  for (auto& reader : readers) reader->Cancel();
  for (auto& reader : readers) EXPECT_TRUE(reader->WaitDone());
  readers.clear();
  ASSERT_TRUE(Eventually([&] { return endpoint_->open_streams() == 0; }));
}

}  // namespace
}  // namespace tessera::agent::testing
