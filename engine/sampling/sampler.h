// Sampling: turns one row of logits into the next token (model-independent).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "engine/sampling/candidate_filters.h"
#include "engine/status.h"
#include "kernels/sampling_row.h"

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
                                    // (OUT_OF_RANGE: "temperature must be in [0, 2], got 3")
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

struct SampleResult {
  int32_t token = 0;
  float logprob = 0.0f;                 // log-softmax of the raw (unpenalised, T=1) logits
  std::vector<TokenLogprob> top;        // top `logprobs` alternatives, best first
  bool non_finite = false;              // the row held NaN or +Inf: the model is broken
};

// One sampler per sequence: owns its RNG and the token counts the penalties need.
//
// Per call: the rules of kernels/sampling_row.h — penalties (repetition, then
// presence/frequency), greedy argmax when temperature is 0, else top-k, top-p on
// fixed-point weights, min-p, and a draw walking the survivors in id order with one
// uniform from this sampler's RNG (the same draw device_row() makes). So the same
// row and seed give the same token here, in the CPU reference and on the GPU.
// O(V) expected time (selection, not a sort); scratch is reused, so the steady
// state allocates nothing but the returned `top` list. Params are expected to be
// validated.
class Sampler {
 public:
  // A row's token-level controls beyond the penalties (kernels/sampling_row.h):
  // additive biases (`token` and `bias` of each entry, sorted by token, each token
  // once; −inf bans) and an allowed-token mask (⌈V/32⌉ words; empty: none).
  struct RowControls {
    std::span<const PenaltyEntry> biases;
    std::span<const uint32_t> mask;
  };

  Sampler(SamplingParams params, const std::vector<int32_t>& prompt_ids);
  // Picks the next token and records it for the penalties (no accept() needed).
  SampleResult sample(std::span<const float> logits, RowControls controls = {});
  // Records a token produced elsewhere (e.g. the GPU sampled it) for penalties.
  void accept(int32_t token);

  // For a backend that samples on its device: this token's parameters, with the
  // uniform drawn from this sampler's RNG (one draw per sampled token, as
  // sample() makes; none when greedy), and the tokens the penalties touch
  // (empty without penalties). The device's token then goes to accept().
  RowSampling device_row();
  // The penalties' entries merged with a row's biases (sorted by token, unique).
  std::vector<PenaltyEntry> penalty_entries(std::span<const PenaltyEntry> biases = {}) const;
  // A row's biases as entries that carry nothing else.
  static std::vector<PenaltyEntry> bias_entries(std::span<const PenaltyEntry> biases);
  const SamplingParams& params() const { return params_; }
  // Any of the repetition, presence or frequency penalties is on.
  bool has_penalties() const;

 private:
  RowSampling rules() const;  // the parameters as kernels/sampling_row.h takes them (no uniform)
  // Fills candidates_ with the penalised row (NaN → −inf, −0 → +0); returns false
  // when the row holds NaN or +Inf.
  bool load_candidates(std::span<const float> logits, const RowControls& controls);
  int32_t draw(const RowSampling& row);
  void fill_logprobs(std::span<const float> logits, SampleResult* result) const;

  SamplingParams params_;
  std::mt19937_64 rng_;
  // What the penalties read, each sorted by token, each token once: the prompt's
  // distinct tokens (only with a repetition penalty: only it reads the prompt) and
  // every accepted output token with its count (kept by accept(); empty without
  // penalties). penalty_entries() merges them.
  std::vector<int32_t> prompt_set_;
  std::vector<PenaltyEntry> output_counts_;
  std::vector<Candidate> candidates_;                       // scratch, one per vocabulary entry
  std::vector<uint8_t> survives_;                           // scratch: by id, kept for the draw
  std::vector<uint64_t> weight_by_id_;                      // scratch: by id, the survivors' weights
};

// log-softmax of one logits row (used by tnl-eval and logprobs).
std::vector<float> log_softmax(std::span<const float> logits);
// log Σ exp(logits), computed stably (max subtracted); -inf for an empty or all -inf row.
double log_sum_exp(std::span<const float> logits);

// Finds stop strings in generated text, also when one spans tokens, and tells how
// much text is safe to stream (text that could still become a stop string is held).
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  // Appends text. Returns the text now safe to emit; sets *stopped when a stop
  // string completed (the stop string itself and what follows are not emitted).
  std::string push(const std::string& text, bool* stopped);
  // At the end of generation: the text held back (empty after a stop).
  std::string flush();
  // The stop string that matched; empty while none has.
  const std::string& matched_stop() const { return matched_; }
  // No stop strings: every push returns its text whole and never stops.
  bool empty() const { return stops_.empty(); }

 private:
  // Length of the longest tail of pending_ that is a proper prefix of a stop.
  size_t held_back_length() const;

  std::vector<std::string> stops_;  // non-empty strings only
  std::string pending_;             // pushed text not emitted yet
  std::string matched_;
  bool stopped_ = false;
};

}  // namespace tnl
