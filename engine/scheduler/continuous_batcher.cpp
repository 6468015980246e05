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
      scheduler_(limits),
      swap_space_(backend.state_bytes_per_slot()),
      seed_source_([] {
        std::random_device device;
        return (uint64_t(device()) << 32) ^ device();
      }()),
      penalty_row_owner_(size_t(std::max(backend.num_slots(), 0)), kNoPenaltyRowOwner) {
  const ModelConfig& c = backend.config();
  layout_.model_fingerprint = options.model_fingerprint;
  layout_.layers = c.num_layers;
  layout_.heads = c.num_heads;
  layout_.head_dim = c.head_dim();
  for (int64_t l = 0; l < c.num_layers; ++l) layout_.key_dims.push_back(c.key_dim(l));
  layout_.vocab_size = c.vocab_size;
  layout_.max_tokens = options.max_model_len;
}

Expected<std::string> ContinuousBatcher::make_blob(const std::vector<int32_t>& tokens, StateRef slot,
                                                   std::span<const float> logits) {
  StateBlob blob;
  blob.tokens = tokens;
  blob.state.resize(size_t(backend_.state_bytes_per_slot()));
  TNL_RETURN_IF_ERROR(backend_.read_state(slot, blob.state));
  blob.logits.assign(logits.begin(), logits.end());
  return write_state_blob(layout_, blob);
}

void ContinuousBatcher::export_state(std::vector<int32_t> tokens, ExportDone done) {
  if (Status s = flush_copies(); !s.is_ok()) return done(s);
  if (std::optional<PrefixHit> hit = scheduler_.prefix_cache().find_exact(tokens)) {
    if (!done) return;  // a warm-up of something already cached
    const std::span<const float> row = hit->last_logits ? std::span<const float>(*hit->last_logits) : std::span<const float>();
    return done(make_blob(tokens, hit->slot, row));
  }
  // Not cached as such: prefill it (from its longest cached prefix), sampling nothing.
  const uint64_t id = next_internal_id_++;
  exports_.emplace(id, ExportJob{tokens, std::move(done)});
  scheduler_.add(id, std::move(tokens), /*prompt_logprobs=*/false);
}

void ContinuousBatcher::finish_export(uint64_t id, Expected<std::string> result) {
  auto it = exports_.find(id);
  if (it == exports_.end()) return;
  ExportDone done = std::move(it->second.done);
  exports_.erase(it);
  scheduler_.remove(id);
  swap_space_.drop(id);
  if (done) done(std::move(result));
}

void ContinuousBatcher::import_state(StateBlob blob, ImportDone done) {
  if (Status s = flush_copies(); !s.is_ok()) return done(s);
  PrefixCache& cache = scheduler_.prefix_cache();
  if (!cache.enabled()) {
    return done(failed_precondition("the prefix cache is off (--prefix-cache off, or no room for snapshot slots): "
                                    "an imported state would have nowhere to live"));
  }
  StateRef slot;
  std::optional<PrefixEntryId> id;
  if (std::optional<PrefixHit> existing = cache.find_exact(blob.tokens)) {
    slot = existing->slot;
    id = existing->id;
  } else {
    std::vector<StateCopy> demotions;
    std::optional<PrefixCache::Reservation> reserved = cache.reserve(blob.tokens, &demotions, /*ready=*/true);
    if (!reserved) return done(resource_exhausted("no prefix-cache slot is free for the imported state"));
    if (!demotions.empty()) {
      StepPlan plan;
      plan.copies_before = std::move(demotions);
      StepOutput unused;
      if (Status s = backend_.run_step(plan, &unused); !s.is_ok()) {
        cache.discard(reserved->slot);
        return done(s);
      }
    }
    slot = reserved->slot;
    id = reserved->id;
  }
  if (Status s = backend_.write_state(slot, blob.state); !s.is_ok()) {
    cache.discard(slot);
    return done(s);
  }
  if (!blob.logits.empty()) cache.set_last_logits(*id, std::move(blob.logits));
  done(int64_t(blob.tokens.size()));
}

void ContinuousBatcher::add(uint64_t id, GenerationRequest request, EventSink sink, EngineClock::time_point arrival,
                            TokenHashChain prompt_keys) {
  std::optional<EngineClock::time_point> deadline;
  if (options_.request_timeout.count() > 0) deadline = arrival + options_.request_timeout;
  if (!request.sampling.seed) request.sampling.seed = seed_source_();
  const bool prompt_logprobs = request.prompt_logprobs;
  const int32_t priority = request.priority;
  std::vector<int32_t> prompt = request.prompt_ids;
  requests_.emplace(id, std::make_unique<RequestState>(id, std::move(request), std::move(sink), tokenizer_, eos_id_,
                                                       int32_t(backend_.config().vocab_size),
                                                       arrival, deadline));
  scheduler_.add(id, std::move(prompt), prompt_logprobs, priority, std::move(prompt_keys));
}

