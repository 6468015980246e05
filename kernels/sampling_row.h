// Sampling one logits row where the logits are (on the GPU, without copying
// them to the host): the plain data both the CPU reference and the CUDA kernel
// take, and the one rule set they share.
//
// Rules, in the Hugging Face order; the host Sampler (engine/sampling), the CPU
// reference (kernels/cpu/sampling_reference.*) and the CUDA kernel all follow them,
// so a row, its parameters and a uniform give the same token on every path (the
// GPU's expf may differ from the host's in the last bit, which moves a fixed-point
// weight by one unit at most):
//   x = logits with the penalties applied (repetition once per token seen in the
//       prompt or output, HF style; then x −= count·frequency + presence for
//       tokens in the output), then each entry's additive bias (logit_bias;
//       −inf bans a token), and −inf for every token outside the row's
//       allowed-token mask when it has one (structured output,
//       allowed_token_ids); NaN counts as −inf
//   temperature 0: argmax x, ties to the lower id
//   else, with candidates ordered by (x descending, id ascending):
//     top-k keeps the first k; weights w = exp((x − max)·(1/T));
//     top-p keeps the shortest prefix whose weight reaches top_p · Σw;
//     min-p keeps w ≥ min_p (the best has w = 1);
//     the draw walks the survivors in id order and takes the first whose
//     running weight exceeds uniform · Σw.
// Weights are summed in fixed point (w · 2³⁶ truncated to an integer), so every
// sum is exact and the result does not depend on the order of the additions:
// the same row, parameters and uniform give the same token on every run.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/host_device.h"

namespace tnl {

struct RowSampling {
  float temperature = 0.0f;       // 0: greedy
  float inv_temperature = 0.0f;   // 1 / temperature, formed once by the host
  int32_t top_k = 0;              // ≤ 0 or ≥ V: off
  float top_p = 1.0f;             // (0, 1]; 1: off
  float min_p = 0.0f;             // [0, 1]; 0: off
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  double uniform = 0.0;           // in [0, 1), drawn by the request's own RNG
};

// A token the penalties touch: seen in the prompt and/or generated `output_count`
// times, and/or given an additive bias (−inf: banned).
struct PenaltyEntry {
  int32_t token = 0;
  int32_t output_count = 0;
  int32_t in_prompt = 0;
  float bias = 0.0f;
};

// Where a row's penalty counts come from on a device that keeps them per live
// slot (a dense count row [V] and prompt flags [⌈V/32⌉]) instead of receiving
// the request's whole list every step.
enum class PenaltyRowMode : int32_t {
  kNone = 0,     // no penalties: the entries hold biases alone; no slot row is read or written
  kRebuild = 1,  // the entries hold the full list (prompt set, output counts, biases):
                 // the slot's row is rewritten from it, then used
  kKept = 2,     // the slot's row is current up to this request's last token drawn there;
                 // the entries hold biases alone
};
// Either of the last two counts the drawn token into the slot's row.

// An allowed-token mask: bit (id % 32) of word id / 32 is set iff id may be drawn.
inline bool mask_allows(const uint32_t* mask, int64_t id) { return ((mask[id >> 5] >> (id & 31)) & 1u) != 0; }

struct SampledToken {
  int32_t token = -1;
  float logprob = 0.0f;  // log-softmax of the raw (unpenalised, T = 1) row at `token`
};

constexpr double kSamplingFixedOne = 68719476736.0;  // 2³⁶: Σ over V ≤ 2¹⁷ weights stays < 2⁵³

// The penalties of one token, without its bias: repetition once (seen in the
// prompt or the output), then count·frequency + presence as one fused
// multiply-add. The host Sampler, the CPU reference and the kernel all call it.
TNL_HOST_DEVICE inline float penalise(float x, const RowSampling& p, int32_t output_count, bool in_prompt) {
  if (p.repetition_penalty != 1.0f && (in_prompt || output_count > 0)) {
    x = x > 0.0f ? x / p.repetition_penalty : x * p.repetition_penalty;
  }
  if (output_count > 0) x -= fmaf(float(output_count), p.frequency_penalty, p.presence_penalty);
  return x;
}

// The host side of the rules, shared by the host Sampler and the CPU reference.

// x of one penalised token: its penalties, then its bias.
inline float penalised_logit(float x, const RowSampling& p, const PenaltyEntry& e) {
  return penalise(x, p, e.output_count, e.in_prompt != 0) + e.bias;
}

// The fixed-point weight of x against the row maximum (kSamplingFixedOne = weight 1).
inline uint64_t fixed_weight(float x, float max, float inv_temperature) {
  const float w = std::exp((x - max) * inv_temperature);
  return uint64_t(w * float(kSamplingFixedOne));
}

// min-p keeps x when its (unnormalised, float) weight is at least min_p.
inline bool passes_min_p(float x, float max, float inv_temperature, float min_p) {
  return !(std::exp((x - max) * inv_temperature) < min_p);
}

}  // namespace tnl
