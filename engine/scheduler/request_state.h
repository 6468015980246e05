// RequestState: everything the engine keeps about one request besides its
// scheduling state — the sampler, the text pipeline (detokenizer → stop
// matcher), finish checks, the event being assembled, and timestamps.
// Owned by the step loop; never touched by another thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/sampling/sampler.h"
#include "engine/scheduler/engine.h"
#include "engine/tokenizer/tokenizer.h"

namespace tnl {

using EngineClock = std::chrono::steady_clock;

class RequestState {
 public:
  // `model_vocab`: the width of the model's logits rows (may exceed the tokenizer's).
  RequestState(uint64_t id, GenerationRequest request, EventSink sink, const Tokenizer& tokenizer, int32_t eos_id,
               int32_t model_vocab, EngineClock::time_point arrival, std::optional<EngineClock::time_point> deadline);

  uint64_t id() const { return id_; }
  const GenerationRequest& request() const { return request_; }
  EngineClock::time_point arrival() const { return arrival_; }
  bool past_deadline(EngineClock::time_point now) const { return deadline_ && now >= *deadline_; }

  // Samples the next token from one logits row and runs it through the finish
  // checks and the text pipeline. Returns the finish reason it causes (kNone:
  // the sequence continues; kError: see error()).
  FinishReason sample_token(std::span<const float> logits);
  const Status& error() const { return error_; }

  // For a backend that samples on its device: what it needs to sample this
  // request's next token, or nothing when the request needs its logits row on
  // the host (top-logprobs alternatives). accept_sampled() then takes the token
  // through the same checks and text pipeline as sample_token(). A request with
  // an allowed-token mask gets an empty one here; fill_device_mask() computes it
  // (StepPlan::prepare_sampling, while the forward pass runs).
  // With penalties, the device keeps the counts in live slot `slot`'s penalty
  // row: `slot_row_ours` says no other request has used that row since this one
  // last did (the batcher knows); the row is then kept when every token this
  // request accepted since was drawn there, else rebuilt from the full list.
  std::optional<DeviceSampling> device_sampling(int32_t slot, bool slot_row_ours);
  Status fill_device_mask(std::vector<uint32_t>* mask) const;
  FinishReason accept_sampled(const SampledToken& sampled);

  // Prompt logprobs from the rows of one prompt chunk [start_pos, start_pos + n):
  // the row at position p scores prompt token p + 1.
  void add_prompt_rows(int64_t start_pos, const std::vector<std::span<const float>>& rows);

  int32_t completion_tokens() const { return completion_tokens_; }
  int32_t last_token() const { return last_token_; }
  bool has_new_tokens() const { return !pending_.token_ids.empty(); }
  std::optional<EngineClock::time_point> last_token_time() const { return last_token_time_; }
  void set_last_token_time(EngineClock::time_point t) { last_token_time_ = t; }

  // Hands the event built since the last one to the sink. With finish != kNone
  // it is the last event: held-back text is flushed first.
  void emit(FinishReason finish, Status error = Status::ok());

 private:
  void flush_text(FinishReason* finish);
  // Runs the tokens whose text was put off through the text pipeline, into the
  // pending event.
  void decode_deferred();
  // With stop strings: whether this token's text is sure not to complete one (so
  // it may be put off like a request's without stop strings).
  bool text_cannot_complete_stop(int32_t token) const;
  FinishReason record_token(SampleResult result);
  // The controls' verdict on a drawn token, then their advance past it.
  FinishReason apply_controls(int32_t token, std::span<const uint32_t> mask, std::span<const PenaltyEntry> biases);

  uint64_t id_;
  GenerationRequest request_;
  EventSink sink_;
  int32_t eos_id_;
  EngineClock::time_point arrival_;
  std::optional<EngineClock::time_point> deadline_;
  std::optional<EngineClock::time_point> last_token_time_;

  Sampler sampler_;
  TokenControlState controls_;
  std::vector<uint32_t> mask_;              // host path: scratch for the allowed-token mask
  std::vector<PenaltyEntry> device_biases_;  // device path: the biases the last device_sampling() used
  std::shared_ptr<std::vector<uint32_t>> device_mask_;  // device path: its mask (filled by fill_device_mask)
  // The live slot whose device penalty row counts every token accepted so far
  // (−1: none), and the one the last device_sampling() used (−1: none).
  int32_t penalty_row_slot_ = -1;
  int32_t pending_penalty_row_slot_ = -1;
  IncrementalDetokenizer detokenizer_;
  StopMatcher stop_matcher_;
  const Tokenizer& tokenizer_;
  int32_t tokenizer_vocab_;
  std::string stop_last_bytes_;  // the last byte of each stop string, each once
  bool stop_string_matched_ = false;
  // A request without stop strings (stop_matcher_.empty()) needs no text to decide
  // whether it finished: its tokens wait here and are detokenized when their event
  // is built (emit()), which the batcher does while the device runs the next step.
  // With stop strings, so do tokens whose text cannot complete one
  // (text_cannot_complete_stop); the others, and the ones before them, are
  // matched as they come. deferred_tail_visible_: the last one waiting has
  // visible text.
  std::vector<int32_t> undecoded_;
  bool deferred_tail_visible_ = false;
  int32_t completion_tokens_ = 0;
  int32_t last_token_ = -1;
  bool first_event_sent_ = false;
  GenerationEvent pending_;  // what the next event carries
  Status error_;             // why sample_token() returned kError
};

}  // namespace tnl
