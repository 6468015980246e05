// GenerationPlan: a validated CompletionSpec turned into engine requests — prompts
// tokenized (or chat rendered, then tokenized), defaults resolved, context length
// checked. One PlannedChoice per (prompt, n) pair; both front ends submit these.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/scheduler/engine.h"
#include "engine/tokenizer/prompt_token_cache.h"
#include "server/api/chat_template.h"
#include "server/api/completion_spec.h"

namespace tnl::server {

struct PlannedChoice {
  int32_t index = 0;          // OpenAI choices[i].index: prompt_index × n + i
  int32_t prompt_index = 0;
  GenerationRequest request;
  std::string prompt_text;    // for echo (decoded when the client sent ids)
};

struct GenerationPlan {
  std::vector<PlannedChoice> choices;
  int64_t prompt_tokens = 0;  // each prompt counted once (usage.prompt_tokens)

  // Stamps every choice's request with when the front end received it and with
  // now, when it has been parsed and tokenized (the step trace's front-end share).
  void mark_prepared(std::chrono::steady_clock::time_point received);
};

inline constexpr int32_t kDefaultCompletionMaxTokens = 16;  // OpenAI's default for /v1/completions

// /tokenize (HTTP and gRPC) takes texts of at most --max-model-len tokens: one
// that is surely longer (bytes / Tokenizer::max_bytes_per_token()) is refused
// before tokenizing it, which bounds what a tokenize reply may cost.
std::optional<ApiError> check_tokenize_size(size_t text_bytes, const Tokenizer& tokenizer, int64_t max_model_len,
                                            const std::string& param);

// Compiles a request's structured-output constraint (Engine::compile_constraint).
using ConstraintCompiler =
    std::function<Expected<std::shared_ptr<const CompiledConstraint>>(const ConstraintSpec& spec)>;

// Prompt texts are encoded through `prompts` (its tokenizer is the model's).
ApiResult<GenerationPlan> plan_generation(const CompletionSpec& spec, PromptTokenCache& prompts,
                                          const ConstraintCompiler& compile, const ChatTemplate& chat_template,
                                          int64_t max_model_len, const std::string& request_id);

}  // namespace tnl::server
