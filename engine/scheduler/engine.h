// Engine: the serving core. Owns a backend, the tokenizer, the scheduler and the
// step-loop thread; front ends (HTTP, gRPC, tools) submit GenerationRequests and
// receive GenerationEvents. The engine knows nothing of HTTP or gRPC.
//
// Threads: one step-loop thread, owned by the Engine, runs the scheduler and the
// backend and calls every EventSink. submit()/cancel()/stats() are thread-safe and
// never block on a step; they hand work to the loop through one locked queue.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/priority.h"
#include "engine/scheduler/token_controls.h"
#include "engine/state_blob.h"
#include "engine/sampling/sampler.h"
#include "engine/status.h"
#include "engine/tokenizer/tokenizer.h"

namespace tnl {

class ContinuousBatcher;

struct EngineOptions {
  int32_t max_num_seqs = 64;             // running sequences, bounded by backend slots
  int32_t max_num_batched_tokens = 512;  // tokens per step: decodes + prefill chunks
  int32_t prefill_chunk = 256;           // prompts are split at multiples of this (fixed per
                                         // sequence, so results never depend on the batch)
  int32_t max_queue = 256;               // waiting requests; past it submit() → RESOURCE_EXHAUSTED
  int64_t max_model_len = 32768;         // prompt + max_tokens
  std::chrono::milliseconds request_timeout{0};  // 0: none
  bool prefix_cache = true;              // snapshot states and start prompts from cached prefixes
  std::string model_fingerprint;         // Checkpoint::fingerprint(): state blobs carry and check it
  std::string step_trace_path;           // non-empty: write the step loop's timeline there (step_trace.h)
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kTimeout, kError };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "timeout", "error"

struct GenerationRequest {
  std::string request_id;              // for logs
  std::vector<int32_t> prompt_ids;     // already tokenized (BOS included as the tokenizer says)
  SamplingParams sampling;
  int32_t max_tokens = 16;
  std::vector<std::string> stop;       // stop strings (not included in the output)
  std::vector<int32_t> stop_token_ids; // in addition to EOS
  bool ignore_eos = false;
  bool prompt_logprobs = false;        // logprobs of every prompt token (echo + logprobs)
  bool include_stop_str_in_output = false;  // a matched stop string stays in the text
  TokenControls controls;              // logit_bias, allowed ids, min_tokens, bad_words, structured output
  int32_t priority = 0;                // [kMinPriority, kMaxPriority]; lower first; a better
                                       // one preempts running worse ones (scheduler.h)
  std::chrono::steady_clock::time_point received{};  // when a front end got it (the step trace
                                                     // shows the front end's share); default: unknown
  std::chrono::steady_clock::time_point prepared{};  // when it had parsed and tokenized it (the rest of
                                                     // the front end's share is handing it over)
};

struct GenerationEvent {
  std::vector<int32_t> token_ids;              // tokens produced since the last event
  std::string text;                            // text now safe to emit (UTF-8 whole, stop strings held back)
  std::vector<SampleResult> logprobs;          // one per token when sampling.logprobs ≥ 0
  std::vector<SampleResult> prompt_logprobs;   // first event only, when asked (entry 0 has no logprob)
  FinishReason finish = FinishReason::kNone;   // set on the last event only
  Status error;                                // set when finish == kError
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;               // so far
};

// Called on the engine thread, in order, once per event; the last event has
// finish != kNone. Must not block (post to your own executor).
using EventSink = std::function<void(GenerationEvent&&)>;

struct EngineStats {
  int32_t running = 0;
  int32_t waiting = 0;
  int32_t slots_used = 0;
  int32_t slots_total = 0;
  uint64_t prompt_tokens_total = 0;
  uint64_t prompt_tokens_cached_total = 0;
  uint64_t generation_tokens_total = 0;
  uint64_t requests_finished_total = 0;
  uint64_t forks_total = 0;  // sequences started from a fork group's shared prompt
  uint64_t preemptions_total = 0;            // running sequences sent back to the queue for a better priority
  uint64_t preemption_swap_bytes_total = 0;  // state bytes copied to host memory and back for them
  int32_t swapped_sequences = 0;             // preempted sequences whose state is in host memory now
  struct PrefixCacheGauges {
    bool enabled = false;
    uint64_t queries_total = 0, hits_total = 0, hit_tokens_total = 0;
    uint64_t snapshots_total = 0, evictions_total = 0;
    uint64_t demotions_total = 0;       // snapshots moved to the host tier
    uint64_t host_restores_total = 0;   // restores straight from the host tier
    int32_t slots_used = 0, slots_total = 0, host_slots_used = 0, host_slots_total = 0;
    int64_t state_bytes = 0;            // per slot
  } prefix_cache;
  // Histograms (seconds): cumulative bucket counts over `bucket_bounds`, plus sum and count.
  struct Histogram {
    std::vector<double> bucket_bounds;
    std::vector<uint64_t> bucket_counts;  // counts[i] = observations ≤ bounds[i]
    double sum = 0.0;
    uint64_t count = 0;
  };
  Histogram time_to_first_token;
  Histogram time_per_output_token;
  Histogram e2e_latency;
  Histogram step_time;
};

class Engine {
 public:
  static Expected<std::unique_ptr<Engine>> create(std::unique_ptr<Backend> backend,
                                                  std::unique_ptr<Tokenizer> tokenizer,
                                                  EngineOptions options);
  ~Engine();  // stops the loop; unfinished requests get finish = kCancelled

