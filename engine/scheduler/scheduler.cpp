#include "engine/scheduler/scheduler.h"

#include <algorithm>
#include <span>
#include <cassert>
#include <string>
#include <tuple>
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

Scheduler::Scheduler(SchedulerLimits limits)
    : limits_(limits), slots_(limits.num_slots), cache_(limits.cache_slots, limits.host_cache_slots) {
  assert(validate_scheduler_limits(limits).is_ok());
}

namespace {

StateRef live(int32_t slot) { return {StateTier::kLive, slot}; }

}  // namespace

void Scheduler::add(SequenceId seq, std::vector<int32_t> prompt, bool prompt_logprobs, int32_t priority,
                    TokenHashChain keys) {
  assert(!prompt.empty() && !contains(seq));
  Sequence s;
  s.id = seq;
  s.prompt_len = static_cast<int64_t>(prompt.size());
  if (cache_.enabled()) s.keys = keys.covers(prompt.size()) ? std::move(keys) : TokenHashChain(prompt);
  s.tokens = std::move(prompt);
  s.prompt_logprobs = prompt_logprobs;
  s.priority = priority;
  s.arrival = next_arrival_++;
  enqueue(std::move(s));
}

void Scheduler::add_group(const std::vector<SequenceId>& seqs, std::vector<int32_t> prompt, int32_t priority,
                          TokenHashChain keys) {
  assert(!seqs.empty());
  if (seqs.size() == 1 || int64_t(seqs.size()) > limits_.num_slots) {
    // Never admissible together: run them as independent sequences.
    for (SequenceId id : seqs) add(id, prompt, false, priority, keys);
    return;
  }
  add(seqs[0], std::move(prompt), false, priority, std::move(keys));
  const auto entry = std::find_if(waiting_.begin(), waiting_.end(), [&](const Sequence& s) { return s.id == seqs[0]; });
  entry->followers.assign(seqs.begin() + 1, seqs.end());
}

void Scheduler::enqueue(Sequence seq) {
  // Arrivals are unique, so the place is unambiguous: behind every entry that
  // comes first by (priority, arrival). A new arrival goes behind all its equals;
  // a preempted sequence returns ahead of the equals that arrived after it.
  const auto place = std::find_if(waiting_.begin(), waiting_.end(), [&](const Sequence& w) {
    return std::pair(w.priority, w.arrival) > std::pair(seq.priority, seq.arrival);
  });
  waiting_.insert(place, std::move(seq));
}

int32_t Scheduler::next_chunk_len(const Sequence& seq) const {
  // Fixed boundaries: the chunk ends at the next multiple of prefill_chunk, whatever
  // the load, so the backend sees the same pieces as when the sequence runs alone.
  // A sequence that starts from an unaligned state (a finish snapshot, an imported
  // state) and whose rest of the prompt fits in one chunk takes it whole: the next
  // turn of a conversation then prefills in one step, not two, when it crosses a
  // multiple. Either way the pieces depend on the sequence's own positions only.
  const int64_t chunk = limits_.prefill_chunk;
  const int64_t rest = seq.prompt_len - seq.num_computed;
  if (seq.num_computed % chunk != 0 && rest <= chunk) return static_cast<int32_t>(rest);
  const int64_t end = std::min(seq.prompt_len, (seq.num_computed / chunk + 1) * chunk);
  return static_cast<int32_t>(end - seq.num_computed);
}

