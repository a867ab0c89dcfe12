#include "spiffe/strict_json.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::spiffe {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(StrictJsonTest, ParsesDocument) {
  auto v = ParseStrictJson(R"({"a":[1,{"b":"c"}],"d":null})", 1024, 3);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)["a"][1]["b"], "c");
  EXPECT_TRUE((*v)["d"].is_null());
  // The same member name in different objects is fine.
  EXPECT_TRUE(ParseStrictJson(R"({"a":{"a":1},"b":{"a":2}})", 1024, 2).ok());
}

TEST(StrictJsonTest, RejectsDuplicateMembers) {
  auto v = ParseStrictJson(R"({"alg":"ES256","alg":"none"})", 1024, 4);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(v.status()), HasSubstr("duplicate member \"alg\""));
  EXPECT_THAT(Message(ParseStrictJson(R"([{"x":{"k":1,"k":2}}])", 1024, 4).status()),
              HasSubstr("duplicate member \"k\""));
}

TEST(StrictJsonTest, LimitsDepth) {
  EXPECT_TRUE(ParseStrictJson("[[[1]]]", 1024, 3).ok());
  EXPECT_THAT(Message(ParseStrictJson("[[[[1]]]]", 1024, 3).status()),
              HasSubstr("nesting is deeper than 3"));
  EXPECT_THAT(Message(ParseStrictJson(R"({"a":{"b":{"c":{}}}})", 1024, 3).status()),
              HasSubstr("nesting is deeper than 3"));
  // Deep enough to overflow the stack if anything recursed over it.
  std::string deep(200000, '[');
  EXPECT_THAT(Message(ParseStrictJson(deep, 1 << 20, 32).status()),
              HasSubstr("nesting is deeper than 32"));
}

TEST(StrictJsonTest, LimitsSize) {
  EXPECT_THAT(Message(ParseStrictJson(std::string(2000, ' ') + "1", 1000, 4).status()),
              HasSubstr("larger than 1000 bytes"));
}

TEST(StrictJsonTest, RejectsMalformed) {
  for (const char* bad : {"", "{", "{\"a\":}", "[1,]", "{'a':1}", "1 2", "\"\xff\"", "nul"}) {
    auto v = ParseStrictJson(bad, 1024, 4);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(Message(v.status()), HasSubstr("invalid JSON: ")) << bad;
    EXPECT_THAT(Message(v.status()), ::testing::Not(HasSubstr("[json.exception")));
  }
}

TEST(StrictJsonTest, DumpRejectsInvalidUtf8) {
  EXPECT_EQ(*DumpJson(nlohmann::json{{"b", 1}, {"a", "x"}}), R"({"a":"x","b":1})");
  auto bad = DumpJson(nlohmann::json("\xc3"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(bad.status()), HasSubstr("serialize JSON"));
}

}  // namespace
}  // namespace tessera::spiffe
