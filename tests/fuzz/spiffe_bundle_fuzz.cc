// Fuzzes the bundle parsers (SPIFFE bundle, Workload API JWKS, bundle map) with arbitrary bytes.
// Nothing may crash, and every accepted document must survive a round trip: serializing the
// parsed value and parsing that again gives an equal value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "spiffe/base64.h"
#include "spiffe/bundle.h"
#include "spiffe/bundle_json.h"

namespace tessera::spiffe {
namespace {

void CheckSpiffeBundle(const TrustDomain& td, std::string_view text) {
  auto bundle = ParseSpiffeBundle(td, text);
  if (!bundle.ok()) return;
  auto json = SpiffeBundleToJson(*bundle);
  if (!json.ok()) std::abort();
  auto again = ParseSpiffeBundle(td, *json);
  if (!again.ok() || !(*again == *bundle)) std::abort();
  // The bundle's X.509 authorities survive the PEM and DER encodings too.
  if (!bundle->x509_authorities().empty()) {
    auto pem = BundleFromX509Pem(td, X509AuthoritiesToPem(*bundle));
    if (!pem.ok() || pem->x509_authorities() != bundle->x509_authorities()) std::abort();
    auto der = BundleFromX509Der(td, X509AuthoritiesToDer(*bundle));
    if (!der.ok() || der->x509_authorities() != bundle->x509_authorities()) std::abort();
  }
}

void CheckJwks(const TrustDomain& td, std::string_view text) {
  auto bundle = ParseJwtBundleJwks(td, text);
  if (!bundle.ok()) return;
  if (!bundle->x509_authorities().empty()) std::abort();
  auto json = JwtBundleToJwks(*bundle);
  if (!json.ok()) std::abort();
  auto again = ParseJwtBundleJwks(td, *json);
  if (!again.ok() || !(*again == *bundle)) std::abort();
}

void CheckBundleMap(std::string_view text) {
  auto set = ParseBundleMap(text);
  if (!set.ok()) return;
  for (const auto& [td, bundle] : *set) {
    if (bundle.trust_domain() != td || bundle.refresh_hint().has_value()) std::abort();
  }
  auto json = BundleMapToJson(*set);
  if (!json.ok()) std::abort();
  auto again = ParseBundleMap(*json);
  if (!again.ok() || !(*again == *set)) std::abort();
}

void FuzzOne(std::string_view text) {
  static const TrustDomain* td = new TrustDomain(*TrustDomain::Parse("example.org"));

  // x5c values are standard base64; the decoder is canonical, so acceptance implies a round trip.
  if (auto decoded = Base64Decode(text); decoded.ok() && Base64Encode(*decoded) != text) {
    std::abort();
  }
  CheckSpiffeBundle(*td, text);
  CheckJwks(*td, text);
  CheckBundleMap(text);
}

}  // namespace
}  // namespace tessera::spiffe

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tessera::spiffe::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
