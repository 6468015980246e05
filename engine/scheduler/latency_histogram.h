// LatencyHistogram: Prometheus-style histogram of durations in seconds, with
// cumulative bucket counts (counts[i] = observations ≤ bounds[i]; the implicit
// +Inf bucket is `count`). Not thread-safe: the step loop owns it and the engine
// publishes copies (EngineStats::Histogram) under its lock.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/scheduler/engine.h"

namespace tnl {

class LatencyHistogram {
 public:
  explicit LatencyHistogram(std::vector<double> bucket_bounds);  // ascending, seconds

  void observe(double seconds);
  const EngineStats::Histogram& snapshot() const { return data_; }

 private:
  EngineStats::Histogram data_;
};

// Bucket bounds (seconds) for the engine's histograms, close to vLLM's so that
// dashboards built for it read ours the same way.
std::vector<double> time_to_first_token_buckets();
std::vector<double> time_per_output_token_buckets();
std::vector<double> e2e_latency_buckets();
std::vector<double> step_time_buckets();

}  // namespace tnl
