// Scores a given token under one logits row: its log-probability and the top-k
// alternatives (for prompt logprobs, where the token is known, not sampled).
#pragma once

#include <cstdint>
#include <span>

#include "engine/sampling/sampler.h"

namespace tnl {

// logprob = log_softmax(logits)[token]; top = the `top_k` best ids, best first
// (ties: lower id first, so results are reproducible).
SampleResult score_token(std::span<const float> logits, int32_t token, int32_t top_k);

}  // namespace tnl
