// SRMSNorm kernels (model-spec §4): y = x / sqrt(mean(x²) + 1e-6), fp32 math.
//  srms_norm: fp32 residual stream → T, the input of the next GEMM (the residual
//    add itself is fused into the GEMMs, beta = 1, so it is not repeated here).
//  norm_gate: the post-attention norm over all D channels times the gate u
//    (row_sum_squares + norm_gate_summed: the same when the channels are split
//    over tensor-parallel ranks and the sums all-reduced in between).
// One CTA (128 threads) per row; a row is read once into registers-by-loop (twice
// from L1/L2 for the second pass: rows are ≤ 16 KB). Launched as dependent
// launches (dependent_launch.cuh): nothing is read before the wait.
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launchers.h"

namespace tnl::cuda {
namespace {

constexpr float kEps = 1e-6f;

template <typename T>
__global__ void srms_norm_kernel(const float* x, int64_t width, const int32_t* row_index, T* y) {
  __shared__ float partial[32];
  detail::wait_for_predecessor();
  detail::allow_dependents();
  const int64_t r = blockIdx.x;
  const float* xr = x + int64_t(row_index ? row_index[r] : r) * width;
  T* yr = y + r * width;
  const bool vec = width % 8 == 0;
  float sum_sq = 0.0f;
  if (vec) {
    for (int64_t i = threadIdx.x * 4; i < width; i += blockDim.x * 4) {
      const float4 a = *reinterpret_cast<const float4*>(xr + i);
      sum_sq += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
    }
  } else {
    for (int64_t i = threadIdx.x; i < width; i += blockDim.x) sum_sq += xr[i] * xr[i];
  }
  const float inv = rsqrtf(detail::block_sum(sum_sq, partial) / float(width) + kEps);
  if (vec) {
    for (int64_t i = threadIdx.x * 8; i < width; i += blockDim.x * 8) {
      const float4 a = *reinterpret_cast<const float4*>(xr + i);
      const float4 b = *reinterpret_cast<const float4*>(xr + i + 4);
      detail::Pack8<T> p;
      p.v[0] = detail::from_f32<T>(a.x * inv); p.v[1] = detail::from_f32<T>(a.y * inv);
      p.v[2] = detail::from_f32<T>(a.z * inv); p.v[3] = detail::from_f32<T>(a.w * inv);
      p.v[4] = detail::from_f32<T>(b.x * inv); p.v[5] = detail::from_f32<T>(b.y * inv);
      p.v[6] = detail::from_f32<T>(b.z * inv); p.v[7] = detail::from_f32<T>(b.w * inv);
      *reinterpret_cast<detail::Pack8<T>*>(yr + i) = p;
    }
  } else {
    for (int64_t i = threadIdx.x; i < width; i += blockDim.x) yr[i] = detail::from_f32<T>(xr[i] * inv);
  }
}

// This thread's share of Σ row[i]² (the caller block-sums it).
template <typename T>
__device__ float row_sum_sq(const T* row, int64_t width, bool vec) {
  float sum_sq = 0.0f;
  if (vec) {
    for (int64_t i = threadIdx.x * 8; i < width; i += blockDim.x * 8) {
      const auto p = *reinterpret_cast<const detail::Pack8<T>*>(row + i);
#pragma unroll
      for (int j = 0; j < 8; ++j) sum_sq += detail::to_f32(p.v[j]) * detail::to_f32(p.v[j]);
    }
  } else {
    for (int64_t i = threadIdx.x; i < width; i += blockDim.x) sum_sq += detail::to_f32(row[i]) * detail::to_f32(row[i]);
  }
  return sum_sq;
}

// sum_sq == nullptr: the row's own sum of squares over `width`; else sum_sq[t],
// the all-reduced sum over norm_width channels (tensor parallelism).
template <typename T>
__global__ void norm_gate_kernel(const T* o, const T* u, int64_t u_stride, int64_t width, const float* sum_sq,
                                 int64_t norm_width, T* g) {
  __shared__ float partial[32];
  detail::wait_for_predecessor();
  detail::allow_dependents();
  const int64_t t = blockIdx.x;
  const T* ot = o + t * width;
  const T* ut = u + t * u_stride;
  T* gt = g + t * width;
  const bool vec = width % 8 == 0 && u_stride % 8 == 0;
  float inv = 0.0f;
  if (sum_sq) {
    inv = rsqrtf(sum_sq[t] / float(norm_width) + kEps);
  } else {
    inv = rsqrtf(detail::block_sum(row_sum_sq(ot, width, vec), partial) / float(width) + kEps);
  }
  if (vec) {
    for (int64_t i = threadIdx.x * 8; i < width; i += blockDim.x * 8) {
      const auto p = *reinterpret_cast<const detail::Pack8<T>*>(ot + i);
      const auto q = *reinterpret_cast<const detail::Pack8<T>*>(ut + i);
      detail::Pack8<T> r;
#pragma unroll
      for (int j = 0; j < 8; ++j) r.v[j] = detail::from_f32<T>(detail::to_f32(p.v[j]) * inv * detail::to_f32(q.v[j]));
      *reinterpret_cast<detail::Pack8<T>*>(gt + i) = r;
    }
  } else {
    for (int64_t i = threadIdx.x; i < width; i += blockDim.x) {
      gt[i] = detail::from_f32<T>(detail::to_f32(ot[i]) * inv * detail::to_f32(ut[i]));
    }
  }
}

template <typename T>
__global__ void row_sum_squares_kernel(const T* o, int64_t width, float* sum_sq) {
  __shared__ float partial[32];
  detail::wait_for_predecessor();
  detail::allow_dependents();
  const int64_t t = blockIdx.x;
  const float s = detail::block_sum(row_sum_sq(o + t * width, width, width % 8 == 0), partial);
  if (threadIdx.x == 0) sum_sq[t] = s;
}

}  // namespace

template <typename T>
cudaError_t srms_norm(const float* x, int64_t width, const int32_t* row_index, int64_t rows, T* y,
                      cudaStream_t stream) {
  if (width <= 0 || rows < 0 || !x || !y) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  return launch_dependent(srms_norm_kernel<T>, dim3(unsigned(rows)), dim3(128), 0, stream, x, width, row_index, y);
}

template <typename T>
cudaError_t norm_gate(const T* o, const T* u, int64_t u_stride, int64_t n, int64_t width, T* g,
                      cudaStream_t stream) {
  if (width <= 0 || n < 0 || u_stride < width || !o || !u || !g) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  return launch_dependent(norm_gate_kernel<T>, dim3(unsigned(n)), dim3(128), 0, stream, o, u, u_stride, width,
                         static_cast<const float*>(nullptr), width, g);
}

template <typename T>
cudaError_t row_sum_squares(const T* o, int64_t n, int64_t width, float* sum_sq, cudaStream_t stream) {
  if (width <= 0 || n < 0 || !o || !sum_sq) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  return launch_dependent(row_sum_squares_kernel<T>, dim3(unsigned(n)), dim3(128), 0, stream, o, width, sum_sq);
}

template <typename T>
cudaError_t norm_gate_summed(const T* o, const T* u, int64_t u_stride, int64_t n, int64_t width,
                             const float* sum_sq, int64_t norm_width, T* g, cudaStream_t stream) {
  if (width <= 0 || norm_width < width || n < 0 || u_stride < width || !o || !u || !g || !sum_sq) {
    return cudaErrorInvalidValue;
  }
  if (n == 0) return cudaSuccess;
  return launch_dependent(norm_gate_kernel<T>, dim3(unsigned(n)), dim3(128), 0, stream, o, u, u_stride, width, sum_sq,
                         norm_width, g);
}

template cudaError_t srms_norm<__nv_bfloat16>(const float*, int64_t, const int32_t*, int64_t, __nv_bfloat16*, cudaStream_t);
template cudaError_t srms_norm<__half>(const float*, int64_t, const int32_t*, int64_t, __half*, cudaStream_t);
template cudaError_t norm_gate<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, int64_t, int64_t, int64_t,
                                              __nv_bfloat16*, cudaStream_t);
template cudaError_t norm_gate<__half>(const __half*, const __half*, int64_t, int64_t, int64_t, __half*, cudaStream_t);
template cudaError_t row_sum_squares<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, float*, cudaStream_t);
template cudaError_t row_sum_squares<__half>(const __half*, int64_t, int64_t, float*, cudaStream_t);
template cudaError_t norm_gate_summed<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, int64_t, int64_t,
                                                     int64_t, const float*, int64_t, __nv_bfloat16*, cudaStream_t);
template cudaError_t norm_gate_summed<__half>(const __half*, const __half*, int64_t, int64_t, int64_t, const float*,
                                              int64_t, __half*, cudaStream_t);

}  // namespace tnl::cuda
