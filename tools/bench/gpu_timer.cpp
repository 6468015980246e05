#include "tools/bench/gpu_timer.h"

#include "engine/cuda/cuda_status.h"

namespace tnl::bench {

constexpr size_t kFlushBytes = size_t(256) << 20;

GpuTimer::GpuTimer() {
  cudaEventCreate(&start_);
  cudaEventCreate(&stop_);
  cudaMalloc(&flush_, kFlushBytes);
}

GpuTimer::~GpuTimer() {
  if (start_) cudaEventDestroy(start_);
  if (stop_) cudaEventDestroy(stop_);
  if (flush_) cudaFree(flush_);
}

Expected<double> GpuTimer::median_ms(cudaStream_t stream, int warmup, int reps,
                                     const std::function<cudaError_t(int)>& enqueue) {
  if (!flush_ || !start_ || !stop_) return internal_error("bench timer: could not allocate its events and flush buffer");
  for (int i = 0; i < warmup; ++i) TNL_CUDA_TRY(enqueue(i));
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    TNL_CUDA_TRY(cudaMemsetAsync(flush_, i & 0xFF, kFlushBytes, stream));
    TNL_CUDA_TRY(cudaEventRecord(start_, stream));
    TNL_CUDA_TRY(enqueue(warmup + i));
    TNL_CUDA_TRY(cudaEventRecord(stop_, stream));
    TNL_CUDA_TRY(cudaEventSynchronize(stop_));
    float ms = 0;
    TNL_CUDA_TRY(cudaEventElapsedTime(&ms, start_, stop_));
    times.push_back(ms);
  }
  return median(times);
}

}  // namespace tnl::bench
