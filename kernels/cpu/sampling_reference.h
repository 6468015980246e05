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

using tnl::fixed_weight;  // kernels/sampling_row.h, shared with the host Sampler

}  // namespace tnl::ref
