// Micro-benchmarks of X.509 work: minting an X509-SVID the way the server does (the CA manager's
// SignX509Svid over spiffe::SignLeaf, with and without reading the CSR first), reading one back
// the way an agent does (Certificate::FromDer, for every SVID of a BatchNewX509SVID answer) and
// encoding a bundle's X.509 authorities (on every Workload API and SDS message that carries a
// bundle).
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/micro/micro_bench.h"
#include "common/clock.h"
#include "common/status.h"
#include "server/ca/ca_manager.h"
#include "server/ca/journal.h"
#include "server/ca/key_manager.h"
#include "spiffe/bundle.h"
#include "spiffe/csr.h"
#include "spiffe/x509_svid.h"
#include "spiffe/x509_verify.h"

namespace tessera::bench {
namespace {

using std::chrono::system_clock;

// The server's CA as tessera-server runs it with `[key_manager.memory]`: EC P-256, self-signed.
struct ServerCa {
  server::ca::MemoryKeyManager keys;
  server::ca::MemoryJournalStore journal;
  std::unique_ptr<server::ca::CaManager> ca;
};

absl::StatusOr<std::unique_ptr<ServerCa>> MakeServerCa() {
  ASSIGN_OR_RETURN(spiffe::TrustDomain td, spiffe::TrustDomain::Parse("example.org"));
  auto out = std::make_unique<ServerCa>();
  out->ca = std::make_unique<server::ca::CaManager>(
      server::ca::CaConfig{.trust_domain = std::move(td)},
      server::ca::CaManagerDeps{
          .clock = &RealClock::Get(), .key_manager = &out->keys, .journal_store = &out->journal});
  RETURN_IF_ERROR(out->ca->Initialize());
  return out;
}

// Checks that `chain` is a valid X509-SVID for `id` and `key` under `roots` now.
absl::Status CheckSvid(const std::vector<spiffe::Certificate>& chain,
                       const std::vector<spiffe::Certificate>& roots, const spiffe::SpiffeId& id,
                       const spiffe::PublicKey& key) {
  spiffe::X509AuthoritiesSource source =
      [&](const spiffe::TrustDomain& td) -> std::optional<std::vector<spiffe::Certificate>> {
    if (td != id.trust_domain()) return std::nullopt;
    return roots;
  };
  ASSIGN_OR_RETURN(spiffe::VerifiedX509Svid verified,
                   spiffe::VerifyX509Svid(chain, source, system_clock::now()));
  if (verified.id != id) return absl::InternalError("minted SVID has another ID");
  if (!chain.front().public_key().Equals(key)) {
    return absl::InternalError("minted SVID has another public key");
  }
  return absl::OkStatus();
}

// The workload's leaf as the CA mints it: its key, its ID, the default lifetime from now.
spiffe::LeafTemplate WorkloadLeaf(const Pki& pki) {
  const auto now = system_clock::now();
  return {.public_key = pki.workload_key.public_key(),
          .spiffe_id = pki.workload_id,
          .not_before = now - spiffe::kBackdate,
          .not_after = now + spiffe::kDefaultLeafTtl};
}

// The X509-SVID profile alone (spiffe::SignLeaf): build the TBSCertificate, sign it.
void BM_SignLeaf(benchmark::State& state) {
  absl::StatusOr<Pki> pki = MakePki();
  if (Failed(state, pki.status(), "pki")) return;
  const spiffe::LeafTemplate tmpl = WorkloadLeaf(*pki);
  absl::StatusOr<spiffe::Certificate> once = spiffe::SignLeaf(tmpl, pki->ca_cert, pki->ca_key);
  if (Failed(state, once.status(), "sign leaf")) return;
  if (Failed(state, CheckSvid({*once}, {pki->ca_cert}, pki->workload_id, tmpl.public_key),
             "check leaf")) {
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<spiffe::Certificate> leaf = spiffe::SignLeaf(tmpl, pki->ca_cert, pki->ca_key);
    if (Failed(state, leaf.status(), "sign leaf")) break;
    benchmark::DoNotOptimize(leaf);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SignLeaf);

// What BatchNewX509SVID does per entry once it has the public key: CaManager::SignX509Svid.
void BM_CaSignX509Svid_FromPublicKey(benchmark::State& state) {
  absl::StatusOr<Pki> pki = MakePki();
  absl::StatusOr<std::unique_ptr<ServerCa>> ca = MakeServerCa();
  if (Failed(state, pki.status(), "pki") || Failed(state, ca.status(), "server CA")) return;
  const server::ca::CaManager& manager = *(*ca)->ca;
  spiffe::PublicKey key = pki->workload_key.public_key();
  absl::StatusOr<server::ca::SignedX509Svid> once =
      manager.SignX509Svid(key, pki->workload_id, {}, std::chrono::seconds(0));
  if (Failed(state, once.status(), "sign")) return;
  if (Failed(state,
             CheckSvid(once->chain, manager.bundle()->bundle.x509_authorities(), pki->workload_id,
                       key),
             "check SVID")) {
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<server::ca::SignedX509Svid> svid =
        manager.SignX509Svid(key, pki->workload_id, {}, std::chrono::seconds(0));
    if (Failed(state, svid.status(), "sign")) break;
    benchmark::DoNotOptimize(svid);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CaSignX509Svid_FromPublicKey);

// The CSR half alone, as the SVID service reads each request: decode, then proof of possession.
void BM_CsrParseAndVerify(benchmark::State& state) {
  absl::StatusOr<Pki> pki = MakePki();
  if (Failed(state, pki.status(), "pki")) return;
  absl::StatusOr<std::string> csr = spiffe::CreateCsr(pki->workload_key, pki->workload_id);
  if (Failed(state, csr.status(), "create CSR")) return;
  absl::StatusOr<spiffe::ParsedCsr> once = spiffe::ParseCsr(*csr);
  if (Failed(state, once.status(), "parse CSR")) return;
  if (FailedUnless(state, once->public_key.Equals(pki->workload_key.public_key()),
                   "CSR carries another key")) {
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<spiffe::UnverifiedCsr> unverified = spiffe::ParseCsrUnverified(*csr);
    if (Failed(state, unverified.status(), "parse CSR")) break;
    absl::StatusOr<spiffe::ParsedCsr> parsed = spiffe::VerifyCsrSignature(*std::move(unverified));
    if (Failed(state, parsed.status(), "verify CSR")) break;
    benchmark::DoNotOptimize(parsed);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * csr->size()));
}
BENCHMARK(BM_CsrParseAndVerify);

// The whole minting step of BatchNewX509SVID for one CSR (without gRPC and entry lookup).
void BM_CaSignX509Svid_FromCsr(benchmark::State& state) {
  absl::StatusOr<Pki> pki = MakePki();
  absl::StatusOr<std::unique_ptr<ServerCa>> ca = MakeServerCa();
  if (Failed(state, pki.status(), "pki") || Failed(state, ca.status(), "server CA")) return;
  const server::ca::CaManager& manager = *(*ca)->ca;
  absl::StatusOr<std::string> csr = spiffe::CreateCsr(pki->workload_key, pki->workload_id);
  if (Failed(state, csr.status(), "create CSR")) return;
  auto mint = [&]() -> absl::StatusOr<server::ca::SignedX509Svid> {
    ASSIGN_OR_RETURN(spiffe::UnverifiedCsr unverified, spiffe::ParseCsrUnverified(*csr));
    ASSIGN_OR_RETURN(spiffe::ParsedCsr parsed, spiffe::VerifyCsrSignature(std::move(unverified)));
    return manager.SignX509Svid(parsed.public_key, pki->workload_id, {}, std::chrono::seconds(0));
  };
  absl::StatusOr<server::ca::SignedX509Svid> once = mint();
  if (Failed(state, once.status(), "mint")) return;
  if (Failed(state,
             CheckSvid(once->chain, manager.bundle()->bundle.x509_authorities(), pki->workload_id,
                       pki->workload_key.public_key()),
             "check SVID")) {
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<server::ca::SignedX509Svid> svid = mint();
    if (Failed(state, svid.status(), "mint")) break;
    benchmark::DoNotOptimize(svid);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CaSignX509Svid_FromCsr);

// What the agent does with each SVID of a BatchNewX509SVID answer: parse the DER certificate.
void BM_CertificateFromDer_Svid(benchmark::State& state) {
  absl::StatusOr<Pki> pki = MakePki();
  if (Failed(state, pki.status(), "pki")) return;
  const spiffe::LeafTemplate tmpl = WorkloadLeaf(*pki);
  absl::StatusOr<spiffe::Certificate> leaf = spiffe::SignLeaf(tmpl, pki->ca_cert, pki->ca_key);
  if (Failed(state, leaf.status(), "sign leaf")) return;
  const std::string der = leaf->ToDer();
  absl::StatusOr<spiffe::Certificate> once = spiffe::Certificate::FromDer(der);
  if (Failed(state, once.status(), "parse")) return;
  if (Failed(state, CheckSvid({*once}, {pki->ca_cert}, pki->workload_id, tmpl.public_key),
             "check parsed leaf")) {
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<spiffe::Certificate> cert = spiffe::Certificate::FromDer(der);
    if (Failed(state, cert.status(), "parse")) break;
    benchmark::DoNotOptimize(cert);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CertificateFromDer_Svid);

// A bundle as during a CA rotation: previous, current and next authority.
absl::StatusOr<spiffe::Bundle> ThreeCaBundle() {
  ASSIGN_OR_RETURN(spiffe::TrustDomain td, spiffe::TrustDomain::Parse("example.org"));
  spiffe::Bundle bundle(td);
  for (std::string_view cn : {"ca-previous", "ca-current", "ca-next"}) {
    ASSIGN_OR_RETURN(spiffe::Certificate cert, MakeCaCert(td, cn));
    bundle.AddX509Authority(cert);
  }
  return bundle;
}

void BM_BundleX509AuthoritiesToPem(benchmark::State& state) {
  absl::StatusOr<spiffe::Bundle> bundle = ThreeCaBundle();
  if (Failed(state, bundle.status(), "bundle")) return;
  std::string once = spiffe::X509AuthoritiesToPem(*bundle);
  absl::StatusOr<spiffe::Bundle> back = spiffe::BundleFromX509Pem(bundle->trust_domain(), once);
  if (Failed(state, back.status(), "parse PEM back")) return;
  if (FailedUnless(state, back->x509_authorities() == bundle->x509_authorities(),
                   "PEM round trip changed the authorities")) {
    return;
  }
  for (auto _ : state) {
    std::string pem = spiffe::X509AuthoritiesToPem(*bundle);
    benchmark::DoNotOptimize(pem);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * once.size()));
}
BENCHMARK(BM_BundleX509AuthoritiesToPem);

void BM_BundleX509AuthoritiesToDer(benchmark::State& state) {
  absl::StatusOr<spiffe::Bundle> bundle = ThreeCaBundle();
  if (Failed(state, bundle.status(), "bundle")) return;
  std::string once = spiffe::X509AuthoritiesToDer(*bundle);
  absl::StatusOr<spiffe::Bundle> back = spiffe::BundleFromX509Der(bundle->trust_domain(), once);
  if (Failed(state, back.status(), "parse DER back")) return;
  if (FailedUnless(state, back->x509_authorities() == bundle->x509_authorities(),
                   "DER round trip changed the authorities")) {
    return;
  }
  for (auto _ : state) {
    std::string der = spiffe::X509AuthoritiesToDer(*bundle);
    benchmark::DoNotOptimize(der);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * once.size()));
}
BENCHMARK(BM_BundleX509AuthoritiesToDer);

}  // namespace
}  // namespace tessera::bench
