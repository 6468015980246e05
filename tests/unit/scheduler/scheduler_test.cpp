// Scheduler decisions: token budget, decodes always included, FIFO, no
// starvation, bounded slots, fixed chunk boundaries whatever the load.
#include "engine/scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include "engine/concurrent_copies.h"

namespace tnl {
namespace {

std::vector<int32_t> prompt_of(int32_t len, int32_t first = 3) {
  std::vector<int32_t> p(len);
  std::iota(p.begin(), p.end(), first);
  return p;
}

// Drives a scheduler as the engine would: commit each step, feed a token back
// to every sequence that sampled, and finish sequences after `max_tokens`.
class Driver {
 public:
  explicit Driver(SchedulerLimits limits) : sched(limits) {}

  void add(SequenceId id, int32_t prompt_len, int32_t max_tokens, bool prompt_logprobs = false) {
    sched.add(id, prompt_of(prompt_len), prompt_logprobs);
    max_tokens_[id] = max_tokens;
  }

  ScheduledStep step() {
    ScheduledStep s = sched.schedule();
    check_plan_shape(s);
    sched.commit(s);
    for (const ScheduledChunk& c : s.chunks) {
      chunks_seen[c.seq].push_back({c.start_pos, c.num_tokens});
      if (!c.samples_next) continue;
      if (++generated_[c.seq] >= max_tokens_[c.seq]) {
        EXPECT_TRUE(sched.remove(c.seq));
        finished.push_back(c.seq);
      } else {
        sched.append_token(c.seq, 7);
      }
    }
    return s;
  }

  void check_plan_shape(const ScheduledStep& s) {
    ASSERT_EQ(s.plan.chunks.size(), s.chunks.size());
    int32_t total = 0;
    std::set<int32_t> slots;
    for (size_t i = 0; i < s.chunks.size(); ++i) {
      const SequenceChunk& pc = s.plan.chunks[i];
      EXPECT_EQ(static_cast<int32_t>(pc.tokens.size()), s.chunks[i].num_tokens);
      EXPECT_EQ(pc.start_pos, s.chunks[i].start_pos);
      EXPECT_TRUE(slots.insert(pc.slot).second) << "slot twice in one step";
      EXPECT_GE(pc.slot, 0);
      EXPECT_LT(pc.slot, sched.slots_total());
      total += s.chunks[i].num_tokens;
    }
    EXPECT_LE(total, sched.limits().max_num_batched_tokens);
    EXPECT_EQ(total, s.num_decode_tokens + s.num_prefill_tokens);
  }

  Scheduler sched;
  std::map<SequenceId, std::vector<std::pair<int64_t, int32_t>>> chunks_seen;  // (start, len)
  std::vector<SequenceId> finished;

 private:
  std::map<SequenceId, int32_t> max_tokens_;
  std::map<SequenceId, int32_t> generated_;
};

TEST(SchedulerLimits, RejectsBudgetSmallerThanChunk) {
  Status s = validate_scheduler_limits({.num_slots = 1, .max_num_batched_tokens = 16, .prefill_chunk = 32});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("prefill_chunk"), std::string::npos) << s.message();
}

TEST(SchedulerLimits, RejectsBudgetWithoutRoomForDecodesAndAChunk) {
  Status s = validate_scheduler_limits({.num_slots = 8, .max_num_batched_tokens = 32, .prefill_chunk = 32});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("39"), std::string::npos) << s.message();
  EXPECT_TRUE(validate_scheduler_limits({.num_slots = 8, .max_num_batched_tokens = 39, .prefill_chunk = 32}).is_ok());
  EXPECT_FALSE(validate_scheduler_limits({.num_slots = 0, .max_num_batched_tokens = 39, .prefill_chunk = 32}).is_ok());
  EXPECT_FALSE(validate_scheduler_limits({.num_slots = 1, .max_num_batched_tokens = 39, .prefill_chunk = 0}).is_ok());
}

TEST(Scheduler, EmptyWhenNothingQueued) {
  Scheduler s({.num_slots = 2, .max_num_batched_tokens = 16, .prefill_chunk = 8});
  EXPECT_TRUE(s.schedule().empty());
  EXPECT_FALSE(s.has_work());
}

