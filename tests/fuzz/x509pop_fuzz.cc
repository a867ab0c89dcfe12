// Fuzzes x509pop's server conversation, the attestation step that any unauthenticated client
// can reach: arbitrary bytes as the payload, and as the response to a challenge for an EC and an
// RSA node certificate; and, for the agent half, as a challenge. The first byte picks the target
// so one corpus covers all: 0 payload, 1 response (EC node), 2 agent challenge, 3 response (RSA
// node). The node PKI is fixed (certificates only, no private keys), so seeds can carry a chain
// that verifies and reach the challenge.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "attestors/x509pop/wire.h"
#include "attestors/x509pop/x509pop.h"
#include "common/clock.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"
#include "spiffe/key.h"
#include "spiffe/x509_svid.h"

namespace {

using namespace tessera;
using namespace tessera::attestors;

// Made with the openssl CLI: an EC P-256 root, and two leaves it signed (EC P-256, serial 0x0102;
// RSA-2048, serial 0x0103) with keyUsage digitalSignature and URI SAN
// x509pop://example.org/datacenter/fuzz, valid from 2026-12-01 for 100 years.
constexpr std::string_view kRootPem = R"(-----BEGIN CERTIFICATE-----
MIIBzjCCAXOgAwIBAgIUDZqDEM3xPhs0Im7QrigvWk+O3IwwCgYIKoZIzj0EAwIw
MzEVMBMGA1UECgwMVGVzc2VyYSBmdXp6MRowGAYDVQQDDBF4NTA5cG9wIGZ1enog
cm9vdDAgFw0yNjEyMDEwMjU2MjRaGA8yMTI2MTEwNzAyNTYyNFowMzEVMBMGA1UE
CgwMVGVzc2VyYSBmdXp6MRowGAYDVQQDDBF4NTA5cG9wIGZ1enogcm9vdDBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABGrUdsaFPs9ehMp3VZ01YNERJp2dRv9u2uHJ
qCTA5nypT3MvCp5hjMkocLK/sDjdYxQho09bsVirx0ZuUi/TpqSjYzBhMB0GA1Ud
DgQWBBQBsjncJwcKwOipbbBqBwsmIocBwjAfBgNVHSMEGDAWgBQBsjncJwcKwOip
bbBqBwsmIocBwjAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggq
hkjOPQQDAgNJADBGAiEArRbpPUmy22Rl71BkMtdxx+c7UkV3OKcaaakwo0szh8QC
IQDZ5So7xrOXOcXdls7eVM7K3aeNC6q0TAh6ZhCuPDIFAw==
-----END CERTIFICATE-----
)";
constexpr std::string_view kEcLeafPem = R"(-----BEGIN CERTIFICATE-----
MIIB0TCCAXagAwIBAgICAQIwCgYIKoZIzj0EAwIwMzEVMBMGA1UECgwMVGVzc2Vy
YSBmdXp6MRowGAYDVQQDDBF4NTA5cG9wIGZ1enogcm9vdDAgFw0yNjEyMDEwMjU2
MjVaGA8yMTI2MTEwNzAyNTYyNVowFzEVMBMGA1UEAwwMZnV6ei1ub2RlLWVjMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcmY/SWyaoIPT65+OnlBbtylN+RX4aFEK
VnyDEGwjDYA3dJyeRW+1ps61MQmPSNkIGWRpe8jc0dsvfSK7XVxoiqOBkzCBkDAM
BgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDAwBgNVHREEKTAnhiV4NTA5cG9w
Oi8vZXhhbXBsZS5vcmcvZGF0YWNlbnRlci9mdXp6MB0GA1UdDgQWBBRtx3k9AhVq
nhEfNgsHXZhwlgn3jTAfBgNVHSMEGDAWgBQBsjncJwcKwOipbbBqBwsmIocBwjAK
BggqhkjOPQQDAgNJADBGAiEA77O8ncYRI5TPg0PUZAXiHaEwo+ZWlowLPpNSH2/b
uU0CIQC2sCPs1eiDAQetmx6vFHOIDnLehJXFyobwV0BY9VPD8Q==
-----END CERTIFICATE-----
)";
constexpr std::string_view kRsaLeafPem = R"(-----BEGIN CERTIFICATE-----
MIICmzCCAkKgAwIBAgICAQMwCgYIKoZIzj0EAwIwMzEVMBMGA1UECgwMVGVzc2Vy
YSBmdXp6MRowGAYDVQQDDBF4NTA5cG9wIGZ1enogcm9vdDAgFw0yNjEyMDEwMjU2
MjVaGA8yMTI2MTEwNzAyNTYyNVowGDEWMBQGA1UEAwwNZnV6ei1ub2RlLXJzYTCC
ASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBANQBkzZ97KCiFfh+SF/ASg91
2tC2ITAuNz78sKWIS8moCjrM8A7GVwN7wO12BNDej6LR9dg1u3y6JNRCRfIYNROb
Zge0PKbA/Y1mb0iaM6YBqWCaPbeuBmvY6eQWuf+Tvg1Z5XyUepGx1IZdQDBM7pyC
tpSnm5ZD8vgt/nqasmBEtJBG07zZghsdHPaaAUC8UB5eDgTnU8lebdPBwpxbFjH4
FN46SeGnI6w/u/sBA7yWaBJjOPCjTE49bB8cd4Sy9SYAVvXzLxrf1Ps+PLK3XxzI
2iWSCtvi+KTrjBcZBYjLvjvTFbZVpda4BQoaudLUhrRy9YEwul4+wlVcAXy0bRkC
AwEAAaOBkzCBkDAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDAwBgNVHREE
KTAnhiV4NTA5cG9wOi8vZXhhbXBsZS5vcmcvZGF0YWNlbnRlci9mdXp6MB0GA1Ud
DgQWBBQD2HE5uzQ9ECj+/6/5kApFLS2sxTAfBgNVHSMEGDAWgBQBsjncJwcKwOip
bbBqBwsmIocBwjAKBggqhkjOPQQDAgNHADBEAiATJL9aRntLAMIioAXsgEyPnrrW
kdD1/PlcPt1fOQufxAIgOEdYQ/Ir1beuNGFLt187n7ZiRh8xHnKBtUIWlK5DlZY=
-----END CERTIFICATE-----
)";

