// CompletionSpec: what a client asked for — prompts or chat messages plus the
// generation parameters — validated but not yet tokenized. Both front ends build
// one (HTTP from OpenAI JSON, gRPC from tnl.v1.GenerateRequest) and both call
// validate_completion_spec(), so limits and messages are the same everywhere.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/constraints/constraint.h"
#include "engine/sampling/sampler.h"
#include "server/api/api_error.h"

namespace tnl::server {

// One prompt: text, or token ids given by the client (never both).
struct PromptInput {
  bool is_text = true;
  std::string text;
  std::vector<int32_t> ids;
};

struct ChatMessage {
  std::string role;     // "system", "user", "assistant"
  std::string content;
};

enum class ApiKind { kCompletion, kChat };

struct CompletionSpec {
  ApiKind kind = ApiKind::kCompletion;
  std::string model;                   // empty: the served model
  std::vector<PromptInput> prompts;    // kCompletion: ≥ 1
  std::vector<ChatMessage> messages;   // kChat: ≥ 1
  SamplingParams sampling;             // sampling.logprobs: -1 none, else top-k alternatives
  std::optional<int32_t> max_tokens;   // none: 16 for completions, the rest of the context for chat
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  int32_t n = 1;                       // choices per prompt
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage
  bool echo = false;                   // completions: prepend the prompt to the text
  // Token-level controls (docs/api.md, "Structured output and token controls").
  std::optional<ConstraintSpec> constraint;  // response_format json_object/json_schema, regex or grammar
  std::string constraint_param;              // the field it came from, for error messages
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::vector<int32_t> allowed_token_ids;
  int32_t min_tokens = 0;
  std::vector<std::string> bad_words;
  bool include_stop_str_in_output = false;
  int32_t priority = 0;                // lower is served first (engine/priority.h: its range)
};

// Server-wide limits a spec is checked against (from the server options and the model).
struct SpecLimits {
  std::string served_model;            // a non-empty spec.model must equal it
  int32_t vocab_size = 0;              // token-id prompts and stop_token_ids must be below it
  int32_t max_n = 16;
  int32_t max_choices = 128;           // prompts × n
  int32_t max_stop = 16;
  int32_t max_logprobs = 20;
  int32_t max_logit_bias = 300;        // entries of logit_bias (OpenAI's limit)
  int32_t max_bad_words = 64;
};

// Range checks; the error names the offending parameter (OpenAI `param`).
std::optional<ApiError> validate_completion_spec(const CompletionSpec& spec, const SpecLimits& limits);

}  // namespace tnl::server