TEST(Scheduler, ShortPromptIsOneChunkAskingForTheLastRow) {
  Scheduler s({.num_slots = 2, .max_num_batched_tokens = 16, .prefill_chunk = 8});
  s.add(1, prompt_of(5), false);
  ScheduledStep step = s.schedule();
  ASSERT_EQ(step.chunks.size(), 1u);
  EXPECT_EQ(step.plan.chunks[0].start_pos, 0);
  EXPECT_EQ(step.plan.chunks[0].tokens, prompt_of(5));
  EXPECT_EQ(step.plan.chunks[0].logits, LogitsMode::kLast);
  EXPECT_TRUE(step.chunks[0].samples_next);
  EXPECT_TRUE(step.chunks[0].prefill);
  s.commit(step);
  s.append_token(1, 42);
  step = s.schedule();
  ASSERT_EQ(step.chunks.size(), 1u);
  EXPECT_FALSE(step.chunks[0].prefill);
  EXPECT_EQ(step.plan.chunks[0].start_pos, 5);
  EXPECT_EQ(step.plan.chunks[0].tokens, std::vector<int32_t>{42});
  EXPECT_EQ(step.plan.chunks[0].logits, LogitsMode::kLast);
}

TEST(Scheduler, LongPromptChunksAtMultiplesOfPrefillChunk) {
  Driver d({.num_slots = 1, .max_num_batched_tokens = 8, .prefill_chunk = 8});
  d.add(1, 21, 1);
  std::vector<LogitsMode> modes;
  while (d.sched.has_work()) {
    ScheduledStep s = d.step();
    for (const auto& c : s.plan.chunks) modes.push_back(c.logits);
  }
  using P = std::pair<int64_t, int32_t>;
  EXPECT_EQ(d.chunks_seen[1], (std::vector<P>{{0, 8}, {8, 8}, {16, 5}}));
  EXPECT_EQ(modes, (std::vector<LogitsMode>{LogitsMode::kNone, LogitsMode::kNone, LogitsMode::kLast}));
}

TEST(Scheduler, PromptLogprobsAskForEveryRow) {
  Driver d({.num_slots = 1, .max_num_batched_tokens = 8, .prefill_chunk = 8});
  d.add(1, 12, 1, /*prompt_logprobs=*/true);
  ScheduledStep a = d.step();
  ScheduledStep b = d.step();
  EXPECT_EQ(a.plan.chunks[0].logits, LogitsMode::kAll);
  EXPECT_FALSE(a.chunks[0].samples_next);
  EXPECT_EQ(b.plan.chunks[0].logits, LogitsMode::kAll);
  EXPECT_TRUE(b.chunks[0].samples_next);
}

TEST(Scheduler, DecodesAlwaysIncludedAndBudgetRespected) {
  // 4 slots, budget 11 = chunk 8 + 3 decodes: the tightest valid budget.
  Driver d({.num_slots = 4, .max_num_batched_tokens = 11, .prefill_chunk = 8});
  for (SequenceId id = 1; id <= 12; ++id) d.add(id, 3 + 7 * static_cast<int32_t>(id % 4), 5);
  int steps = 0;
  while (d.sched.has_work() && steps < 500) {
    // Every running sequence past its prompt must decode in this step.
    std::set<SequenceId> decoding_before;
    for (SequenceId id : d.sched.running_ids()) {
      const auto& seen = d.chunks_seen[id];
      int64_t computed = 0;
      for (const auto& [start, len] : seen) computed = start + len;
      if (computed >= 3 + 7 * static_cast<int64_t>(id % 4)) decoding_before.insert(id);
    }
    ScheduledStep s = d.step();
    std::set<SequenceId> decoded;
    for (const ScheduledChunk& c : s.chunks) {
      if (!c.prefill) decoded.insert(c.seq);
    }
    EXPECT_EQ(decoded, decoding_before);
    ++steps;
  }
  EXPECT_FALSE(d.sched.has_work());
  EXPECT_EQ(d.finished.size(), 12u);
}