[[noreturn]] void Die(std::string_view what) {
  fprintf(stderr, "x509pop_fuzz setup: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

std::string Write(const std::string& dir, const std::string& name, std::string_view contents) {
  std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

struct Fixture {
  FakeClock clock;  // 2027-01-15, inside the fixed certificates' validity
  std::string dir;
  std::unique_ptr<ServerNodeAttestor> server;
  std::unique_ptr<AgentNodeAttestor> agent;
  std::string ec_payload;
  std::string rsa_payload;
  spiffe::TrustDomain td = *spiffe::TrustDomain::Parse("example.org");

  Fixture() {
    char tmpl[] = "/tmp/x509pop_fuzz_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Die("mkdtemp");
    dir = tmpl;
    auto server_or = x509pop::NewServerAttestor(
        {.ca_bundle_paths = {Write(dir, "bundle.pem", kRootPem)}}, clock);
    if (!server_or.ok()) Die(std::string(server_or.status().message()));
    server = *std::move(server_or);
    auto ec = spiffe::Certificate::FromPem(kEcLeafPem);
    auto rsa = spiffe::Certificate::FromPem(kRsaLeafPem);
    if (!ec.ok() || !rsa.ok()) Die("parse fixed certificates");
    ec_payload = x509pop::EncodeAttestationData({.certificates = {ec->ToDer()}});
    rsa_payload = x509pop::EncodeAttestationData({.certificates = {rsa->ToDer()}});

    // The agent half needs a key that matches its certificate: a fresh self-signed one will do,
    // since only its parsing of the challenge is fuzzed.
    auto key = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256);
    if (!key.ok()) Die("generate key");
    spiffe::CaTemplate tmpl_ca{.public_key = key->public_key(),
                               .trust_domain = td,
                               .subject = {{"CN", "fuzz-agent"}},
                               .not_before = clock.Now(),
                               .not_after = clock.Now() + std::chrono::hours(1),
                               .max_path_len = std::nullopt};
    auto cert = spiffe::SignSelfSignedCa(tmpl_ca, *key);
    auto key_pem = key->ToPkcs8Pem();
    if (!cert.ok() || !key_pem.ok()) Die("make agent certificate");
    auto agent_or =
        x509pop::NewAgentAttestor({.certificate_path = Write(dir, "agent.pem", cert->ToPem()),
                                   .private_key_path = Write(dir, "agent.key", *key_pem)});
    if (!agent_or.ok()) Die(std::string(agent_or.status().message()));
    agent = *std::move(agent_or);
    if (!agent->Payload().ok()) Die("agent payload");
    // Everything is loaded; nothing reads the files again.
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};

Fixture& Get() {
  static Fixture* fixture = new Fixture();  // never destroyed: libFuzzer may exit at any time
  return *fixture;
}

// A result is only possible with the node's private key, which nobody has.
void MustNotSucceed(const absl::StatusOr<NodeAttestationStep>& step) {
  if (step.ok()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Fixture& f = Get();
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto conv = f.server->Begin(f.td);
      auto step = conv->Next(input);
      if (step.ok()) {
        // Only a challenge can follow a payload, and the conversation then wants a response.
        if (!step->challenge.has_value() || step->result.has_value()) std::abort();
        if (!x509pop::DecodeChallenge(*step->challenge).ok()) std::abort();
        MustNotSucceed(conv->Next(input));
      } else if (conv->Next(input).status().code() != absl::StatusCode::kFailedPrecondition) {
        std::abort();
      }
      break;
    }
    case 1:
    case 3: {
      auto conv = f.server->Begin(f.td);
      auto challenge = conv->Next(data[0] % 4 == 1 ? f.ec_payload : f.rsa_payload);
      if (!challenge.ok() || !challenge->challenge.has_value()) std::abort();
      MustNotSucceed(conv->Next(input));
      break;
    }
    case 2: {
      auto response = f.agent->RespondToChallenge(input);
      if (response.ok() && !x509pop::DecodeResponse(*response).ok()) std::abort();
      break;
    }
  }
  return 0;
}
