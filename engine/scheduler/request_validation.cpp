#include "engine/scheduler/request_validation.h"

#include <string>

namespace tnl {

Status validate_engine_options(const EngineOptions& o) {
  if (o.max_num_seqs < 1) return invalid_argument("max_num_seqs must be ≥ 1, got " + std::to_string(o.max_num_seqs));
  if (o.max_num_batched_tokens < 1) {
    return invalid_argument("max_num_batched_tokens must be ≥ 1, got " + std::to_string(o.max_num_batched_tokens));
  }
  if (o.prefill_chunk < 1) return invalid_argument("prefill_chunk must be ≥ 1, got " + std::to_string(o.prefill_chunk));
  if (o.max_queue < 1) return invalid_argument("max_queue must be ≥ 1, got " + std::to_string(o.max_queue));
  if (o.max_model_len < 2) {
    return invalid_argument("max_model_len must be ≥ 2 (one prompt token and one generated), got " +
                            std::to_string(o.max_model_len));
  }
  if (o.request_timeout.count() < 0) {
    return invalid_argument("request_timeout must be ≥ 0 ms (0: none), got " +
                            std::to_string(o.request_timeout.count()));
  }
  return Status::ok();
}

Status validate_request(const GenerationRequest& r, int64_t vocab_size, const EngineOptions& options) {
  if (r.prompt_ids.empty()) return invalid_argument("the prompt is empty: at least one token is needed");
  for (size_t i = 0; i < r.prompt_ids.size(); ++i) {
    const int32_t id = r.prompt_ids[i];
    if (id < 0 || id >= vocab_size) {
      return invalid_argument("prompt token " + std::to_string(i) + " has id " + std::to_string(id) +
                              ", outside the model's vocabulary [0, " + std::to_string(vocab_size) + ")");
    }
  }
  if (r.max_tokens < 1) return invalid_argument("max_tokens must be ≥ 1, got " + std::to_string(r.max_tokens));
  const int64_t total = static_cast<int64_t>(r.prompt_ids.size()) + r.max_tokens;
  if (total > options.max_model_len) {
    return invalid_argument("the prompt (" + std::to_string(r.prompt_ids.size()) + " tokens) plus max_tokens (" +
                            std::to_string(r.max_tokens) + ") is " + std::to_string(total) +
                            " tokens, more than max_model_len (" + std::to_string(options.max_model_len) +
                            "); shorten the prompt or lower max_tokens");
  }
  for (int32_t id : r.stop_token_ids) {
    if (id < 0 || id >= vocab_size) {
      return invalid_argument("stop_token_ids holds " + std::to_string(id) + ", outside the model's vocabulary [0, " +
                              std::to_string(vocab_size) + ")");
    }
  }
  if (r.priority < kMinPriority || r.priority > kMaxPriority) {
    return invalid_argument("priority must be in [" + std::to_string(kMinPriority) + ", " +
                            std::to_string(kMaxPriority) + "], got " + std::to_string(r.priority));
  }
  TNL_RETURN_IF_ERROR(validate_token_controls(r.controls, int32_t(vocab_size), r.max_tokens));
  if (r.controls.constraint && r.ignore_eos) {
    return invalid_argument("ignore_eos cannot be combined with structured output (response_format, regex, "
                            "grammar): the constraint decides where the output ends");
  }
  return r.sampling.validate();
}

}  // namespace tnl
