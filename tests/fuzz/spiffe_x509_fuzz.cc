// Fuzzes the parsers that read X.509 material from the network or a workload: DER certificate
// chains (Workload API, server API), CSRs (BatchNewX509SVID), PKCS#8 keys, and the leaf-profile
// check run on whatever parses. The first byte picks the parser so one corpus covers all.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "spiffe/certificate.h"
#include "spiffe/csr.h"
#include "spiffe/key.h"
#include "spiffe/x509_verify.h"

using namespace tessera::spiffe;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto chain = ParseDerChain(input);
      if (!chain.ok()) return 0;
      // What parsed must serialize back to exactly the bytes it came from.
      if (ChainToDer(*chain) != input) std::abort();
      (void)ValidateLeafProfile(chain->front());
      (void)chain->front().UriSans();
      (void)chain->front().SerialHex();
      break;
    }
    case 1: {
      auto csr = ParseCsr(input);
      if (csr.ok() && !csr->public_key.ToDer().ok()) std::abort();
      break;
    }
    case 2: {
      auto key = PrivateKey::FromPkcs8Der(input);
      if (key.ok() && !key->ToPkcs8Der().ok()) std::abort();
      break;
    }
    case 3:
      (void)ParsePemChain(input);
      break;
  }
  return 0;
}
