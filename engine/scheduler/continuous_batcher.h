// ContinuousBatcher: the body of the engine's step loop, without the thread.
// Owns the Scheduler and every RequestState; borrows the backend and tokenizer.
// step() = schedule → backend.run_step → sample → events. Single-threaded by
// design: only the engine's step-loop thread calls it (tests call it directly);
// the one callback it hands the backend (StepPlan::while_running) runs inside
// run_step, on the thread that runs the step, while step() waits for it.
//
// Overlap: handing a token to its stream (a post to a front end's executor, ~1–2
// µs) is the largest host cost of a decode step at a few hundred streams. So the
// events that only carry a sequence's next token are deferred: step k+1 hands
// them to their sinks while the device runs it (StepPlan::while_running), and the
// device never waits for them. Everything that decides what runs next — sampling,
// stop checks, detokenizing, finishing — still happens before step k+1 is
// planned; first tokens and last events are never deferred (time to first token,
// and a finished request's sink hears everything at once).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <unordered_map>
#include <vector>

#include "engine/backend.h"
#include "engine/state_blob.h"
#include "engine/scheduler/engine.h"
#include "engine/scheduler/engine_metrics.h"
#include "engine/scheduler/request_state.h"
#include "engine/scheduler/scheduler.h"
#include "engine/scheduler/step_trace.h"
#include "engine/scheduler/swap_space.h"
#include "engine/tokenizer/tokenizer.h"

namespace tnl {

class ContinuousBatcher {
 public:
  // `limits` must pass validate_scheduler_limits; backend and tokenizer outlive this.
  ContinuousBatcher(Backend& backend, const Tokenizer& tokenizer, const EngineOptions& options,
                    SchedulerLimits limits);

  // Queues a validated request under a fresh id.
  // `prompt_keys`: the prompt's prefix-cache keys when the caller computed them.
  void add(uint64_t id, GenerationRequest request, EventSink sink, EngineClock::time_point arrival,
           TokenHashChain prompt_keys = {});
  // Queues validated requests with one prompt as a fork group (scheduler.h): the
  // prompt is prefilled once and its state copied to the others.
  void add_group(const std::vector<uint64_t>& ids, std::vector<GenerationRequest> requests, std::vector<EventSink> sinks,
                 EngineClock::time_point arrival, TokenHashChain prompt_keys = {});
  // Resumable sessions (engine.h: Engine::export_state / import_state).
  using ExportDone = std::function<void(Expected<std::string>)>;
  using ImportDone = std::function<void(Expected<int64_t>)>;
  // A null `done`: only leave the state in the prefix cache (a warm-up).
  void export_state(std::vector<int32_t> tokens, ExportDone done);
  void import_state(StateBlob blob, ImportDone done);
  // Finishes the request with kCancelled and frees its slot; unknown ids are ignored
  // (it may have finished already).
  void cancel(uint64_t id);
  void cancel_all();
  // Finishes every request with kError (the loop caught an exception it cannot
  // attribute to one request).
  void fail_all(const Status& error);
  // Finishes every request past its deadline with kTimeout.
  void expire(EngineClock::time_point now);
  // Not OK once the backend reported a fatal (sticky) error: every request then
  // failed, and the engine must not run another step.
  const Status& dead() const { return dead_; }
  // Called once, on the loop thread, when the batcher latches dead — before the
  // failed requests' events go out, so that anyone who sees those also sees the
  // engine dead.
  void set_on_dead(std::function<void(const Status&)> on_dead) { on_dead_ = std::move(on_dead); }
  // Called on the loop thread after each step is planned and before it runs, with
  // the running and waiting counts: the engine publishes them before any event of
  // the step goes out (so a client that got a token never sees its own request
  // still counted as waiting, e.g. by the queue limit).
  void set_on_scheduled(std::function<void(int32_t running, int32_t waiting)> f) { on_scheduled_ = std::move(f); }
  // Records every step and first token from now on (null: stop).
  // With a trace on, the backend also times each step (host enqueue, device span).
  void set_trace(std::unique_ptr<StepTrace> trace) {
    trace_ = std::move(trace);
    backend_.set_step_timing(trace_ != nullptr);
  }

  // Runs one step; does nothing when there is no work.
  void step();
  // Runs the state copies the scheduler still owes (finish snapshots) so that
  // every cache entry holds its state (before reading one out).
  Status flush_copies();

