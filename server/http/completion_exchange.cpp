#include "server/http/completion_exchange.h"

#include <spdlog/spdlog.h>

#include "server/api/sse.h"
#include "server/core/next_turn.h"
#include "server/core/posting_sink.h"

namespace tnl::server {

CompletionExchange::CompletionExchange(std::shared_ptr<HttpSession> session, CompletionSpec spec,
                                       GenerationPlan plan, ResponseMeta meta)
    : session_(std::move(session)),
      context_(session_->context()),
      spec_(std::move(spec)),
      plan_(std::move(plan)),
      meta_(std::move(meta)) {
  for (const PlannedChoice& c : plan_.choices) {
    choices_.emplace_back(c.index, spec_.sampling.logprobs >= 0, /*keep_history=*/!spec_.stream);
  }
}

void CompletionExchange::start() {
  Engine& engine = context_.engine();
  auto executor = session_->executor();
  context_.metrics().active_generations.fetch_add(1);
  counted_active_ = true;
  // The n choices of one prompt go in as one group: the engine prefills the prompt
  // once and copies its state to every choice (a fork).
  for (size_t begin = 0; begin < plan_.choices.size();) {
    size_t end = begin + 1;
    while (end < plan_.choices.size() && plan_.choices[end].prompt_index == plan_.choices[begin].prompt_index) ++end;
    std::vector<GenerationRequest> requests;
    std::vector<EventSink> sinks;
    for (size_t i = begin; i < end; ++i) {
      requests.push_back(plan_.choices[i].request);
      sinks.push_back(posting_sink(
          executor, [self = shared_from_this(), i](GenerationEvent&& event) { self->on_event(i, std::move(event)); }));
    }
    Expected<std::vector<uint64_t>> ids = engine.submit_group(std::move(requests), std::move(sinks));
    if (!ids.has_value()) {
      abandoned_ = true;
      for (uint64_t submitted : engine_ids_) engine.cancel(submitted);
      choices_.erase(choices_.begin() + long(engine_ids_.size()), choices_.end());  // only submitted ones report back
      HeaderList headers;
      if (ids.status().code() == StatusCode::kResourceExhausted) headers.emplace_back("Retry-After", "1");
      session_->send_error(api_error_from_status(ids.status()), std::move(headers));
      session_.reset();
      if (choices_.empty()) on_choice_finished();  // nothing will report back
      return;
    }
    engine_ids_.insert(engine_ids_.end(), ids->begin(), ids->end());
    begin = end;
  }
  if (!spec_.stream) return;
  session_->begin_stream();
  for (const ChoiceProgress& c : choices_) {
    // Chat streams open each choice with the assistant role; completions with echo
    // open with the prompt text.
    ChoiceOutput opening{c.index(), "", "", std::nullopt, 0};
    if (meta_.kind == ApiKind::kChat) {
      session_->send_stream_data(sse_event(stream_chunk(meta_, opening, true, spec_.include_usage)));
    } else if (spec_.echo) {
      opening.text = plan_.choices[size_t(c.index())].prompt_text;
      session_->send_stream_data(sse_event(stream_chunk(meta_, opening, false, spec_.include_usage)));
    }
  }
}

void CompletionExchange::client_gone() {
  if (abandoned_) return;
  abandoned_ = true;
  for (size_t i = 0; i < engine_ids_.size(); ++i) {
    if (!choices_[i].finished()) context_.engine().cancel(engine_ids_[i]);
  }
  session_.reset();
}

void CompletionExchange::on_event(size_t choice, GenerationEvent&& event) {
  if (choice >= choices_.size()) return;
  const bool finishing = event.finish != FinishReason::kNone;
  ChoiceDelta delta = choices_[choice].apply(std::move(event), context_.engine().tokenizer());
  if (!abandoned_ && spec_.stream) stream_event(choice, std::move(delta));
  if (!finishing) return;
  const ChoiceProgress& c = choices_[choice];
  if (c.finish() == FinishReason::kStop || c.finish() == FinishReason::kLength) {
    const PlannedChoice& planned = plan_.choices[choice];
    const bool chat = meta_.kind == ApiKind::kChat;
    const bool text_prompt = !chat && spec_.prompts[size_t(planned.prompt_index)].is_text;
    after_choice_finished(context_, FinishedResponses::key(meta_.id, c.index()), planned.request.prompt_ids,
                          c.token_ids(),
                          next_turn_prefix(context_, chat ? &spec_.messages : nullptr,
                                           text_prompt ? &planned.prompt_text : nullptr, c.text()));
  }
  on_choice_finished();
}

void CompletionExchange::stream_event(size_t choice, ChoiceDelta&& delta) {
  const ChoiceProgress& c = choices_[choice];
  if (!delta.text.empty() || !delta.logprobs.empty()) {
    ChoiceOutput out{c.index(), std::move(delta.text), "", std::nullopt, 0};
    if (spec_.sampling.logprobs >= 0) out.logprobs = std::move(delta.logprobs);
    session_->send_stream_data(sse_event(stream_chunk(meta_, out, false, spec_.include_usage)));
  }
  if (!c.finished()) return;
  if (c.finish() == FinishReason::kError) {
    ApiError error = api_error_from_status(c.error());
    session_->send_stream_data(sse_event(error.to_json()));
    return;
  }
  ChoiceOutput last{c.index(), "", openai_finish_reason(c.finish()), std::nullopt, 0};
  session_->send_stream_data(sse_event(stream_chunk(meta_, last, false, spec_.include_usage)));
}

void CompletionExchange::on_choice_finished() {
  if (!choices_.empty() && ++finished_ < choices_.size()) return;
  if (!abandoned_) {
    if (spec_.stream) {
      if (spec_.include_usage) session_->send_stream_data(sse_event(usage_chunk(meta_, usage())));
      session_->send_stream_data(kSseDone);
      session_->end_stream();
    } else {
      answer_whole();
    }
  }
  session_.reset();
  if (counted_active_) {
    counted_active_ = false;
    context_.metrics().active_generations.fetch_sub(1);
  }
}

Usage CompletionExchange::usage() const {
  Usage u;
  u.prompt_tokens = plan_.prompt_tokens;
  for (const ChoiceProgress& c : choices_) u.completion_tokens += c.completion_tokens();
  return u;
}

void CompletionExchange::answer_whole() {
  std::vector<ChoiceOutput> outputs;
  for (const ChoiceProgress& c : choices_) {
    if (c.finish() == FinishReason::kError) {
      spdlog::error("{}: generation failed: {}", meta_.id, c.error().to_string());
      return session_->send_error(api_error_from_status(c.error()));
    }
    ChoiceOutput out{c.index(), c.text(), openai_finish_reason(c.finish()), std::nullopt, 0};
    if (spec_.echo) out.text = plan_.choices[size_t(c.index())].prompt_text + out.text;
    if (spec_.sampling.logprobs >= 0) out.logprobs = c.logprobs();
    outputs.push_back(std::move(out));
  }
  session_->send_response(200, "application/json", response_body(meta_, outputs, usage()));
}

}  // namespace tnl::server
