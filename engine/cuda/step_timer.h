// StepTimer: how long a backend step took on the host (enqueueing) and on the
// device (CUDA events around the step's work), for the step trace: a slow step
// is then either one the device ran slowly or one the host enqueued slowly.
//
// Threads: used by the backend's one thread; owns its two events. Off until
// enable(); then each step is begin() … enqueued() … (synchronise) … finish().
#pragma once

#include <cuda_runtime.h>

#include <chrono>

#include "engine/backend.h"
#include "engine/cuda/cuda_status.h"

namespace tnl {

class StepTimer {
 public:
  StepTimer() = default;
  ~StepTimer() { destroy(); }
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;

  // Creates the events on the current device (on), or drops them (off).
  Status enable(bool on) {
    if (!on) {
      destroy();
      return Status::ok();
    }
    if (begin_) return Status::ok();
    TNL_CUDA_TRY(cudaEventCreate(&begin_));
    TNL_CUDA_TRY(cudaEventCreate(&end_));
    return Status::ok();
  }

  // Before the step enqueues anything on `stream`.
  Status begin(cudaStream_t stream) {
    last_ = {};
    if (!begin_) return Status::ok();
    host_start_ = std::chrono::steady_clock::now();
    TNL_CUDA_TRY(cudaEventRecord(begin_, stream));
    return Status::ok();
  }
  // After the step's last work is enqueued, before waiting for it.
  Status enqueued(cudaStream_t stream) {
    if (!begin_) return Status::ok();
    last_.enqueue_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - host_start_).count();
    TNL_CUDA_TRY(cudaEventRecord(end_, stream));
    return Status::ok();
  }
  // After the stream is synchronised.
  Status finish() {
    if (!begin_ || last_.enqueue_us < 0) return Status::ok();
    float ms = 0;
    TNL_CUDA_TRY(cudaEventElapsedTime(&ms, begin_, end_));
    last_.device_us = int64_t(double(ms) * 1000.0 + 0.5);
    return Status::ok();
  }
  Backend::StepTiming last() const { return last_; }

 private:
  void destroy() {
    if (begin_) cudaEventDestroy(begin_);
    if (end_) cudaEventDestroy(end_);
    begin_ = end_ = nullptr;
  }

  cudaEvent_t begin_ = nullptr, end_ = nullptr;
  std::chrono::steady_clock::time_point host_start_;
  Backend::StepTiming last_;
};

}  // namespace tnl
