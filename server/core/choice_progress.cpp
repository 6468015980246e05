#include "server/core/choice_progress.h"

namespace tnl::server {

std::string token_display_text(const Tokenizer& tokenizer, int32_t id) {
  std::string piece = tokenizer.piece(id);
  static constexpr std::string_view kSpace = "\xe2\x96\x81";  // U+2581 "▁"
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

TokenLogprobView logprob_view(const Tokenizer& tokenizer, const SampleResult& sample, bool has_logprob) {
  TokenLogprobView view;
  view.token_id = sample.token;
  view.token = token_display_text(tokenizer, sample.token);
  view.logprob = sample.logprob;
  view.has_logprob = has_logprob;
  for (const TokenLogprob& alt : sample.top) {
    view.top.emplace_back(token_display_text(tokenizer, alt.token), alt.logprob);
    view.top_ids.push_back(alt.token);
  }
  return view;
}

const char* openai_finish_reason(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kTimeout: return "timeout";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
    case FinishReason::kNone: break;
  }
  return "";
}

ChoiceDelta ChoiceProgress::apply(GenerationEvent&& event, const Tokenizer& tokenizer) {
  ChoiceDelta delta;
  delta.text = std::move(event.text);
  delta.token_ids = std::move(event.token_ids);
  if (want_logprobs_) {
    for (size_t i = 0; i < event.prompt_logprobs.size(); ++i) {
      // The first prompt token has no logprob (nothing precedes it).
      delta.logprobs.push_back(logprob_view(tokenizer, event.prompt_logprobs[i], i != 0));
    }
    for (const SampleResult& s : event.logprobs) delta.logprobs.push_back(logprob_view(tokenizer, s));
  }
  text_ += delta.text;
  token_ids_.insert(token_ids_.end(), delta.token_ids.begin(), delta.token_ids.end());
  if (keep_history_) logprobs_.insert(logprobs_.end(), delta.logprobs.begin(), delta.logprobs.end());
  prompt_tokens_ = event.prompt_tokens;
  completion_tokens_ = event.completion_tokens;
  if (event.finish != FinishReason::kNone) {
    finish_ = event.finish;
    error_ = std::move(event.error);
  }
  return delta;
}

}  // namespace tnl::server
