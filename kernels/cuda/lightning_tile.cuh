// Shared-memory layout and helpers of the Lightning Attention prefill kernels.
//
// Tile shapes: B tokens per block, EK key width, EV value columns per CTA (the
// value dimension e is split into e/EV slices, one CTA each, so that a few long
// sequences still fill the chip). Matrix products use WMMA 16×16×16 with T
// (bf16/fp16) operands and fp32 accumulators; the state S is kept fp32 in shared
// memory and a T copy Sb feeds the inter-block product q·S.
// Rows are padded (+8 T / +4 floats) against bank conflicts; every array starts
// on a 128-byte boundary (WMMA needs 32, cp.async 16).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/launchers.h"

namespace tnl::cuda::detail {

template <typename T, int EK, int EV, int B>
struct LightningLayout {
  static constexpr int kThreads = 256, kWarps = 8;
  static constexpr int ldk = EK + 8;   // T: rows of Q, K, Qd, Kd
  static constexpr int ldv = EV + 8;   // T: rows of V and Sb
  static constexpr int lds = EV + 4;   // float: rows of S and O
  static constexpr int ldsc = B + 4;   // float: rows of the scores
  static constexpr int ldp = B + 8;    // T: rows of P
  static constexpr size_t up(size_t x) { return (x + 127) / 128 * 128; }
  static constexpr size_t q_raw = 0;                                        // [2][B][ldk] T
  static constexpr size_t k_raw = up(q_raw + 2 * B * ldk * sizeof(T));      // [2][B][ldk] T
  static constexpr size_t v_raw = up(k_raw + 2 * B * ldk * sizeof(T));      // [2][B][ldv] T
  static constexpr size_t qd = up(v_raw + 2 * B * ldv * sizeof(T));         // [B][ldk] T, λ^(r+1) q_r
  static constexpr size_t kd = up(qd + B * ldk * sizeof(T));                // [B][ldk] T, λ^(m−1−r) k_r
  static constexpr size_t s = up(kd + B * ldk * sizeof(T));                 // [EK][lds] float
  static constexpr size_t sb = up(s + EK * lds * sizeof(float));            // [EK][ldv] T
  static constexpr size_t sc = up(sb + EK * ldv * sizeof(T));               // scores [B][ldsc], later O [B][lds]
  static constexpr size_t p = up(sc + B * (ldsc > lds ? ldsc : lds) * sizeof(float));  // [B][ldp] T
  static constexpr size_t pw = up(p + B * ldp * sizeof(T));                 // λ^i, i = 0…B
  static constexpr size_t bytes = up(pw + (B + 1) * sizeof(float));
  static_assert(bytes <= 227 * 1024, "Lightning tile exceeds the 227 KB of shared memory per CTA");
};

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Value slice width per CTA for head width e (e ∈ {16, 32, 64, 128, 256}).
inline int lightning_slice(int64_t e) { return e >= 64 ? 64 : int(e); }

// Segment scan and inter-segment correction (lightning_carry.cu).
template <typename T>
cudaError_t lightning_carry(const T* q, const LightningArgs& args, T* o, cudaStream_t stream);

}  // namespace tnl::cuda::detail