void Scheduler::plan_prefill(const Sequence& seq, int32_t len, ScheduledStep* step) {
  const int64_t end = seq.num_computed + len;
  const bool last = end == seq.prompt_len;
  SequenceChunk chunk;
  chunk.slot = seq.slot;
  chunk.start_pos = seq.num_computed;
  chunk.tokens.assign(seq.tokens.begin() + seq.num_computed, seq.tokens.begin() + end);
  chunk.logits = seq.prompt_logprobs ? LogitsMode::kAll : (last ? LogitsMode::kLast : LogitsMode::kNone);
  ScheduledChunk scheduled{seq.id, /*prefill=*/true, seq.num_computed, len, /*samples_next=*/last};

  // Snapshots where the chunking rule already cuts: every multiple of
  // prefill_chunk, and the prompt's end (with its last logits row).
  if (cache_.enabled() && (last || end % limits_.prefill_chunk == 0)) {
    const std::span<const int32_t> covered(seq.tokens.data(), size_t(end));
    // Demotions that free the slot go first (copies_before): see prefix_cache.h.
    const uint64_t key = seq.keys.key(size_t(end));
    if (auto reserved = cache_.reserve(covered, key, &step->plan.copies_before)) {
      step->plan.copies_after.push_back({live(seq.slot), reserved->slot});
      step->snapshots.push_back(reserved->id);
      if (last) scheduled.keep_logits_for = reserved->id;
    } else if (last) {
      scheduled.keep_logits_for = cache_.exact_id(covered, key);  // the same snapshot exists: give it the row
    }
  }
  // A fork group's leader: its members take the state and the last row.
  if (last && !seq.followers.empty()) {
    scheduled.forks = seq.followers;
    for (SequenceId f : seq.followers) {
      if (const Sequence* follower = find_running(f)) step->plan.copies_after.push_back({live(seq.slot), live(follower->slot)});
    }
  }
  step->plan.chunks.push_back(std::move(chunk));
  step->chunks.push_back(std::move(scheduled));
  step->num_prefill_tokens += len;
}

void Scheduler::plan_decode(const Sequence& seq, ScheduledStep* step) {
  assert(static_cast<int64_t>(seq.tokens.size()) == seq.num_computed + 1 &&
         "a decoding sequence needs its sampled token before it is scheduled");
  SequenceChunk chunk;
  chunk.slot = seq.slot;
  chunk.start_pos = seq.num_computed;
  chunk.tokens = {seq.tokens.back()};
  chunk.logits = LogitsMode::kLast;
  step->plan.chunks.push_back(std::move(chunk));
  step->chunks.push_back({seq.id, /*prefill=*/false, seq.num_computed, 1, /*samples_next=*/true});
  ++step->num_decode_tokens;
}

void Scheduler::preempt_for_head(ScheduledStep* step) {
  if (waiting_.empty()) return;
  const int32_t head_priority = waiting_.front().priority;
  const int32_t needed = 1 + int32_t(waiting_.front().followers.size()) - slots_.num_free();
  if (needed <= 0) return;
  // Candidates: strictly worse priority, and not tied to an unfinished fork
  // (its copies need the leader's slot and the members' slots).
  std::vector<const Sequence*> victims;
  for (const Sequence& s : running_) {
    if (s.priority > head_priority && !s.leader && s.followers.empty()) victims.push_back(&s);
  }
  // Preempting fewer than needed would free slots the head still cannot use.
  if (int32_t(victims.size()) < needed) return;
  // Worst priority first, then the newest (a fork group's members share an
  // arrival: the later member first).
  std::sort(victims.begin(), victims.end(), [](const Sequence* a, const Sequence* b) {
    return std::tuple(a->priority, a->arrival, a->id) > std::tuple(b->priority, b->arrival, b->id);
  });
  std::vector<SequenceId> ids;
  for (int32_t i = 0; i < needed; ++i) ids.push_back(victims[size_t(i)]->id);
  for (SequenceId id : ids) {
    Sequence seq = std::move(*find_running(id));
    erase_running(id);
    // Nothing computed yet (its first chunk never ran): no state worth keeping.
    seq.swapped = seq.num_computed > 0;
    step->preempted.push_back({seq.id, seq.slot, seq.swapped});
    slots_.release(seq.slot);
    seq.slot = -1;
    ++preemptions_total_;
    enqueue(std::move(seq));
  }
}

bool Scheduler::resume_head(int64_t* budget, ScheduledStep* step) {
  Sequence& head = waiting_.front();
  assert(head.swapped && head.followers.empty());
  if (slots_.num_free() < 1) return false;
  const int32_t len = head.prefilling() ? next_chunk_len(head) : 1;
  if (len > *budget) return false;
  head.slot = *slots_.allocate();
  head.swapped = false;
  push_running(std::move(head));
  waiting_.pop_front();
  const Sequence& seq = running_.back();
  step->resumed.push_back({seq.id, seq.slot});
  // The same chunk or decode it would have had next, had it never stopped.
  if (seq.prefilling()) {
    plan_prefill(seq, len, step);
  } else {
    plan_decode(seq, step);
  }
  *budget -= len;
  return true;
}

