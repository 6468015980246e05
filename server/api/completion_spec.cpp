#include "server/api/completion_spec.h"

#include <cmath>
#include <cstdio>

#include "engine/priority.h"

namespace tnl::server {
namespace {

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::optional<ApiError> check_range(const char* param, float value, float lo, float hi, bool lo_open = false) {
  const bool below = lo_open ? !(value > lo) : !(value >= lo);
  if (!std::isfinite(value) || below || value > hi) {
    return invalid_request(std::string(param) + " must be in " + (lo_open ? "(" : "[") + format_number(lo) + ", " +
                               format_number(hi) + "], got " + format_number(value),
                           param);
  }
  return std::nullopt;
}

bool is_known_role(const std::string& role) {
  return role == "system" || role == "user" || role == "assistant" || role == "developer";
}

}  // namespace

std::optional<ApiError> validate_completion_spec(const CompletionSpec& spec, const SpecLimits& limits) {
  if (!spec.model.empty() && spec.model != limits.served_model) {
    return not_found_error("The model `" + spec.model + "` does not exist; this server serves `" +
                               limits.served_model + "`",
                           "model", "model_not_found");
  }
  if (spec.kind == ApiKind::kCompletion) {
    if (spec.prompts.empty()) return invalid_request("prompt must not be empty", "prompt");
    for (const PromptInput& p : spec.prompts) {
      if (p.is_text ? p.text.empty() : p.ids.empty()) {
        return invalid_request("prompt must not be empty", "prompt");
      }
      for (int32_t id : p.ids) {
        if (id < 0 || id >= limits.vocab_size) {
          return invalid_request("token id " + std::to_string(id) + " in prompt is outside the vocabulary [0, " +
                                     std::to_string(limits.vocab_size) + ")",
                                 "prompt");
        }
      }
    }
  } else {
    if (spec.messages.empty()) return invalid_request("messages must not be empty", "messages");
    for (const ChatMessage& m : spec.messages) {
      if (!is_known_role(m.role)) {
        return invalid_request("unknown message role '" + m.role + "' (system, user, assistant)", "messages");
      }
    }
  }
  const SamplingParams& s = spec.sampling;
  if (auto e = check_range("temperature", s.temperature, 0.0f, 2.0f)) return e;
  if (auto e = check_range("top_p", s.top_p, 0.0f, 1.0f, /*lo_open=*/true)) return e;
  if (s.top_k < -1) return invalid_request("top_k must be -1, 0 (off) or positive", "top_k");
  if (auto e = check_range("min_p", s.min_p, 0.0f, 1.0f)) return e;
  if (auto e = check_range("presence_penalty", s.presence_penalty, -2.0f, 2.0f)) return e;
  if (auto e = check_range("frequency_penalty", s.frequency_penalty, -2.0f, 2.0f)) return e;
  if (auto e = check_range("repetition_penalty", s.repetition_penalty, 0.0f, 10.0f, /*lo_open=*/true)) return e;
  if (s.logprobs > limits.max_logprobs || s.logprobs < -1) {
    return invalid_request("logprobs must be in [0, " + std::to_string(limits.max_logprobs) + "]",
                           spec.kind == ApiKind::kChat ? "top_logprobs" : "logprobs");
  }
  if (spec.max_tokens && *spec.max_tokens < 1) {
    return invalid_request("max_tokens must be at least 1", "max_tokens");
  }
  if (spec.logit_bias.size() > size_t(limits.max_logit_bias)) {
    return invalid_request("logit_bias may hold at most " + std::to_string(limits.max_logit_bias) + " tokens",
                           "logit_bias");
  }
  for (const auto& [token, bias] : spec.logit_bias) {
    if (token < 0 || token >= limits.vocab_size) {
      return invalid_request("logit_bias names token " + std::to_string(token) + ", outside the vocabulary [0, " +
                                 std::to_string(limits.vocab_size) + ")",
                             "logit_bias");
    }
    if (auto e = check_range("logit_bias", bias, -100.0f, 100.0f)) return e;
  }
  for (int32_t id : spec.allowed_token_ids) {
    if (id < 0 || id >= limits.vocab_size) {
      return invalid_request("allowed_token_ids holds " + std::to_string(id) + ", outside the vocabulary [0, " +
                                 std::to_string(limits.vocab_size) + ")",
                             "allowed_token_ids");
    }
  }
  if (spec.min_tokens < 0) return invalid_request("min_tokens must be ≥ 0", "min_tokens");
  if (spec.max_tokens && spec.min_tokens > *spec.max_tokens) {
    return invalid_request("min_tokens must not exceed max_tokens", "min_tokens");
  }
  if (spec.bad_words.size() > size_t(limits.max_bad_words)) {
    return invalid_request("bad_words may hold at most " + std::to_string(limits.max_bad_words) + " entries",
                           "bad_words");
  }
  for (const std::string& w : spec.bad_words) {
    if (w.empty()) return invalid_request("bad_words entries must not be empty", "bad_words");
  }
  if (spec.constraint && spec.ignore_eos) {
    return invalid_request("ignore_eos cannot be combined with " + spec.constraint_param +
                               ": the constraint decides where the output ends",
                           "ignore_eos");
  }
  if (spec.n < 1 || spec.n > limits.max_n) {
    return invalid_request("n must be in [1, " + std::to_string(limits.max_n) + "]", "n");
  }
  const size_t prompts = spec.kind == ApiKind::kChat ? 1 : spec.prompts.size();
  if (prompts * size_t(spec.n) > size_t(limits.max_choices)) {
    return invalid_request("too many choices: prompts × n must be at most " + std::to_string(limits.max_choices),
                           "n");
  }
  if (spec.stop.size() > size_t(limits.max_stop)) {
    return invalid_request("at most " + std::to_string(limits.max_stop) + " stop sequences", "stop");
  }
  for (const std::string& stop : spec.stop) {
    if (stop.empty()) return invalid_request("stop sequences must not be empty", "stop");
  }
  for (int32_t id : spec.stop_token_ids) {
    if (id < 0 || id >= limits.vocab_size) {
      return invalid_request("stop_token_ids entry " + std::to_string(id) + " is outside the vocabulary",
                             "stop_token_ids");
    }
  }
  if (spec.priority < kMinPriority || spec.priority > kMaxPriority) {
    return invalid_request("priority must be an integer in [" + std::to_string(kMinPriority) + ", " +
                               std::to_string(kMaxPriority) + "] (lower is served first), got " +
                               std::to_string(spec.priority),
                           "priority");
  }
  if (spec.include_usage && !spec.stream) {
    return invalid_request("stream_options is only allowed when stream is true", "stream_options");
  }
  return std::nullopt;
}

}  // namespace tnl::server
