// Fuzzes JWT-SVID parsing and validation against a fixed set of JWT authorities: nothing may
// crash, and a token that validates must satisfy what callers rely on (a strictly parsed
// subject, the expected audience, a key of the subject's own trust domain). The seed corpus
// holds tokens signed by the private halves of these keys, valid at kNow.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "spiffe/base64.h"
#include "spiffe/bundle.h"
#include "spiffe/jwt_svid.h"
#include "spiffe/strict_json.h"

namespace tessera::spiffe {
namespace {

// Public keys only; the fixture needs nothing secret.
constexpr std::string_view kEcP256 = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsjYpKMMYT9hpvLV1gkvb+xz51dSV
HY2h4YdH9nWA2k/h/DKIbgV535dk+upY+R7bFQjprgBzPL8GwyXpw8iBmw==
-----END PUBLIC KEY-----
)";
constexpr std::string_view kOtherEcP256 = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvudfYRzmwas9BOMY/aJIpQgLXZMU
Py97B1Z2mJco70ZcI33UOxNxgeYm3JHKXi1LLGy6qlmv7VKkNZ4c1GXwWQ==
-----END PUBLIC KEY-----
)";
constexpr std::string_view kEcP384 = R"(-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEJAw2xhd4MCFu4bMnHtd3lSKaUCxpJpuH
yJUJnpc2EBD3F9U3gI4yB7POMB/HXOjbWNzTMkUCLWha8Dts27kUrUPlulPaEHWa
CM/DkVckJGtt79eDI+MSicP7s1CNpZ+p
-----END PUBLIC KEY-----
)";
constexpr std::string_view kRsa2048 = R"(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkHmYooQ/Up/m+mUuM4J8
zjr+xeevUBE6hv5Aw7bkt1z6VQTcd1g/og0rKE8pOX+GLYICOKk/kCWJQFHFvyqy
remJSE6h9NqkXhssPUtVoQLa4P+QeC8cXFLbtNuVche1XDl3eVDaMclSA2EvgGE0
Sr1FY2Zj+uggwBCctndku8pDV0ok5N7/WCRVc9PCmdGgpqPxsH/qgy9nctxEePLs
UTT83n1C5U/G3uD4lgNg1Rm27M0VL4OuWxt5fC/ZaDB6XsIf6ulFw4343ULyV/m3
LzWLqw6KaiEyEs231gluuMF5W9fSUJIO5Py4diDv9Jvhm2A7H5629dKybI9moqWx
YwIDAQAB
-----END PUBLIC KEY-----
)";

const auto kNow = std::chrono::system_clock::from_time_t(1'800'000'000);

PublicKey Key(std::string_view pem) {
  auto key = PublicKey::FromPem(pem);
  if (!key.ok()) std::abort();
  return *key;
}

// example.org trusts "ec", "ec384" and "rsa"; other.org reuses the key ID "ec" for another key.
const BundleSet& Authorities() {
  static const BundleSet* set = [] {
    auto* s = new BundleSet();
    Bundle example(*TrustDomain::Parse("example.org"));
    if (!example.AddJwtAuthority("ec", Key(kEcP256)).ok() ||
        !example.AddJwtAuthority("ec384", Key(kEcP384)).ok() ||
        !example.AddJwtAuthority("rsa", Key(kRsa2048)).ok()) {
      std::abort();
    }
    s->Put(example);
    Bundle other(*TrustDomain::Parse("other.org"));
    if (!other.AddJwtAuthority("ec", Key(kOtherEcP256)).ok()) std::abort();
    s->Put(other);
    return s;
  }();
  return *set;
}

void FuzzOne(std::string_view text) {
  // The decoders are canonical: whatever they accept re-encodes to the same text.
  if (auto decoded = Base64UrlDecode(text); decoded.ok() && Base64UrlEncode(*decoded) != text) {
    std::abort();
  }

  auto insecure = ParseJwtSvidInsecure(text);
  if (insecure.ok()) {
    auto again = SpiffeId::Parse(insecure->subject.str());
    if (!again.ok() || *again != insecure->subject) std::abort();
    if (insecure->audience.empty() || insecure->key_id.empty()) std::abort();
    if (!DumpJson(insecure->claims).ok()) std::abort();
  }

  const std::vector<std::string> audience = {"svc"};
  auto valid = ParseAndValidateJwtSvid(text, Authorities(), audience, kNow);
  if (!valid.ok()) {
    if (valid.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return;
  }
  // Validation is the insecure parse plus checks: it cannot accept more.
  if (!insecure.ok() || insecure->subject != valid->subject) std::abort();
  auto again = SpiffeId::Parse(valid->subject.str());
  if (!again.ok() || *again != valid->subject) std::abort();
  if (std::find(valid->audience.begin(), valid->audience.end(), "svc") == valid->audience.end()) {
    std::abort();
  }
  const PublicKey* key =
      Authorities().FindJwtAuthority(valid->subject.trust_domain(), valid->key_id);
  if (key == nullptr || !KeyFitsJwtAlgorithm(*key, valid->algorithm)) std::abort();
  if (valid->expiry < kNow - kJwtLeeway) std::abort();
}

}  // namespace
}  // namespace tessera::spiffe

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tessera::spiffe::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