bool Scheduler::admit_head(int64_t* budget, ScheduledStep* step) {
  Sequence& head = waiting_.front();
  if (head.swapped) return resume_head(budget, step);
  const int32_t group = 1 + int32_t(head.followers.size());
  if (slots_.num_free() < group) return false;
  // Prompt logprobs need every prompt row: such a sequence computes its prompt.
  std::optional<PrefixHit> hit;
  if (!head.prompt_logprobs && cache_.enabled()) hit = cache_.lookup(head.tokens, head.keys);
  const bool whole = hit && hit->length == head.prompt_len;
  Sequence probe;
  probe.prompt_len = head.prompt_len;
  probe.num_computed = hit ? hit->length : 0;
  const int32_t len = whole ? 0 : next_chunk_len(probe);
  if (len > *budget) return false;
  if (!head.prompt_logprobs) cache_.record(hit);

  head.slot = *slots_.allocate();
  std::vector<SequenceId> followers = std::move(head.followers);
  head.followers.clear();
  push_running(std::move(head));
  waiting_.pop_front();
  auto start_member = [&](Sequence& member) {
    if (!hit) return;
    step->plan.copies_before.push_back({hit->slot, live(member.slot)});
    member.num_computed = hit->length;
    step->num_cached_tokens += hit->length;
    if (whole) step->cached_starts.push_back({member.id, hit->last_logits});
  };
  start_member(running_.back());
  const SequenceId leader_id = running_.back().id;
  for (SequenceId f : followers) {
    Sequence member;
    member.id = f;
    member.slot = *slots_.allocate();
    push_running(std::move(member));  // may move running_: look the leader up after
    Sequence& leader = *find_running(leader_id);
    Sequence& added = running_.back();
    added.tokens = leader.tokens;
    added.keys = leader.keys;
    added.prompt_len = leader.prompt_len;
    added.priority = leader.priority;
    added.arrival = leader.arrival;
    start_member(added);
    if (!whole) {
      added.leader = leader_id;
      leader.followers.push_back(f);
    }
    ++forks_total_;
  }
  if (!whole) {
    plan_prefill(*find_running(leader_id), len, step);
    *budget -= len;
  }
  return true;
}

ScheduledStep Scheduler::schedule() {
  ScheduledStep step;
  int64_t budget = limits_.max_num_batched_tokens;
  // Finish snapshots (and the demotions they need) first: their live slots may be
  // given to new sequences below.
  step.plan.copies_before = std::move(pending_copies_);
  pending_copies_.clear();

  // 0. Preemption: a better-priority head of the queue takes slots from worse ones.
  preempt_for_head(&step);

  step.plan.chunks.reserve(running_.size() + 1);
  step.chunks.reserve(running_.size() + 1);
  // 1. Decodes: one token for every running sequence past its prompt. Never left out:
  //    there are at most num_slots of them and the budget holds more (validated).
  for (const Sequence& seq : running_) {
    if (seq.prefilling() || seq.leader) continue;
    plan_decode(seq, &step);
    --budget;
  }
  assert(budget >= 0);

  // 2. Prompt chunks of running sequences, oldest first; stop at the first that does
  //    not fit so that no younger prompt overtakes an older one.
  bool blocked = false;
  for (size_t i = 0; i < running_.size(); ++i) {
    const Sequence& seq = running_[i];
    if (!seq.prefilling() || seq.leader) continue;
    const int32_t len = next_chunk_len(seq);
    if (len > budget) {
      blocked = true;
      break;
    }
    plan_prefill(seq, len, &step);
    budget -= len;
  }

  // 3. Admissions in queue order, while slots are free and the first chunk fits.
  while (!blocked && !waiting_.empty()) {
    if (!admit_head(&budget, &step)) break;
  }
  return step;
}

void Scheduler::commit(const ScheduledStep& step) {
  for (PrefixEntryId id : step.snapshots) cache_.mark_ready(id);
  for (const ScheduledChunk& c : step.chunks) {
    Sequence* seq = find_running(c.seq);
    if (seq == nullptr) continue;  // removed after planning (e.g. failed); nothing to advance
    assert(seq->num_computed == c.start_pos);
    seq->num_computed += c.num_tokens;
    for (SequenceId f : c.forks) {
      Sequence* follower = find_running(f);
      if (follower == nullptr || follower->leader != c.seq) continue;
      follower->num_computed = follower->prompt_len;  // its slot got the leader's state
      follower->leader.reset();
    }
    if (!c.forks.empty()) seq->followers.clear();
  }
}