  Backend& backend() { return backend_; }
  const StateBlobLayout& layout() const { return layout_; }
  PrefixCache& prefix_cache() { return scheduler_.prefix_cache(); }

  // Hands the deferred token events to their sinks now (step() does it while the
  // next step runs; tests that step by hand call it to see a step's tokens).
  void emit_deferred_events();

  bool has_work() const { return scheduler_.has_work() || !deferred_events_.empty(); }
  int32_t num_running() const { return scheduler_.num_running(); }
  int32_t num_waiting() const { return scheduler_.num_waiting(); }
  int32_t slots_used() const { return scheduler_.slots_used(); }
  int32_t slots_total() const { return scheduler_.slots_total(); }
  const EngineMetrics& metrics() const { return metrics_; }
  EngineStats stats() const;

 private:
  void finish_all(FinishReason reason, const Status& error);
  // Removes the request everywhere (slot freed at once) and sends its last event.
  void finish(uint64_t id, FinishReason reason, Status error = Status::ok());
  // Fails, with kError, the sequences of `step` whose chunk the backend would
  // reject anyway (found by validating each chunk alone), and drops those chunks.
  void drop_invalid_chunks(ScheduledStep* step);
  // On a backend that samples on its device, hands it the sampling of every
  // chunk that yields a token (requests that need top logprobs stay on the host).
  void attach_device_sampling(ScheduledStep* step);
  // Saves the state of every sequence the step preempted (before anything can
  // reuse its slot); a sequence whose state cannot be read fails with kError.
  void swap_out(const ScheduledStep& step);
  // Puts the saved state of every sequence the step resumes back into its new
  // slot. The step's copies_before run first, on their own: they may still read
  // a slot's previous contents (a finish snapshot of the sequence that left it).
  Status swap_in(ScheduledStep* step);
  // Checks the backend returned the rows the plan asked for.
  Status check_output(const ScheduledStep& step, const StepOutput& out) const;
  void process_output(const ScheduledStep& step, const StepOutput& out);
  // Completes `record` from the step and writes it, when a trace is on.
  void trace_step(const ScheduledStep& step, StepRecord record, bool failed);
  // Samples `seq`'s next token from `row` on the host and records what follows.
  void sample_from_row(uint64_t seq, std::span<const float> row, EngineClock::time_point now,
                       std::vector<std::pair<uint64_t, FinishReason>>* sampled);
  void note_token(RequestState& state, EngineClock::time_point now);

  // An export whose state is being computed: a prefill-only sequence under an
  // internal id (≥ 2⁶²); when its last chunk ran, its live slot is read out.
  struct ExportJob {
    std::vector<int32_t> tokens;
    ExportDone done;
  };
  void finish_export(uint64_t id, Expected<std::string> result);
  Expected<std::string> make_blob(const std::vector<int32_t>& tokens, StateRef slot, std::span<const float> logits);

  Backend& backend_;
  const Tokenizer& tokenizer_;
  StateBlobLayout layout_;
  std::unordered_map<uint64_t, ExportJob> exports_;
  uint64_t next_internal_id_ = uint64_t(1) << 62;
  EngineOptions options_;
  int32_t eos_id_;
  Scheduler scheduler_;
  std::unordered_map<uint64_t, std::unique_ptr<RequestState>> requests_;
  EngineMetrics metrics_;
  SwapSpace swap_space_;  // states of preempted sequences
  StepOutput output_;  // reused across steps (logits buffer)
  Status dead_;        // set once, by a kFatal step status
  std::function<void(const Status&)> on_dead_;
  std::function<void(int32_t, int32_t)> on_scheduled_;
  std::unique_ptr<StepTrace> trace_;  // optional
  int32_t first_tokens_this_step_ = 0;  // for the trace
  std::vector<uint64_t> deferred_events_;  // requests whose next-token event waits for the next step
  // Seeds for requests that bring none, drawn from one std::random_device read at
  // construction: opening the device per request cost ~15 µs of the step loop's time.
  std::mt19937_64 seed_source_;
  // Per live slot: the request whose counts the device's penalty row last held
  // (DeviceSampling::penalty_row; kNoPenaltyRowOwner: none), so that a row is kept
  // only by the request that built it.
  static constexpr uint64_t kNoPenaltyRowOwner = ~uint64_t(0);
  std::vector<uint64_t> penalty_row_owner_;
};

}  // namespace tnl
