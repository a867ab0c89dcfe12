// Bridges between std::string_view and absl::string_view.
//
// Debian's abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW=0, so absl::string_view is a
// distinct type: absl::StrCat / StrAppend / StrSplit do not accept a std::string_view, and
// absl::Status::message() returns an absl::string_view. Our code uses std::string_view and
// converts at those calls with these two functions.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace tessera {

inline absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view AsStd(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace tessera
