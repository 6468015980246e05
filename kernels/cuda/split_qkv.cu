// Split of the qkvu GEMM output into head-major q, k, v with φ and LRPE fused
// (model-spec §4): one read of qkvu's q|k|v columns, one write of q, k (ek wide)
// and v. Thread per (token, head, 8 channels): 16-byte loads and stores when the
// head width is a multiple of 8 (every shape the Lightning tiles cover), else a
// thread per channel. LRPE angles: detail::lrpe_sincos.
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launchers.h"

namespace tnl::cuda {
namespace {

using detail::Pack8;

template <typename T>
__global__ void split_qkv_vec_kernel(const T* qkvu, int64_t n, int64_t heads, int64_t e, Activation act,
                                     const float* theta, const int32_t* positions, T* q, T* k, T* v) {
  const int64_t D = heads * e, groups = D / 8;
  const int64_t ek = theta ? 2 * e : e;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n * groups;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t tkn = idx / groups, hi = (idx % groups) * 8, h = hi / e, i = hi % e;
    const T* row = qkvu + tkn * 4 * D;
    const Pack8<T> qr = *reinterpret_cast<const Pack8<T>*>(row + hi);
    const Pack8<T> kr = *reinterpret_cast<const Pack8<T>*>(row + D + hi);
    *reinterpret_cast<Pack8<T>*>(v + (h * n + tkn) * e + i) = *reinterpret_cast<const Pack8<T>*>(row + 2 * D + hi);
    T* qo = q + (h * n + tkn) * ek + i;
    T* ko = k + (h * n + tkn) * ek + i;
    Pack8<T> qc, kc, qs, ks;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float qv = apply_activation(act, detail::to_f32(qr.v[j]));
      const float kv = apply_activation(act, detail::to_f32(kr.v[j]));
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
  if (e % 8 == 0) {
    const int grid = int(std::min<int64_t>(detail::ceil_div(n * heads * e / 8, 256), 132 * 16));
    split_qkv_vec_kernel<<<grid, 256, 0, stream>>>(qkvu, n, heads, e, act, theta, positions, q, k, v);
  } else {
    const int grid = int(std::min<int64_t>(detail::ceil_div(n * heads * e, 256), 132 * 16));
    split_qkv_kernel<<<grid, 256, 0, stream>>>(qkvu, n, heads, e, act, theta, positions, q, k, v);
  }
  return cudaGetLastError();
}

template cudaError_t split_qkv<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, int64_t, Activation, const float*,
                                              const int32_t*, __nv_bfloat16*, __nv_bfloat16*, __nv_bfloat16*, cudaStream_t);
template cudaError_t split_qkv<__half>(const __half*, int64_t, int64_t, int64_t, Activation, const float*,
                                       const int32_t*, __half*, __half*, __half*, cudaStream_t);

}  // namespace tnl::cuda
