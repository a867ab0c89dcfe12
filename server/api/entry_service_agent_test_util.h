// Test-only fixture for EntryService's agent RPCs: the service on the shared ServiceTest harness
// (real gRPC with TLS, attested agents), ways to create entries (through the admin socket, or
// straight into the store and index for bulk), and clients for GetAuthorizedEntries and
// SyncAuthorizedEntries. Not thread-safe; one fixture per test.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/api/convert.h"
#include "server/api/entry_service.h"
#include "server/api/service_test_util.h"
#include "spire/api/types/permissiondenieddetails.pb.h"

namespace tessera::server::testing {

using Reason = ::spire::api::types::PermissionDeniedDetails;
using SyncRequest = entryv1::SyncAuthorizedEntriesRequest;
using SyncResponse = entryv1::SyncAuthorizedEntriesResponse;

inline constexpr char kAgentA[] = "spiffe://example.org/spire/agent/x/a";
inline constexpr char kAgentB[] = "spiffe://example.org/spire/agent/x/b";
inline constexpr char kGetMethod[] = "/spire.api.server.entry.v1.Entry/GetAuthorizedEntries";
inline constexpr char kSyncMethod[] = "/spire.api.server.entry.v1.Entry/SyncAuthorizedEntries";

// The mask spire-agent sends (SPIRE-API-FACTS §9).
inline types::EntryMask AgentMask() {
  types::EntryMask mask;
  mask.set_spiffe_id(true);
  mask.set_selectors(true);
  mask.set_federates_with(true);
  mask.set_admin(true);
  mask.set_downstream(true);
  mask.set_revision_number(true);
  mask.set_store_svid(true);
  mask.set_hint(true);
  mask.set_additional_attributes(true);
  mask.set_created_at(true);
  return mask;
}

inline std::vector<std::string> Ids(
    const google::protobuf::RepeatedPtrField<types::Entry>& entries) {
  std::vector<std::string> ids;
  for (const types::Entry& e : entries) ids.push_back(e.id());
  return ids;
}

inline std::unique_ptr<grpc::ClientContext> Context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return ctx;
}

class EntryServiceAgentTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    service_ = std::make_unique<EntryService>(deps());
    StartServer({service_.get()});
  }

  // Stores the entry and applies it to the index, as the admin RPCs do. Returns it as stored.
  Entry Put(Entry entry) {
    auto created = store_->CreateOrReturnEntry(entry);
    EXPECT_TRUE(created.ok()) << created.status();
    EXPECT_TRUE(created->created);
    index_->Upsert(created->entry);
    return created->entry;
  }

  // Creates the entry through the admin socket; returns its id.
  std::string CreateViaAdmin(const Entry& entry) {
    entryv1::BatchCreateEntryRequest req;
    *req.add_entries() = EntryToProto(entry);
    entryv1::BatchCreateEntryResponse resp;
    auto ctx = Context();
    grpc::Status s =
        entryv1::Entry::NewStub(AdminChannel())->BatchCreateEntry(ctx.get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (resp.results_size() != 1) {
      ADD_FAILURE() << "expected one result";
      return "";
    }
    EXPECT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
    return resp.results(0).entry().id();
  }

  grpc::Status GetAuthorized(const std::shared_ptr<grpc::Channel>& channel,
                             const types::EntryMask* mask,
                             entryv1::GetAuthorizedEntriesResponse* out) {
    entryv1::GetAuthorizedEntriesRequest req;
    if (mask != nullptr) *req.mutable_output_mask() = *mask;
    auto ctx = Context();
    return entryv1::Entry::NewStub(channel)->GetAuthorizedEntries(ctx.get(), req, out);
  }

  // One SyncAuthorizedEntries stream.
  struct Stream {
    std::unique_ptr<entryv1::Entry::Stub> stub;
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReaderWriter<SyncRequest, SyncResponse>> rw;

    SyncResponse Read() {
      SyncResponse resp;
      EXPECT_TRUE(rw->Read(&resp)) << "stream ended early";
      return resp;
    }
  };
  Stream OpenSync(const std::shared_ptr<grpc::Channel>& channel) {
    Stream s;
    s.stub = entryv1::Entry::NewStub(channel);
    s.ctx = Context();
    s.rw = s.stub->SyncAuthorizedEntries(s.ctx.get());
    return s;
  }

  // Sends one first request and collects every response until the server ends the stream.
  grpc::Status SyncOnce(const std::shared_ptr<grpc::Channel>& channel, const SyncRequest& first,
                        std::vector<SyncResponse>* responses) {
    Stream s = OpenSync(channel);
    s.rw->Write(first);
    SyncResponse resp;
    while (s.rw->Read(&resp)) responses->push_back(resp);
    return s.rw->Finish();
  }

  // The expected output for an entry under `mask`, from the store.
  types::Entry Expected(const std::string& id, const types::EntryMask* mask) {
    auto stored = store_->FetchEntry(id);
    EXPECT_TRUE(stored.ok() && stored->has_value()) << id;
    if (!stored.ok() || !stored->has_value()) return {};
    return EntryToProto(**stored, mask);
  }

  std::unique_ptr<EntryService> service_;
};

inline bool Same(const types::Entry& a, const types::Entry& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

inline Reason::Reason DetailsReason(const grpc::Status& status) {
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details()) || details.details_size() != 1) {
    return Reason::UNKNOWN;
  }
  Reason reason;
  if (!details.details(0).UnpackTo(&reason)) return Reason::UNKNOWN;
  return reason.reason();
}

}  // namespace tessera::server::testing
