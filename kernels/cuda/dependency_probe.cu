// delayed_copy (dependency_probe.h).
#include "kernels/cuda/dependency_probe.h"

#include <algorithm>

#include "kernels/cuda/dependent_launch.cuh"

namespace tnl::cuda {
namespace {

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void delayed_copy_kernel(const uint4* src, uint4* dst, int64_t n, int64_t delay_ns) {
  detail::allow_dependents();  // first: a dependent may be placed from now on
  detail::wait_for_predecessor();
  const uint64_t start = global_ns();
  while (global_ns() - start < uint64_t(delay_ns)) {
  }
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    dst[i] = src[i];
  }
}

}  // namespace

cudaError_t delayed_copy(const void* src, void* dst, int64_t bytes, int64_t delay_ns, cudaStream_t stream) {
  if (bytes < 0 || bytes % 16 != 0 || delay_ns < 0 || !src || !dst) return cudaErrorInvalidValue;
  if ((reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst)) % 16 != 0) return cudaErrorInvalidValue;
  if (bytes == 0) return cudaSuccess;
  const int64_t n = bytes / 16;
  const unsigned blocks = unsigned(std::min<int64_t>((n + 255) / 256, 1024));
  delayed_copy_kernel<<<blocks, 256, 0, stream>>>(static_cast<const uint4*>(src), static_cast<uint4*>(dst), n,
                                                  delay_ns);
  return cudaGetLastError();
}

}  // namespace tnl::cuda
