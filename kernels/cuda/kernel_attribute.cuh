// A kernel's dynamic shared-memory limit, raised once per device instead of on
// every launch: a prefill step launches each Lightning pass once a layer, and
// cudaFuncSetAttribute is host time the GPU may wait for (tnl-bench's host section,
// H100: a Lightning launch cost the host 5.3-5.9 us setting it each time, 3.7-4.5 us
// with this memo).
//
// The memo only mirrors what the driver already holds for this process (a
// function's attribute lasts as long as its context; nothing here resets a
// device). Every caller passes the same bytes for a kernel on a device, so the
// memo never claims more than was set. Threads: any; the memo is atomic.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <atomic>

namespace tnl::cuda {

inline constexpr int kAttributeMemoDevices = 64;  // devices past this set the attribute every time

template <auto Kernel>
cudaError_t reserve_dynamic_shared_memory(int bytes) {
  static std::array<std::atomic<int>, kAttributeMemoDevices> reserved{};  // per device: bytes set (0: none)
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  const bool memo = device >= 0 && device < kAttributeMemoDevices;
  if (memo && reserved[size_t(device)].load(std::memory_order_acquire) >= bytes) return cudaSuccess;
  err = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (err == cudaSuccess && memo) reserved[size_t(device)].store(bytes, std::memory_order_release);
  return err;
}

}  // namespace tnl::cuda
