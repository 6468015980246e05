// Token-level controls of one request beyond sampling parameters: logit_bias,
// allowed_token_ids, min_tokens, bad_words and structured output (a compiled
// constraint: JSON, JSON Schema, regex or grammar). All of them come down, per
// sampled token, to additive biases (−inf bans) and an allowed-token mask, which
// both sampling paths apply by one rule (kernels/sampling_row.h).
//
// TokenControlState is a request's running position in its controls (the
// constraint matcher, the output so far for bad_words). Owned by the request's
// RequestState, used by the step loop only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "engine/constraints/constraint_matcher.h"
#include "engine/status.h"
#include "kernels/sampling_row.h"

namespace tnl {

struct TokenControls {
  std::vector<std::pair<int32_t, float>> logit_bias;     // token → bias in [−100, 100]
  std::vector<int32_t> allowed_token_ids;                // empty: every token
  int32_t min_tokens = 0;                                // EOS and stop tokens banned before this many
  std::vector<std::vector<int32_t>> bad_words;           // token sequences never produced
  std::shared_ptr<const CompiledConstraint> constraint;  // structured output; null: none

  bool has_mask() const { return !allowed_token_ids.empty() || constraint != nullptr; }
};

// Checks a request's controls against the model's vocabulary (V ids); messages
// name the field.
Status validate_token_controls(const TokenControls& controls, int32_t vocab_size, int32_t max_tokens);

class TokenControlState {
 public:
  // `end_tokens`: EOS and the request's stop tokens (what min_tokens holds back).
  TokenControlState(const TokenControls& controls, int32_t vocab_size, std::vector<int32_t> end_tokens);

  bool has_mask() const { return controls_.has_mask(); }
  // The biases of the next token, sorted by token, each token once.
  std::vector<PenaltyEntry> biases() const;
  // Writes the allowed-token mask of the next token (⌈V/32⌉ words). Fails when
  // the constraint cannot go on (too ambiguous a grammar).
  Status fill_mask(std::vector<uint32_t>* mask) const;
  // A drawn token that the controls forbid means nothing was allowed (every
  // token masked or banned): the request must end with this error.
  Status check(int32_t token, std::span<const uint32_t> mask, std::span<const PenaltyEntry> biases) const;
  // Advances past a produced token.
  Status accept(int32_t token);

 private:
  TokenControls controls_;
  int32_t vocab_size_;
  std::vector<int32_t> end_tokens_;             // sorted, unique
  std::optional<ConstraintMatcher> matcher_;
  std::vector<uint32_t> allowed_ids_mask_;      // allowed_token_ids as mask words, once; empty: none
  std::vector<int32_t> output_;                 // produced tokens (bad_words look at its tail)
};

}  // namespace tnl
