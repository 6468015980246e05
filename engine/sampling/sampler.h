// Sampling: turns one row of logits into the next token (model-independent).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "engine/status.h"

namespace tnl {

struct SamplingParams {
  float temperature = 1.0f;        // 0: greedy
  float top_p = 1.0f;              // (0, 1]
  int32_t top_k = 0;               // 0 or -1: off
  float min_p = 0.0f;              // [0, 1]
  float repetition_penalty = 1.0f; // > 0; 1: off (HF style, over prompt + output)
  float presence_penalty = 0.0f;   // [-2, 2] (OpenAI style, over output)
  float frequency_penalty = 0.0f;  // [-2, 2]
  std::optional<uint64_t> seed;    // same seed → same tokens
  int32_t logprobs = -1;           // -1: none; k ≥ 0: return the chosen token's logprob and the top k

  Status validate() const;          // ranges above; messages name the parameter
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

struct SampleResult {
  int32_t token = 0;
  float logprob = 0.0f;                 // log-softmax of the raw (unpenalised, T=1) logits
  std::vector<TokenLogprob> top;        // top `logprobs` alternatives, best first
};

// One sampler per sequence: owns its RNG and the token counts the penalties need.
class Sampler {
 public:
  Sampler(SamplingParams params, const std::vector<int32_t>& prompt_ids);
  SampleResult sample(std::span<const float> logits);
  // Records a token produced elsewhere (e.g. the GPU sampled it) for penalties.
  void accept(int32_t token);
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int32_t> prompt_ids_;
  std::vector<std::pair<int32_t, int32_t>> output_counts_;  // (token, count), small
  std::vector<float> scratch_;
};

// log-softmax of one logits row (used by tnl-eval and logprobs).
std::vector<float> log_softmax(std::span<const float> logits);

// Finds stop strings in generated text, also when one spans tokens, and tells how
// much text is safe to stream (text that could still become a stop string is held).
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  // Appends text. Returns the text now safe to emit; sets *stopped when a stop
  // string completed (the stop string itself and what follows are not emitted).
  std::string push(const std::string& text, bool* stopped);
  // At the end of generation: the text held back.
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

}  // namespace tnl