void ContinuousBatcher::add_group(const std::vector<uint64_t>& ids, std::vector<GenerationRequest> requests,
                                  std::vector<EventSink> sinks, EngineClock::time_point arrival,
                                  TokenHashChain prompt_keys) {
  std::optional<EngineClock::time_point> deadline;
  if (options_.request_timeout.count() > 0) deadline = arrival + options_.request_timeout;
  std::vector<int32_t> prompt = requests.front().prompt_ids;
  const int32_t priority = requests.front().priority;  // one for the group (Engine::submit_group)
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!requests[i].sampling.seed) requests[i].sampling.seed = seed_source_();
    requests_.emplace(ids[i], std::make_unique<RequestState>(ids[i], std::move(requests[i]), std::move(sinks[i]),
                                                             tokenizer_, eos_id_, int32_t(backend_.config().vocab_size),
                                                             arrival, deadline));
  }
  scheduler_.add_group(ids, std::move(prompt), priority, std::move(prompt_keys));
}

void ContinuousBatcher::cancel(uint64_t id) {
  if (requests_.count(id) != 0) finish(id, FinishReason::kCancelled);
}

void ContinuousBatcher::cancel_all() { finish_all(FinishReason::kCancelled, Status::ok()); }

void ContinuousBatcher::fail_all(const Status& error) { finish_all(FinishReason::kError, error); }

void ContinuousBatcher::finish_all(FinishReason reason, const Status& error) {
  std::vector<uint64_t> ids;
  for (const auto& [id, state] : requests_) ids.push_back(id);
  for (const auto& [id, job] : exports_) ids.push_back(id);
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
  if (exports_.count(id) != 0) {
    return finish_export(id, error.is_ok() ? Status(StatusCode::kCancelled, "the export was cancelled") : error);
  }
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  std::unique_ptr<RequestState> state = std::move(it->second);
  requests_.erase(it);
  // Frees the slot before anything else is scheduled. A sequence that ended well
  // (not by an error: its state is sound) leaves a snapshot in the prefix cache,
  // so that the next turn of a conversation starts from it.
  scheduler_.remove(id, /*snapshot=*/reason != FinishReason::kError);
  swap_space_.drop(id);
  if (reason == FinishReason::kError) {
    spdlog::warn("request {} ({}) failed: {}", id, state->request().request_id, error.to_string());
  }
  ++metrics_.requests_finished_total;
  metrics_.e2e_latency.observe(seconds_between(state->arrival(), EngineClock::now()));
  state->emit(reason, std::move(error));
}

