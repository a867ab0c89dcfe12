// PushService over real gRPC with TLS: the stream contract of notify.proto (immediate first
// notification with both flags, one notification per batch of changes, keepalives without
// flags), who is woken by what, coalescing for a client that stops reading, authorization,
// cancellation and shutdown.
#include "server/api/push_service.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/entry_service.h"
#include "server/api/push_test_util.h"
#include "server/api/service_test_util.h"
#include "spiffe/grpc_tls.h"

namespace tessera::server::testing {
namespace {

using ::testing::HasSubstr;

TEST_F(PushServiceTest, FirstNotificationIsImmediateWithBothFlagsAndTheBundleSequence) {
  Start();
  sequence_ = 17;
  WatchClient a(TlsChannel(AddAgent(kAgentA)));
  auto first = a.Next(kWait);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->entries_changed());
  EXPECT_TRUE(first->bundle_changed());
  EXPECT_EQ(first->bundle_sequence_number(), 17u);
  EXPECT_GT(first->revision(), 0u);
  // Nothing changed since, and the keepalive is a minute away.
  EXPECT_FALSE(a.Next(kQuiet).has_value());
  EXPECT_EQ(push_->open_streams(), 1u);
}

TEST_F(PushServiceTest, BundleSequenceCanComeFromTheCa) {
  push_ = std::make_unique<PushService>(
      *authorizer_, [this] { return ca_->bundle()->bundle.sequence_number().value_or(0); });
  StartServer({push_.get()});
  uint64_t want = ca_->bundle()->bundle.sequence_number().value_or(0);
  ASSERT_GT(want, 0u);
  WatchClient a(TlsChannel(AddAgent(kAgentA)));
  auto first = a.Next(kWait);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->bundle_sequence_number(), want);
}

TEST_F(PushServiceTest, EntriesChangedWakesOnlyTheAffectedAgent) {
  Start();
  WatchClient a(TlsChannel(AddAgent(kAgentA)));
  WatchClient b(TlsChannel(AddAgent(kAgentB)));
  auto first_a = a.Next(kWait);
  ASSERT_TRUE(first_a.has_value());
  ASSERT_TRUE(b.Next(kWait).has_value());

  sequence_ = 3;
  push_->EntriesChanged({Id(kAgentA)});
  auto n = a.Next(kWait);
  ASSERT_TRUE(n.has_value());
  EXPECT_TRUE(n->entries_changed());
  EXPECT_FALSE(n->bundle_changed());
  EXPECT_EQ(n->bundle_sequence_number(), 3u);
  EXPECT_GT(n->revision(), first_a->revision());
  EXPECT_FALSE(b.Next(kQuiet).has_value());

  // An agent without a stream, and an empty list: nobody hears anything.
  push_->EntriesChanged({Id("spiffe://example.org/spire/agent/x/nobody")});
  push_->EntriesChanged({});
  EXPECT_FALSE(a.Next(kQuiet).has_value());
  EXPECT_FALSE(b.Next(absl::ZeroDuration()).has_value());

  // Both named in one call: both woken.
  push_->EntriesChanged({Id(kAgentA), Id(kAgentB)});
  auto na = a.Next(kWait);
  auto nb = b.Next(kWait);
  ASSERT_TRUE(na.has_value());
  ASSERT_TRUE(nb.has_value());
  EXPECT_TRUE(na->entries_changed());
  EXPECT_TRUE(nb->entries_changed());
}

TEST_F(PushServiceTest, BundleChangedWakesEveryAgent) {
  Start();
  WatchClient a(TlsChannel(AddAgent(kAgentA)));
  WatchClient b(TlsChannel(AddAgent(kAgentB)));
  ASSERT_TRUE(a.Next(kWait).has_value());
  ASSERT_TRUE(b.Next(kWait).has_value());

  sequence_ = 9;
  push_->BundleChanged();
  for (WatchClient* client : {&a, &b}) {
    auto n = client->Next(kWait);
    ASSERT_TRUE(n.has_value());
    EXPECT_TRUE(n->bundle_changed());
    EXPECT_FALSE(n->entries_changed());
    EXPECT_EQ(n->bundle_sequence_number(), 9u);
  }
  EXPECT_FALSE(a.Next(kQuiet).has_value());
  EXPECT_FALSE(b.Next(absl::ZeroDuration()).has_value());
}

