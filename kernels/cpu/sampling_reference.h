// CPU reference of device-side sampling (kernels/sampling_row.h): the rules
// written the obvious way (a full sort of the row), the ground truth that the
// CUDA sampling kernel is tested against. O(V log V): not for serving.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/sampling_row.h"

namespace tnl::ref {

struct SampleTrace {
  SampledToken sampled;
  std::vector<int32_t> kept;  // the ids the draw chose among (after top-k, top-p, min-p), ascending
};

// Samples one row of V logits. `penalties` lists each touched token once;
// `mask` (⌈V/32⌉ words, or empty for none) is the row's allowed-token mask.
SampleTrace sample_row(std::span<const float> logits, const RowSampling& params,
                       std::span<const PenaltyEntry> penalties, bool want_logprob,
                       std::span<const uint32_t> mask = {});

// x after the penalties, biases and mask (model of the kernel's first pass;
// NaN → −inf, −0 → +0).
std::vector<float> penalised_logits(std::span<const float> logits, const RowSampling& params,
                                    std::span<const PenaltyEntry> penalties, std::span<const uint32_t> mask = {});

// The device's per-slot penalty rows (PenaltyRowMode), kept the obvious way:
// dense counts and prompt flags per live slot, as the CUDA kernel keeps them.
class PenaltyRowsReference {
 public:
  PenaltyRowsReference(int32_t num_slots, int64_t vocab);
  // The entry list a row of `slot` samples with (sample_row's `penalties`):
  // kNone: `sent` itself; kRebuild: the slot's row is rewritten from `sent`
  // first; kRebuild and kKept: the row's touched tokens with `sent`'s biases.
  std::vector<PenaltyEntry> entries(int32_t slot, PenaltyRowMode mode, std::span<const PenaltyEntry> sent);
  // The drawn token joins the slot's counts (mode ≠ kNone).
  void count(int32_t slot, int32_t token);
  // A kRebuild has written the slot's row (a kKept before that is an error).
  bool built(int32_t slot) const { return built_.at(size_t(slot)) != 0; }

 private:
  int64_t vocab_;
  std::vector<uint8_t> built_;
  std::vector<std::vector<int32_t>> counts_;    // [slot][token]
  std::vector<std::vector<uint8_t>> in_prompt_;  // [slot][token]
};

using tnl::fixed_weight;  // kernels/sampling_row.h, shared with the host Sampler

}  // namespace tnl::ref
