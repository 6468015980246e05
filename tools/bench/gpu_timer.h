// Timing on the GPU: CUDA events around each run after warm-up, the median of
// the runs, and an L2 flush before each run so that repeated runs over the same
// buffers measure device memory, not the 50 MB cache.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "engine/status.h"

namespace tnl::bench {

class GpuTimer {
 public:
  GpuTimer();
  ~GpuTimer();
  GpuTimer(const GpuTimer&) = delete;
  GpuTimer& operator=(const GpuTimer&) = delete;

  // Median milliseconds of `reps` runs of `enqueue` on `stream` (after `warmup`
  // runs), each preceded by an untimed L2 flush. `enqueue` returns a CUDA status.
  Expected<double> median_ms(cudaStream_t stream, int warmup, int reps, const std::function<cudaError_t(int)>& enqueue);

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  void* flush_ = nullptr;  // 256 MB, written between runs
};

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace tnl::bench