TEST(Scheduler, AdmitsInArrivalOrder) {
  Driver d({.num_slots = 2, .max_num_batched_tokens = 64, .prefill_chunk = 16});
  for (SequenceId id = 10; id > 0; --id) d.add(id, 4, 3);  // arrival order 10, 9, ..., 1
  std::vector<SequenceId> admitted;
  while (d.sched.has_work()) {
    ScheduledStep s = d.step();
    for (const ScheduledChunk& c : s.chunks) {
      if (c.prefill && c.start_pos == 0) admitted.push_back(c.seq);
    }
  }
  EXPECT_EQ(admitted, (std::vector<SequenceId>{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}));
  EXPECT_EQ(d.finished.size(), 10u);
}

TEST(Scheduler, LongPromptIsNotStarvedByAStreamOfShortOnes) {
  // Budget for one chunk + decodes: the long prompt (first in line) must progress
  // every step although short requests keep arriving behind it.
  Driver d({.num_slots = 4, .max_num_batched_tokens = 19, .prefill_chunk = 16});
  d.add(1, 16 * 10, 1);
  SequenceId next = 2;
  int steps_for_long = 0;
  while (d.sched.contains(1)) {
    d.add(next++, 3, 2);
    d.add(next++, 3, 2);
    ScheduledStep s = d.step();
    ++steps_for_long;
    bool long_progressed = false;
    for (const ScheduledChunk& c : s.chunks) long_progressed |= (c.seq == 1);
    EXPECT_TRUE(long_progressed) << "step " << steps_for_long;
    ASSERT_LT(steps_for_long, 100);
  }
  EXPECT_EQ(steps_for_long, 10);
}

TEST(Scheduler, ShortRequestsDoNotOvertakeAnOlderPrompt) {
  // A younger request must not be admitted ahead of an older waiting one, even
  // when only the younger one would fit in what is left of the budget.
  Driver d({.num_slots = 3, .max_num_batched_tokens = 18, .prefill_chunk = 16});
  d.add(1, 2, 50);   // running, decoding
  d.step();
  d.add(2, 16, 1);   // needs 16 of the remaining 17
  d.add(3, 16, 1);   // would not fit after 2 in the same step
  d.add(4, 1, 1);    // would fit, but must wait for 3
  ScheduledStep s = d.step();
  std::vector<SequenceId> ids;
  for (const ScheduledChunk& c : s.chunks) ids.push_back(c.seq);
  EXPECT_EQ(ids, (std::vector<SequenceId>{1, 2}));
  s = d.step();
  ids.clear();
  for (const ScheduledChunk& c : s.chunks) ids.push_back(c.seq);
  EXPECT_EQ(ids, (std::vector<SequenceId>{1, 3, 4}));
}

TEST(Scheduler, SlotsBoundedAndFreedOnRemove) {
  Scheduler s({.num_slots = 3, .max_num_batched_tokens = 64, .prefill_chunk = 8});
  for (SequenceId id = 1; id <= 5; ++id) s.add(id, prompt_of(4), false);
  ScheduledStep step = s.schedule();
  EXPECT_EQ(step.chunks.size(), 3u);
  EXPECT_EQ(s.num_running(), 3);
  EXPECT_EQ(s.num_waiting(), 2);
  EXPECT_EQ(s.slots_used(), 3);
  EXPECT_EQ(s.slots_total(), 3);
  std::set<int32_t> slots;
  for (const auto& c : step.plan.chunks) slots.insert(c.slot);
  EXPECT_EQ(slots, (std::set<int32_t>{0, 1, 2}));
  s.commit(step);
  for (SequenceId id = 1; id <= 3; ++id) s.append_token(id, 9);

  const int32_t freed = *s.slot_of(2);
  EXPECT_TRUE(s.remove(2));  // e.g. cancelled
  EXPECT_EQ(s.slots_used(), 2);
  EXPECT_FALSE(s.contains(2));
  EXPECT_FALSE(s.remove(2));
  step = s.schedule();
  // Decodes of 1 and 3, and 4 admitted into the freed slot.
  ASSERT_EQ(step.chunks.size(), 3u);
  EXPECT_EQ(step.chunks[2].seq, 4u);
  EXPECT_EQ(step.plan.chunks[2].slot, freed);
  EXPECT_EQ(step.plan.chunks[2].start_pos, 0);
  EXPECT_TRUE(s.remove(5));  // a waiting sequence leaves the queue
  EXPECT_EQ(s.num_waiting(), 0);
}

