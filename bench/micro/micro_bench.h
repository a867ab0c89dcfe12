// Shared helpers of tessera-micro-bench: how a benchmark reports a broken function, and a small
// EC P-256 PKI to sign with.
//
// Every benchmark checks its function's result once before the timed loop and stops with
// state.SkipWithError when it is wrong, so a broken function can never show up as a fast number;
// main() turns any such error into a non-zero exit. Benchmarks run one at a time on the main
// thread; nothing here is meant for concurrent use.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"
#include "spiffe/key.h"

namespace tessera::bench {

// Stops the benchmark with an error naming `what` when `status` is not OK; returns whether it
// did. Use as `if (Failed(state, s, "sign")) return;` before the loop, `break;` inside it.
inline bool Failed(benchmark::State& state, const absl::Status& status, std::string_view what) {
  if (status.ok()) return false;
  state.SkipWithError(absl::StrCat(AsAbsl(what), ": ", status.ToString()).c_str());
  return true;
}

// The same for a check that is a plain condition.
inline bool FailedUnless(benchmark::State& state, bool ok, std::string_view what) {
  if (ok) return false;
  state.SkipWithError(std::string(what).c_str());
  return true;
}

// A root CA in the trust domain example.org and a workload key, all EC P-256 (Tessera's default).
struct Pki {
  spiffe::TrustDomain trust_domain;
  spiffe::PrivateKey ca_key;
  spiffe::Certificate ca_cert;
  spiffe::PrivateKey workload_key;
  // A typical Kubernetes-style workload identity.
  spiffe::SpiffeId workload_id;
};
absl::StatusOr<Pki> MakePki();

// A self-signed EC P-256 CA of `trust_domain` valid around now; `cn` tells several apart.
absl::StatusOr<spiffe::Certificate> MakeCaCert(const spiffe::TrustDomain& trust_domain,
                                               std::string_view cn);

// ~300 bytes of stable filler: the size of a leaf's TBSCertificate, which is what the CA signs.
std::string TbsSizedData();

}  // namespace tessera::bench
