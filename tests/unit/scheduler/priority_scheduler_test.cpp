// Scheduler decisions about priority: queue order (priority, then arrival),
// preemption only for a strictly better priority and only when it frees enough
// slots, the victim chosen (worst priority, newest), a preempted sequence's
// place back in the queue, and its resumption with the same chunks it would
// have had. Sequences tied to an unfinished fork are never preempted.
#include <gtest/gtest.h>

#include <numeric>
#include <utility>
#include <vector>

#include "engine/scheduler/scheduler.h"

namespace tnl {
namespace {

std::vector<int32_t> prompt_of(int32_t len, int32_t first = 3) {
  std::vector<int32_t> p(len);
  std::iota(p.begin(), p.end(), first);
  return p;
}

// Commits `step` and feeds a token to every sequence that sampled.
void commit_and_sample(Scheduler& s, const ScheduledStep& step) {
  s.commit(step);
  for (const ScheduledChunk& c : step.chunks) {
    if (c.samples_next) s.append_token(c.seq, 7);
    for (SequenceId f : c.forks) s.append_token(f, 7);
  }
}

std::vector<SequenceId> seqs_of(const ScheduledStep& step) {
  std::vector<SequenceId> ids;
  for (const ScheduledChunk& c : step.chunks) ids.push_back(c.seq);
  return ids;
}

TEST(SchedulerPriority, WaitingQueueIsOrderedByPriorityThenArrival) {
  Scheduler s({.num_slots = 1, .max_num_batched_tokens = 16, .prefill_chunk = 8});
  s.add(1, prompt_of(4), false, /*priority=*/-5);
  commit_and_sample(s, s.schedule());  // 1 runs: nobody below can preempt it
  s.add(2, prompt_of(4), false, 3);
  s.add(3, prompt_of(4), false, 1);
  s.add(4, prompt_of(4), false, 3);
  s.add(5, prompt_of(4), false, 1);
  s.add(6, prompt_of(4), false, -5);  // equal to the running one: waits, FIFO
  EXPECT_EQ(s.waiting_ids(), (std::vector<SequenceId>{6, 3, 5, 2, 4}));
  const ScheduledStep step = s.schedule();
  EXPECT_TRUE(step.preempted.empty());
  EXPECT_EQ(s.preemptions_total(), 0u);
}

TEST(SchedulerPriority, EqualOrWorsePriorityNeverPreempts) {
  Scheduler s({.num_slots = 2, .max_num_batched_tokens = 16, .prefill_chunk = 8});
  s.add(1, prompt_of(4), false, 0);
  s.add(2, prompt_of(4), false, 2);
  commit_and_sample(s, s.schedule());
  s.add(3, prompt_of(4), false, 2);
  s.add(4, prompt_of(4), false, 7);
  for (int i = 0; i < 3; ++i) {
    const ScheduledStep step = s.schedule();
    EXPECT_TRUE(step.preempted.empty());
    EXPECT_EQ(seqs_of(step), (std::vector<SequenceId>{1, 2}));
    commit_and_sample(s, step);
  }
  EXPECT_EQ(s.preemptions_total(), 0u);
}

TEST(SchedulerPriority, PreemptsTheWorstNewestRunningSequenceAndRequeuesItAheadOfYoungerEquals) {
  Scheduler s({.num_slots = 3, .max_num_batched_tokens = 16, .prefill_chunk = 8});
  s.add(1, prompt_of(4), false, 5);
  s.add(2, prompt_of(4), false, 9);
  s.add(3, prompt_of(4), false, 9);
  commit_and_sample(s, s.schedule());
  commit_and_sample(s, s.schedule());  // each has decoded once
  const int32_t slot3 = *s.slot_of(3);
  s.add(4, prompt_of(4, 100), false, 9);  // equal to the worst: no preemption for it
  s.add(5, prompt_of(4, 200), false, 0);
  EXPECT_EQ(s.waiting_ids(), (std::vector<SequenceId>{5, 4}));

  const ScheduledStep step = s.schedule();
  ASSERT_EQ(step.preempted.size(), 1u);
  EXPECT_EQ(step.preempted[0].seq, 3u) << "worst priority, newest among equals";
  EXPECT_EQ(step.preempted[0].slot, slot3);
  EXPECT_TRUE(step.preempted[0].save_state);
  EXPECT_TRUE(step.resumed.empty());
  EXPECT_EQ(seqs_of(step), (std::vector<SequenceId>{1, 2, 5}));
  EXPECT_EQ(step.plan.chunks.back().slot, slot3) << "the head takes the freed slot";
  EXPECT_EQ(step.plan.chunks.back().start_pos, 0);
  EXPECT_EQ(s.waiting_ids(), (std::vector<SequenceId>{3, 4})) << "back ahead of the younger equal";
  EXPECT_EQ(s.preemptions_total(), 1u);
  EXPECT_FALSE(s.slot_of(3).has_value());
}

TEST(SchedulerPriority, APreemptedDecodeResumesWithItsPendingToken) {
  Scheduler s({.num_slots = 1, .max_num_batched_tokens = 16, .prefill_chunk = 8});
  s.add(1, prompt_of(5), false, 1);
  commit_and_sample(s, s.schedule());  // prompt: 5 tokens computed, token 7 pending
  s.add(2, prompt_of(3, 50), false, 0);
  ScheduledStep step = s.schedule();
  ASSERT_EQ(step.preempted.size(), 1u);
  EXPECT_EQ(seqs_of(step), (std::vector<SequenceId>{2}));
  s.commit(step);
  EXPECT_TRUE(s.remove(2));  // the better one finishes: the slot is free again

  step = s.schedule();
  ASSERT_EQ(step.resumed.size(), 1u);
  EXPECT_EQ(step.resumed[0].seq, 1u);
  EXPECT_EQ(step.resumed[0].slot, step.plan.chunks[0].slot);
  ASSERT_EQ(step.chunks.size(), 1u);
  EXPECT_FALSE(step.chunks[0].prefill);
  EXPECT_EQ(step.plan.chunks[0].start_pos, 5) << "continues where it stopped, not from 0";
  EXPECT_EQ(step.plan.chunks[0].tokens, std::vector<int32_t>{7});
  EXPECT_TRUE(step.plan.copies_before.empty()) << "no prefix-cache restore for a resumed sequence";
}

TEST(SchedulerPriority, APreemptedPrefillKeepsItsProgressAndChunkBoundaries) {
  Scheduler s({.num_slots = 1, .max_num_batched_tokens = 8, .prefill_chunk = 8});
  s.add(1, prompt_of(21), false, 1);
  s.commit(s.schedule());  // [0, 8)
  s.add(2, prompt_of(3, 50), false, 0);
  ScheduledStep step = s.schedule();
  ASSERT_EQ(step.preempted.size(), 1u);
  EXPECT_TRUE(step.preempted[0].save_state);
  s.commit(step);
  EXPECT_TRUE(s.remove(2));
  std::vector<std::pair<int64_t, int32_t>> chunks;
  bool resumed = false;
  while (true) {
    step = s.schedule();
    resumed = resumed || !step.resumed.empty();
    ASSERT_EQ(step.chunks.size(), 1u);
    chunks.emplace_back(step.chunks[0].start_pos, step.chunks[0].num_tokens);
    s.commit(step);
    if (step.chunks[0].samples_next) break;
  }
  EXPECT_TRUE(resumed);
  EXPECT_EQ(chunks, (std::vector<std::pair<int64_t, int32_t>>{{8, 8}, {16, 5}}));
}

TEST(SchedulerPriority, ASequenceThatComputedNothingIsPreemptedWithoutSavingState) {
  // Budget 8 = one chunk: the second admission of a step waits for the next.
  Scheduler s({.num_slots = 2, .max_num_batched_tokens = 9, .prefill_chunk = 8});
  s.add(1, prompt_of(8), false, 0);
  s.add(2, prompt_of(8), false, 4);
  commit_and_sample(s, s.schedule());  // 1 admitted; 2's chunk does not fit the budget left
  ScheduledStep step = s.schedule();   // 2 admitted with its first chunk...
  ASSERT_TRUE(s.slot_of(2).has_value());
  // ...and the step is not committed (it failed, say): 2 computed nothing.
  s.add(3, prompt_of(4, 60), false, 1);
  step = s.schedule();
  ASSERT_EQ(step.preempted.size(), 1u);
  EXPECT_EQ(step.preempted[0].seq, 2u);
  EXPECT_FALSE(step.preempted[0].save_state) << "nothing computed: nothing to save";
}

TEST(SchedulerPriority, NoPreemptionUnlessItFreesEnoughSlotsForTheHeadsGroup) {
  Scheduler s({.num_slots = 2, .max_num_batched_tokens = 16, .prefill_chunk = 8});
  s.add(1, prompt_of(4), false, 0);
  s.add(2, prompt_of(4), false, 5);
  commit_and_sample(s, s.schedule());
  s.add_group({3, 4}, prompt_of(6, 80), /*priority=*/1);  // needs 2 slots; only 2 is worse
  ScheduledStep step = s.schedule();
  EXPECT_TRUE(step.preempted.empty());
  commit_and_sample(s, step);
  EXPECT_TRUE(s.remove(1));  // now preempting 2 frees enough
  step = s.schedule();
  ASSERT_EQ(step.preempted.size(), 1u);
  EXPECT_EQ(step.preempted[0].seq, 2u);
  EXPECT_EQ(seqs_of(step), (std::vector<SequenceId>{3})) << "the group's leader prefills for both";
}

TEST(SchedulerPriority, AnUnfinishedForkIsNeverPreempted) {
  Scheduler s({.num_slots = 2, .max_num_batched_tokens = 9, .prefill_chunk = 8});
  s.add_group({1, 2}, prompt_of(20), /*priority=*/5);
  s.commit(s.schedule());  // the leader's first chunk; member 2 waits for the copy
  s.add(3, prompt_of(4, 90), false, 0);
  ScheduledStep step = s.schedule();
  EXPECT_TRUE(step.preempted.empty()) << "the members wait for the leader's state";
  s.commit(step);
  step = s.schedule();  // the leader's last chunk forks the state
  EXPECT_TRUE(step.preempted.empty());
  ASSERT_FALSE(step.chunks.empty());
  EXPECT_EQ(step.chunks[0].forks, (std::vector<SequenceId>{2}));
  commit_and_sample(s, step);
  step = s.schedule();  // independent now: the newest member goes
  ASSERT_EQ(step.preempted.size(), 1u);
  EXPECT_EQ(step.preempted[0].seq, 2u);
  EXPECT_TRUE(step.preempted[0].save_state);
}

}  // namespace
}  // namespace tnl
