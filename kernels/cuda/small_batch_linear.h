// Small-batch linear layer (decode, 1 ≤ n ≤ 16 token rows): one memory-bound
// launch that fuses the row-wise ops of a layer (model-spec §4) into the matrix
// product y = a · Wᵀ, so that a layer is four of these plus the attention:
//
//   1. qkvu  = SRMSNorm(x) · Wqkvuᵀ                   kNormF32   → kStoreT
//   2. x    += (SRMSNorm(o) ⊙ u) · Woutᵀ              kNormGateT → kAddF32
//   3. p     = (SRMSNorm(x)·W1ᵀ) ⊙ (SRMSNorm(x)·W2ᵀ)   kNormF32   → kGluProductT
//   4. x    += p · W3ᵀ                                kPlainT    → kAddF32
//
// Numerics: the transformed input a [n, in] is rounded to T before the product,
// exactly as the unfused path feeds the GEMM its T inputs; the product accumulates
// in fp32, and the bias and the epilogue are applied in fp32 before the one final
// rounding (kStoreT, kGluProductT) or the fp32 add (kAddF32). The GLU product is
// formed from the fp32 sums, where the unfused path rounds both halves to T first.
// The summation order is not cuBLAS's: results agree to rounding, not bit for bit.
//
// All tensors are row-major and contiguous unless a stride is given; W is
// [rows, in] (PyTorch layout). Any combination of input and output mode is
// accepted. Outputs must not alias inputs (the residual of kAddF32 included).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tnl::cuda {

// How the input row a[t, :] (width `in`) is formed from the arguments.
enum class LinearInput {
  kNormF32,    // a = SRMSNorm(x_f32[t, :])                 (the fp32 residual stream)
  kNormGateT,  // a = SRMSNorm(x[t, :]) ⊙ gate[t, :]        (norm over all `in` channels)
  kPlainT,     // a = x[t, :]
};

// What is done with h = a · Wᵀ + bias.
enum class LinearOutput {
  kStoreT,        // y[t, j] = T(h[t, j]),             W [out, in], bias [out]
  kAddF32,        // residual[t, j] += h[t, j],        W [out, in], bias [out]
  kGluProductT,   // y[t, j] = T(h[t, j] · h[t, out + j]), W = [W1; W2] [2·out, in], bias [2·out]
};

// Most token rows one launch takes (the n of the mma tile).
constexpr int64_t kSmallBatchMaxRows = 16;

template <typename T>
struct SmallBatchLinearArgs {
  int64_t n = 0;    // token rows, 0 … kSmallBatchMaxRows (0: nothing to do)
  int64_t in = 0;   // input width (any size ≥ 1; multiples of 8 take the 16-byte path)
  int64_t out = 0;  // output width (kGluProductT: G, the width of the product)
  LinearInput input = LinearInput::kPlainT;
  LinearOutput output = LinearOutput::kStoreT;
  const float* x_f32 = nullptr;  // kNormF32: [n, in]
  const T* x = nullptr;          // kNormGateT (o) and kPlainT: [n, in]
  const T* gate = nullptr;       // kNormGateT: u, row t at gate + t·gate_stride
  int64_t gate_stride = 0;       // elements, ≥ in
  const T* weight = nullptr;     // [out, in], or [2·out, in] for kGluProductT
  const T* bias = nullptr;       // optional: [out], or [2·out] for kGluProductT
  T* y = nullptr;                // kStoreT, kGluProductT: [n, out]
  float* residual = nullptr;     // kAddF32: [n, out], added into (never overwritten)
};

// Whether n rows of width `in` of an element of `element_bytes` fit the kernel's
// shared memory on the current device (n ≤ kSmallBatchMaxRows included). About
// n · in · element_bytes ≤ 219 KB on Hopper: in ≤ 14,208 at n = 8 and 6,912 at n = 16 in bf16.
bool small_batch_linear_fits(int64_t n, int64_t in, int64_t element_bytes);

// Enqueues the layer on `stream`. cudaErrorInvalidValue for a bad shape, a missing
// pointer of the chosen modes, or inputs that do not fit (small_batch_linear_fits);
// never aborts. Streams the weight once with 16-byte loads when `in` is a multiple
// of 8 and `weight` is 16-byte aligned, else element by element (slower, same result).
template <typename T>
cudaError_t small_batch_linear(const SmallBatchLinearArgs<T>& args, cudaStream_t stream);

}  // namespace tnl::cuda
