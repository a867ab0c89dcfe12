// Text helpers for untrusted input: UTF-8 validation, JSON string literals, and quoting values
// inside error messages. Pure functions; safe for concurrent use.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tessera {

// Length (1 to 4) of the well-formed UTF-8 sequence at the start of `s`, or 0 when `s` is empty
// or starts with an ill-formed one. Overlong encodings, UTF-16 surrogates (U+D800..U+DFFF) and
// code points above U+10FFFF are ill-formed, as in RFC 3629.
size_t Utf8SequenceLength(std::string_view s);

// True when all of `s` is well-formed UTF-8.
bool IsValidUtf8(std::string_view s);

// Appends `s` to `out` as a JSON string literal, quotes included. Control characters and DEL are
// escaped, and every byte that is not part of well-formed UTF-8 becomes U+FFFD, so the result is
// valid JSON (and valid UTF-8) whatever `s` holds.
void AppendJsonString(std::string_view s, std::string* out);

// `s` in double quotes with C escapes (\n, \", \x01...) for use inside an error message, cut to
// at most `max_bytes` input bytes (marked with "..." after the closing quote) so that a huge
// untrusted value cannot flood a log.
std::string Quoted(std::string_view s, size_t max_bytes = 256);

}  // namespace tessera
