// Status helpers: early-return macros over absl::Status / absl::StatusOr.
//
//   RETURN_IF_ERROR(DoThing());
//   ASSIGN_OR_RETURN(auto value, ComputeValue());
//   ASSIGN_OR_RETURN(Config c, Load(path), tessera::Annotate(_, "load config"));
//
// ASSIGN_OR_RETURN's optional third argument is an expression over `_`, the error status, whose
// value is returned instead: use tessera::Annotate(_, "context") to add context. It expands to
// several statements, so it needs braces around it inside an if/else; RETURN_IF_ERROR does not.
// Thread-safe: these are stateless.
#pragma once

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace tessera {

// Returns `status` with "context: " prepended to its message; OK stays OK.
inline absl::Status Annotate(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(AsAbsl(context), ": ", status.message()));
}

}  // namespace tessera

#define TESSERA_STATUS_CONCAT_INNER(a, b) a##b
#define TESSERA_STATUS_CONCAT(a, b) TESSERA_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status tessera_status_ = (expr);           \
    if (!tessera_status_.ok()) return tessera_status_; \
  } while (false)

#define TESSERA_ASSIGN_OR_RETURN_2(lhs, expr) \
  TESSERA_ASSIGN_OR_RETURN_IMPL(TESSERA_STATUS_CONCAT(tessera_or_, __COUNTER__), lhs, expr, _)

#define TESSERA_ASSIGN_OR_RETURN_3(lhs, expr, on_error)                                     \
  TESSERA_ASSIGN_OR_RETURN_IMPL(TESSERA_STATUS_CONCAT(tessera_or_, __COUNTER__), lhs, expr, \
                                on_error)

#define TESSERA_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr, on_error) \
  auto tmp = (expr);                                            \
  if (!tmp.ok()) {                                              \
    [[maybe_unused]] const ::absl::Status& _ = tmp.status();    \
    return (on_error);                                          \
  }                                                             \
  lhs = std::move(tmp).value()

#define TESSERA_GET_MACRO(_1, _2, _3, name, ...) name
#define ASSIGN_OR_RETURN(...)                                                            \
  TESSERA_GET_MACRO(__VA_ARGS__, TESSERA_ASSIGN_OR_RETURN_3, TESSERA_ASSIGN_OR_RETURN_2) \
  (__VA_ARGS__)