void ContinuousBatcher::drop_invalid_chunks(ScheduledStep* step) {
  const auto validate = [this](const SequenceChunk& chunk) {
    return validate_sequence_chunk(chunk, 0, backend_.config(), backend_.num_slots());
  };
  // The usual case, every chunk valid, leaves the step as it is (rebuilding it
  // moved every chunk once more, on the step loop's critical path).
  if (std::all_of(step->plan.chunks.begin(), step->plan.chunks.end(),
                  [&](const SequenceChunk& chunk) { return validate(chunk).is_ok(); })) {
    return;
  }
  ScheduledStep kept;
  kept.num_decode_tokens = 0;
  kept.num_prefill_tokens = 0;
  kept.num_cached_tokens = step->num_cached_tokens;
  kept.cached_starts = std::move(step->cached_starts);
  kept.plan.copies_before = std::move(step->plan.copies_before);
  kept.plan.copies_after = std::move(step->plan.copies_after);
  kept.snapshots = std::move(step->snapshots);
  kept.preempted = std::move(step->preempted);
  kept.resumed = std::move(step->resumed);
  for (size_t i = 0; i < step->chunks.size(); ++i) {
    const Status s = validate(step->plan.chunks[i]);
    if (!s.is_ok()) {
      // Its snapshots would be keyed by tokens never computed: drop them with it.
      scheduler_.discard_snapshots_of(step->plan.chunks[i].slot, &kept.plan);
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
    const ScheduledChunk& c = step->chunks[i];
    // A fork group's members all sample from the leader's row: on the host. An
    // export samples nothing; its row comes back for the blob.
    if (!c.samples_next || !c.forks.empty() || exports_.count(c.seq) != 0) continue;
    SequenceChunk& pc = step->plan.chunks[i];
    uint64_t& row_owner = penalty_row_owner_[size_t(pc.slot)];
    pc.sample = requests_.at(c.seq)->device_sampling(pc.slot, row_owner == c.seq);
    if (pc.sample && pc.sample->penalty_row != PenaltyRowMode::kNone) row_owner = c.seq;
    // The row was wanted only to sample it, unless the prefix cache keeps it with a
    // prompt's snapshot; prompt logprobs (kAll) still travel.
    if (pc.sample && pc.logits == LogitsMode::kLast && !c.keep_logits_for) pc.logits = LogitsMode::kNone;
  }
  // Allowed-token masks (structured output) are computed while the device runs
  // the forward pass: the backend calls this between the two.
  std::vector<std::pair<const RequestState*, std::shared_ptr<std::vector<uint32_t>>>> masks;
  for (size_t i = 0; i < step->chunks.size(); ++i) {
    const SequenceChunk& pc = step->plan.chunks[i];
    if (pc.sample && pc.sample->allowed_mask) masks.emplace_back(requests_.at(step->chunks[i].seq).get(), pc.sample->allowed_mask);
  }
  if (masks.empty()) return;
  step->plan.prepare_sampling = [masks = std::move(masks)]() -> Status {
    for (const auto& [request, mask] : masks) TNL_RETURN_IF_ERROR(request->fill_device_mask(mask.get()));
    return Status::ok();
  };
}

Status ContinuousBatcher::flush_copies() {
  if (!scheduler_.has_pending_copies()) return Status::ok();
  ScheduledStep step;
  step.plan.copies_before = scheduler_.take_pending_copies();
  StepOutput out;
  return backend_.run_step(step.plan, &out);
}

void ContinuousBatcher::swap_out(const ScheduledStep& step) {
  for (const Preemption& p : step.preempted) {
    const auto request = requests_.find(p.seq);
    const int32_t priority = request != requests_.end() ? request->second->request().priority : 0;
    if (!p.save_state) {
      spdlog::debug("preempted sequence {} (priority {}) from slot {} before it computed anything", p.seq, priority,
                    p.slot);
      continue;
    }
    if (Status s = swap_space_.swap_out(backend_, p.seq, {StateTier::kLive, p.slot}); !s.is_ok()) {
      finish(p.seq, FinishReason::kError, internal_error("saving the state of a preempted sequence: " + s.message()));
      continue;
    }
    metrics_.preemption_swap_bytes_total += uint64_t(swap_space_.state_bytes());
    spdlog::debug("preempted sequence {} (priority {}) from slot {}: {} state bytes to host memory, {} swapped out",
                  p.seq, priority, p.slot, swap_space_.state_bytes(), swap_space_.num_held());
  }
}

Status ContinuousBatcher::swap_in(ScheduledStep* step) {
  if (step->resumed.empty()) return Status::ok();
  if (!step->plan.copies_before.empty()) {
    // Left in the step until they ran: if they fail, the step's failure handling
    // discards the cache entries they were to fill.
    StepPlan copies;
    copies.copies_before = step->plan.copies_before;
    StepOutput unused;
    TNL_RETURN_IF_ERROR(backend_.run_step(copies, &unused));
    step->plan.copies_before.clear();
  }
  for (const Resumption& r : step->resumed) {
    // Gone since it was planned (its chunk was rejected): nothing to restore.
    if (scheduler_.slot_of(r.seq) != r.slot) continue;
    TNL_RETURN_IF_ERROR(swap_space_.swap_in(backend_, r.seq, {StateTier::kLive, r.slot}));
    metrics_.preemption_swap_bytes_total += uint64_t(swap_space_.state_bytes());
    spdlog::debug("resumed sequence {} in slot {} from host memory", r.seq, r.slot);
  }
  return Status::ok();
}

void ContinuousBatcher::trace_step(const ScheduledStep& step, StepRecord record, bool failed) {
  if (!trace_) return;
  record.end = EngineClock::now();
  for (const ScheduledChunk& c : step.chunks) {
    if (c.prefill) {
      ++record.prefill_chunks;
    } else {
      ++record.decodes;
    }
  }
  record.prefill_tokens = step.num_prefill_tokens;
  record.cached_tokens = step.num_cached_tokens;
  record.copies_before = int32_t(step.plan.copies_before.size());
  record.copies_after = int32_t(step.plan.copies_after.size());
  record.first_tokens = first_tokens_this_step_;
  record.running = scheduler_.num_running();
  record.waiting = scheduler_.num_waiting();
  record.failed = failed;
  trace_->step(record);
}

void ContinuousBatcher::step() {
  StepRecord record;
  record.start = EngineClock::now();
  const EngineClock::time_point start = record.start;
  first_tokens_this_step_ = 0;
  ScheduledStep step = scheduler_.schedule();
  if (on_scheduled_) on_scheduled_(scheduler_.num_running(), scheduler_.num_waiting());
  swap_out(step);
  drop_invalid_chunks(&step);
  if (step.empty()) {
    emit_deferred_events();
    return;
  }
  attach_device_sampling(&step);
  // The previous step's token events go out while the device runs this one (the
  // backend calls this between enqueueing and waiting); any the backend did not
  // send go right after it.
  if (!deferred_events_.empty()) step.plan.while_running = [this] { emit_deferred_events(); };

  Status status;
  try {
    status = swap_in(&step);
    record.run_start = EngineClock::now();
    if (status.is_ok()) status = backend_.run_step(step.plan, &output_);
  } catch (const std::exception& e) {
    status = internal_error(std::string("backend threw: ") + e.what());
  }
  record.run_end = EngineClock::now();
  record.backend = backend_.last_step_timing();
  emit_deferred_events();
  if (record.run_start == EngineClock::time_point()) record.run_start = record.run_end;
  if (status.is_ok()) status = check_output(step, output_);
  if (!status.is_ok()) {
    // The failed step's copies may not have happened: its restores, snapshots
    // and forks are as undefined as its chunks' states. Sequences admitted from a
    // restore are in the step (chunks or cached starts) and fail below; snapshot
    // entries may hold garbage, so they go.
    scheduler_.discard_step_snapshots(step);
    for (const CachedStart& c : step.cached_starts) finish(c.seq, FinishReason::kError, status);
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
      trace_step(step, record, /*failed=*/true);
      return;
    }
    for (const ScheduledChunk& c : step.chunks) finish(c.seq, FinishReason::kError, status);
    trace_step(step, record, /*failed=*/true);
    return;
  }
  scheduler_.commit(step);
  metrics_.prompt_tokens_total += static_cast<uint64_t>(step.num_prefill_tokens);
  metrics_.prompt_tokens_cached_total += static_cast<uint64_t>(step.num_cached_tokens);
  process_output(step, output_);
  metrics_.step_time.observe(seconds_between(start, EngineClock::now()));
  trace_step(step, record, /*failed=*/false);
}

