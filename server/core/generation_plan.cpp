#include "server/core/generation_plan.h"

#include <algorithm>
#include <optional>

namespace tnl::server {

std::optional<ApiError> check_tokenize_size(size_t text_bytes, const Tokenizer& tokenizer, int64_t max_model_len,
                                            const std::string& param) {
  const int64_t at_least = int64_t(text_bytes) / tokenizer.max_bytes_per_token();
  if (at_least <= max_model_len) return std::nullopt;
  return invalid_request("text is at least " + std::to_string(at_least) + " tokens (" + std::to_string(text_bytes) +
                             " bytes); tokenize takes at most --max-model-len (" + std::to_string(max_model_len) +
                             ") tokens",
                         param, "context_length_exceeded");
}

namespace {

// The spec's token controls for the engine: the constraint compiled (a bad one
// is a 400 naming its field), bad_words tokenized with and without a leading
// space (a word inside a text usually follows one).
ApiResult<TokenControls> token_controls(const CompletionSpec& spec, const Tokenizer& tokenizer,
                                        const ConstraintCompiler& compile) {
  TokenControls c;
  c.logit_bias = spec.logit_bias;
  c.allowed_token_ids = spec.allowed_token_ids;
  std::sort(c.allowed_token_ids.begin(), c.allowed_token_ids.end());
  c.allowed_token_ids.erase(std::unique(c.allowed_token_ids.begin(), c.allowed_token_ids.end()),
                            c.allowed_token_ids.end());
  c.min_tokens = spec.min_tokens;
  for (const std::string& word : spec.bad_words) {
    for (const std::string& variant : {word, " " + word}) {
      std::vector<int32_t> ids = tokenizer.encode_plain(variant);
      if (!ids.empty() && std::find(c.bad_words.begin(), c.bad_words.end(), ids) == c.bad_words.end()) {
        c.bad_words.push_back(std::move(ids));
      }
    }
  }
  if (spec.constraint) {
    Expected<std::shared_ptr<const CompiledConstraint>> compiled = compile(*spec.constraint);
    if (!compiled.has_value()) return invalid_request(compiled.status().message(), spec.constraint_param);
    c.constraint = std::move(compiled).value();
  }
  return c;
}

}  // namespace

void GenerationPlan::mark_prepared(std::chrono::steady_clock::time_point received) {
  const auto prepared = std::chrono::steady_clock::now();
  for (PlannedChoice& c : choices) {
    c.request.received = received;
    c.request.prepared = prepared;
  }
}

ApiResult<GenerationPlan> plan_generation(const CompletionSpec& spec, PromptTokenCache& prompts,
                                          const ConstraintCompiler& compile, const ChatTemplate& chat_template,
                                          int64_t max_model_len, const std::string& request_id) {
  const Tokenizer& tokenizer = prompts.tokenizer();
  const bool chat = spec.kind == ApiKind::kChat;
  const char* prompt_param = chat ? "messages" : "prompt";

  struct Prompt {
    std::vector<int32_t> ids;
    std::string text;
  };
  // A text of B bytes is at least B / max_bytes_per_token() tokens: refuse one that
  // can never fit before paying for its tokenization (megabytes cost seconds).
  const auto too_long = [&](const std::string& text) -> std::optional<ApiError> {
    const int64_t at_least = int64_t(text.size()) / tokenizer.max_bytes_per_token();
    if (at_least < max_model_len) return std::nullopt;
    return invalid_request("prompt is at least " + std::to_string(at_least) + " tokens (" +
                               std::to_string(text.size()) + " bytes); this model's maximum context is " +
                               std::to_string(max_model_len) + " tokens (--max-model-len)",
                           prompt_param, "context_length_exceeded");
  };
  std::vector<Prompt> encoded;
  if (chat) {
    std::string text = chat_template.render(spec.messages);
    if (auto error = too_long(text)) return *error;
    encoded.push_back({prompts.encode(text), std::move(text)});
  } else {
    for (const PromptInput& p : spec.prompts) {
      if (p.is_text) {
        if (auto error = too_long(p.text)) return *error;
        encoded.push_back({prompts.encode(p.text), p.text});
      } else {
        encoded.push_back({p.ids, spec.echo ? tokenizer.decode(p.ids) : std::string()});
      }
    }
  }

  ApiResult<TokenControls> controls = token_controls(spec, tokenizer, compile);
  if (!controls.ok()) return controls.error();

  std::vector<std::string> stop = spec.stop;
  if (chat) stop.insert(stop.end(), chat_template.stop.begin(), chat_template.stop.end());

  GenerationPlan plan;
  for (size_t p = 0; p < encoded.size(); ++p) {
    const int64_t prompt_len = int64_t(encoded[p].ids.size());
    if (prompt_len == 0) return invalid_request("prompt must not be empty", prompt_param);
    if (prompt_len >= max_model_len) {
      return invalid_request("prompt is " + std::to_string(prompt_len) + " tokens; this model's maximum context is " +
                                 std::to_string(max_model_len) + " tokens (--max-model-len)",
                             prompt_param, "context_length_exceeded");
    }
    int64_t max_tokens = spec.max_tokens ? *spec.max_tokens
                         : chat         ? max_model_len - prompt_len
                                        : kDefaultCompletionMaxTokens;
    if (!spec.max_tokens) max_tokens = std::min(max_tokens, max_model_len - prompt_len);
    if (prompt_len + max_tokens > max_model_len) {
      return invalid_request("prompt (" + std::to_string(prompt_len) + " tokens) + max_tokens (" +
                                 std::to_string(max_tokens) + ") exceeds the maximum context of " +
                                 std::to_string(max_model_len) + " tokens",
                             "max_tokens", "context_length_exceeded");
    }
    plan.prompt_tokens += prompt_len;
    for (int32_t i = 0; i < spec.n; ++i) {
      PlannedChoice choice;
      choice.index = int32_t(p) * spec.n + i;
      choice.prompt_index = int32_t(p);
      choice.prompt_text = encoded[p].text;
      GenerationRequest& r = choice.request;
      r.request_id = request_id + "-" + std::to_string(choice.index);
      r.prompt_ids = encoded[p].ids;
      r.sampling = spec.sampling;
      // n choices with one seed would be n identical samples; offset keeps them
      // distinct and still reproducible.
      if (r.sampling.seed) r.sampling.seed = *r.sampling.seed + uint64_t(i);
      r.max_tokens = int32_t(max_tokens);
      r.stop = stop;
      r.stop_token_ids = spec.stop_token_ids;
      r.ignore_eos = spec.ignore_eos;
      r.priority = spec.priority;
      r.prompt_logprobs = spec.echo && spec.sampling.logprobs >= 0;
      r.include_stop_str_in_output = spec.include_stop_str_in_output;
      r.controls = controls.value();
      plan.choices.push_back(std::move(choice));
    }
  }
  return plan;
}

}  // namespace tnl::server