void Scheduler::append_token(SequenceId id, int32_t token) {
  Sequence* seq = find_running(id);
  assert(seq != nullptr && !seq->prefilling() &&
         static_cast<int64_t>(seq->tokens.size()) == seq->num_computed);
  if (seq == nullptr) return;
  seq->tokens.push_back(token);
  if (cache_.enabled()) seq->keys.append(token);
}

bool Scheduler::remove(SequenceId id, bool snapshot) {
  if (Sequence* seq = find_running(id)) {
    if (snapshot && cache_.enabled() && !seq->leader && !seq->prefilling() && seq->num_computed > 0) {
      // Finish snapshot: the tokens whose effect is in the state. The copy runs
      // first in the next step, before the slot freed here can be reused.
      const std::span<const int32_t> covered(seq->tokens.data(), size_t(seq->num_computed));
      if (auto reserved = cache_.reserve(covered, seq->keys.key(covered.size()), &pending_copies_, /*ready=*/true)) {
        pending_copies_.push_back({live(seq->slot), reserved->slot});
      }
    }
    // Members still waiting for this leader prefill on their own now.
    for (SequenceId f : seq->followers) {
      if (Sequence* follower = find_running(f)) follower->leader.reset();
    }
    if (seq->leader) {
      if (Sequence* leader = find_running(*seq->leader)) std::erase(leader->followers, id);
    }
    slots_.release(seq->slot);
    erase_running(id);
    return true;
  }
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if (it->id == id) {
      if (!it->followers.empty()) {
        // The group goes on without its first member: the next one leads it.
        Sequence next = *it;
        next.id = it->followers.front();
        next.followers.erase(next.followers.begin());
        *it = std::move(next);
      } else {
        waiting_.erase(it);
      }
      return true;
    }
    if (std::find(it->followers.begin(), it->followers.end(), id) != it->followers.end()) {
      std::erase(it->followers, id);
      return true;
    }
  }
  return false;
}

void Scheduler::discard_step_snapshots(const ScheduledStep& step) {
  for (const auto* copies : {&step.plan.copies_before, &step.plan.copies_after}) {
    for (const StateCopy& c : *copies) {
      if (c.to.tier != StateTier::kLive) cache_.discard(c.to);
    }
  }
}

void Scheduler::discard_snapshots_of(int32_t slot, StepPlan* plan) {
  std::erase_if(plan->copies_after, [&](const StateCopy& c) {
    if (c.from.tier != StateTier::kLive || c.from.index != slot || c.to.tier == StateTier::kLive) return false;
    cache_.discard(c.to);
    return true;
  });
}

bool Scheduler::contains(SequenceId id) const {
  if (find_running(id) != nullptr) return true;
  return std::any_of(waiting_.begin(), waiting_.end(), [id](const Sequence& s) {
    return s.id == id || std::find(s.followers.begin(), s.followers.end(), id) != s.followers.end();
  });
}

int32_t Scheduler::num_waiting() const {
  int32_t n = 0;
  for (const Sequence& s : waiting_) n += 1 + int32_t(s.followers.size());
  return n;
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
  for (const Sequence& s : waiting_) {
    ids.push_back(s.id);
    ids.insert(ids.end(), s.followers.begin(), s.followers.end());
  }
  return ids;
}

void Scheduler::push_running(Sequence seq) {
  running_at_[seq.id] = running_.size();
  running_.push_back(std::move(seq));
}

void Scheduler::erase_running(SequenceId id) {
  const auto found = running_at_.find(id);
  const size_t at = found->second;
  running_at_.erase(found);
  running_.erase(running_.begin() + ptrdiff_t(at));
  for (size_t i = at; i < running_.size(); ++i) running_at_[running_[i].id] = i;
}

Scheduler::Sequence* Scheduler::find_running(SequenceId id) {
  const auto it = running_at_.find(id);
  return it == running_at_.end() ? nullptr : &running_[it->second];
}

const Scheduler::Sequence* Scheduler::find_running(SequenceId id) const {
  const auto it = running_at_.find(id);
  return it == running_at_.end() ? nullptr : &running_[it->second];
}

}  // namespace tnl
