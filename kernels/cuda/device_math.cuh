// Device helpers shared by the kernels: element conversions and 16-byte packs.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace tnl::cuda::detail {

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half(x); }

// 8 elements of a 16-bit type in one 16-byte access.
template <typename T>
struct alignas(16) Pack8 {
  T v[8];
};

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// Sum over a block of blockDim.x threads (multiple of 32, ≤ 1024); `shared` holds 32 floats.
__device__ __forceinline__ float block_sum(float x, float* shared) {
  x = warp_sum(x);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  x = lane < warps ? shared[lane] : 0.0f;
  return warp_sum(x);
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// sin and cos of the LRPE angle θ·t. The product and its reduction to [−π, π] are
// fp64 (an fp32 product already loses ~1e-2 rad at t = 10⁵); the sine and cosine
// of the reduced angle are fp32, as accurate as rounding fp64 results to fp32.
__device__ __forceinline__ void lrpe_sincos(float theta, int64_t pos, float* s, float* c) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  const double angle = double(theta) * double(pos);
  const double turns = rint(angle * (1.0 / kTwoPi));
  sincosf(float(fma(-turns, kTwoPi, angle)), s, c);
}

}  // namespace tnl::cuda::detail
