// DeviceBuffer: an owned cudaMalloc allocation of n elements of T (move-only).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "engine/cuda/cuda_status.h"

namespace tnl {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // Allocates exactly n elements (contents undefined); frees what was held.
  Status allocate(int64_t n) {
    reset();
    if (n <= 0) return Status::ok();
    void* p = nullptr;
    TNL_CUDA_TRY(cudaMalloc(&p, size_t(n) * sizeof(T)));
    ptr_ = static_cast<T*>(p);
    size_ = n;
    return Status::ok();
  }
  // Grows to at least n elements (contents lost when it grows).
  Status reserve(int64_t n) { return n <= size_ ? Status::ok() : allocate(n + n / 4); }
  void reset() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    size_ = 0;
  }
  T* get() const { return ptr_; }
  int64_t size() const { return size_; }
  int64_t bytes() const { return size_ * int64_t(sizeof(T)); }

 private:
  T* ptr_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace tnl