TEST_F(PushServiceTest, EveryStreamOfOneAgentIsNotified) {
  Start();
  auto identity = AddAgent(kAgentA);
  // An agent that reconnected before the server noticed its old connection died.
  WatchClient old_stream(TlsChannel(identity));
  WatchClient new_stream(TlsChannel(identity));
  ASSERT_TRUE(old_stream.Next(kWait).has_value());
  ASSERT_TRUE(new_stream.Next(kWait).has_value());
  EXPECT_EQ(push_->open_streams(), 2u);

  push_->EntriesChanged({Id(kAgentA)});
  for (WatchClient* client : {&old_stream, &new_stream}) {
    auto n = client->Next(kWait);
    ASSERT_TRUE(n.has_value());
    EXPECT_TRUE(n->entries_changed());
  }

  // One of them going away leaves the other one notified.
  old_stream.Cancel();
  ASSERT_TRUE(old_stream.WaitEnd(kWait).has_value());
  EXPECT_EQ(WaitForOpenStreams(1), 1u);
  push_->BundleChanged();
  auto n = new_stream.Next(kWait);
  ASSERT_TRUE(n.has_value());
  EXPECT_TRUE(n->bundle_changed());
}

TEST_F(PushServiceTest, ChangesWhileTheClientIsNotReadingAreCoalesced) {
  Start();
  WatchClient a(SmallWindowChannel(AddAgent(kAgentA)));
  auto first = a.Next(kWait);
  ASSERT_TRUE(first.has_value());

  // The client reads nothing while this happens.
  constexpr int kChanges = 20000;
  const EntryIndex::AffectedAgents agents = {Id(kAgentA)};
  for (int i = 0; i < kChanges; ++i) push_->EntriesChanged(agents);
  sequence_ = 42;
  push_->BundleChanged();

  std::vector<Notification> got = a.ReadUntilQuiet(absl::Milliseconds(500));
  ASSERT_FALSE(got.empty());
  EXPECT_LT(got.size(), static_cast<size_t>(kChanges / 10)) << "changes were not coalesced";
  uint64_t last_revision = first->revision();
  bool any_entries = false;
  for (const Notification& n : got) {
    EXPECT_GT(n.revision(), last_revision);
    last_revision = n.revision();
    EXPECT_TRUE(n.entries_changed() || n.bundle_changed()) << "a change batch without flags";
    any_entries |= n.entries_changed();
  }
  EXPECT_TRUE(any_entries);
  // The last change (the bundle) is in the last notification, with the sequence number after it.
  EXPECT_TRUE(got.back().bundle_changed());
  EXPECT_EQ(got.back().bundle_sequence_number(), 42u);
}

TEST_F(PushServiceTest, ClientThatNeverReadsCostsOneWriteAndOnePendingNotification) {
  Start();
  WatchClient a(SmallWindowChannel(AddAgent(kAgentA)));
  ASSERT_TRUE(a.Next(kWait).has_value());
  uint64_t stalled_at = FloodUntilStalled(kAgentA);
  ASSERT_GT(stalled_at, 0u) << "the stream never stalled";

  // However many changes arrive now, no further write starts: they are one set of flags.
  const EntryIndex::AffectedAgents agents = {Id(kAgentA)};
  for (int i = 0; i < 100000; ++i) push_->EntriesChanged(agents);
  push_->BundleChanged();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_LE(writes_.load(), stalled_at + 2);

  // Reading drains what was written, then the one coalesced notification with both flags.
  std::vector<Notification> got = a.ReadUntilQuiet(absl::Milliseconds(500));
  ASSERT_FALSE(got.empty());
  // Nothing lost and nothing extra: every write started (the first notification included) was
  // read.
  EXPECT_EQ(got.size() + 1, writes_.load());
  EXPECT_LE(got.size(), static_cast<size_t>(stalled_at + 2));
  EXPECT_TRUE(got.back().entries_changed());
  EXPECT_TRUE(got.back().bundle_changed());
}

