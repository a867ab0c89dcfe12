#include "spiffe/openssl.h"

#include <openssl/err.h>

#include <climits>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace tessera::spiffe {

absl::Status OpenSslError(std::string_view context, absl::StatusCode code) {
  // The oldest entry is the root cause (later ones are added by callers further up OpenSSL's
  // stack), so it is the one worth reporting; the rest is drained so that it cannot leak into
  // the next, unrelated failure on this thread.
  unsigned long first = ERR_get_error();
  while (ERR_get_error() != 0) {
  }
  std::string detail = "unknown error";
  if (first != 0) {
    const char* lib = ERR_lib_error_string(first);
    const char* reason = ERR_reason_error_string(first);
    if (reason != nullptr) {
      detail = lib != nullptr ? absl::StrCat(lib, ": ", reason) : std::string(reason);
    } else {
      char buf[256];
      ERR_error_string_n(first, buf, sizeof(buf));
      detail = buf;
    }
  }
  return absl::Status(code, absl::StrCat(AsAbsl(context), ": ", detail));
}

BioPtr MemBio(std::string_view data) {
  // BIO_new_mem_buf wants a non-null pointer even for an empty buffer, and an int length.
  if (data.size() > static_cast<size_t>(INT_MAX)) return nullptr;
  const char* ptr = data.empty() ? "" : data.data();
  return BioPtr(BIO_new_mem_buf(ptr, static_cast<int>(data.size())));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) return {};
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace tessera::spiffe
