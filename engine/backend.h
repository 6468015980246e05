// Backend: the small interface every compute backend implements (CPU now, CUDA next).
//
// The scheduler decides, the backend executes: a StepPlan is a plain description
// of one forward step over several sequences, each owning one decode-state slot.
// A chunk either prefills tokens (continuing from whatever its slot holds, with
// absolute positions continuing) or decodes one token; the math is the same.
//
// Threads: a Backend is driven by one thread at a time (the engine's step loop);
// it may use worker threads internally.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/status.h"
#include "kernels/sampling_row.h"

namespace tnl {

// Which logits rows a chunk asks for.
enum class LogitsMode {
  kNone,  // state only (e.g. a middle chunk of a long prompt)
  kLast,  // the last token's row (the usual case: sample the next token)
  kAll,   // every token's row (perplexity evaluation, `echo` + `logprobs`)
};

// Sampling a chunk's last row where the logits are, on backends that can
// (Backend::samples_on_device()); the rules are kernels/sampling_row.h's.
struct DeviceSampling {
  RowSampling params;
  // Each token at most once. With penalty_row kNone or kKept: the biases alone
  // (the penalties, if any, are in the slot's row on the device); with kRebuild:
  // the penalties' full list with the biases merged in, which rewrites that row.
  std::vector<PenaltyEntry> penalties;
  // The device keeps each live slot's penalty counts (kernels/sampling_row.h):
  // the host sends a request's prompt set and counts once (kRebuild), then only
  // its biases while the row stays current (kKept), whatever the prompt's length.
  PenaltyRowMode penalty_row = PenaltyRowMode::kNone;
  bool want_logprob = false;            // fill SampledToken::logprob
  // The allowed-token mask (⌈V/32⌉ words; empty: every token), shared so that
  // StepPlan::prepare_sampling may fill it while the forward pass runs.
  std::shared_ptr<std::vector<uint32_t>> allowed_mask;
};

struct SequenceChunk {
  int32_t slot = -1;              // state slot in [0, num_slots())
  int64_t start_pos = 0;          // absolute position of tokens[0]; 0 means "fresh" (slot state is reset)
  std::vector<int32_t> tokens;    // ≥ 1 token ids, each in [0, V)
  LogitsMode logits = LogitsMode::kLast;  // the rows that come back to the host
  std::optional<DeviceSampling> sample;   // set: the backend samples the last row itself
};

// Where a decode state lives. Chunks run in live slots; the prefix state cache
// keeps snapshots in cache slots (the backend's own memory: device memory on the
// GPU, RAM on the CPU) and, on backends that have one, in a host-RAM tier behind
// it. Every slot of every tier holds exactly state_bytes_per_slot().
enum class StateTier { kLive, kCache, kHost };
const char* state_tier_name(StateTier tier);  // "live", "cache", "host"

struct StateRef {
  StateTier tier = StateTier::kLive;
  int32_t index = 0;
  bool operator==(const StateRef&) const = default;
};

// Copies one whole state (a slot copy: exact, every byte). Restores, snapshots,
// forks and swaps are all copies.
struct StateCopy {
  StateRef from;
  StateRef to;
};

struct StepPlan {
  std::vector<SequenceChunk> chunks;     // each slot at most once per step
  std::vector<StateCopy> copies_before;  // in order, before any chunk runs
  std::vector<StateCopy> copies_after;   // in order, after every chunk ran
  // Set by the engine when some chunk's allowed-token mask is still to be
  // computed (structured output): a backend that samples on its device calls it
  // once the forward pass is enqueued and before it reads any `allowed_mask`, so
  // the masks are computed on the host while the device runs the step. It fills
  // the masks only. An error fails the step.
  std::function<Status()> prepare_sampling;
  // Set by the engine: host work that does not depend on this step (handing the
  // previous step's tokens to their streams). A backend that runs the step
  // asynchronously calls it once, after the step is enqueued and before it waits
  // for the device, so that the host work overlaps the device's; others may call
  // it at the start of run_step, or not at all (the engine then runs it after
  // run_step returns). Only the leading rank of a tensor-parallel group calls it.
  std::function<void()> while_running;
  bool empty() const { return chunks.empty() && copies_before.empty() && copies_after.empty(); }
};

// Logits of one step, fp32, row-major [rows, V]. Rows appear in chunk order; a
// kLast chunk contributes one row, a kAll chunk one row per token, kNone none.
struct StepOutput {
  int64_t vocab_size = 0;
  std::vector<float> logits;
  std::vector<int32_t> row_begin;  // per chunk: index of its first row (or -1 when kNone)
  std::vector<SampledToken> sampled;  // per chunk: the token drawn for a chunk with `sample` (else token -1)
  std::span<const float> row(int64_t r) const {
    return {logits.data() + r * vocab_size, static_cast<size_t>(vocab_size)};
  }
  int64_t num_rows() const { return vocab_size ? int64_t(logits.size()) / vocab_size : 0; }
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const ModelConfig& config() const = 0;
  virtual std::string name() const = 0;            // "cpu", "cuda"
  virtual int32_t num_slots() const = 0;           // decode-state slots this backend holds
  virtual int64_t state_bytes_per_slot() const = 0; // constant, whatever the sequence length
  // Whether run_step accepts chunks with `sample` set (logits then need not
  // travel to the host). Backends that cannot reject such chunks.
  virtual bool samples_on_device() const { return false; }

