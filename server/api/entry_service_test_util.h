// Test-only fixture for the EntryService admin RPC tests: EntryService on the shared service
// harness (testing::ServiceTest), called over the admin socket (every caller there is local,
// hence admin), with one registered agent and client helpers. One fixture per test.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/api/entry_service.h"
#include "server/api/service_test_util.h"

namespace tessera::server::testing {

namespace types = ::spire::api::types;

types::SPIFFEID ProtoId(std::string td, std::string path) {
  types::SPIFFEID id;
  id.set_trust_domain(std::move(td));
  id.set_path(std::move(path));
  return id;
}

types::Entry ProtoEntry(std::string path, std::string parent_path,
                        std::vector<std::pair<std::string, std::string>> selectors) {
  types::Entry e;
  *e.mutable_spiffe_id() = ProtoId("example.org", std::move(path));
  *e.mutable_parent_id() = ProtoId("example.org", std::move(parent_path));
  for (auto& [type, value] : selectors) {
    auto* s = e.add_selectors();
    s->set_type(type);
    s->set_value(value);
  }
  return e;
}

inline constexpr char kAgent[] = "spiffe://example.org/spire/agent/join_token/abc";
inline constexpr char kAgentPath[] = "/spire/agent/join_token/abc";

class EntryServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    index_->UpsertNode(Id(kAgent), {});
    service_ = std::make_unique<EntryService>(deps());
    StartServer({service_.get()});
    stub_ = entryv1::Entry::NewStub(AdminChannel());
  }

  // The agents announced since the last call.
  std::vector<std::string> TakeChanged() {
    std::vector<std::string> agents = notifier_.agents();
    notifier_.Clear();
    return agents;
  }
  entryv1::BatchCreateEntryResponse Create(std::vector<types::Entry> entries,
                                           const types::EntryMask* mask = nullptr) {
    entryv1::BatchCreateEntryRequest req;
    for (auto& e : entries) *req.add_entries() = std::move(e);
    if (mask) *req.mutable_output_mask() = *mask;
    entryv1::BatchCreateEntryResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->BatchCreateEntry(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  // Creates one valid entry and returns it as the server answered.
  types::Entry CreateOne(std::string path, std::string parent_path, std::string selector) {
    auto resp = Create({ProtoEntry(std::move(path), std::move(parent_path), {{"unix", selector}})});
    EXPECT_EQ(resp.results_size(), 1);
    EXPECT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
    return resp.results(0).entry();
  }
  grpc::Status Get(std::string id, types::Entry* out) {
    entryv1::GetEntryRequest req;
    req.set_id(std::move(id));
    grpc::ClientContext ctx;
    return stub_->GetEntry(&ctx, req, out);
  }
  // The CountEntries RPC; -1 when it fails.
  int CountRpc(const entryv1::CountEntriesRequest::Filter& filter = {}) {
    entryv1::CountEntriesRequest req;
    *req.mutable_filter() = filter;
    entryv1::CountEntriesResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->CountEntries(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return s.ok() ? resp.count() : -1;
  }
  // ListEntries with `filter`, page by page; returns the SPIFFE ID paths in order.
  std::vector<std::string> ListPaths(const entryv1::ListEntriesRequest::Filter& filter,
                                     int page_size = 0, std::vector<int>* page_sizes = nullptr) {
    std::vector<std::string> paths;
    std::string token;
    for (int i = 0; i < 100; ++i) {
      entryv1::ListEntriesRequest req;
      *req.mutable_filter() = filter;
      req.set_page_size(page_size);
      req.set_page_token(token);
      entryv1::ListEntriesResponse resp;
      grpc::ClientContext ctx;
      grpc::Status s = stub_->ListEntries(&ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      if (page_sizes) page_sizes->push_back(resp.entries_size());
      for (const auto& e : resp.entries()) paths.push_back(e.spiffe_id().path());
      token = resp.next_page_token();
      if (token.empty()) break;
    }
    return paths;
  }
  int64_t StoredCount() {
    auto n = store_->CountEntries({});
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }

  std::unique_ptr<EntryService> service_;
  std::unique_ptr<entryv1::Entry::Stub> stub_;
};

}  // namespace tessera::server::testing
