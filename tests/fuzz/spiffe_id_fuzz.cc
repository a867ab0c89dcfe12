// Fuzzes the SPIFFE ID parser: any accepted input must round-trip byte for byte and satisfy the
// invariants the rest of Tessera relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "spiffe/id.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto id = tessera::spiffe::SpiffeId::Parse(text);
  if (!id.ok()) return 0;
  if (id->str() != text) std::abort();
  if (text.size() > tessera::spiffe::kMaxIdLength) std::abort();
  auto td = id->trust_domain();
  if (!id->MemberOf(td)) std::abort();
  if (id->str() != td.IdString() + std::string(id->path())) std::abort();
  auto again = tessera::spiffe::SpiffeId::FromPath(td, id->path());
  if (!again.ok() || *again != *id) std::abort();
  if (id->IsTrustDomainId() != id->path().empty()) std::abort();
  return 0;
}