  // What a backend did that serving should not need once it runs (a GPU backend
  // plans its memory and captures its graphs at start-up): tests assert these stay
  // put while serving.
  struct Counters {
    int64_t graph_captures = 0;   // CUDA graphs captured
    int64_t buffer_growths = 0;   // activation buffers reallocated
  };
  virtual Counters counters() const { return {}; }

  // Where the last run_step's time went, for the step trace (continuous_batcher.h
  // turns it on with the trace). -1: not timed, or a backend that cannot.
  struct StepTiming {
    int64_t enqueue_us = -1;  // host: run_step's start until its last work was enqueued
    int64_t device_us = -1;   // device: the step's first enqueued work's start to its last's end
                              // (time the device waited for the host to enqueue included)
  };
  // Costs a few microseconds a step (two CUDA events), so it is off unless asked.
  virtual void set_step_timing(bool /*on*/) {}
  virtual StepTiming last_step_timing() const { return {}; }

  // Slots of a tier (kLive: num_slots()). 0 when the backend has no such tier.
  virtual int32_t num_state_slots(StateTier tier) const { return tier == StateTier::kLive ? num_slots() : 0; }

  // Runs one step: copies_before, the chunks, copies_after. A chunk whose
  // start_pos is 0 starts from a zero state; other chunks continue the state their
  // slot holds. A plan may hold copies and no chunk. On error no live-slot state is
  // guaranteed (the engine fails those sequences) but the backend stays usable.
  // Copies may complete asynchronously (a GPU copying to host memory on a side
  // stream); the backend orders every later use of a slot after them.
  virtual Status run_step(const StepPlan& plan, StepOutput* out) = 0;

  // One slot's state as bytes, in the backend-independent layout: for each layer,
  // each head (in global head order), the fp32 [e_k, e] matrix S, row-major
  // (model-spec §5.2) — state_bytes_per_slot() bytes. Between steps only.
  virtual Status read_state(StateRef slot, std::span<std::byte> out) = 0;
  virtual Status write_state(StateRef slot, std::span<const std::byte> in) = 0;
};

// Validates one chunk (the plan's `index`-th, for the message) against a config
// and slot count; validate_step_plan also refuses a slot used twice.
Status validate_sequence_chunk(const SequenceChunk& chunk, size_t index, const ModelConfig& config, int32_t num_slots,
                               bool device_sampling = false);
// Validates a plan against a config and slot counts (shared by every backend).
Status validate_step_plan(const StepPlan& plan, const ModelConfig& config, int32_t num_slots,
                          bool device_sampling = false);
Status validate_state_copies(const StepPlan& plan, const Backend& backend);
Status validate_state_ref(StateRef slot, const Backend& backend);

}  // namespace tnl
