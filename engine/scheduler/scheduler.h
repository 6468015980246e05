// Scheduler: decides what each step computes. A pure decision object: no threads,
// no backend, no sampling. The engine's step loop owns it, runs the StepPlan it
// produces on the backend, then reports back (commit, append_token, remove).
//
// Policy (continuous batching with chunked prefill, by priority, then first come
// first served):
//   0. preemption (below) when the best waiting request outranks running ones;
//   1. every running sequence whose prompt is computed decodes one token;
//   2. running sequences still prefilling get their next prompt chunk, in admission order;
//   3. waiting sequences are admitted in queue order while slots are free, with their
//      first chunk (or, for a preempted sequence, its next chunk or decode).
// Steps 2 and 3 stop at the first chunk that does not fit the remaining token
// budget, so nobody overtakes an older prompt: a stream of short requests cannot
// starve a long one.
//
// Priority (vLLM's meaning: lower value first, 0 by default): the waiting queue is
// ordered by (priority, arrival). When the queue's head needs slots and none are
// free, running sequences with a strictly worse priority are preempted — the
// worst priority first, the newest among equals — but only when that frees enough
// slots for the head; equal priorities never preempt each other. A preempted
// sequence goes back to the queue with its priority and its original arrival (so
// ahead of younger equals) and keeps everything it computed: the step lists it in
// `preempted`, and the engine copies its live slot to host memory before the step
// runs (a decode state is a constant-size blob, so this costs one state's bytes
// whatever the sequence length — no KV cache to recompute or page out). When it
// is admitted again the step lists it in `resumed`; the engine writes the saved
// state into its new slot before the step runs, and it continues with its next
// chunk or decode exactly as if never interrupted. Sequences tied to an unfinished
// fork (a leader whose members still wait for its prompt, or such a member) are
// never preempted: the fork copies would otherwise lose their source.
//
// Chunking rule: a prompt is split at positions that are multiples of
// prefill_chunk (the last chunk ends at the prompt end) and a chunk is scheduled
// whole or not at all. A sequence that starts from an unaligned position (a finish
// snapshot or an imported state) takes the rest of its prompt as one chunk when it
// is at most prefill_chunk tokens, and otherwise splits at the multiples as above.
// What a sequence computes is therefore a function of its own positions,
// independent of what else shares its steps, which keeps greedy output
// bit-identical to running alone.
//
// Prefix state cache (prefix_cache.h): at admission a sequence starts from a copy
// of the longest cached prefix of its prompt (a restore in the step's
// copies_before) and prefills only the rest, with the same chunk boundaries; a
// whole prompt cached with its last logits row needs no chunk at all (the first
// token is sampled from that row). Snapshots are taken where the chunking rule
// already cuts: after every chunk that ends on a multiple of prefill_chunk, after
// a prompt's last chunk (keeping its last logits row), and when a sequence
// finishes (prompt + generated tokens whose effect is in the state; planned at
// remove(), copied before the freed slot is reused).
//
// Forks: a group added with add_group() shares one prompt. The group is admitted
// together; only the first sequence prefills; its last prompt chunk's state is
// copied into every other member's slot (copies_after) and each member samples
// its own first token from that chunk's last logits row.
//
// Budget invariant (checked by validate_scheduler_limits): max_num_batched_tokens
// ≥ prefill_chunk + num_slots − 1. While any sequence is prefilling, at most
// num_slots − 1 others decode, so the oldest prefilling sequence always gets its
// whole next chunk, and decodes are never left out for a prompt.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/scheduler/prefix_cache.h"
#include "engine/scheduler/slot_allocator.h"
#include "engine/status.h"

