// Micro-benchmarks of the per-request parsing and matching paths: SPIFFE ID and trust-domain
// parsing (every entry, token and certificate SAN), SelectorSet::IsSubsetOf and the agent cache's
// CacheSnapshot::Match (every Workload API and SDS request after attestation).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/cache/cache.h"
#include "bench/micro/micro_bench.h"
#include "common/status.h"
#include "spiffe/id.h"
#include "spiffe/selector.h"

namespace tessera::bench {
namespace {

constexpr std::string_view kTypicalId = "spiffe://prod.example.org/ns/payments/sa/api-server";

// A legal ID close to the 2048-byte limit: 120 sixteen-byte segments.
std::string LongId() {
  std::string id = "spiffe://prod.example.org";
  for (int i = 0; i < 120; ++i) absl::StrAppend(&id, "/segment-", 1000000 + i);
  return id;
}

void BM_SpiffeIdParse(benchmark::State& state, std::string text) {
  absl::StatusOr<spiffe::SpiffeId> once = spiffe::SpiffeId::Parse(text);
  if (Failed(state, once.status(), "parse")) return;
  if (FailedUnless(state, once->str() == text && once->trust_domain().name() == "prod.example.org",
                   "parsed ID differs from its input")) {
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<spiffe::SpiffeId> id = spiffe::SpiffeId::Parse(text);
    benchmark::DoNotOptimize(id);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.SetLabel(absl::StrCat(text.size(), " bytes"));
}
BENCHMARK_CAPTURE(BM_SpiffeIdParse, typical, std::string(kTypicalId));
BENCHMARK_CAPTURE(BM_SpiffeIdParse, long, LongId());

void BM_TrustDomainParse(benchmark::State& state) {
  constexpr std::string_view kName = "prod.payments.example.org";
  absl::StatusOr<spiffe::TrustDomain> once = spiffe::TrustDomain::Parse(kName);
  if (Failed(state, once.status(), "parse")) return;
  if (FailedUnless(state, once->name() == kName, "parsed name differs from its input")) return;
  for (auto _ : state) {
    absl::StatusOr<spiffe::TrustDomain> td = spiffe::TrustDomain::Parse(kName);
    benchmark::DoNotOptimize(td);
  }
}
BENCHMARK(BM_TrustDomainParse);

// Selectors of synthetic entry `i`, Kubernetes-style, 1 to 3 each: a third have one unique unix
// selector, a third namespace + service account, a third those plus an app label. Namespaces hold
// 50 entries; app labels repeat every 1,000 entries (across namespaces). So the entries sharing a
// selector with one workload stay few (33 to 66 for 100 to 100,000 entries).
std::vector<std::string> EntrySelectors(int i) {
  std::string ns = absl::StrCat("k8s:ns:ns-", i / 50);
  std::string sa = absl::StrCat("k8s:sa:sa-", i);
  switch (i % 3) {
    case 0:
      return {absl::StrCat("unix:uid:", 100000 + i)};
    case 1:
      return {ns, sa};
    default:
      return {ns, sa, absl::StrCat("k8s:pod-label:app:app-", i % 1000)};
  }
}

// The workload the Match benchmark attests: the selectors of entry `i` (a namespace + service
// account entry) plus an app label, so it matches entry `i` and shares selectors with dozens of
// others that it does not match.
absl::StatusOr<spiffe::SelectorSet> WorkloadSelectors(int i) {
  std::vector<std::string> texts = EntrySelectors(i);
  texts.push_back(absl::StrCat("k8s:pod-label:app:app-", i % 1000));
  return spiffe::SelectorSet::Parse(texts);
}

void BM_SelectorSetIsSubsetOf(benchmark::State& state, bool expect_match) {
  // Entry 4 = {ns, sa-4}; the workload is entry 4's or entry 7's (same namespace, other account).
  absl::StatusOr<spiffe::SelectorSet> entry = spiffe::SelectorSet::Parse(EntrySelectors(4));
  absl::StatusOr<spiffe::SelectorSet> workload = WorkloadSelectors(expect_match ? 4 : 7);
  if (Failed(state, entry.status(), "entry selectors")) return;
  if (Failed(state, workload.status(), "workload selectors")) return;
  if (FailedUnless(state, entry->IsSubsetOf(*workload) == expect_match, "wrong subset answer")) {
    return;
  }
  for (auto _ : state) {
    bool subset = entry->IsSubsetOf(*workload);
    benchmark::DoNotOptimize(subset);
  }
}
BENCHMARK_CAPTURE(BM_SelectorSetIsSubsetOf, match, true);
BENCHMARK_CAPTURE(BM_SelectorSetIsSubsetOf, miss, false);

absl::StatusOr<std::unique_ptr<agent::CacheSnapshot>> BuildSnapshot(int entries) {
  ASSIGN_OR_RETURN(spiffe::TrustDomain td, spiffe::TrustDomain::Parse("example.org"));
  std::vector<agent::CachedIdentity> identities;
  identities.reserve(entries);
  for (int i = 0; i < entries; ++i) {
    ASSIGN_OR_RETURN(
        spiffe::SpiffeId id,
        spiffe::SpiffeId::Parse(absl::StrCat("spiffe://example.org/ns/ns-", i / 50, "/sa/sa-", i)));
    ASSIGN_OR_RETURN(spiffe::SelectorSet selectors, spiffe::SelectorSet::Parse(EntrySelectors(i)));
    auto entry = std::make_shared<const agent::CachedEntry>(
        agent::CachedEntry{.id = absl::StrCat("entry-", 10000000 + i),
                           .spiffe_id = std::move(id),
                           .selectors = std::move(selectors),
                           .created_at = 1'700'000'000 + i});
    identities.push_back(agent::CachedIdentity{std::move(entry), nullptr});
  }
  return std::make_unique<agent::CacheSnapshot>(std::move(td), 1, spiffe::BundleSet(),
                                                std::move(identities));
}

// One snapshot per size for the whole run: Google Benchmark calls a benchmark function several
// times while it settles on an iteration count, and building 100,000 entries takes far longer
// than the measurement.
absl::StatusOr<const agent::CacheSnapshot*> SnapshotOfSize(int entries) {
  static auto* const snapshots = new std::map<int, std::unique_ptr<agent::CacheSnapshot>>();
  auto it = snapshots->find(entries);
  if (it == snapshots->end()) {
    ASSIGN_OR_RETURN(std::unique_ptr<agent::CacheSnapshot> built, BuildSnapshot(entries));
    it = snapshots->emplace(entries, std::move(built)).first;
  }
  return it->second.get();
}

void BM_CacheSnapshotMatch(benchmark::State& state) {
  const int entries = static_cast<int>(state.range(0));
  absl::StatusOr<const agent::CacheSnapshot*> snapshot = SnapshotOfSize(entries);
  if (Failed(state, snapshot.status(), "build snapshot")) return;
  // A workload in the middle of the cache.
  int w = entries / 2;
  while (w % 3 != 1) --w;
  absl::StatusOr<spiffe::SelectorSet> workload = WorkloadSelectors(w);
  if (Failed(state, workload.status(), "workload selectors")) return;

  // Checked against a scan of every entry, which does not use the selector index.
  std::vector<std::string> expected;
  for (const agent::CachedIdentity& identity : (*snapshot)->identities()) {
    if (identity.entry->selectors.IsSubsetOf(*workload)) expected.push_back(identity.entry->id);
  }
  std::vector<agent::CachedIdentity> once = (*snapshot)->Match(*workload);
  std::vector<std::string> got;
  for (const agent::CachedIdentity& identity : once) got.push_back(identity.entry->id);
  std::sort(got.begin(), got.end());
  if (FailedUnless(state, !expected.empty() && got == expected,
                   "Match disagrees with a scan of every entry")) {
    return;
  }

  for (auto _ : state) {
    std::vector<agent::CachedIdentity> matched = (*snapshot)->Match(*workload);
    benchmark::DoNotOptimize(matched);
  }
  state.SetLabel(absl::StrCat(got.size(), " match(es)"));
}
BENCHMARK(BM_CacheSnapshotMatch)->ArgName("entries")->Arg(100)->Arg(10'000)->Arg(100'000);

}  // namespace
}  // namespace tessera::bench
