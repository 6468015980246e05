// StepTrace: a timeline of the step loop, one JSON object per line, for finding
// where a request's time goes on a machine without a system profiler
// (`tnl-server --step-trace FILE`; docs/operations.md explains the fields).
//
// Threads: owned and written by the step loop only. Lines are buffered and
// flushed every 64 records and when the trace closes, so writing costs a few
// microseconds per step; the file is for diagnosis, not for always-on use.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "engine/backend.h"
#include "engine/status.h"

namespace tnl {

using EngineClock = std::chrono::steady_clock;

// The first line gives the trace's origin on the steady clock
// ({"origin_steady_us": N}); then one line per step and per first token.
// One step, as the loop saw it. Times are microseconds since the trace opened.
struct StepRecord {
  EngineClock::time_point start;     // schedule() begins
  EngineClock::time_point run_start; // the backend's run_step begins (after planning and swaps)
  EngineClock::time_point run_end;   // run_step returned (outputs on the host)
  EngineClock::time_point end;       // tokens handed to the sinks
  int32_t decodes = 0;               // one-token decode chunks
  int32_t prefill_chunks = 0;
  int32_t prefill_tokens = 0;
  int64_t cached_tokens = 0;         // prompt tokens restored from the prefix cache this step
  int32_t copies_before = 0;         // state copies before the chunks: restores, finish snapshots, demotions
  int32_t copies_after = 0;          // after: chunk-edge and prompt-end snapshots, forks
  int32_t first_tokens = 0;          // sequences that got their first token in this step
  int32_t running = 0;               // after planning
  int32_t waiting = 0;
  bool failed = false;
  Backend::StepTiming backend;       // run_step's host enqueue and device span, when the backend times them
};

class StepTrace {
 public:
  // Creates (truncates) `path`; INVALID_ARGUMENT naming it when it cannot be written.
  static Expected<std::unique_ptr<StepTrace>> open(const std::string& path);
  ~StepTrace();

  void step(const StepRecord& r);
  // A request's first token: when a front end received it and when it had parsed
  // and tokenized it (each when known), when it reached the engine (submit) and
  // when its token went to its sink, with its prompt's length.
  void first_token(uint64_t request, EngineClock::time_point received, EngineClock::time_point prepared,
                   EngineClock::time_point arrival, EngineClock::time_point now, int64_t prompt_tokens);

 private:
  StepTrace(std::ofstream out, EngineClock::time_point origin);
  int64_t us(EngineClock::time_point t) const;
  void wrote_line();

  std::ofstream out_;
  EngineClock::time_point origin_;
  int32_t unflushed_ = 0;
};

}  // namespace tnl
