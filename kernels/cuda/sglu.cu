// SGLU product p = (a·W1ᵀ) ⊙ (a·W2ᵀ) (model-spec §4, no activation). The two
// projections come from one GEMM over [W1; W2], so h12 rows are [h1 | h2].
// Dependent launches (dependent_launch.cuh): nothing is read before the wait.
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launchers.h"

namespace tnl::cuda {
namespace {

template <typename T>
__global__ void sglu_kernel(const T* h12, int64_t n, int64_t glu, T* p) {
  detail::wait_for_predecessor();
  detail::allow_dependents();
  const int64_t groups = glu / 8;  // 16-byte groups per row
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n * groups; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / groups, c = (i % groups) * 8;
    const auto a = *reinterpret_cast<const detail::Pack8<T>*>(h12 + t * 2 * glu + c);
    const auto b = *reinterpret_cast<const detail::Pack8<T>*>(h12 + t * 2 * glu + glu + c);
    detail::Pack8<T> r;
#pragma unroll
    for (int j = 0; j < 8; ++j) r.v[j] = detail::from_f32<T>(detail::to_f32(a.v[j]) * detail::to_f32(b.v[j]));
    *reinterpret_cast<detail::Pack8<T>*>(p + t * glu + c) = r;
  }
}

template <typename T>
__global__ void sglu_scalar_kernel(const T* h12, int64_t n, int64_t glu, T* p) {
  detail::wait_for_predecessor();
  detail::allow_dependents();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n * glu; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / glu, c = i % glu;
    p[i] = detail::from_f32<T>(detail::to_f32(h12[t * 2 * glu + c]) * detail::to_f32(h12[t * 2 * glu + glu + c]));
  }
}

}  // namespace

template <typename T>
cudaError_t sglu_product(const T* h12, int64_t n, int64_t glu, T* p, cudaStream_t stream) {
  if (n < 0 || glu <= 0 || !h12 || !p) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  const int64_t work = glu % 8 == 0 ? n * glu / 8 : n * glu;
  const int grid = int(std::min<int64_t>(detail::ceil_div(work, 256), 132 * 8));
  return launch_dependent(glu % 8 == 0 ? sglu_kernel<T> : sglu_scalar_kernel<T>, dim3(unsigned(grid)), dim3(256), 0,
                         stream, h12, n, glu, p);
}

template cudaError_t sglu_product<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, __nv_bfloat16*, cudaStream_t);
template cudaError_t sglu_product<__half>(const __half*, int64_t, int64_t, __half*, cudaStream_t);

}  // namespace tnl::cuda
