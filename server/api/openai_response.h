// Builders of OpenAI response bodies and stream chunks (JSON text). Pure: the
// callers have already turned token ids into text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/api/completion_spec.h"

namespace tnl::server {

struct TokenLogprobView {
  int32_t token_id = -1;
  std::string token;                                 // the token's text
  float logprob = 0.0f;                              // absent (null) for a prompt's first token
  bool has_logprob = true;
  std::vector<std::pair<std::string, float>> top;    // best first
  std::vector<int32_t> top_ids;                      // ids of `top`, same order
};

struct ResponseMeta {
  ApiKind kind = ApiKind::kCompletion;
  std::string id;        // "cmpl-…" / "chatcmpl-…"
  int64_t created = 0;   // unix seconds
  std::string model;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

struct ChoiceOutput {
  int32_t index = 0;
  std::string text;
  std::string finish_reason;  // "stop", "length", …; empty: null (still running)
  std::optional<std::vector<TokenLogprobView>> logprobs;
  int64_t text_offset_base = 0;  // completions logprobs: offset of the first token's text
};

// A whole non-streaming response (text_completion or chat.completion).
std::string response_body(const ResponseMeta& meta, const std::vector<ChoiceOutput>& choices, const Usage& usage);

// One stream chunk for one choice. For chat, `first` adds the assistant role to the delta.
// `usage_null`: stream_options.include_usage asks for "usage": null on every chunk.
std::string stream_chunk(const ResponseMeta& meta, const ChoiceOutput& delta, bool first, bool usage_null);
// The final usage chunk (choices empty) of a stream with include_usage.
std::string usage_chunk(const ResponseMeta& meta, const Usage& usage);

std::string models_body(const std::string& model, int64_t created, int64_t max_model_len);

}  // namespace tnl::server
