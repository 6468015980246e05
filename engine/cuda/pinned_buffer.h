// PinnedBuffer: page-locked host memory for the small per-step copies between
// host and GPU (plan arrays, sampling parameters, sampled tokens). Copies from
// pageable memory are staged by the driver synchronously; from pinned memory
// they are true asynchronous DMA on the stream. Grows, never shrinks; move-only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <utility>

#include "engine/cuda/cuda_status.h"

namespace tnl {

template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { reset(); }
  PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  // Room for at least n elements (contents lost when it grows).
  Status reserve(int64_t n) {
    if (n <= size_) return Status::ok();
    reset();
    void* p = nullptr;
    const int64_t grown = n + n / 4;
    TNL_CUDA_TRY(cudaMallocHost(&p, size_t(grown) * sizeof(T)));
    ptr_ = static_cast<T*>(p);
    size_ = grown;
    return Status::ok();
  }
  // Copies n elements in (growing first); the caller then enqueues the upload from get().
  Status assign(const T* src, int64_t n) {
    TNL_RETURN_IF_ERROR(reserve(n));
    if (n > 0) std::memcpy(ptr_, src, size_t(n) * sizeof(T));
    return Status::ok();
  }
  void reset() {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    size_ = 0;
  }
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace tnl