void ContinuousBatcher::note_token(RequestState& state, EngineClock::time_point now) {
  ++metrics_.generation_tokens_total;
  if (state.completion_tokens() == 1) {
    metrics_.time_to_first_token.observe(seconds_between(state.arrival(), now));
    if (trace_) {
      ++first_tokens_this_step_;
      trace_->first_token(state.id(), state.request().received, state.request().prepared, state.arrival(), now,
                          int64_t(state.request().prompt_ids.size()));
    }
  } else if (state.last_token_time()) {
    metrics_.time_per_output_token.observe(seconds_between(*state.last_token_time(), now));
  }
  state.set_last_token_time(now);
}

void ContinuousBatcher::sample_from_row(uint64_t seq, std::span<const float> row, EngineClock::time_point now,
                                        std::vector<std::pair<uint64_t, FinishReason>>* sampled) {
  auto it = requests_.find(seq);
  if (it == requests_.end()) return;
  RequestState& state = *it->second;
  const FinishReason reason = state.sample_token(row);
  if (reason != FinishReason::kError) {
    note_token(state, now);
    if (reason == FinishReason::kNone) scheduler_.append_token(seq, state.last_token());
  }
  sampled->emplace_back(seq, reason);
}

void ContinuousBatcher::process_output(const ScheduledStep& step, const StepOutput& out) {
  const EngineClock::time_point now = EngineClock::now();
  std::vector<std::pair<uint64_t, FinishReason>> sampled;  // in chunk order
  for (size_t i = 0; i < step.chunks.size(); ++i) {
    const ScheduledChunk& c = step.chunks[i];
    const SequenceChunk& pc = step.plan.chunks[i];
    const int64_t rows = rows_of(pc);
    if (auto job = exports_.find(c.seq); job != exports_.end()) {
      if (!c.samples_next) continue;
      const std::span<const float> row = rows > 0 ? out.row(out.row_begin[i] + rows - 1) : std::span<const float>();
      if (c.keep_logits_for && !row.empty()) {
        scheduler_.prefix_cache().set_last_logits(*c.keep_logits_for, {row.begin(), row.end()});
      }
      const int32_t slot = *scheduler_.slot_of(c.seq);
      finish_export(c.seq, job->second.done ? make_blob(job->second.tokens, {StateTier::kLive, slot}, row)
                                            : Expected<std::string>(std::string()));
      continue;
    }
    RequestState& state = *requests_.at(c.seq);
    if (c.prefill && pc.logits == LogitsMode::kAll) {
      std::vector<std::span<const float>> prompt_rows;
      for (int64_t r = 0; r < rows; ++r) prompt_rows.push_back(out.row(out.row_begin[i] + r));
      state.add_prompt_rows(c.start_pos, prompt_rows);
    }
    if (!c.samples_next) continue;
    const std::span<const float> last_row =
        rows > 0 ? out.row(out.row_begin[i] + rows - 1) : std::span<const float>();
    if (c.keep_logits_for && !last_row.empty()) {
      scheduler_.prefix_cache().set_last_logits(*c.keep_logits_for, {last_row.begin(), last_row.end()});
    }
    if (pc.sample) {
      const FinishReason reason = state.accept_sampled(out.sampled[i]);
      note_token(state, now);
      if (reason == FinishReason::kNone) scheduler_.append_token(c.seq, state.last_token());
      sampled.emplace_back(c.seq, reason);
    } else {
      sample_from_row(c.seq, last_row, now, &sampled);
    }
    // Fork members: their slots got this chunk's state; each draws its own token
    // from the same row, as it would have after prefilling the prompt itself.
    for (uint64_t member : c.forks) sample_from_row(member, last_row, now, &sampled);
  }
  // Whole prompts restored from the cache: the first token comes from the cached row.
  for (const CachedStart& c : step.cached_starts) {
    if (auto job = exports_.find(c.seq); job != exports_.end()) {
      const int32_t slot = *scheduler_.slot_of(c.seq);
      finish_export(c.seq, job->second.done ? make_blob(job->second.tokens, {StateTier::kLive, slot}, *c.logits)
                                            : Expected<std::string>(std::string()));
      continue;
    }
    sample_from_row(c.seq, *c.logits, now, &sampled);
  }
  // One event per sequence that produced a token this step: a first token at
  // once, a later one while the next step runs (header comment).
  for (const auto& [id, reason] : sampled) {
    if (reason == FinishReason::kNone) {
      RequestState& state = *requests_.at(id);
      if (state.completion_tokens() > 1) {
        deferred_events_.push_back(id);
      } else {
        state.emit(FinishReason::kNone);
      }
    } else {
      finish(id, reason, reason == FinishReason::kError ? requests_.at(id)->error() : Status::ok());
    }
  }
}

