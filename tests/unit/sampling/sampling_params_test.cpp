#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "engine/sampling/sampler.h"

namespace tnl {
namespace {

// Applies `change` to default params and returns the validation status.
Status validate_with(const std::function<void(SamplingParams&)>& change) {
  SamplingParams params;
  change(params);
  return params.validate();
}

void expect_rejected(const std::function<void(SamplingParams&)>& change, const std::string& message) {
  const Status status = validate_with(change);
  EXPECT_FALSE(status.is_ok()) << message;
  EXPECT_EQ(status.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(status.message(), message);
}

TEST(SamplingParamsTest, DefaultsAndBoundariesAreValid) {
  EXPECT_TRUE(SamplingParams{}.validate().is_ok());
  EXPECT_TRUE(validate_with([](auto& p) { p.temperature = 0.0f; }).is_ok());
  EXPECT_TRUE(validate_with([](auto& p) { p.temperature = 2.0f; }).is_ok());
  EXPECT_TRUE(validate_with([](auto& p) { p.top_p = 1.0f; }).is_ok());
  EXPECT_TRUE(validate_with([](auto& p) { p.top_p = 0.001f; }).is_ok());
  EXPECT_TRUE(validate_with([](auto& p) { p.top_k = -1; }).is_ok());
  EXPECT_TRUE(validate_with([](auto& p) { p.top_k = 50; }).is_ok());
  EXPECT_TRUE(validate_with([](auto& p) { p.min_p = 1.0f; }).is_ok());
  EXPECT_TRUE(validate_with([](auto& p) { p.repetition_penalty = 10.0f; }).is_ok());
  EXPECT_TRUE(validate_with([](auto& p) { p.presence_penalty = -2.0f; }).is_ok());
  EXPECT_TRUE(validate_with([](auto& p) { p.frequency_penalty = 2.0f; }).is_ok());
  EXPECT_TRUE(validate_with([](auto& p) { p.logprobs = 20; }).is_ok());
  EXPECT_TRUE(validate_with([](auto& p) { p.logprobs = 0; }).is_ok());
}

TEST(SamplingParamsTest, MessagesNameTheParameterAndTheValue) {
  expect_rejected([](auto& p) { p.temperature = 3.5f; }, "temperature must be in [0, 2], got 3.5");
  expect_rejected([](auto& p) { p.temperature = -0.1f; }, "temperature must be in [0, 2], got -0.1");
  expect_rejected([](auto& p) { p.top_p = 0.0f; }, "top_p must be in (0, 1], got 0");
  expect_rejected([](auto& p) { p.top_p = 1.5f; }, "top_p must be in (0, 1], got 1.5");
  expect_rejected([](auto& p) { p.top_k = -2; }, "top_k must be >= -1 (-1 or 0: off), got -2");
  expect_rejected([](auto& p) { p.min_p = 1.1f; }, "min_p must be in [0, 1], got 1.1");
  expect_rejected([](auto& p) { p.repetition_penalty = 0.0f; },
                  "repetition_penalty must be in (0, 10], got 0");
  expect_rejected([](auto& p) { p.presence_penalty = 2.5f; },
                  "presence_penalty must be in [-2, 2], got 2.5");
  expect_rejected([](auto& p) { p.frequency_penalty = -3.0f; },
                  "frequency_penalty must be in [-2, 2], got -3");
  expect_rejected([](auto& p) { p.logprobs = 21; }, "logprobs must be in [-1, 20], got 21");
  expect_rejected([](auto& p) { p.logprobs = -2; }, "logprobs must be in [-1, 20], got -2");
}

TEST(SamplingParamsTest, NanIsRejected) {
  EXPECT_FALSE(validate_with([](auto& p) { p.temperature = std::nanf(""); }).is_ok());
  EXPECT_FALSE(validate_with([](auto& p) { p.top_p = std::nanf(""); }).is_ok());
  EXPECT_FALSE(validate_with([](auto& p) { p.repetition_penalty = std::nanf(""); }).is_ok());
}

}  // namespace
}  // namespace tnl
