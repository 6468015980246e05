// Split of the qkvu GEMM output into head-major q, k, v with φ and LRPE fused
// (model-spec §4): one read of qkvu's q|k|v columns, one write of q, k (ek wide)
// and v. Thread per (token, head, 8 channels): 16-byte loads and stores when the
// head width is a multiple of 8 (every shape the Lightning tiles cover), else a
// thread per channel. LRPE angles: detail::lrpe_sincos.
//
// The 16-byte path is memory-bound only if its arithmetic stays small: its index
// math is 32-bit (64-bit division by a runtime divisor is a long software
// routine; it did four an item), and φ uses the hardware exponential and division
// (FastMath: a few ulp of fp32, far below the bf16/fp16 rounding of the
// result). Both together took it from 60% to 84% of its memory floor on the H200.
//
// Dependent launches (dependent_launch.cuh): qkvu is the GEMM's output, so
// nothing is read before the wait; the Lightning passes that follow start as
// this launch's last CTAs run.
#include <algorithm>

#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_attribute.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launchers.h"

namespace tnl::cuda {
namespace {

using detail::Pack8;

// φ's exp and div as the hardware approximates them (silu at x → −∞: x / ∞ = 0).
struct FastMath {
  __device__ float exp(float x) const { return __expf(x); }
  __device__ float div(float n, float d) const { return __fdividef(n, d); }
};

// Tokens [tok0, tok0 + count) of the n; count · D / 8 < 2³¹ (the launcher cuts).
template <typename T>
__global__ void split_qkv_vec_kernel(const T* qkvu, int64_t n, int64_t tok0, int32_t count, int32_t heads, int32_t e,
                                     Activation act, const float* theta, const int32_t* positions, T* q, T* k, T* v) {
  detail::wait_for_predecessor();
  detail::allow_dependents();
  const int32_t D = heads * e, groups = D / 8;
  const int32_t ek = theta ? 2 * e : e;
  for (int32_t idx = blockIdx.x * blockDim.x + threadIdx.x; idx < count * groups; idx += gridDim.x * blockDim.x) {
    const int32_t t = idx / groups, hi = (idx - t * groups) * 8, h = hi / e, i = hi - h * e;
    const int64_t tkn = tok0 + t, out = int64_t(h) * n + tkn;
    const T* row = qkvu + tkn * 4 * D;
    const Pack8<T> qr = *reinterpret_cast<const Pack8<T>*>(row + hi);
    const Pack8<T> kr = *reinterpret_cast<const Pack8<T>*>(row + D + hi);
    *reinterpret_cast<Pack8<T>*>(v + out * e + i) = *reinterpret_cast<const Pack8<T>*>(row + 2 * D + hi);
    T* qo = q + out * ek + i;
    T* ko = k + out * ek + i;
    Pack8<T> qc, kc, qs, ks;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float qv = apply_activation(act, detail::to_f32(qr.v[j]), FastMath{});
      const float kv = apply_activation(act, detail::to_f32(kr.v[j]), FastMath{});
      if (theta) {
        float sn, cs;
        detail::lrpe_sincos(theta[h * e + i + j], positions[tkn], &sn, &cs);
        qc.v[j] = detail::from_f32<T>(qv * cs);
        kc.v[j] = detail::from_f32<T>(kv * cs);
        qs.v[j] = detail::from_f32<T>(qv * sn);
        ks.v[j] = detail::from_f32<T>(kv * sn);
      } else {
        qc.v[j] = detail::from_f32<T>(qv);
        kc.v[j] = detail::from_f32<T>(kv);
      }
    }
    *reinterpret_cast<Pack8<T>*>(qo) = qc;
    *reinterpret_cast<Pack8<T>*>(ko) = kc;
    if (theta) {
      *reinterpret_cast<Pack8<T>*>(qo + e) = qs;
      *reinterpret_cast<Pack8<T>*>(ko + e) = ks;
    }
  }
}

template <typename T>
__global__ void split_qkv_kernel(const T* qkvu, int64_t n, int64_t heads, int64_t e, Activation act,
                                 const float* theta, const int32_t* positions, T* q, T* k, T* v) {
  detail::wait_for_predecessor();
  detail::allow_dependents();
  const int64_t D = heads * e;
  const int64_t ek = theta ? 2 * e : e;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n * D; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = idx / D, hi = idx % D, h = hi / e, i = hi % e;
    const T* row = qkvu + t * 4 * D;
    const float qv = apply_activation(act, detail::to_f32(row[hi]));
    const float kv = apply_activation(act, detail::to_f32(row[D + hi]));
    v[(h * n + t) * e + i] = row[2 * D + hi];
    T* qo = q + (h * n + t) * ek;
    T* ko = k + (h * n + t) * ek;
    if (theta) {
      float s, c;
      detail::lrpe_sincos(theta[h * e + i], positions[t], &s, &c);
      qo[i] = detail::from_f32<T>(qv * c);
      qo[e + i] = detail::from_f32<T>(qv * s);
      ko[i] = detail::from_f32<T>(kv * c);
      ko[e + i] = detail::from_f32<T>(kv * s);
    } else {
      qo[i] = detail::from_f32<T>(qv);
      ko[i] = detail::from_f32<T>(kv);
    }
  }
}

}  // namespace

template <typename T>
cudaError_t split_qkv(const T* qkvu, int64_t n, int64_t heads, int64_t e, Activation act, const float* theta,
                      const int32_t* positions, T* q, T* k, T* v, cudaStream_t stream) {
  if (n < 0 || heads <= 0 || e <= 0 || !qkvu || !q || !k || !v || (theta && !positions)) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  // Grid-stride loops: 16 CTAs of 256 threads an SM keep every SM's loads in flight.
  const int sms = current_device_attribute(cudaDevAttrMultiProcessorCount);
  const int64_t max_grid = int64_t(sms > 0 ? sms : 132) * 16;
  if (e % 8 == 0 && heads * e <= (int64_t(1) << 24)) {
    const int64_t groups = heads * e / 8, per_launch = std::max<int64_t>(1, INT32_MAX / groups / 2);
    for (int64_t tok0 = 0; tok0 < n; tok0 += per_launch) {
      const int64_t count = std::min(per_launch, n - tok0);
      const int grid = int(std::min<int64_t>(detail::ceil_div(count * groups, 256), max_grid));
      const cudaError_t err = launch_dependent(split_qkv_vec_kernel<T>, dim3(unsigned(grid)), dim3(256), 0, stream, qkvu,
                                               n, tok0, int32_t(count), int32_t(heads), int32_t(e), act, theta,
                                               positions, q, k, v);
      if (err != cudaSuccess) return err;
    }
    return cudaSuccess;
  }
  const int grid = int(std::min<int64_t>(detail::ceil_div(n * heads * e, 256), max_grid));
  return launch_dependent(split_qkv_kernel<T>, dim3(unsigned(grid)), dim3(256), 0, stream, qkvu, n, heads, e, act, theta,
                         positions, q, k, v);
}

template cudaError_t split_qkv<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, int64_t, Activation, const float*,
                                              const int32_t*, __nv_bfloat16*, __nv_bfloat16*, __nv_bfloat16*, cudaStream_t);
template cudaError_t split_qkv<__half>(const __half*, int64_t, int64_t, int64_t, Activation, const float*,
                                       const int32_t*, __half*, __half*, __half*, cudaStream_t);

}  // namespace tnl::cuda
