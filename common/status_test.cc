#include "common/status.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

absl::Status Fail(std::string_view message) { return absl::NotFoundError(std::string(message)); }

absl::StatusOr<int> Half(int n) {
  if (n % 2 != 0) return absl::InvalidArgumentError(absl::StrCat(n, " is odd"));
  return n / 2;
}

absl::StatusOr<std::unique_ptr<int>> Boxed(int n) {
  if (n < 0) return absl::OutOfRangeError("negative");
  return std::make_unique<int>(n);
}

TEST(AnnotateTest, PrependsContextAndKeepsCode) {
  const absl::Status s = Annotate(absl::NotFoundError("no such entry"), "load entry 7");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(s.message()), "load entry 7: no such entry");
  EXPECT_TRUE(Annotate(absl::OkStatus(), "ignored").ok());
  EXPECT_EQ(Annotate(absl::OkStatus(), "ignored").message(), "");
}

TEST(ReturnIfErrorTest, ReturnsTheFirstErrorAndEvaluatesOnce) {
  int calls = 0;
  auto step = [&](absl::Status s) {
    ++calls;
    return s;
  };
  auto run = [&](const absl::Status& first, const absl::Status& second) -> absl::Status {
    RETURN_IF_ERROR(step(first));
    RETURN_IF_ERROR(step(second));
    return absl::OkStatus();
  };
  EXPECT_TRUE(run(absl::OkStatus(), absl::OkStatus()).ok());
  EXPECT_EQ(calls, 2);

  calls = 0;
  const absl::Status s = run(Fail("first"), Fail("second"));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(s.message()), "first");
  EXPECT_EQ(calls, 1);

  calls = 0;
  EXPECT_EQ(std::string(run(absl::OkStatus(), Fail("second")).message()), "second");
  EXPECT_EQ(calls, 2);
}

TEST(ReturnIfErrorTest, WorksInAnUnbracedIfElse) {
  auto run = [](bool check) -> absl::Status {
    // Deliberately unbraced: the macro must behave as one statement.
    if (check)  // NOLINT(readability-braces-around-statements)
      RETURN_IF_ERROR(Fail("checked"));
    else  // NOLINT(readability-braces-around-statements)
      return absl::InternalError("unchecked");
    return absl::OkStatus();
  };
  EXPECT_EQ(std::string(run(true).message()), "checked");
  EXPECT_EQ(std::string(run(false).message()), "unchecked");
}

TEST(AssignOrReturnTest, TwoArgumentForm) {
  auto quarter = [](int n) -> absl::StatusOr<int> {
    ASSIGN_OR_RETURN(int half, Half(n));
    ASSIGN_OR_RETURN(const int q, Half(half));  // a second use in the same scope
    return q;
  };
  EXPECT_EQ(*quarter(12), 3);
  const absl::StatusOr<int> odd = quarter(6);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(odd.status().message()), "3 is odd");
}

TEST(AssignOrReturnTest, AssignsToExistingVariablesAndMovesOnlyTypes) {
  auto run = [](int n, std::unique_ptr<int>* out) -> absl::Status {
    std::unique_ptr<int> box;
    ASSIGN_OR_RETURN(box, Boxed(n));
    *out = std::move(box);
    return absl::OkStatus();
  };
  std::unique_ptr<int> out;
  ASSERT_TRUE(run(5, &out).ok());
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(*out, 5);
  EXPECT_EQ(run(-1, &out).code(), absl::StatusCode::kOutOfRange);
}

TEST(AssignOrReturnTest, ThreeArgumentFormTransformsTheError) {
  auto annotated = [](int n) -> absl::StatusOr<int> {
    ASSIGN_OR_RETURN(int half, Half(n), Annotate(_, "halve input"));
    return half;
  };
  EXPECT_EQ(*annotated(8), 4);
  const absl::StatusOr<int> odd = annotated(7);
  EXPECT_EQ(odd.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(odd.status().message()), "halve input: 7 is odd");

  // The error expression may replace the status entirely, or return a plain value.
  auto replaced = [](int n) -> absl::Status {
    ASSIGN_OR_RETURN([[maybe_unused]] int half, Half(n), absl::UnavailableError("retry later"));
    return absl::OkStatus();
  };
  EXPECT_EQ(replaced(3).code(), absl::StatusCode::kUnavailable);
  auto fallback = [](int n) -> int {
    ASSIGN_OR_RETURN(int half, Half(n), -1);
    return half;
  };
  EXPECT_EQ(fallback(10), 5);
  EXPECT_EQ(fallback(11), -1);
}

TEST(AssignOrReturnTest, EvaluatesTheExpressionOnce) {
  int calls = 0;
  auto counted = [&]() -> absl::StatusOr<int> {
    ++calls;
    return 1;
  };
  auto run = [&]() -> absl::Status {
    ASSIGN_OR_RETURN([[maybe_unused]] int v, counted());
    return absl::OkStatus();
  };
  ASSERT_TRUE(run().ok());
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace tessera
