// Tile shapes and shared-memory layout of the Lightning Attention prefill kernels.
//
// A CTA of 4 warps walks one segment of one (sequence, head, value slice) in
// blocks of B = 64 tokens. EK is the key width (e, or 2e on LRPE layers), EV the
// value columns of the slice (the head's e columns are split over e / EV CTAs so
// that a few long sequences still fill the chip). Q, K, V tiles are double
// buffered (cp.async); the state S [EK × EV] stays fp32 in registers, and a T copy
// Sb in shared memory feeds the inter-block product q·S.
// Rows are padded by 8 elements (16 bytes) so that ldmatrix's eight row reads hit
// distinct banks; every array starts on a 128-byte boundary.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/launchers.h"
#include "kernels/cuda/mma.cuh"

namespace tnl::cuda::detail {

constexpr int kLightningBlock = 64;    // B: tokens per block; segments start on multiples of it
constexpr int kLightningWarps = 4;
constexpr int kLightningThreads = 32 * kLightningWarps;

// Value columns per CTA: 64, or e when narrower. For the wide LRPE key (e_k = 256)
// the fp32 state then takes 128 registers a thread: 1 CTA per SM (2 otherwise).
constexpr int lightning_slice(int64_t e) { return e >= 64 ? 64 : int(e); }
// The narrower slice a plan may pick instead (LightningPlan::slice_columns): 32
// columns at e = 128, twice the CTAs; 0 where there is none.
constexpr int lightning_narrow_slice(int64_t e) { return e == 128 ? 32 : 0; }

template <typename T, int EK, int EV, bool kStatesOnly>
struct LightningLayout {
  static constexpr int B = kLightningBlock;
  static constexpr int ldk = EK + 8;  // T: rows of Q and K
  static constexpr int ldv = EV + 8;  // T: rows of V and Sb
  static constexpr size_t up(size_t x) { return (x + 127) / 128 * 128; }
  static constexpr size_t q_bytes = kStatesOnly ? 0 : 2 * B * ldk * sizeof(T);
  static constexpr size_t q = 0;                                   // [2][B][ldk]
  static constexpr size_t k = up(q + q_bytes);                     // [2][B][ldk]
  static constexpr size_t v = up(k + 2 * B * ldk * sizeof(T));     // [2][B][ldv]
  static constexpr size_t sb = up(v + 2 * B * ldv * sizeof(T));    // [EK][ldv]
  static constexpr size_t pw = up(sb + (kStatesOnly ? 0 : EK * ldv * sizeof(T)));  // λ^i, i = 0…B (float)
  static constexpr size_t bytes = up(pw + (B + 1) * sizeof(float));
  static_assert(bytes <= 227 * 1024, "Lightning tile exceeds the 227 KB of shared memory per CTA");
};

// One segment of a plan as its CTAs see it (LightningPlan::segments, 4 ints each).
struct LightningSegmentView {
  int tok0, len, seq;
  bool last;   // the sequence's last segment: it writes the slot
  bool alone;  // its only one: it also starts from the slot (or zero)
};
__device__ __forceinline__ LightningSegmentView lightning_segment(const LightningArgs& a, int seg) {
  const int flags = a.segments[4 * seg + 3];
  const bool last = flags & LightningPlan::kLast;
  return {a.segments[4 * seg], a.segments[4 * seg + 1], a.segments[4 * seg + 2], last,
          (flags & LightningPlan::kFirst) && last};
}

// pw[i] = λ^i for i = 0…B, λ = e^(−rate): every decay of a block is one of these.
// The CTA's threads share the work; read it after a barrier.
__device__ __forceinline__ void fill_decay_powers(float* pw, float rate, int tid, int threads) {
  for (int i = tid; i <= kLightningBlock; i += threads) pw[i] = expf(-rate * float(i));
}

// The fragments both tiles build from registers, in mma.sync's m16n8k16 layouts
// (a warp's rows r_lo = row0 + g and r_hi = r_lo + 8; g = lane / 4, t = lane % 4).
//
// P = scores ⊙ λ^(r−j) over the 16 keys of k-step ks, as the A fragment of P·V:
// kept where j ≤ r < m, else 0 (a select, not a product: padded rows may hold
// anything). c_even, c_odd: the score accumulators of key tiles 2·ks and 2·ks + 1
// (C layout: c[0], c[1] row r_lo, keys j and j + 1; c[2], c[3] row r_hi; j = 8·tile
// + 2t). unmasked: the step lies below the diagonal of a full block.
template <typename T>
__device__ __forceinline__ void masked_scores_fragment(uint32_t (&pa)[4], const float* c_even, const float* c_odd,
                                                       int ks, bool unmasked, int r_lo, int r_hi, int m, int t,
                                                       const float* pw) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {  // key tiles 2ks and 2ks + 1
    const float* c = half ? c_odd : c_even;
    const int j = 8 * (2 * ks + half) + 2 * t;
    auto masked = [&](float x, int r, int col) { return unmasked || (col <= r && r < m) ? x * pw[r - col] : 0.0f; };
    pa[2 * half] = pack2<T>(masked(c[0], r_lo, j), masked(c[1], r_lo, j + 1));
    pa[2 * half + 1] = pack2<T>(masked(c[2], r_hi, j), masked(c[3], r_hi, j + 1));
  }
}

// The key decays λ^(m−1−r) of the block's tokens r = 16·ks + 2t, +1, +8, +9 (0 past
// its m tokens), which scale Kᵀ's A fragments of k-step ks in S's update.
struct KeyDecays {
  float f0, f1, f2, f3;
};
__device__ __forceinline__ KeyDecays key_decays(int ks, int m, int t, const float* pw) {
  auto decay = [&](int r) { return r < m ? pw[m - 1 - r] : 0.0f; };
  const int r = 16 * ks + 2 * t;
  return {decay(r), decay(r + 1), decay(r + 8), decay(r + 9)};
}
template <typename T>
__device__ __forceinline__ void scale_key_fragment(uint32_t (&ka)[4], const KeyDecays& d) {
  ka[0] = scale2<T>(ka[0], d.f0, d.f1);
  ka[1] = scale2<T>(ka[1], d.f0, d.f1);
  ka[2] = scale2<T>(ka[2], d.f2, d.f3);
  ka[3] = scale2<T>(ka[3], d.f2, d.f3);
}

// The scan of segment states between the two passes (lightning_scan.cu).
cudaError_t lightning_scan(const LightningArgs& args, cudaStream_t stream);

// A plan's launches: for sequences cut into segments, the states pass (each
// part's local state: the plan's parts launched as if they were its segments,
// their states in the scratch after the segments') and the scan (each segment's
// entering state) first; then the output pass.
template <typename StatesPass, typename OutputPass>
cudaError_t launch_lightning_passes(const LightningArgs& a, cudaStream_t stream, StatesPass states_pass,
                                    OutputPass output_pass) {
  if (a.num_multi > 0) {
    LightningArgs parts = a;
    parts.segments = a.parts;
    parts.num_segments = a.num_parts;
    parts.scratch = a.part_states();
    cudaError_t err = states_pass(parts);
    if (err == cudaSuccess) err = lightning_scan(a, stream);
    if (err != cudaSuccess) return err;
  }
  return output_pass();
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// The warpgroup-MMA passes of the e_k = 128, 64-column tile (lightning_wgmma.cu),
// for devices where lightning_wgmma_available() (launchers.h).
template <typename T>
cudaError_t lightning_wgmma(const T* q, const T* k, const T* v, const LightningArgs& a, T* o, cudaStream_t stream);

}  // namespace tnl::cuda::detail
