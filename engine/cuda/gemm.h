// Row-major projections through cuBLAS: Y[n, out] = X[n, in] · W[out, in]ᵀ,
// bf16/fp16 operands, fp32 accumulation; Y is T, or the fp32 residual stream
// with beta = 1 (the residual add fused into the GEMM).
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "engine/status.h"

namespace tnl {

template <typename T>
Status gemm_xwt(cublasHandle_t handle, const T* x, const T* w, int64_t n, int64_t in, int64_t out, T* y);

// y (fp32) = beta · y + x · wᵀ
template <typename T>
Status gemm_xwt_f32(cublasHandle_t handle, const T* x, const T* w, int64_t n, int64_t in, int64_t out, float* y,
                    float beta);

}  // namespace tnl
