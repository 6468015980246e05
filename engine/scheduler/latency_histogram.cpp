#include "engine/scheduler/latency_histogram.h"

#include <algorithm>
#include <utility>

namespace tnl {

LatencyHistogram::LatencyHistogram(std::vector<double> bucket_bounds) {
  data_.bucket_bounds = std::move(bucket_bounds);
  data_.bucket_counts.assign(data_.bucket_bounds.size(), 0);
}

void LatencyHistogram::observe(double seconds) {
  // Cumulative buckets: every bound ≥ the value counts it.
  const auto first = std::lower_bound(data_.bucket_bounds.begin(), data_.bucket_bounds.end(), seconds);
  for (auto i = static_cast<size_t>(first - data_.bucket_bounds.begin()); i < data_.bucket_counts.size(); ++i) {
    ++data_.bucket_counts[i];
  }
  data_.sum += seconds;
  ++data_.count;
}

// Buckets fine enough at the low end for a GPU server (a decode step is a few
// milliseconds, a token between 0.2 and 50 ms), wide enough for a slow CPU one.
std::vector<double> time_to_first_token_buckets() {
  return {0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5,
          0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
}

std::vector<double> time_per_output_token_buckets() {
  return {0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.075, 0.1,
          0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0};
}

std::vector<double> e2e_latency_buckets() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
          40.0, 50.0, 60.0, 120.0, 240.0, 480.0};
}

std::vector<double> step_time_buckets() {
  return {0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025,
          0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0};
}

}  // namespace tnl