namespace tnl {

using SequenceId = uint64_t;

struct SchedulerLimits {
  int32_t num_slots = 1;               // running sequences: min(max_num_seqs, backend slots)
  int32_t max_num_batched_tokens = 512;
  int32_t prefill_chunk = 256;
  int32_t cache_slots = 0;             // prefix cache snapshot slots (backend kCache tier); 0: cache off
  int32_t host_cache_slots = 0;        // host tier behind them (backend kHost tier)
};

// INVALID_ARGUMENT with a message naming the option when the limits cannot work.
Status validate_scheduler_limits(const SchedulerLimits& limits);

// What one planned chunk means to the engine; parallel to StepPlan::chunks.
struct ScheduledChunk {
  SequenceId seq = 0;
  bool prefill = false;      // a prompt chunk (false: a one-token decode)
  int64_t start_pos = 0;     // absolute position of the chunk's first token
  int32_t num_tokens = 0;
  bool samples_next = false; // its last row yields the sequence's next token
                             // (the prompt's last chunk, or a decode)
  // A prompt's last chunk whose snapshot keeps its last logits row (the row must
  // come back to the host): the engine stores it with set_last_logits().
  std::optional<PrefixEntryId> keep_logits_for;
  std::vector<SequenceId> forks;  // members of its group that take its state and last row
};

// A sequence admitted with its whole prompt cached: no chunk runs for it; its
// first token is sampled from the cached row.
struct CachedStart {
  SequenceId seq = 0;
  std::shared_ptr<const std::vector<float>> logits;
};

// A running sequence sent back to the waiting queue to free its slot (see the
// header comment). With save_state, the engine copies `slot` to host memory
// before anything of this step runs (the slot may be reused in this very step);
// without, nothing is computed yet and the sequence simply starts over.
struct Preemption {
  SequenceId seq = 0;
  int32_t slot = -1;
  bool save_state = false;
};

// A preempted sequence admitted again into `slot`: its saved state goes back into
// the slot before its chunk runs (after the step's copies_before, which may still
// read the slot's previous contents).
struct Resumption {
  SequenceId seq = 0;
  int32_t slot = -1;
};

struct ScheduledStep {
  StepPlan plan;
  std::vector<Preemption> preempted;
  std::vector<Resumption> resumed;
  std::vector<PrefixEntryId> snapshots;  // entries this step's copies_after write: ready once committed
  std::vector<ScheduledChunk> chunks;  // chunks[i] describes plan.chunks[i]
  std::vector<CachedStart> cached_starts;
  int32_t num_decode_tokens = 0;
  int32_t num_prefill_tokens = 0;
  int64_t num_cached_tokens = 0;       // prompt tokens restored instead of computed
  bool empty() const { return plan.empty() && cached_starts.empty(); }
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerLimits limits);  // limits must pass validate_scheduler_limits

  // Queues a new sequence (prompt ≥ 1 token) behind every waiting sequence of the
  // same or a better (lower) priority. Ids are unique while the sequence lives.
  // `keys`: the prompt's TokenHashChain when the caller computed it (off the step
  // loop); otherwise it is computed here when the prefix cache is on.
  void add(SequenceId seq, std::vector<int32_t> prompt, bool prompt_logprobs, int32_t priority = 0,
           TokenHashChain keys = {});
  // Queues sequences that share `prompt` as one fork group (see the header comment).
  // A group larger than the slots is queued as independent sequences.
  void add_group(const std::vector<SequenceId>& seqs, std::vector<int32_t> prompt, int32_t priority = 0,
                 TokenHashChain keys = {});

  // Plans the next step. Admitted sequences take a slot now; nothing else changes
  // until commit(). An empty step means there is nothing to do.
  ScheduledStep schedule();

  // The backend ran `step`: its chunks' tokens are now in their slots' state.
  void commit(const ScheduledStep& step);

  // Records the token sampled for `seq` (after a samples_next chunk was committed);
  // it becomes the sequence's next decode input.
  void append_token(SequenceId seq, int32_t token);

  // Drops a sequence wherever it is (waiting or running), freeing its slot at once.
  // With `snapshot`, a running sequence's state (the tokens it has computed) is
  // first kept in the prefix cache. Returns false when the id is unknown.
  bool remove(SequenceId seq, bool snapshot = false);