TEST(Scheduler, RemovedBetweenScheduleAndCommitIsIgnored) {
  Scheduler s({.num_slots = 2, .max_num_batched_tokens = 16, .prefill_chunk = 8});
  s.add(1, prompt_of(4), false);
  s.add(2, prompt_of(4), false);
  ScheduledStep step = s.schedule();
  EXPECT_TRUE(s.remove(1));
  s.commit(step);
  s.append_token(2, 5);
  step = s.schedule();
  ASSERT_EQ(step.chunks.size(), 1u);
  EXPECT_EQ(step.chunks[0].seq, 2u);
  EXPECT_EQ(step.chunks[0].start_pos, 4);
}

// The chunks a sequence gets are the same whether it runs alone or under load.
TEST(Scheduler, ChunkBoundariesDoNotDependOnLoad) {
  const SchedulerLimits limits{.num_slots = 6, .max_num_batched_tokens = 40, .prefill_chunk = 16};
  std::vector<int32_t> lens = {5, 16, 17, 33, 70, 1, 48, 100, 15, 31};
  std::map<SequenceId, std::vector<std::pair<int64_t, int32_t>>> alone;
  for (size_t i = 0; i < lens.size(); ++i) {
    Driver d(limits);
    d.add(i + 1, lens[i], 4);
    while (d.sched.has_work()) d.step();
    alone[i + 1] = d.chunks_seen[i + 1];
  }
  Driver loaded(limits);
  for (size_t i = 0; i < lens.size(); ++i) loaded.add(i + 1, lens[i], 4);
  int steps = 0;
  while (loaded.sched.has_work()) {
    loaded.step();
    ASSERT_LT(++steps, 1000);
  }
  for (size_t i = 0; i < lens.size(); ++i) {
    EXPECT_EQ(loaded.chunks_seen[i + 1], alone[i + 1]) << "prompt length " << lens[i];
  }
}

}  // namespace
}  // namespace tnl

