#include "spiffe/base64.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::spiffe {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// RFC 4648 §10 test vectors.
TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    auto decoded = Base64Decode(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded << ": " << decoded.status();
    EXPECT_EQ(*decoded, plain);

    std::string unpadded = encoded.substr(0, encoded.find('='));
    EXPECT_EQ(Base64UrlEncode(plain), unpadded);
    auto url_decoded = Base64UrlDecode(unpadded);
    ASSERT_TRUE(url_decoded.ok()) << unpadded << ": " << url_decoded.status();
    EXPECT_EQ(*url_decoded, plain);
  }
}

TEST(Base64Test, AlphabetsDiffer) {
  const std::string data("\xfb\xff\xbf", 3);
  EXPECT_EQ(Base64Encode(data), "+/+/");
  EXPECT_EQ(Base64UrlEncode(data), "-_-_");
  EXPECT_THAT(Message(Base64Decode("-_-_").status()), HasSubstr("illegal character at offset 0"));
  EXPECT_THAT(Message(Base64UrlDecode("+/+/").status()),
              HasSubstr("illegal character at offset 0"));
}

TEST(Base64Test, AllByteValuesRoundTrip) {
  std::string data;
  for (int i = 0; i < 256; ++i) data += static_cast<char>(i);
  for (size_t len = 0; len <= data.size(); len += 37) {
    std::string part = data.substr(0, len);
    EXPECT_EQ(*Base64Decode(Base64Encode(part)), part);
    EXPECT_EQ(*Base64UrlDecode(Base64UrlEncode(part)), part);
  }
}

TEST(Base64Test, StandardRejectsMalformed) {
  EXPECT_THAT(Message(Base64Decode("Zm9").status()), HasSubstr("not a multiple of 4"));
  EXPECT_THAT(Message(Base64Decode("Zg").status()), HasSubstr("not a multiple of 4"));
  EXPECT_THAT(Message(Base64Decode("Zg=").status()), HasSubstr("not a multiple of 4"));
  EXPECT_THAT(Message(Base64Decode("Z===").status()), HasSubstr("bad padding"));
  EXPECT_THAT(Message(Base64Decode("====").status()), HasSubstr("bad padding"));
  EXPECT_THAT(Message(Base64Decode("Zm8==").status()), HasSubstr("not a multiple of 4"));
  EXPECT_THAT(Message(Base64Decode("Zm=v").status()), HasSubstr("bad padding"));
  EXPECT_THAT(Message(Base64Decode("Zg==Zg==").status()), HasSubstr("bad padding"));
  // "Zm9=" would need two characters for two bytes: padding count does not fit.
  EXPECT_THAT(Message(Base64Decode("Zm9vZ===").status()), HasSubstr("bad padding"));
  EXPECT_THAT(Message(Base64Decode("Zm9v\nYmFy").status()), HasSubstr("not a multiple of 4"));
  EXPECT_THAT(Message(Base64Decode("Zm9 ").status()), HasSubstr("illegal character at offset 3"));
  EXPECT_THAT(Message(Base64Decode(std::string("Zm\0v", 4)).status()),
              HasSubstr("illegal character at offset 2"));
  // "Zh==" decodes to 'f' too but has non-zero unused bits.
  EXPECT_THAT(Message(Base64Decode("Zh==").status()), HasSubstr("non-zero trailing bits"));
  EXPECT_THAT(Message(Base64Decode("Zm9=").status()), HasSubstr("non-zero trailing bits"));
}

TEST(Base64Test, UrlRejectsMalformed) {
  EXPECT_THAT(Message(Base64UrlDecode("Zg==").status()), HasSubstr("padding is not allowed"));
  EXPECT_THAT(Message(Base64UrlDecode("Zm8=").status()), HasSubstr("padding is not allowed"));
  EXPECT_THAT(Message(Base64UrlDecode("Z").status()), HasSubstr("truncated"));
  EXPECT_THAT(Message(Base64UrlDecode("Zm9vY").status()), HasSubstr("truncated"));
  EXPECT_THAT(Message(Base64UrlDecode("Zm 9").status()),
              HasSubstr("illegal character at offset 2"));
  EXPECT_THAT(Message(Base64UrlDecode("Zh").status()), HasSubstr("non-zero trailing bits"));
  EXPECT_EQ(Base64UrlDecode("Zh").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::spiffe
