// tessera-micro-bench: Google Benchmark's main, plus what it lacks: a non-zero exit when a
// benchmark reported an error (Google Benchmark 1.7 exits 0 even then) or when the filter matched
// nothing. Also the PKI helpers of micro_bench.h. Single-threaded.
#include <benchmark/benchmark.h>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "bench/micro/micro_bench.h"
#include "common/status.h"
#include "spdlog/spdlog.h"
#include "spiffe/x509_svid.h"

namespace tessera::bench {
namespace {

// Passes everything to the reporter --benchmark_format chose and remembers which benchmarks
// reported an error.
class ErrorTrackingReporter final : public benchmark::BenchmarkReporter {
 public:
  explicit ErrorTrackingReporter(benchmark::BenchmarkReporter* inner) : inner_(inner) {}

  bool ReportContext(const Context& context) override { return inner_->ReportContext(context); }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) failed_.push_back(run.benchmark_name() + ": " + run.error_message);
    }
    inner_->ReportRuns(runs);
  }
  void Finalize() override { inner_->Finalize(); }

  const std::vector<std::string>& failed() const { return failed_; }

 private:
  benchmark::BenchmarkReporter* const inner_;
  std::vector<std::string> failed_;
};

}  // namespace

absl::StatusOr<spiffe::Certificate> MakeCaCert(const spiffe::TrustDomain& trust_domain,
                                               std::string_view cn) {
  ASSIGN_OR_RETURN(spiffe::PrivateKey key, spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256));
  auto now = std::chrono::system_clock::now();
  spiffe::CaTemplate tmpl{.public_key = key.public_key(),
                          .trust_domain = trust_domain,
                          .subject = {{"C", "US"}, {"O", "SPIFFE"}, {"CN", std::string(cn)}},
                          .not_before = now - spiffe::kBackdate,
                          .not_after = now + spiffe::kDefaultCaTtl};
  return spiffe::SignSelfSignedCa(tmpl, key);
}

absl::StatusOr<Pki> MakePki() {
  ASSIGN_OR_RETURN(spiffe::TrustDomain td, spiffe::TrustDomain::Parse("example.org"));
  ASSIGN_OR_RETURN(spiffe::PrivateKey ca_key,
                   spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256));
  auto now = std::chrono::system_clock::now();
  spiffe::CaTemplate tmpl{.public_key = ca_key.public_key(),
                          .trust_domain = td,
                          .not_before = now - spiffe::kBackdate,
                          .not_after = now + spiffe::kDefaultCaTtl};
  ASSIGN_OR_RETURN(spiffe::Certificate ca_cert, spiffe::SignSelfSignedCa(tmpl, ca_key));
  ASSIGN_OR_RETURN(spiffe::PrivateKey workload_key,
                   spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256));
  ASSIGN_OR_RETURN(spiffe::SpiffeId id,
                   spiffe::SpiffeId::Parse("spiffe://example.org/ns/payments/sa/api"));
  return Pki{std::move(td), std::move(ca_key), std::move(ca_cert), std::move(workload_key),
             std::move(id)};
}

std::string TbsSizedData() {
  std::string data;
  for (int i = 0; data.size() < 300; ++i) data += "tbs-certificate-" + std::to_string(i) + ";";
  data.resize(300);
  return data;
}

}  // namespace tessera::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  // The CA logs its rotations at info level; keep them out of the result table.
  spdlog::set_level(spdlog::level::warn);

  tessera::bench::ErrorTrackingReporter reporter(benchmark::CreateDefaultDisplayReporter());
  size_t matched = benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  if (matched == 0) {
    std::cerr << "tessera-micro-bench: no benchmark matches the filter\n";
    return 1;
  }
  if (!reporter.failed().empty()) {
    std::cerr << "tessera-micro-bench: " << reporter.failed().size()
              << " benchmark(s) reported an error:\n";
    for (const std::string& failure : reporter.failed()) std::cerr << "  " << failure << "\n";
    return 1;
  }
  return 0;
}
