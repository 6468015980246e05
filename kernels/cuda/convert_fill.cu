// Element conversion of uploaded weights and reproducible random fills (bench, tests).
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launchers.h"

namespace tnl::cuda {
namespace {

using detail::from_f32;
using detail::to_f32;

template <typename S, typename T>
__global__ void convert_kernel(const S* src, int64_t n, T* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    dst[i] = from_f32<T>(to_f32(src[i]));
  }
}

// splitmix64 of (seed, i): independent of the launch shape.
__device__ __forceinline__ float uniform_at(uint64_t seed, int64_t i) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (uint64_t(i) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return float(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // [−1, 1)
}

template <typename T>
__global__ void fill_kernel(T* dst, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    dst[i] = from_f32<T>(scale * uniform_at(seed, i));
  }
}

int grid_for(int64_t n) { return int(std::min<int64_t>(detail::ceil_div(n, 256), 132 * 16)); }

}  // namespace

template <typename T>
cudaError_t convert_elements(ElementType src_type, const void* src, int64_t n, T* dst, cudaStream_t stream) {
  if (n < 0 || (n > 0 && (!src || !dst))) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  switch (src_type) {
    case ElementType::kF32: convert_kernel<<<grid_for(n), 256, 0, stream>>>(static_cast<const float*>(src), n, dst); break;
    case ElementType::kBF16: convert_kernel<<<grid_for(n), 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(src), n, dst); break;
    case ElementType::kF16: convert_kernel<<<grid_for(n), 256, 0, stream>>>(static_cast<const __half*>(src), n, dst); break;
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t fill_uniform(T* dst, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
  if (n < 0 || (n > 0 && !dst)) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  fill_kernel<<<grid_for(n), 256, 0, stream>>>(dst, n, seed, scale);
  return cudaGetLastError();
}

cudaError_t fill_uniform_f32(float* dst, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
  return fill_uniform<float>(dst, n, seed, scale, stream);
}

template cudaError_t convert_elements<__nv_bfloat16>(ElementType, const void*, int64_t, __nv_bfloat16*, cudaStream_t);
template cudaError_t convert_elements<__half>(ElementType, const void*, int64_t, __half*, cudaStream_t);
template cudaError_t convert_elements<float>(ElementType, const void*, int64_t, float*, cudaStream_t);
template cudaError_t fill_uniform<__nv_bfloat16>(__nv_bfloat16*, int64_t, uint64_t, float, cudaStream_t);
template cudaError_t fill_uniform<__half>(__half*, int64_t, uint64_t, float, cudaStream_t);

}  // namespace tnl::cuda
