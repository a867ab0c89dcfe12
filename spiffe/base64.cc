#include "spiffe/base64.h"

#include <array>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace tessera::spiffe {
namespace {

constexpr std::string_view kStdAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr int kInvalid = -1;

constexpr std::array<int, 256> ReverseTable(std::string_view alphabet) {
  std::array<int, 256> table{};
  for (int& v : table) v = kInvalid;
  for (size_t i = 0; i < alphabet.size(); ++i) {
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<int>(i);
  }
  return table;
}

constexpr std::array<int, 256> kStdReverse = ReverseTable(kStdAlphabet);
constexpr std::array<int, 256> kUrlReverse = ReverseTable(kUrlAlphabet);

std::string Encode(std::string_view data, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t n = byte(i) << 16;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    if (pad) out += "==";
  } else if (rest == 2) {
    uint32_t n = byte(i) << 16 | byte(i + 1) << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

// Decodes `text` (padding already removed) with `table`; `name` is used in messages.
absl::StatusOr<std::string> Decode(std::string_view text, const std::array<int, 256>& table,
                                   std::string_view name) {
  if (text.size() % 4 == 1) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", AsAbsl(name), ": truncated input"));
  }
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    int v = table[static_cast<unsigned char>(text[i])];
    if (v == kInvalid) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid ", AsAbsl(name), ": illegal character at offset ", i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // A canonical encoding leaves the unused low bits of the last character zero; accepting
  // anything else would give one byte string several spellings (and a JWS several signatures).
  if ((acc & ((1u << bits) - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid ", AsAbsl(name), ": non-zero trailing bits"));
  }
  return out;
}

}  // namespace

std::string Base64Encode(std::string_view data) { return Encode(data, kStdAlphabet, true); }

absl::StatusOr<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return absl::InvalidArgumentError("invalid base64: length is not a multiple of 4");
  }
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  std::string_view body = text.substr(0, text.size() - padding);
  if (body.find('=') != std::string_view::npos) {
    return absl::InvalidArgumentError("invalid base64: bad padding");
  }
  // Two characters encode one byte, three encode two: any other remainder means the padding
  // does not match the data.
  if (padding > 0 && body.size() % 4 != 4 - padding) {
    return absl::InvalidArgumentError("invalid base64: bad padding");
  }
  return Decode(body, kStdReverse, "base64");
}

std::string Base64UrlEncode(std::string_view data) { return Encode(data, kUrlAlphabet, false); }

absl::StatusOr<std::string> Base64UrlDecode(std::string_view text) {
  if (text.find('=') != std::string_view::npos) {
    return absl::InvalidArgumentError("invalid base64url: padding is not allowed");
  }
  return Decode(text, kUrlReverse, "base64url");
}

}  // namespace tessera::spiffe
