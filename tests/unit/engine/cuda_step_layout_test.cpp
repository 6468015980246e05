// The CUDA backend's step layout (engine/cuda/step_layout.h), host code only: a
// decode graph's padding rows laid out by make_step_layout equal the layout of
// the plan with padding chunks appended (how the backend padded before), so the
// captured graphs see the same arrays; row_begin and sample_row cover the plan's
// own chunks.
#include "engine/cuda/step_layout.h"

#include <random>

#include <gtest/gtest.h>

namespace tnl {
namespace {

constexpr int32_t kScratch = 99;

SequenceChunk decode_chunk(int32_t slot, int64_t pos, int32_t token, bool sample) {
  SequenceChunk c{slot, pos, {token}, sample ? LogitsMode::kNone : LogitsMode::kLast};
  if (sample) c.sample = DeviceSampling{};
  return c;
}

// The layout of `plan` with `rows` padding chunks appended, row_begin and
// sample_row cut to the plan's chunks.
StepLayout padded_by_copy(const StepPlan& plan, int64_t rows) {
  StepPlan padded = plan;
  // A padding row's logits are computed, never wanted by the host: like a row
  // sampled on the device.
  for (int64_t i = 0; i < rows; ++i) {
    padded.chunks.push_back({kScratch, 1, {0}, LogitsMode::kNone});
    padded.chunks.back().sample = DeviceSampling{};
  }
  StepLayout s = make_step_layout(padded, 4, 64, 264);
  s.row_begin.resize(plan.chunks.size());
  s.sample_row.resize(plan.chunks.size());
  return s;
}

void expect_same(const StepLayout& a, const StepLayout& b) {
  EXPECT_EQ(a.num_tokens, b.num_tokens);
  EXPECT_EQ(a.num_decode, b.num_decode);
  EXPECT_EQ(a.num_prefill_tokens, b.num_prefill_tokens);
  EXPECT_EQ(a.num_logit_rows, b.num_logit_rows);
  EXPECT_EQ(a.num_host_rows, b.num_host_rows);
  EXPECT_EQ(a.row_begin, b.row_begin);
  EXPECT_EQ(a.sample_row, b.sample_row);
  EXPECT_EQ(a.ints, b.ints);
  for (int64_t StepLayout::*offset : {&StepLayout::tokens, &StepLayout::positions, &StepLayout::token_slots,
                                      &StepLayout::logit_rows, &StepLayout::segments, &StepLayout::multi,
                                      &StepLayout::seq_slot, &StepLayout::seq_fresh}) {
    EXPECT_EQ(a.*offset, b.*offset);
  }
}

TEST(CudaStepLayout, DecodePaddingEqualsAppendedPaddingChunks) {
  std::mt19937 rng(7);
  for (int64_t real : {1, 3, 5, 16, 100, 256}) {
    StepPlan plan;
    for (int64_t i = 0; i < real; ++i) {
      plan.chunks.push_back(decode_chunk(int32_t(i), 1 + int64_t(rng() % 900), int32_t(3 + rng() % 4000), rng() % 3 != 0));
    }
    int64_t bucket = 1;
    while (bucket < real) bucket *= 2;
    for (int64_t rows : {int64_t(0), bucket - real, bucket + 3 - real}) {
      SCOPED_TRACE("real " + std::to_string(real) + ", padding " + std::to_string(rows));
      const StepLayout direct = make_step_layout(plan, 4, 64, 264, {rows, kScratch});
      expect_same(direct, padded_by_copy(plan, rows));
      EXPECT_EQ(direct.num_decode, real + rows);
      EXPECT_EQ(direct.row_begin.size(), plan.chunks.size());
    }
  }
}

TEST(CudaStepLayout, PaddingRowsGoAfterTheDecodeRowsAndBeforeThePrefillRows) {
  StepPlan plan;
  plan.chunks.push_back({5, 0, {7, 8, 9, 10}, LogitsMode::kAll});  // a prefill chunk first in the plan
  plan.chunks.push_back(decode_chunk(2, 40, 11, true));
  plan.chunks.push_back({6, 128, {12, 13}, LogitsMode::kLast});
  plan.chunks.push_back(decode_chunk(3, 41, 14, false));
  const StepLayout direct = make_step_layout(plan, 4, 64, 264, {2, kScratch});
  expect_same(direct, padded_by_copy(plan, 2));
  // Rows: decode 11, 14; padding 0, 0; then the prefill chunks' tokens.
  const std::vector<int32_t> tokens(direct.ints.begin() + direct.tokens, direct.ints.begin() + direct.tokens + 10);
  EXPECT_EQ(tokens, (std::vector<int32_t>{11, 14, 0, 0, 7, 8, 9, 10, 12, 13}));
  const std::vector<int32_t> slots(direct.ints.begin() + direct.token_slots,
                                   direct.ints.begin() + direct.token_slots + 4);
  EXPECT_EQ(slots, (std::vector<int32_t>{2, 3, kScratch, kScratch}));
  EXPECT_EQ(direct.num_decode, 4);
  EXPECT_EQ(direct.num_prefill_tokens, 6);
}

// Only the rows the host wants travel to it, in one piece: they come first, in
// chunk order, whatever else the step samples on the device.
TEST(CudaStepLayout, RowsTheHostWantsComeFirst) {
  StepPlan plan;
  plan.chunks.push_back(decode_chunk(0, 40, 11, true));           // sampled on the device
  plan.chunks.push_back(decode_chunk(1, 41, 12, false));          // its row goes to the host
  plan.chunks.push_back({5, 0, {7, 8, 9}, LogitsMode::kLast});    // a prompt's end whose row the cache keeps...
  plan.chunks.back().sample = DeviceSampling{};                   // ...sampled on the device too
  plan.chunks.push_back(decode_chunk(2, 42, 13, true));
  plan.chunks.push_back({6, 0, {14, 15}, LogitsMode::kAll});      // prompt logprobs: every row
  const StepLayout s = make_step_layout(plan, 4, 64, 264, {2, kScratch});
  EXPECT_EQ(s.num_host_rows, 4);  // chunk 1's row, chunk 2's last row, chunk 4's two rows
  EXPECT_EQ(s.num_logit_rows, 8);  // and chunks 0 and 3, then two padding rows
  EXPECT_EQ(s.row_begin, (std::vector<int32_t>{-1, 0, 1, -1, 2}));
  EXPECT_EQ(s.sample_row, (std::vector<int32_t>{4, -1, 1, 5, -1}));
  // Token rows: decodes 11, 12, 13 (rows 0-2), padding (3, 4), then 7 8 9 (5-7) and 14 15 (8, 9).
  const std::vector<int32_t> rows(s.ints.begin() + s.logit_rows, s.ints.begin() + s.logit_rows + s.num_logit_rows);
  EXPECT_EQ(rows, (std::vector<int32_t>{1, 7, 8, 9, 0, 2, 3, 4}));
}

}  // namespace
}  // namespace tnl
