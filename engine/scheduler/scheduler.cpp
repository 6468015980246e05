#include "engine/scheduler/scheduler.h"

#include <algorithm>
#include <cassert>
#include <string>
#include <utility>

namespace tnl {

Status validate_scheduler_limits(const SchedulerLimits& limits) {
  if (limits.num_slots < 1) {
    return invalid_argument("no decode-state slots: max_num_seqs and the backend's slots must both be ≥ 1 (got " +
                            std::to_string(limits.num_slots) + ")");
  }
  if (limits.prefill_chunk < 1) {
    return invalid_argument("prefill_chunk must be ≥ 1 token, got " + std::to_string(limits.prefill_chunk));
  }
  if (limits.max_num_batched_tokens < limits.prefill_chunk) {
    return invalid_argument("max_num_batched_tokens (" + std::to_string(limits.max_num_batched_tokens) +
                            ") is smaller than prefill_chunk (" + std::to_string(limits.prefill_chunk) +
                            "): a prompt chunk must fit in one step; raise max_num_batched_tokens or "
                            "lower prefill_chunk");
  }
  // Every decode plus one whole prompt chunk must fit in a step (see scheduler.h).
  const int64_t needed = int64_t{limits.prefill_chunk} + limits.num_slots - 1;
  if (limits.max_num_batched_tokens < needed) {
    return invalid_argument("max_num_batched_tokens (" + std::to_string(limits.max_num_batched_tokens) +
                            ") must be ≥ prefill_chunk + running sequences − 1 = " + std::to_string(needed) +
                            " (prefill_chunk " + std::to_string(limits.prefill_chunk) + ", " +
                            std::to_string(limits.num_slots) +
                            " slots) so that a step holds every decode plus one prompt chunk; raise "
                            "max_num_batched_tokens or lower max_num_seqs or prefill_chunk");
  }
  return Status::ok();
}

Scheduler::Scheduler(SchedulerLimits limits) : limits_(limits), slots_(limits.num_slots) {
  assert(validate_scheduler_limits(limits).is_ok());
}

void Scheduler::add(SequenceId seq, std::vector<int32_t> prompt, bool prompt_logprobs) {
  assert(!prompt.empty() && !contains(seq));
  Sequence s;
  s.id = seq;
  s.prompt_len = static_cast<int64_t>(prompt.size());
  s.tokens = std::move(prompt);
  s.prompt_logprobs = prompt_logprobs;
  waiting_.push_back(std::move(s));
}

int32_t Scheduler::next_chunk_len(const Sequence& seq) const {
  // Fixed boundaries: the chunk ends at the next multiple of prefill_chunk, whatever
  // the load, so the backend sees the same pieces as when the sequence runs alone.
  const int64_t chunk = limits_.prefill_chunk;
  const int64_t end = std::min(seq.prompt_len, (seq.num_computed / chunk + 1) * chunk);
  return static_cast<int32_t>(end - seq.num_computed);
}

void Scheduler::plan_prefill(const Sequence& seq, int32_t len, ScheduledStep* step) const {
  const bool last = seq.num_computed + len == seq.prompt_len;
  SequenceChunk chunk;
  chunk.slot = seq.slot;
  chunk.start_pos = seq.num_computed;
  chunk.tokens.assign(seq.tokens.begin() + seq.num_computed, seq.tokens.begin() + seq.num_computed + len);
  chunk.logits = seq.prompt_logprobs ? LogitsMode::kAll : (last ? LogitsMode::kLast : LogitsMode::kNone);
  step->plan.chunks.push_back(std::move(chunk));
  step->chunks.push_back({seq.id, /*prefill=*/true, seq.num_computed, len, /*samples_next=*/last});
  step->num_prefill_tokens += len;
}

ScheduledStep Scheduler::schedule() {
  ScheduledStep step;
  int64_t budget = limits_.max_num_batched_tokens;

  // 1. Decodes: one token for every running sequence past its prompt. Never left out:
  //    there are at most num_slots of them and the budget holds more (validated).
  for (const Sequence& seq : running_) {
    if (seq.prefilling()) continue;
    assert(static_cast<int64_t>(seq.tokens.size()) == seq.num_computed + 1 &&
           "a decoding sequence needs its sampled token before it is scheduled");
    SequenceChunk chunk;
    chunk.slot = seq.slot;
    chunk.start_pos = seq.num_computed;
    chunk.tokens = {seq.tokens.back()};
    chunk.logits = LogitsMode::kLast;
    step.plan.chunks.push_back(std::move(chunk));
    step.chunks.push_back({seq.id, /*prefill=*/false, seq.num_computed, 1, /*samples_next=*/true});
    ++step.num_decode_tokens;
    --budget;
  }
  assert(budget >= 0);

  // 2. Prompt chunks of running sequences, oldest first; stop at the first that does
  //    not fit so that no younger prompt overtakes an older one.
  bool blocked = false;
  for (const Sequence& seq : running_) {
    if (!seq.prefilling()) continue;
    const int32_t len = next_chunk_len(seq);
    if (len > budget) {
      blocked = true;
      break;
    }
    plan_prefill(seq, len, &step);
    budget -= len;
  }

  // 3. Admissions, FIFO, while a slot is free and the first chunk fits.
  while (!blocked && !waiting_.empty() && slots_.num_free() > 0) {
    Sequence& head = waiting_.front();
    const int32_t len = next_chunk_len(head);
    if (len > budget) break;
    head.slot = *slots_.allocate();
    running_.push_back(std::move(head));
    waiting_.pop_front();
    plan_prefill(running_.back(), len, &step);
    budget -= len;
  }
  return step;
}

void Scheduler::commit(const ScheduledStep& step) {
  for (const ScheduledChunk& c : step.chunks) {
    Sequence* seq = find_running(c.seq);
    if (seq == nullptr) continue;  // removed after planning (e.g. failed); nothing to advance
    assert(seq->num_computed == c.start_pos);
    seq->num_computed += c.num_tokens;
  }
}

void Scheduler::append_token(SequenceId id, int32_t token) {
  Sequence* seq = find_running(id);
  assert(seq != nullptr && !seq->prefilling() &&
         static_cast<int64_t>(seq->tokens.size()) == seq->num_computed);
  if (seq != nullptr) seq->tokens.push_back(token);
}

bool Scheduler::remove(SequenceId id) {
  for (auto it = running_.begin(); it != running_.end(); ++it) {
    if (it->id == id) {
      slots_.release(it->slot);
      running_.erase(it);
      return true;
    }
  }
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if (it->id == id) {
      waiting_.erase(it);
      return true;
    }
  }
  return false;
}

bool Scheduler::contains(SequenceId id) const {
  if (find_running(id) != nullptr) return true;
  return std::any_of(waiting_.begin(), waiting_.end(), [id](const Sequence& s) { return s.id == id; });
}

std::optional<int32_t> Scheduler::slot_of(SequenceId id) const {
  const Sequence* seq = find_running(id);
  if (seq == nullptr) return std::nullopt;
  return seq->slot;
}

std::vector<SequenceId> Scheduler::running_ids() const {
  std::vector<SequenceId> ids;
  for (const Sequence& s : running_) ids.push_back(s.id);
  return ids;
}

std::vector<SequenceId> Scheduler::waiting_ids() const {
  std::vector<SequenceId> ids;
  for (const Sequence& s : waiting_) ids.push_back(s.id);
  return ids;
}

Scheduler::Sequence* Scheduler::find_running(SequenceId id) {
  for (Sequence& s : running_) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

const Scheduler::Sequence* Scheduler::find_running(SequenceId id) const {
  for (const Sequence& s : running_) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

}  // namespace tnl