namespace tnl {
namespace {

SchedulerLimits cached_limits() {
  SchedulerLimits l;
  l.num_slots = 4;
  l.max_num_batched_tokens = 64;
  l.prefill_chunk = 16;
  l.cache_slots = 8;
  return l;
}

// Runs steps until `seq` has sampled its first token (commit; no token appended).
std::vector<ScheduledStep> prefill(Scheduler& s, SequenceId seq) {
  std::vector<ScheduledStep> steps;
  for (int i = 0; i < 10; ++i) {
    ScheduledStep step = s.schedule();
    s.commit(step);
    steps.push_back(step);
    for (const ScheduledChunk& c : step.chunks) {
      if (c.seq == seq && c.samples_next) return steps;
    }
  }
  ADD_FAILURE() << "sequence " << seq << " never finished its prompt";
  return steps;
}

TEST(SchedulerPrefixCache, SnapshotsWhereChunksEndAndRestoresAtAdmission) {
  Scheduler s(cached_limits());
  const std::vector<int32_t> prompt = prompt_of(40);
  s.add(1, prompt, false);
  const std::vector<ScheduledStep> steps = prefill(s, 1);
  ASSERT_EQ(steps.size(), 3u);  // chunks [0,16) [16,32) [32,40)
  for (const ScheduledStep& step : steps) {
    ASSERT_EQ(step.plan.copies_after.size(), 1u) << "one snapshot per chunk end";
    EXPECT_EQ(step.plan.copies_after[0].from, (StateRef{StateTier::kLive, *s.slot_of(1)}));
    EXPECT_EQ(step.plan.copies_after[0].to.tier, StateTier::kCache);
  }
  EXPECT_FALSE(steps[0].chunks[0].keep_logits_for);
  ASSERT_TRUE(steps[2].chunks[0].keep_logits_for) << "the prompt's end keeps its last row";
  EXPECT_EQ(steps[2].plan.chunks[0].logits, LogitsMode::kLast);

  // A second prompt sharing 35 tokens starts from the 32-token snapshot.
  std::vector<int32_t> second(prompt.begin(), prompt.begin() + 35);
  second.push_back(999);
  s.add(2, second, false);
  s.append_token(1, 7);
  const ScheduledStep step = s.schedule();
  ASSERT_EQ(step.plan.copies_before.size(), 1u);
  EXPECT_EQ(step.plan.copies_before[0].from, steps[1].plan.copies_after[0].to);
  EXPECT_EQ(step.plan.copies_before[0].to, (StateRef{StateTier::kLive, *s.slot_of(2)}));
  bool found = false;
  for (size_t i = 0; i < step.chunks.size(); ++i) {
    if (step.chunks[i].seq != 2) continue;
    found = true;
    EXPECT_EQ(step.chunks[i].start_pos, 32);
    EXPECT_EQ(step.chunks[i].num_tokens, 4);  // the prompt's end: 36
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(step.num_cached_tokens, 32);
}

TEST(SchedulerPrefixCache, AFinishSnapshotRunsBeforeItsSlotIsReused) {
  SchedulerLimits limits = cached_limits();
  limits.num_slots = 1;
  limits.max_num_batched_tokens = 16;
  Scheduler s(limits);
  s.add(1, prompt_of(10), false);
  prefill(s, 1);
  s.append_token(1, 7);
  s.commit(s.schedule());  // one decode: 11 tokens in the state
  const int32_t slot = *s.slot_of(1);
  s.add(2, prompt_of(5, 500), false);
  ASSERT_TRUE(s.remove(1, /*snapshot=*/true));
  EXPECT_TRUE(s.has_work());
  const ScheduledStep step = s.schedule();
  ASSERT_FALSE(step.plan.copies_before.empty());
  EXPECT_EQ(step.plan.copies_before[0].from, (StateRef{StateTier::kLive, slot}));
  EXPECT_EQ(step.plan.copies_before[0].to.tier, StateTier::kCache);
  ASSERT_EQ(step.chunks.size(), 1u);
  EXPECT_EQ(step.plan.chunks[0].slot, slot) << "the new sequence reuses the slot after the copy";
  // The snapshot covers the 11 computed tokens: a prompt extending them hits it.
  std::vector<int32_t> extended = prompt_of(10);
  extended.push_back(7);
  extended.push_back(8);
  const auto hit = s.prefix_cache().lookup(extended);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->length, 11);
}

// The plan's order matters inside one copy list: a finished sequence's snapshot
// and a restore into the slot it freed come in the same copies_before, so a
// backend that runs copies at once must not run these two together
// (engine/concurrent_copies.h; the CUDA backend's state store splits there).
TEST(SchedulerPrefixCache, AFinishSnapshotAndARestoreIntoItsFreedSlotShareOneCopyList) {
  SchedulerLimits limits = cached_limits();
  limits.num_slots = 1;
  limits.max_num_batched_tokens = 16;
  Scheduler s(limits);
  const std::vector<int32_t> prompt = prompt_of(20);
  s.add(1, prompt, false);
  prefill(s, 1);  // snapshots at 16 and 20
  s.append_token(1, 7);
  s.commit(s.schedule());
  const int32_t slot = *s.slot_of(1);
  std::vector<int32_t> second(prompt.begin(), prompt.begin() + 18);
  second.push_back(999);
  s.add(2, second, false);
  ASSERT_TRUE(s.remove(1, /*snapshot=*/true));
  const ScheduledStep step = s.schedule();
  ASSERT_EQ(step.plan.copies_before.size(), 2u);
  const StateCopy snapshot = step.plan.copies_before[0], restore = step.plan.copies_before[1];
  EXPECT_EQ(snapshot.from, (StateRef{StateTier::kLive, slot}));
  EXPECT_EQ(snapshot.to.tier, StateTier::kCache);
  EXPECT_EQ(restore.from.tier, StateTier::kCache);
  EXPECT_EQ(restore.to, (StateRef{StateTier::kLive, slot})) << "the restore writes the slot the snapshot reads";
  EXPECT_EQ(step.num_cached_tokens, 16);
  ConcurrentCopies launch;
  launch.add(snapshot);
  EXPECT_TRUE(launch.conflicts(restore));
}

// The next turn of a conversation starts from the finish snapshot, at an unaligned
// position: when the rest of its prompt fits in one chunk it runs as one chunk even
// across a multiple of prefill_chunk; a longer rest realigns at the first multiple.
TEST(SchedulerPrefixCache, AnUnalignedStartTakesARestThatFitsInOneChunk) {
  for (const int64_t rest : {9, 16, 17}) {
    Scheduler s(cached_limits());  // prefill_chunk 16
    s.add(1, prompt_of(10), false);
    prefill(s, 1);
    s.append_token(1, 7);
    s.commit(s.schedule());  // 11 tokens in the state
    ASSERT_TRUE(s.remove(1, /*snapshot=*/true));
    s.commit(s.schedule());  // the snapshot's copy
    std::vector<int32_t> next = prompt_of(10);
    next.push_back(7);
    for (int64_t i = 0; i < rest; ++i) next.push_back(int32_t(600 + i));
    s.add(2, next, false);
    const ScheduledStep step = s.schedule();
    EXPECT_EQ(step.num_cached_tokens, 11) << rest;
    ASSERT_EQ(step.chunks.size(), 1u) << rest;
    EXPECT_EQ(step.chunks[0].start_pos, 11) << rest;
    // 9 or 16 tokens: [11, 20) and [11, 27) cross 16 in one chunk; 17 would be more
    // than a chunk: [11, 16) first.
    EXPECT_EQ(step.chunks[0].num_tokens, rest <= 16 ? rest : 5) << rest;
    EXPECT_EQ(step.chunks[0].samples_next, rest <= 16) << rest;
  }
}

TEST(SchedulerPrefixCache, AForkGroupPrefillsOnceAndCopiesTheStateToEveryMember) {
  SchedulerLimits limits = cached_limits();
  limits.cache_slots = 0;  // forks need no cache
  Scheduler s(limits);
  s.add_group({1, 2, 3}, prompt_of(20));
  EXPECT_EQ(s.num_waiting(), 3);
  const std::vector<ScheduledStep> steps = prefill(s, 1);
  EXPECT_EQ(s.slots_used(), 3);
  int32_t prefill_tokens = 0;
  for (const ScheduledStep& step : steps) {
    prefill_tokens += step.num_prefill_tokens;
    for (const ScheduledChunk& c : step.chunks) EXPECT_EQ(c.seq, 1u) << "only the leader computes the prompt";
  }
  EXPECT_EQ(prefill_tokens, 20);
  const ScheduledStep& last = steps.back();
  EXPECT_EQ(last.chunks[0].forks, (std::vector<SequenceId>{2, 3}));
  ASSERT_EQ(last.plan.copies_after.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(last.plan.copies_after[i].from, (StateRef{StateTier::kLive, *s.slot_of(1)}));
    EXPECT_EQ(last.plan.copies_after[i].to, (StateRef{StateTier::kLive, *s.slot_of(SequenceId(2 + i))}));
  }
  EXPECT_EQ(s.forks_total(), 2u);
  // Every member now decodes on its own.
  for (SequenceId id : {1, 2, 3}) s.append_token(id, 40 + int32_t(id));
  const ScheduledStep decode = s.schedule();
  EXPECT_EQ(decode.num_decode_tokens, 3);
  EXPECT_EQ(decode.num_prefill_tokens, 0);
}

TEST(SchedulerPrefixCache, MembersOfACancelledLeaderPrefillThemselves) {
  SchedulerLimits limits = cached_limits();
  limits.cache_slots = 0;
  limits.max_num_batched_tokens = 19;  // one 16-token chunk per step (+ up to 3 decodes)
  Scheduler s(limits);
  s.add_group({1, 2}, prompt_of(30));
  s.commit(s.schedule());  // the leader's first chunk
  ASSERT_TRUE(s.remove(1));
  const ScheduledStep step = s.schedule();
  ASSERT_EQ(step.chunks.size(), 1u);
  EXPECT_EQ(step.chunks[0].seq, 2u);
  EXPECT_EQ(step.chunks[0].start_pos, 0) << "the member starts its own prompt from scratch";
}

}  // namespace
}  // namespace tnl
