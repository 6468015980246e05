// EngineMetrics: the step loop's counters and latency histograms. Owned by the
// step loop; the engine copies them into EngineStats under its lock after each step.
#pragma once

#include <cstdint>

#include "engine/scheduler/engine.h"
#include "engine/scheduler/latency_histogram.h"

namespace tnl {

struct EngineMetrics {
  uint64_t prompt_tokens_total = 0;      // prompt tokens computed (prefill chunks committed)
  uint64_t prompt_tokens_cached_total = 0;  // prompt tokens restored from the prefix cache instead
  uint64_t generation_tokens_total = 0;  // tokens sampled
  uint64_t requests_finished_total = 0;  // every finish reason
  uint64_t preemption_swap_bytes_total = 0;  // state bytes of preempted sequences: to host memory and back
  LatencyHistogram time_to_first_token{time_to_first_token_buckets()};      // arrival → first token
  LatencyHistogram time_per_output_token{time_per_output_token_buckets()};  // between consecutive tokens
  LatencyHistogram e2e_latency{e2e_latency_buckets()};                      // arrival → finish
  LatencyHistogram step_time{step_time_buckets()};                          // one whole step

  // Fills the counter and histogram fields of `stats` (not the gauges).
  void copy_to(EngineStats* stats) const {
    stats->prompt_tokens_total = prompt_tokens_total;
    stats->prompt_tokens_cached_total = prompt_tokens_cached_total;
    stats->generation_tokens_total = generation_tokens_total;
    stats->requests_finished_total = requests_finished_total;
    stats->preemption_swap_bytes_total = preemption_swap_bytes_total;
    stats->time_to_first_token = time_to_first_token.snapshot();
    stats->time_per_output_token = time_per_output_token.snapshot();
    stats->e2e_latency = e2e_latency.snapshot();
    stats->step_time = step_time.snapshot();
  }
};

}  // namespace tnl