  // Validates (empty prompt, too long, bad sampling params → INVALID_ARGUMENT;
  // queue full → RESOURCE_EXHAUSTED; draining → FAILED_PRECONDITION; dead →
  // UNAVAILABLE) and queues.
  // Returns an id for cancel().
  Expected<uint64_t> submit(GenerationRequest request, EventSink sink);
  // Submits requests that share one prompt (the choices of `n`) as a fork group:
  // the prompt is prefilled once and its state copied, and each request samples
  // and continues on its own. All are queued, or none (the first error). Requests
  // whose prompts or priorities differ, or that ask for prompt logprobs, run
  // independently.
  Expected<std::vector<uint64_t>> submit_group(std::vector<GenerationRequest> requests, std::vector<EventSink> sinks);
  // Drops the sequence within one step and frees its slot; its sink gets kCancelled.
  void cancel(uint64_t id);

  // Resumable sessions (engine/state_blob.h). Both answer once through `done`, on
  // the step-loop thread (it must not block), between steps.
  //
  // export_state: the state reached after `tokens` as a blob — the prefix-cache
  // entry that holds exactly them, or computed now by a prefill that samples
  // nothing (itself starting from the longest cached prefix). The blob keeps the
  // last logits row when it is known. Bad tokens → INVALID_ARGUMENT at once.
  Status export_state(std::vector<int32_t> tokens, std::function<void(Expected<std::string>)> done);
  // import_state: `blob` is parsed and validated on the calling thread (another
  // model's, or a corrupted one, is INVALID_ARGUMENT with the reason); then its
  // state becomes a prefix-cache entry for its tokens, so that a request extending
  // them starts there. `done` gets the number of tokens.
  Status import_state(std::span<const std::byte> blob, std::function<void(Expected<int64_t>)> done);
  // Leaves the state after `tokens` in the prefix cache (computing it, in the
  // background, unless a cache entry holds exactly them): the front ends warm the
  // next turn of a conversation this way when their text re-tokenizes differently
  // from the tokens the model generated (docs/architecture.md). Best effort.
  void warm_state(std::vector<int32_t> tokens);
  // What this engine's blobs are checked against (fingerprint, layout, limits).
  const StateBlobLayout& state_layout() const;

  EngineStats stats() const;
  void begin_drain();          // refuse new requests; in-flight ones continue
  bool idle() const;           // nothing running or waiting
  // Ends every request, running or waiting, with kError and `reason` (within one
  // step). Used when a drain times out, so that clients see why their stream ended.
  void abort_all(Status reason);
  // OK while the engine can serve; once the backend reported a fatal error, the
  // reason (the engine is then dead for good: submit() refuses with UNAVAILABLE).
  Status health() const;

  // Compiles a structured-output constraint against this model's vocabulary, or
  // finds it in the engine's cache of compiled constraints. Thread-safe (the
  // front ends call it from their workers). Bad specs are INVALID_ARGUMENT with
  // what is wrong (e.g. an unsupported JSON Schema keyword and where).
  Expected<std::shared_ptr<const CompiledConstraint>> compile_constraint(const ConstraintSpec& spec) const;

  const Tokenizer& tokenizer() const;
  const ModelConfig& config() const;
  const EngineOptions& options() const;
  std::string backend_name() const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  // Hands `task` to the step loop, which runs it between steps.
  Status post_task(std::function<void(ContinuousBatcher&)> task);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tnl