  bool contains(SequenceId seq) const;
  std::optional<int32_t> slot_of(SequenceId seq) const;  // nullopt while waiting
  // Running ids in admission order; waiting ids in queue order (priority, arrival).
  std::vector<SequenceId> running_ids() const;
  std::vector<SequenceId> waiting_ids() const;

  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const;
  int32_t slots_used() const { return slots_.num_used(); }
  int32_t slots_total() const { return slots_.num_slots(); }
  bool has_work() const { return !running_.empty() || !waiting_.empty() || !pending_copies_.empty(); }
  bool has_pending_copies() const { return !pending_copies_.empty(); }
  // The finish snapshots not yet planned into a step (to run them now).
  std::vector<StateCopy> take_pending_copies() { return std::exchange(pending_copies_, {}); }
  // A step failed: its copies may not have happened, so the cache entries they
  // were to fill (snapshots, demotions) hold nothing reliable and are dropped.
  void discard_step_snapshots(const ScheduledStep& step);
  // A chunk of `slot` will not run: drop the snapshots `plan` takes from it.
  void discard_snapshots_of(int32_t slot, StepPlan* plan);
  const SchedulerLimits& limits() const { return limits_; }
  PrefixCache& prefix_cache() { return cache_; }
  const PrefixCache& prefix_cache() const { return cache_; }
  uint64_t forks_total() const { return forks_total_; }
  uint64_t preemptions_total() const { return preemptions_total_; }

 private:
  // Scheduling state of one sequence. Invariant for a running sequence:
  // num_computed ≤ tokens.size(); once the prompt is computed, tokens.size() ==
  // num_computed + 1 before it can be scheduled (the token it decodes next).
  struct Sequence {
    SequenceId id = 0;
    int32_t slot = -1;
    std::vector<int32_t> tokens;  // prompt, then sampled tokens
    TokenHashChain keys;          // the prefix-cache key of each prefix of tokens (empty when the cache is off)
    int64_t prompt_len = 0;
    int64_t num_computed = 0;     // tokens whose effect is in the slot's state
    bool prompt_logprobs = false;
    int32_t priority = 0;         // lower is served first
    uint64_t arrival = 0;         // queue order among equal priorities; kept across preemptions
    bool swapped = false;         // waiting: preempted with its state saved by the engine
    std::vector<SequenceId> followers;   // waiting: the rest of its fork group; running: not yet forked
    std::optional<SequenceId> leader;    // running: waits for this sequence's prompt
    bool prefilling() const { return num_computed < prompt_len; }
  };

  // The prompt chunk that starts at seq.num_computed: up to the next multiple of
  // prefill_chunk, or the prompt end.
  int32_t next_chunk_len(const Sequence& seq) const;
  void plan_prefill(const Sequence& seq, int32_t len, ScheduledStep* step);
  void plan_decode(const Sequence& seq, ScheduledStep* step);
  // Puts `seq` into the waiting queue at its (priority, arrival) place.
  void enqueue(Sequence seq);
  // Preempts running sequences of a worse priority than the queue's head when
  // that frees the slots the head needs (header comment); else changes nothing.
  void preempt_for_head(ScheduledStep* step);
  // Admits the head of the waiting queue when slots and budget allow; false otherwise.
  bool admit_head(int64_t* budget, ScheduledStep* step);
  // admit_head for a preempted sequence that computed something: it resumes.
  bool resume_head(int64_t* budget, ScheduledStep* step);
  void push_running(Sequence seq);
  void erase_running(SequenceId seq);  // a running sequence
  Sequence* find_running(SequenceId seq);
  const Sequence* find_running(SequenceId seq) const;

  SchedulerLimits limits_;
  SlotAllocator slots_;
  PrefixCache cache_;
  std::deque<Sequence> waiting_;   // (priority, arrival) order; a fork group is one entry
  std::vector<Sequence> running_;  // admission order; added by push_running, removed by erase_running only
  std::unordered_map<SequenceId, size_t> running_at_;  // id → index in running_ (a step looks every sequence up)
  std::vector<StateCopy> pending_copies_;  // finish snapshots, run first in the next step
  uint64_t forks_total_ = 0;
  uint64_t preemptions_total_ = 0;
  uint64_t next_arrival_ = 0;
};

}  // namespace tnl
