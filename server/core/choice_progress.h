// ChoiceProgress: what one generated choice has produced so far, built from the
// engine's GenerationEvents. Shared by the HTTP and gRPC front ends; used on one
// thread at a time (the front end's executor), never on the engine thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/scheduler/engine.h"
#include "server/api/openai_response.h"

namespace tnl::server {

// Display text of one token: its SentencePiece piece with "▁" as a space.
std::string token_display_text(const Tokenizer& tokenizer, int32_t id);
TokenLogprobView logprob_view(const Tokenizer& tokenizer, const SampleResult& sample, bool has_logprob = true);

// "stop", "length", "timeout", "cancelled", "error".
const char* openai_finish_reason(FinishReason reason);

struct ChoiceDelta {
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<TokenLogprobView> logprobs;  // prompt logprobs first (echo), then generated
};

class ChoiceProgress {
 public:
  // keep_history false (streams): logprobs are not kept, so a long stream does not
  // hold them all (logprobs() stays empty); the text and token ids are (a few
  // bytes per token: the prefix cache's next-turn warm-up and exports use them).
  ChoiceProgress(int32_t index, bool want_logprobs, bool keep_history = true)
      : index_(index), want_logprobs_(want_logprobs), keep_history_(keep_history) {}

  // Folds one event in and returns what it added.
  ChoiceDelta apply(GenerationEvent&& event, const Tokenizer& tokenizer);

  int32_t index() const { return index_; }
  bool finished() const { return finish_ != FinishReason::kNone; }
  FinishReason finish() const { return finish_; }
  const Status& error() const { return error_; }
  const std::string& text() const { return text_; }
  const std::vector<int32_t>& token_ids() const { return token_ids_; }
  const std::vector<TokenLogprobView>& logprobs() const { return logprobs_; }
  int32_t prompt_tokens() const { return prompt_tokens_; }
  int32_t completion_tokens() const { return completion_tokens_; }

 private:
  int32_t index_;
  bool want_logprobs_;
  bool keep_history_;
  std::string text_;
  std::vector<int32_t> token_ids_;
  std::vector<TokenLogprobView> logprobs_;
  FinishReason finish_ = FinishReason::kNone;
  Status error_;
  int32_t prompt_tokens_ = 0;
  int32_t completion_tokens_ = 0;
};

}  // namespace tnl::server