TEST_F(PushServiceTest, CancelledStreamIsReleased) {
  Start();
  {
    WatchClient a(TlsChannel(AddAgent(kAgentA)));
    ASSERT_TRUE(a.Next(kWait).has_value());
    EXPECT_EQ(push_->open_streams(), 1u);
    a.Cancel();
    auto status = a.WaitEnd(kWait);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_EQ(WaitForOpenStreams(0), 0u);
  // Announcements after the stream is gone touch nothing.
  push_->EntriesChanged({Id(kAgentA)});
  push_->BundleChanged();
  EXPECT_EQ(push_->open_streams(), 0u);
}

TEST_F(PushServiceTest, CancelledStreamWithAStalledWriteIsReleased) {
  Start();
  {
    WatchClient a(SmallWindowChannel(AddAgent(kAgentA)));
    ASSERT_TRUE(a.Next(kWait).has_value());
    ASSERT_GT(FloodUntilStalled(kAgentA), 0u);
    a.Cancel();
    ASSERT_TRUE(a.WaitEnd(kWait).has_value());
  }
  EXPECT_EQ(WaitForOpenStreams(0), 0u);
}

TEST_F(PushServiceTest, CallersThatAreNotAgentsAreRefused) {
  Start();
  {
    WatchClient anonymous(TlsChannel());
    auto status = anonymous.WaitEnd(kWait);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(status->error_message(), HasSubstr("caller does not have an X509-SVID"));
  }
  {
    // A valid SVID, but no attested agent has it.
    WatchClient stranger(TlsChannel(IdentityFor(kAgentB)));
    auto status = stranger.WaitEnd(kWait);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(status->error_message(),
                HasSubstr("authorization denied for method /tessera.server.v1.Notifier/Watch"));
  }
  {
    // Local admins are not agents either.
    WatchClient admin(AdminChannel());
    auto status = admin.WaitEnd(kWait);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_EQ(push_->open_streams(), 0u);
}

TEST_F(PushServiceTest, ShutdownEndsOpenStreamsPromptly) {
  Start();
  auto identity_a = AddAgent(kAgentA);
  WatchClient a(TlsChannel(identity_a));
  WatchClient b(TlsChannel(AddAgent(kAgentB)));
  // A client that stopped reading with writes backed up.
  WatchClient stalled(SmallWindowChannel(AddAgent(kAgentC)));
  ASSERT_TRUE(a.Next(kWait).has_value());
  ASSERT_TRUE(b.Next(kWait).has_value());
  ASSERT_TRUE(stalled.Next(kWait).has_value());
  ASSERT_GT(FloodUntilStalled(kAgentC), 0u);
  ASSERT_EQ(push_->open_streams(), 3u);

  auto started = std::chrono::steady_clock::now();
  push_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));

  auto status_b = b.WaitEnd(kWait);
  ASSERT_TRUE(status_b.has_value());
  EXPECT_EQ(status_b->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status_b->error_message(), "server shutting down");
  auto status_a = a.WaitEnd(kWait);
  ASSERT_TRUE(status_a.has_value());
  EXPECT_EQ(status_a->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(stalled.WaitEnd(kWait).has_value());
  EXPECT_EQ(WaitForOpenStreams(0), 0u);

  // New streams are refused; announcements are harmless.
  {
    WatchClient late(TlsChannel(identity_a));
    auto status = late.WaitEnd(kWait);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(status->error_message(), "server shutting down");
  }
  push_->EntriesChanged({Id(kAgentA)});
  push_->BundleChanged();
  push_->Shutdown();  // idempotent

  started = std::chrono::steady_clock::now();
  server_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST_F(PushServiceTest, ShutdownCancelsAStalledStreamAfterTheGracePeriod) {
  Start({.keepalive_interval = std::chrono::seconds(60),
         .shutdown_grace = std::chrono::milliseconds(300)});
  WatchClient stalled(SmallWindowChannel(AddAgent(kAgentA)));
  ASSERT_TRUE(stalled.Next(kWait).has_value());
  ASSERT_GT(FloodUntilStalled(kAgentA), 0u);

  // The client reads nothing until both shutdowns returned.
  auto started = std::chrono::steady_clock::now();
  push_->Shutdown();
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, std::chrono::milliseconds(300)) << "the write in flight got no grace";
  EXPECT_LT(took, std::chrono::seconds(5));
  started = std::chrono::steady_clock::now();
  server_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_EQ(push_->open_streams(), 0u);
  auto status = stalled.WaitEnd(kWait);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(PushServiceTest, IdleStreamGetsKeepalivesWithoutFlags) {
  Start({.keepalive_interval = std::chrono::milliseconds(200)});
  sequence_ = 5;
  WatchClient a(TlsChannel(AddAgent(kAgentA)));
  auto first = a.Next(kWait);
  ASSERT_TRUE(first.has_value());
  uint64_t last_revision = first->revision();
  for (int i = 0; i < 2; ++i) {
    auto keepalive = a.Next(kWait);
    ASSERT_TRUE(keepalive.has_value());
    EXPECT_FALSE(keepalive->entries_changed());
    EXPECT_FALSE(keepalive->bundle_changed());
    EXPECT_EQ(keepalive->bundle_sequence_number(), 5u);
    EXPECT_GT(keepalive->revision(), last_revision);
    last_revision = keepalive->revision();
  }
  // A change still carries its flag between keepalives.
  push_->EntriesChanged({Id(kAgentA)});
  bool saw_change = false;
  for (int i = 0; i < 5 && !saw_change; ++i) {
    auto n = a.Next(kWait);
    ASSERT_TRUE(n.has_value());
    EXPECT_GT(n->revision(), last_revision);
    last_revision = n->revision();
    saw_change = n->entries_changed();
  }
  EXPECT_TRUE(saw_change);
}

TEST_F(PushServiceTest, EntryCreatedThroughTheEntryServiceWakesItsAgent) {
  push_ = std::make_unique<PushService>(*authorizer_, [this] { return sequence_.load(); });
  ServiceDeps service_deps = deps();
  service_deps.notifier = push_.get();
  EntryService entries(service_deps);
  StartServer({push_.get(), &entries});

  WatchClient a(TlsChannel(AddAgent(kAgentA)));
  WatchClient b(TlsChannel(AddAgent(kAgentB)));
  ASSERT_TRUE(a.Next(kWait).has_value());
  ASSERT_TRUE(b.Next(kWait).has_value());

  entryv1::BatchCreateEntryRequest req;
  auto* entry = req.add_entries();
  entry->mutable_spiffe_id()->set_trust_domain("example.org");
  entry->mutable_spiffe_id()->set_path("/workload");
  entry->mutable_parent_id()->set_trust_domain("example.org");
  entry->mutable_parent_id()->set_path("/spire/agent/x/a");
  auto* selector = entry->add_selectors();
  selector->set_type("unix");
  selector->set_value("uid:1000");
  entryv1::BatchCreateEntryResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = entryv1::Entry::NewStub(AdminChannel())->BatchCreateEntry(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.results_size(), 1);
  ASSERT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();

  auto n = a.Next(kWait);
  ASSERT_TRUE(n.has_value());
  EXPECT_TRUE(n->entries_changed());
  EXPECT_FALSE(n->bundle_changed());
  EXPECT_FALSE(b.Next(kQuiet).has_value());
}

}  // namespace
}  // namespace tessera::server::testing
