#include "engine/scheduler/continuous_batcher.h"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

namespace tnl {
namespace {

double seconds_between(EngineClock::time_point a, EngineClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Rows a chunk contributes to StepOutput (backend.h).
int64_t rows_of(const SequenceChunk& c) {
  switch (c.logits) {
    case LogitsMode::kNone: return 0;
    case LogitsMode::kLast: return 1;
    case LogitsMode::kAll: return static_cast<int64_t>(c.tokens.size());
  }
  return 0;
}

}  // namespace

ContinuousBatcher::ContinuousBatcher(Backend& backend, const Tokenizer& tokenizer, const EngineOptions& options,
                                     SchedulerLimits limits)
    : backend_(backend),
      tokenizer_(tokenizer),
      options_(options),
      eos_id_(tokenizer.eos_id() >= 0 ? tokenizer.eos_id() : backend.config().eos_token_id),
      scheduler_(limits) {}

void ContinuousBatcher::add(uint64_t id, GenerationRequest request, EventSink sink, EngineClock::time_point arrival) {
  std::optional<EngineClock::time_point> deadline;
  if (options_.request_timeout.count() > 0) deadline = arrival + options_.request_timeout;
  const bool prompt_logprobs = request.prompt_logprobs;
  std::vector<int32_t> prompt = request.prompt_ids;
  requests_.emplace(id, std::make_unique<RequestState>(id, std::move(request), std::move(sink), tokenizer_, eos_id_,
                                                       arrival, deadline));
  scheduler_.add(id, std::move(prompt), prompt_logprobs);
}

void ContinuousBatcher::cancel(uint64_t id) {
  if (requests_.count(id) != 0) finish(id, FinishReason::kCancelled);
}

void ContinuousBatcher::cancel_all() { finish_all(FinishReason::kCancelled, Status::ok()); }

void ContinuousBatcher::fail_all(const Status& error) { finish_all(FinishReason::kError, error); }

void ContinuousBatcher::finish_all(FinishReason reason, const Status& error) {
  std::vector<uint64_t> ids;
  for (const auto& [id, state] : requests_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());  // ids grow with arrival: oldest first
  for (uint64_t id : ids) finish(id, reason, error);
}

void ContinuousBatcher::expire(EngineClock::time_point now) {
  if (options_.request_timeout.count() <= 0) return;
  std::vector<uint64_t> expired;
  for (const auto& [id, state] : requests_) {
    if (state->past_deadline(now)) expired.push_back(id);
  }
  for (uint64_t id : expired) finish(id, FinishReason::kTimeout);
}

void ContinuousBatcher::finish(uint64_t id, FinishReason reason, Status error) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  std::unique_ptr<RequestState> state = std::move(it->second);
  requests_.erase(it);
  scheduler_.remove(id);  // frees the slot before anything else is scheduled
  if (reason == FinishReason::kError) {
    spdlog::warn("request {} ({}) failed: {}", id, state->request().request_id, error.to_string());
  }
  ++metrics_.requests_finished_total;
  metrics_.e2e_latency.observe(seconds_between(state->arrival(), EngineClock::now()));
  state->emit(reason, std::move(error));
}

void ContinuousBatcher::drop_invalid_chunks(ScheduledStep* step) {
  ScheduledStep kept;
  kept.num_decode_tokens = 0;
  kept.num_prefill_tokens = 0;
  for (size_t i = 0; i < step->chunks.size(); ++i) {
    StepPlan alone;
    alone.chunks.push_back(step->plan.chunks[i]);
    Status s = validate_step_plan(alone, backend_.config(), backend_.num_slots());
    if (!s.is_ok()) {
      finish(step->chunks[i].seq, FinishReason::kError, internal_error("planned chunk rejected: " + s.message()));
      continue;
    }
    (step->chunks[i].prefill ? kept.num_prefill_tokens : kept.num_decode_tokens) += step->chunks[i].num_tokens;
    kept.plan.chunks.push_back(std::move(step->plan.chunks[i]));
    kept.chunks.push_back(step->chunks[i]);
  }
  *step = std::move(kept);
}

Status ContinuousBatcher::check_output(const ScheduledStep& step, const StepOutput& out) const {
  if (out.vocab_size != backend_.config().vocab_size) {
    return internal_error("backend returned logits of width " + std::to_string(out.vocab_size) + ", expected " +
                          std::to_string(backend_.config().vocab_size));
  }
  if (out.row_begin.size() != step.plan.chunks.size()) {
    return internal_error("backend returned row offsets for " + std::to_string(out.row_begin.size()) +
                          " chunks, the plan has " + std::to_string(step.plan.chunks.size()));
  }
  for (size_t i = 0; i < step.plan.chunks.size(); ++i) {
    if (step.plan.chunks[i].sample) {
      const int32_t token = i < out.sampled.size() ? out.sampled[i].token : -1;
      if (token < 0 || token >= backend_.config().vocab_size) {
        return internal_error("backend sampled token " + std::to_string(token) + " for chunk " + std::to_string(i));
      }
    }
    const int64_t rows = rows_of(step.plan.chunks[i]);
    if (rows == 0) continue;
    if (out.row_begin[i] < 0 || out.row_begin[i] + rows > out.num_rows()) {
      return internal_error("backend returned too few logits rows for chunk " + std::to_string(i));
    }
  }
  return Status::ok();
}

void ContinuousBatcher::attach_device_sampling(ScheduledStep* step) {
  if (!backend_.samples_on_device()) return;
  for (size_t i = 0; i < step->chunks.size(); ++i) {
    if (!step->chunks[i].samples_next) continue;
    SequenceChunk& pc = step->plan.chunks[i];
    pc.sample = requests_.at(step->chunks[i].seq)->device_sampling();
    // The row was wanted only to sample it; prompt logprobs (kAll) still travel.
    if (pc.sample && pc.logits == LogitsMode::kLast) pc.logits = LogitsMode::kNone;
  }
}

void ContinuousBatcher::step() {
  const EngineClock::time_point start = EngineClock::now();
  ScheduledStep step = scheduler_.schedule();
  if (on_scheduled_) on_scheduled_(scheduler_.num_running(), scheduler_.num_waiting());
  drop_invalid_chunks(&step);
  if (step.empty()) return;
  attach_device_sampling(&step);

  Status status;
  try {
    status = backend_.run_step(step.plan, &output_);
  } catch (const std::exception& e) {
    status = internal_error(std::string("backend threw: ") + e.what());
  }
  if (status.is_ok()) status = check_output(step, output_);
  if (!status.is_ok()) {
    // run_step reports one status for the whole step and leaves the state of its
    // slots undefined, so every sequence in the step fails; the rest (waiting, or
    // running but not scheduled this step) are untouched and keep going.
    spdlog::error("step of {} chunks failed: {}", step.chunks.size(), status.to_string());
    metrics_.step_time.observe(seconds_between(start, EngineClock::now()));
    if (status.code() == StatusCode::kFatal) {
      // The backend is gone for good: fail everything, running and waiting, with a
      // status the front ends turn into 503 / UNAVAILABLE.
      dead_ = unavailable("the engine is dead and serves no more requests: " + status.message());
      spdlog::critical("{}", dead_.message());
      if (on_dead_) on_dead_(dead_);
      finish_all(FinishReason::kError, dead_);
      return;
    }
    for (const ScheduledChunk& c : step.chunks) finish(c.seq, FinishReason::kError, status);
    return;
  }
  scheduler_.commit(step);
  metrics_.prompt_tokens_total += static_cast<uint64_t>(step.num_prefill_tokens);
  process_output(step, output_);
  metrics_.step_time.observe(seconds_between(start, EngineClock::now()));
}

void ContinuousBatcher::process_output(const ScheduledStep& step, const StepOutput& out) {
  const EngineClock::time_point now = EngineClock::now();
  std::vector<std::pair<uint64_t, FinishReason>> sampled;  // in chunk order
  for (size_t i = 0; i < step.chunks.size(); ++i) {
    const ScheduledChunk& c = step.chunks[i];
    const SequenceChunk& pc = step.plan.chunks[i];
    RequestState& state = *requests_.at(c.seq);
    const int64_t rows = rows_of(pc);
    if (c.prefill && pc.logits == LogitsMode::kAll) {
      std::vector<std::span<const float>> prompt_rows;
      for (int64_t r = 0; r < rows; ++r) prompt_rows.push_back(out.row(out.row_begin[i] + r));
      state.add_prompt_rows(c.start_pos, prompt_rows);
    }
    if (!c.samples_next) continue;
    const FinishReason reason = pc.sample ? state.accept_sampled(out.sampled[i])
                                          : state.sample_token(out.row(out.row_begin[i] + rows - 1));
    if (reason == FinishReason::kError) {
      sampled.emplace_back(c.seq, reason);
      continue;
    }
    ++metrics_.generation_tokens_total;
    if (state.completion_tokens() == 1) {
      metrics_.time_to_first_token.observe(seconds_between(state.arrival(), now));
    } else if (state.last_token_time()) {
      metrics_.time_per_output_token.observe(seconds_between(*state.last_token_time(), now));
    }
    state.set_last_token_time(now);
    if (reason == FinishReason::kNone) scheduler_.append_token(c.seq, state.last_token());
    sampled.emplace_back(c.seq, reason);
  }
  // One event per sequence that produced a token this step.
  for (const auto& [id, reason] : sampled) {
    if (reason == FinishReason::kNone) {
      requests_.at(id)->emit(FinishReason::kNone);
    } else {
      finish(id, reason, reason == FinishReason::kError ? requests_.at(id)->error() : Status::ok());
    }
  }
}

EngineStats ContinuousBatcher::stats() const {
  EngineStats s;
  s.running = scheduler_.num_running();
  s.waiting = scheduler_.num_waiting();
  s.slots_used = scheduler_.slots_used();
  s.slots_total = scheduler_.slots_total();
  metrics_.copy_to(&s);
  return s;
}

}  // namespace tnl
