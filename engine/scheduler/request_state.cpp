#include "engine/scheduler/request_state.h"

#include <algorithm>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "engine/scheduler/token_scoring.h"

namespace tnl {

RequestState::RequestState(uint64_t id, GenerationRequest request, EventSink sink, const Tokenizer& tokenizer,
                           int32_t eos_id, int32_t model_vocab, EngineClock::time_point arrival,
                           std::optional<EngineClock::time_point> deadline)
    : id_(id),
      request_(std::move(request)),
      sink_(std::move(sink)),
      eos_id_(eos_id),
      arrival_(arrival),
      deadline_(deadline),
      sampler_(request_.sampling, request_.prompt_ids),
      controls_(request_.controls, model_vocab, [&] {
        std::vector<int32_t> end = request_.stop_token_ids;
        if (eos_id >= 0) end.push_back(eos_id);
        return end;
      }()),
      detokenizer_(tokenizer, request_.prompt_ids),
      stop_matcher_(request_.stop),
      tokenizer_(tokenizer),
      tokenizer_vocab_(tokenizer.vocab_size()) {
  for (const std::string& stop : request_.stop) {
    if (!stop.empty() && stop_last_bytes_.find(stop.back()) == std::string::npos) stop_last_bytes_ += stop.back();
  }
  if (request_.prompt_logprobs) {
    // Entry 0 has no logprob: nothing precedes the first prompt token.
    pending_.prompt_logprobs.resize(request_.prompt_ids.size());
    for (size_t i = 0; i < request_.prompt_ids.size(); ++i) pending_.prompt_logprobs[i].token = request_.prompt_ids[i];
  }
}

FinishReason RequestState::sample_token(std::span<const float> logits) {
  penalty_row_slot_ = -1;  // a token the device's penalty row does not count
  const std::vector<PenaltyEntry> biases = controls_.biases();
  mask_.clear();
  if (controls_.has_mask()) {
    if (Status s = controls_.fill_mask(&mask_); !s.is_ok()) {
      error_ = std::move(s);
      return FinishReason::kError;
    }
  }
  SampleResult result = sampler_.sample(logits, {biases, mask_});
  if (result.non_finite) {
    // Weights are checked at load; this is an overflow or a backend fault. Fail
    // this request rather than stream garbage.
    error_ = internal_error("the model produced non-finite logits (NaN or +Inf) for this request");
    return FinishReason::kError;
  }
  if (FinishReason f = apply_controls(result.token, mask_, biases); f != FinishReason::kNone) return f;
  return record_token(std::move(result));
}

std::optional<DeviceSampling> RequestState::device_sampling(int32_t slot, bool slot_row_ours) {
  if (request_.sampling.logprobs > 0) return std::nullopt;
  DeviceSampling d;
  d.params = sampler_.device_row();
  device_biases_ = controls_.biases();
  if (!sampler_.has_penalties()) {
    d.penalty_row = PenaltyRowMode::kNone;
    d.penalties = Sampler::bias_entries(device_biases_);
  } else if (slot_row_ours && penalty_row_slot_ == slot) {
    // Every token accepted since the row was built was drawn, and counted, there.
    d.penalty_row = PenaltyRowMode::kKept;
    d.penalties = Sampler::bias_entries(device_biases_);
  } else {
    d.penalty_row = PenaltyRowMode::kRebuild;
    d.penalties = sampler_.penalty_entries(device_biases_);
  }
  pending_penalty_row_slot_ = d.penalty_row == PenaltyRowMode::kNone ? -1 : slot;
  d.want_logprob = request_.sampling.logprobs == 0;
  device_mask_.reset();
  if (controls_.has_mask()) d.allowed_mask = device_mask_ = std::make_shared<std::vector<uint32_t>>();
  return d;
}

Status RequestState::fill_device_mask(std::vector<uint32_t>* mask) const { return controls_.fill_mask(mask); }

FinishReason RequestState::accept_sampled(const SampledToken& sampled) {
  sampler_.accept(sampled.token);
  penalty_row_slot_ = pending_penalty_row_slot_;  // the device counted this token in that row
  SampleResult result;
  result.token = sampled.token;
  result.logprob = sampled.logprob;
  // The device applied the biases and mask device_sampling() made: a token they
  // forbid means none was allowed.
  const std::span<const uint32_t> mask = device_mask_ ? std::span<const uint32_t>(*device_mask_) : std::span<const uint32_t>();
  if (FinishReason f = apply_controls(sampled.token, mask, device_biases_); f != FinishReason::kNone) return f;
  return record_token(std::move(result));
}

FinishReason RequestState::apply_controls(int32_t token, std::span<const uint32_t> mask,
                                          std::span<const PenaltyEntry> biases) {
  Status s = controls_.check(token, mask, biases);
  if (s.is_ok()) s = controls_.accept(token);
  if (s.is_ok()) return FinishReason::kNone;
  error_ = std::move(s);
  return FinishReason::kError;
}

FinishReason RequestState::record_token(SampleResult result) {
  const int32_t token = result.token;
  last_token_ = token;
  ++completion_tokens_;
  pending_.token_ids.push_back(token);
  if (request_.sampling.logprobs >= 0) pending_.logprobs.push_back(std::move(result));

  // EOS and stop tokens end the sequence; their text is not part of the output.
  if (token == eos_id_ && !request_.ignore_eos) return FinishReason::kStop;
  if (std::find(request_.stop_token_ids.begin(), request_.stop_token_ids.end(), token) !=
      request_.stop_token_ids.end()) {
    return FinishReason::kStop;
  }
  // A model vocabulary may be padded past the tokenizer's: such ids have no text.
  // Where the text cannot end the request here (no stop strings, or a token whose
  // text cannot complete one) it is built with the event (emit()), while the
  // batcher's next step runs.
  if (token >= 0 && token < tokenizer_vocab_ && stop_matcher_.empty()) {
    undecoded_.push_back(token);
  } else if (token >= 0 && token < tokenizer_vocab_ && text_cannot_complete_stop(token)) {
    deferred_tail_visible_ = tokenizer_.has_visible_text(token);  // what the next token's check reads
    undecoded_.push_back(token);
  } else if (token >= 0 && token < tokenizer_vocab_) {
    decode_deferred();  // the text before this token's, in order
    bool stopped = false;
    pending_.text += stop_matcher_.push(detokenizer_.push(token), &stopped);
    if (stopped) {
      stop_string_matched_ = true;
      if (request_.include_stop_str_in_output) pending_.text += stop_matcher_.matched_stop();
      return FinishReason::kStop;
    }
  }
  if (completion_tokens_ >= request_.max_tokens) return FinishReason::kLength;
  return FinishReason::kNone;
}

void RequestState::add_prompt_rows(int64_t start_pos, const std::vector<std::span<const float>>& rows) {
  if (!request_.prompt_logprobs) return;
  const int32_t top_k = std::max(request_.sampling.logprobs, 0);
  const auto prompt_len = static_cast<int64_t>(request_.prompt_ids.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    const int64_t next = start_pos + static_cast<int64_t>(r) + 1;  // the prompt token this row predicts
    if (next >= prompt_len) break;  // the prompt's last row predicts the first generated token
    pending_.prompt_logprobs[static_cast<size_t>(next)] = score_token(rows[r], request_.prompt_ids[next], top_k);
  }
}

bool RequestState::text_cannot_complete_stop(int32_t token) const {
  // A stop string completes only with text that holds its last byte. The text a
  // token adds is its following_text when the detokenizer appends it plainly: so
  // for the detokenizer as it is now, or, after deferred tokens, when the last of
  // them (appended plainly too) has visible text (IncrementalDetokenizer).
  const std::string* text = tokenizer_.following_text(token);
  if (text == nullptr || text->find_first_of(stop_last_bytes_) != std::string::npos) return false;
  return undecoded_.empty() ? detokenizer_.appends_plainly(token) : deferred_tail_visible_;
}

void RequestState::decode_deferred() {
  for (int32_t token : undecoded_) {
    // Never set: without stop strings there is nothing to match, and a deferred
    // token's text holds no stop string's last byte (text_cannot_complete_stop).
    bool stopped = false;
    pending_.text += stop_matcher_.push(detokenizer_.push(token), &stopped);
  }
  undecoded_.clear();
}

void RequestState::flush_text(FinishReason* finish) {
  if (stop_string_matched_) return;  // the stop string and what follows are dropped
  bool stopped = false;
  pending_.text += stop_matcher_.push(detokenizer_.flush(), &stopped);
  if (stopped) {
    // The detokenizer's held-back tail completed a stop string.
    stop_string_matched_ = true;
    if (request_.include_stop_str_in_output) pending_.text += stop_matcher_.matched_stop();
    if (*finish == FinishReason::kLength) *finish = FinishReason::kStop;
    return;
  }
  pending_.text += stop_matcher_.flush();
}

void RequestState::emit(FinishReason finish, Status error) {
  decode_deferred();
  if (finish != FinishReason::kNone) flush_text(&finish);
  GenerationEvent event = std::move(pending_);
  pending_ = GenerationEvent{};
  if (first_event_sent_) event.prompt_logprobs.clear();
  first_event_sent_ = true;
  event.finish = finish;
  event.error = std::move(error);
  event.prompt_tokens = static_cast<int32_t>(request_.prompt_ids.size());
  event.completion_tokens = completion_tokens_;
  try {
    sink_(std::move(event));
  } catch (const std::exception& e) {
    // A front end's sink must not take the engine down with it.
    spdlog::error("request {} ({}): event sink threw: {}", id_, request_.request_id, e.what());
  } catch (...) {
    spdlog::error("request {} ({}): event sink threw", id_, request_.request_id);
  }
}

}  // namespace tnl
