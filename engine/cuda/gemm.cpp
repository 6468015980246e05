#include "engine/cuda/gemm.h"

#include <type_traits>

#include "engine/cuda/cuda_status.h"

namespace tnl {
namespace {

template <typename T>
constexpr cudaDataType_t data_type() {
  return std::is_same_v<T, __nv_bfloat16> ? CUDA_R_16BF : CUDA_R_16F;
}

// Row-major Y[n,out] is column-major Yᶜ[out,n] = Wᶜᵀ·Xᶜ, where Wᶜ = W viewed
// column-major ([in,out]) and Xᶜ = X viewed column-major ([in,n]).
template <typename T>
Status gemm(cublasHandle_t handle, const T* x, const T* w, int64_t n, int64_t in, int64_t out, void* y,
            cudaDataType_t y_type, float beta) {
  if (n == 0) return Status::ok();
  const float alpha = 1.0f;
  TNL_CUBLAS_TRY(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(out), int(n), int(in), &alpha, w, data_type<T>(),
                              int(in), x, data_type<T>(), int(in), &beta, y, y_type, int(out), CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
  return Status::ok();
}

}  // namespace

template <typename T>
Status gemm_xwt(cublasHandle_t handle, const T* x, const T* w, int64_t n, int64_t in, int64_t out, T* y) {
  return gemm(handle, x, w, n, in, out, y, data_type<T>(), 0.0f);
}

template <typename T>
Status gemm_xwt_f32(cublasHandle_t handle, const T* x, const T* w, int64_t n, int64_t in, int64_t out, float* y,
                    float beta) {
  return gemm(handle, x, w, n, in, out, y, CUDA_R_32F, beta);
}

template Status gemm_xwt<__nv_bfloat16>(cublasHandle_t, const __nv_bfloat16*, const __nv_bfloat16*, int64_t, int64_t,
                                        int64_t, __nv_bfloat16*);
template Status gemm_xwt<__half>(cublasHandle_t, const __half*, const __half*, int64_t, int64_t, int64_t, __half*);
template Status gemm_xwt_f32<__nv_bfloat16>(cublasHandle_t, const __nv_bfloat16*, const __nv_bfloat16*, int64_t,
                                            int64_t, int64_t, float*, float);
template Status gemm_xwt_f32<__half>(cublasHandle_t, const __half*, const __half*, int64_t, int64_t, int64_t, float*,
                                     float);

}  // namespace tnl