void ContinuousBatcher::emit_deferred_events() {
  for (uint64_t id : deferred_events_) {
    // A request that finished meanwhile sent its tokens with its last event.
    auto it = requests_.find(id);
    if (it != requests_.end() && it->second->has_new_tokens()) it->second->emit(FinishReason::kNone);
  }
  deferred_events_.clear();
}

EngineStats ContinuousBatcher::stats() const {
  EngineStats s;
  s.running = scheduler_.num_running();
  s.waiting = scheduler_.num_waiting();
  s.slots_used = scheduler_.slots_used();
  s.slots_total = scheduler_.slots_total();
  metrics_.copy_to(&s);
  const PrefixCacheStats cache = scheduler_.prefix_cache().stats();
  s.prefix_cache.enabled = scheduler_.prefix_cache().enabled();
  s.prefix_cache.queries_total = cache.queries;
  s.prefix_cache.hits_total = cache.hits;
  s.prefix_cache.hit_tokens_total = cache.hit_tokens;
  s.prefix_cache.snapshots_total = cache.snapshots;
  s.prefix_cache.evictions_total = cache.evictions;
  s.prefix_cache.demotions_total = cache.demotions;
  s.prefix_cache.host_restores_total = cache.host_restores;
  s.prefix_cache.slots_used = cache.cache_slots_used;
  s.prefix_cache.slots_total = cache.cache_slots_total;
  s.prefix_cache.host_slots_used = cache.host_slots_used;
  s.prefix_cache.host_slots_total = cache.host_slots_total;
  s.prefix_cache.state_bytes = backend_.state_bytes_per_slot();
  s.forks_total = scheduler_.forks_total();
  s.preemptions_total = scheduler_.preemptions_total();
  s.swapped_sequences = swap_space_.num_held();
  return s;
}

}  // namespace tnl
