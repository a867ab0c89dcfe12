// Micro-benchmarks of signing: the raw ECDSA P-256 rate of OpenSSL (the baseline tessera-bench
// compares the server's minting rate with), the same through spiffe::PrivateKey, and JWT-SVIDs
// (ES256) signed by the server and validated by the agent's ValidateJWTSVID.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>
#include <chrono>
#include <string>
#include <vector>

#include "bench/micro/micro_bench.h"
#include "common/status.h"
#include "spiffe/bundle.h"
#include "spiffe/jwt_svid.h"
#include "spiffe/openssl.h"

namespace tessera::bench {
namespace {

using std::chrono::system_clock;

// Room for any DER ECDSA-Sig-Value of P-256 (at most 72 bytes).
using EcdsaSig = std::array<unsigned char, 80>;

// What a plain OpenSSL caller pays per signature: a fresh digest context, SHA-256 over `data`,
// ECDSA. Returns the signature length, 0 on failure.
size_t OpenSslDigestSign(EVP_PKEY* key, const std::string& data, EcdsaSig& sig) {
  spiffe::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = sig.size();
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return 0;
  }
  return len;
}

absl::Status CheckSignature(const spiffe::PrivateKey& key, const std::string& data,
                            std::string_view sig) {
  return key.public_key().Verify(data, sig, spiffe::Digest::kSha256);
}

void BM_OpenSslDigestSign_EcP256(benchmark::State& state) {
  absl::StatusOr<spiffe::PrivateKey> key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256);
  if (Failed(state, key.status(), "generate key")) return;
  const std::string data = TbsSizedData();
  EcdsaSig sig;
  size_t len = OpenSslDigestSign(key->get(), data, sig);
  if (FailedUnless(state, len > 0, "EVP_DigestSign failed")) return;
  if (Failed(state,
             CheckSignature(*key, data,
                            std::string_view(reinterpret_cast<const char*>(sig.data()), len)),
             "verify")) {
    return;
  }
  for (auto _ : state) {
    len = OpenSslDigestSign(key->get(), data, sig);
    if (FailedUnless(state, len > 0, "EVP_DigestSign failed")) break;
    benchmark::DoNotOptimize(sig.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OpenSslDigestSign_EcP256);

// The floor: the ECDSA operation alone, on a SHA-256 digest computed once, with one signing
// context set up once (OpenSSL's own `speed ecdsap256` measures this).
void BM_OpenSslSignPrehashed_EcP256(benchmark::State& state) {
  absl::StatusOr<spiffe::PrivateKey> key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256);
  if (Failed(state, key.status(), "generate key")) return;
  const std::string data = TbsSizedData();
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  spiffe::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key->get(), nullptr));
  if (FailedUnless(state, ctx != nullptr && EVP_PKEY_sign_init(ctx.get()) == 1,
                   "EVP_PKEY_sign_init failed")) {
    return;
  }
  EcdsaSig sig;
  auto sign = [&]() -> size_t {
    size_t len = sig.size();
    return EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest.data(), digest.size()) == 1 ? len : 0;
  };
  size_t len = sign();
  if (FailedUnless(state, len > 0, "EVP_PKEY_sign failed")) return;
  // Verifying over `data` (hashing it again) proves the digest and the signature belong together.
  if (Failed(state,
             CheckSignature(*key, data,
                            std::string_view(reinterpret_cast<const char*>(sig.data()), len)),
             "verify")) {
    return;
  }
  for (auto _ : state) {
    if (FailedUnless(state, sign() > 0, "EVP_PKEY_sign failed")) break;
    benchmark::DoNotOptimize(sig.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OpenSslSignPrehashed_EcP256);

// The same signature through Tessera's key type (what SignLeaf's callers and JWT signing use).
void BM_PrivateKeySign_EcP256(benchmark::State& state) {
  absl::StatusOr<spiffe::PrivateKey> key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256);
  if (Failed(state, key.status(), "generate key")) return;
  const std::string data = TbsSizedData();
  absl::StatusOr<std::string> once = key->Sign(data, spiffe::Digest::kSha256);
  if (Failed(state, once.status(), "sign")) return;
  if (Failed(state, CheckSignature(*key, data, *once), "verify")) return;
  for (auto _ : state) {
    absl::StatusOr<std::string> sig = key->Sign(data, spiffe::Digest::kSha256);
    if (Failed(state, sig.status(), "sign")) break;
    benchmark::DoNotOptimize(sig);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PrivateKeySign_EcP256);

constexpr std::string_view kJwtKeyId = "c2FtcGxlLWp3dC1rZXktMDAwMDAwMDE";
const std::vector<std::string>& Audience() {
  static const auto* const audience = new std::vector<std::string>{"spiffe://example.org/db"};
  return *audience;
}

spiffe::JwtSvidClaims TypicalClaims(const Pki& pki, system_clock::time_point now) {
  return spiffe::JwtSvidClaims{.subject = pki.workload_id,
                               .audience = Audience(),
                               .expiry = now + std::chrono::minutes(5),
                               .issued_at = now};
}

// The bundle set an agent validates against: our trust domain with the signing key.
absl::StatusOr<spiffe::BundleSet> JwtBundles(const Pki& pki) {
  spiffe::Bundle bundle(pki.trust_domain);
  RETURN_IF_ERROR(bundle.AddJwtAuthority(std::string(kJwtKeyId), pki.ca_key.public_key()));
  spiffe::BundleSet bundles;
  bundles.Put(std::move(bundle));
  return bundles;
}

absl::Status CheckToken(const Pki& pki, const std::string& token, system_clock::time_point now) {
  ASSIGN_OR_RETURN(spiffe::BundleSet bundles, JwtBundles(pki));
  ASSIGN_OR_RETURN(spiffe::JwtSvid svid,
                   spiffe::ParseAndValidateJwtSvid(token, bundles, Audience(), now));
  if (svid.subject != pki.workload_id || svid.algorithm != spiffe::JwtAlgorithm::kEs256) {
    return absl::InternalError("token has another subject or algorithm");
  }
  return absl::OkStatus();
}

void BM_JwtSvidSign_Es256(benchmark::State& state) {
  absl::StatusOr<Pki> pki = MakePki();
  if (Failed(state, pki.status(), "pki")) return;
  auto now = system_clock::now();
  spiffe::JwtSvidClaims claims = TypicalClaims(*pki, now);
  absl::StatusOr<std::string> once = spiffe::SignJwtSvid(claims, pki->ca_key, kJwtKeyId);
  if (Failed(state, once.status(), "sign")) return;
  if (Failed(state, CheckToken(*pki, *once, now), "validate")) return;
  for (auto _ : state) {
    absl::StatusOr<std::string> token = spiffe::SignJwtSvid(claims, pki->ca_key, kJwtKeyId);
    if (Failed(state, token.status(), "sign")) break;
    benchmark::DoNotOptimize(token);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JwtSvidSign_Es256);

void BM_JwtSvidValidate_Es256(benchmark::State& state) {
  absl::StatusOr<Pki> pki = MakePki();
  if (Failed(state, pki.status(), "pki")) return;
  auto now = system_clock::now();
  absl::StatusOr<std::string> token =
      spiffe::SignJwtSvid(TypicalClaims(*pki, now), pki->ca_key, kJwtKeyId);
  if (Failed(state, token.status(), "sign")) return;
  absl::StatusOr<spiffe::BundleSet> bundles = JwtBundles(*pki);
  if (Failed(state, bundles.status(), "bundles")) return;
  if (Failed(state, CheckToken(*pki, *token, now), "validate")) return;
  // A token signed by another key must be refused, or the benchmark could time a no-op.
  absl::StatusOr<std::string> forged =
      spiffe::SignJwtSvid(TypicalClaims(*pki, now), pki->workload_key, kJwtKeyId);
  if (Failed(state, forged.status(), "sign forged")) return;
  if (FailedUnless(state, !CheckToken(*pki, *forged, now).ok(), "a forged token validated")) {
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<spiffe::JwtSvid> svid =
        spiffe::ParseAndValidateJwtSvid(*token, *bundles, Audience(), now);
    if (Failed(state, svid.status(), "validate")) break;
    benchmark::DoNotOptimize(svid);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JwtSvidValidate_Es256);

// The agent's JWT-SVID cache reads tokens it obtained itself without checking the signature.
void BM_JwtSvidParseInsecure(benchmark::State& state) {
  absl::StatusOr<Pki> pki = MakePki();
  if (Failed(state, pki.status(), "pki")) return;
  absl::StatusOr<std::string> token =
      spiffe::SignJwtSvid(TypicalClaims(*pki, system_clock::now()), pki->ca_key, kJwtKeyId);
  if (Failed(state, token.status(), "sign")) return;
  absl::StatusOr<spiffe::JwtSvid> once = spiffe::ParseJwtSvidInsecure(*token);
  if (Failed(state, once.status(), "parse")) return;
  if (FailedUnless(state, once->subject == pki->workload_id, "parsed another subject")) return;
  for (auto _ : state) {
    absl::StatusOr<spiffe::JwtSvid> svid = spiffe::ParseJwtSvidInsecure(*token);
    if (Failed(state, svid.status(), "parse")) break;
    benchmark::DoNotOptimize(svid);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JwtSvidParseInsecure);

}  // namespace
}  // namespace tessera::bench
