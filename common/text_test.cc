#include "common/text.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

TEST(Utf8Test, SequenceLengths) {
  EXPECT_EQ(Utf8SequenceLength(""), 0u);
  EXPECT_EQ(Utf8SequenceLength("a"), 1u);
  EXPECT_EQ(Utf8SequenceLength(std::string("\0", 1)), 1u);
  EXPECT_EQ(Utf8SequenceLength("\xC3\xA9"), 2u);          // é
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82\xAC"), 3u);      // €
  EXPECT_EQ(Utf8SequenceLength("\xF0\x9F\x94\x91"), 4u);  // 🔑
  EXPECT_EQ(Utf8SequenceLength("\xEF\xBF\xBF"), 3u);      // U+FFFF
  EXPECT_EQ(Utf8SequenceLength("\xF4\x8F\xBF\xBF"), 4u);  // U+10FFFF
}

TEST(Utf8Test, RejectsIllFormedSequences) {
  for (const char* bad : {
           "\x80",              // lone continuation byte
           "\xC3",              // truncated
           "\xC3(",             // bad continuation
           "\xC0\xAF",          // overlong '/'
           "\xC1\xBF",          // overlong
           "\xE0\x80\xAF",      // overlong
           "\xED\xA0\x80",      // U+D800 surrogate
           "\xED\xBF\xBF",      // U+DFFF surrogate
           "\xF0\x80\x80\xAF",  // overlong
           "\xF4\x90\x80\x80",  // U+110000
           "\xF5\x80\x80\x80",  // beyond the Unicode range
           "\xFF",
           "\xE2\x82",  // truncated €
       }) {
    EXPECT_EQ(Utf8SequenceLength(bad), 0u) << ::testing::PrintToString(std::string(bad));
    EXPECT_FALSE(IsValidUtf8(bad)) << ::testing::PrintToString(std::string(bad));
  }
}

TEST(Utf8Test, ValidatesWholeStrings) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\x91"));
  EXPECT_FALSE(IsValidUtf8("caf\xC3\xA9 \xE2\x82"));
  EXPECT_FALSE(IsValidUtf8("ok\xFFok"));
}

std::string Json(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

TEST(JsonStringTest, EscapesExactly) {
  EXPECT_EQ(Json(""), R"("")");
  EXPECT_EQ(Json("plain"), R"("plain")");
  EXPECT_EQ(Json("say \"hi\"\\"), R"("say \"hi\"\\")");
  EXPECT_EQ(Json("a\nb\rc\td"), R"("a\nb\rc\td")");
  EXPECT_EQ(Json(std::string("\0\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
  EXPECT_EQ(Json("/</script>"), R"("/</script>")");
  EXPECT_EQ(Json("caf\xC3\xA9"), "\"caf\xC3\xA9\"");
  EXPECT_EQ(Json("bad\xFF"), R"("bad\ufffd")");
  EXPECT_EQ(Json("\xC0\xAF"), R"("\ufffd\ufffd")");
  EXPECT_EQ(Json("\xE2\x82"), R"("\ufffd\ufffd")");

  std::string appended = "x=";
  AppendJsonString("y", &appended);
  EXPECT_EQ(appended, R"(x="y")");
}

TEST(JsonStringTest, AlwaysParsesAsJsonAndKeepsValidText) {
  // Every single byte value, and a mix of valid and invalid sequences.
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  for (const std::string& input :
       {all, std::string("line1\nline2\"\\\x01\xED\xA0\x80\xF0\x9F\x94\x91")}) {
    nlohmann::json parsed = nlohmann::json::parse(Json(input), nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(parsed.is_string()) << Json(input);
  }
  const std::string valid = "tab\there \"quoted\" \\ \xE2\x82\xAC \n end";
  EXPECT_EQ(nlohmann::json::parse(Json(valid)).get<std::string>(), valid);
}

TEST(QuotedTest, EscapesAndTruncates) {
  EXPECT_EQ(Quoted("abc"), R"("abc")");
  EXPECT_EQ(Quoted("a\"b\n"), R"("a\"b\n")");
  EXPECT_EQ(Quoted("\x01\xFF"), R"("\x01\xff")");
  EXPECT_EQ(Quoted("abcdef", 3), R"("abc"...)");
  EXPECT_EQ(Quoted("abc", 3), R"("abc")");
  EXPECT_EQ(Quoted(std::string(1000, 'x')).size(), 256u + 2 + 3);
}

}  // namespace
}  // namespace tessera
