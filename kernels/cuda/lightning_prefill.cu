// Lightning Attention prefill (model-spec §5.3) over a variable-length batch, and its launcher.
//
// CTA = (segment, head, value slice), 4 warps, blocks of B = 64 tokens. Per block
// of m rows with entering state S:
//   O = diag(λ^(r+1)) (Q Sb) + ((Q Kᵀ) ⊙ M) V        M[r,j] = λ^(r−j) for j ≤ r < m
//   S = λ^m S + Kᵀ diag(λ^(m−1−r)) V
// Warp w owns rows [16w, 16w+16) of the block's O (scores of the causal key tiles
// only) and a quarter of S's tiles, which stay fp32 in registers for the whole
// segment. The masked scores go from accumulators straight into the A operand of
// P·V; the decays scale fragments in registers. Two barriers per block: tiles
// landed (cp.async, double buffered) and Sb consumed before it is rewritten.
//
// The CTA grid is (segment, head, value slice); at e = 128 a slice is 64 columns,
// or 32 when the plan says so (plan_lightning: when 64 would leave SMs idle).
//
// A sequence cut into several segments (lightning_plan.cu) takes three launches:
//   1. states: the local state from zero (the S update only) of each part of each
//      non-last segment (the plan's parts: finer than the segments where these
//      alone would leave SMs idle)
//   2. scan (lightning_scan.cu): the state entering every segment, into scratch
//   3. outputs: every segment from its entering state; the last one writes the slot.
// A sequence of one segment reads and writes its slot in launch 3 alone.
//
// On sm_90a the e_k = 128, 64-column tile runs on warpgroup MMA instead
// (lightning_wgmma.cu: same plan, same passes, the same bits); this file's
// mma.sync kernel takes the other shapes, and all of them elsewhere.
//
// Every pass is a dependent launch (dependent_launch.cuh): a CTA computes its
// decays (from the rates, weights) before the wait, reads nothing the chain
// writes until after it, and then starts the first block's tile loads before it
// loads its entering state, so that the two latencies overlap.
//
// Resources (sm_90a, nvcc 13.0, -Xptxas -v, bf16, no spills): e_k = 128, 64 columns:
// 222 registers and 107 KB of shared memory, 2 CTAs per SM; e_k = 256: 237
// registers and 191 KB, 1 CTA per SM. The states-only pass: 159 / 224 registers.
// 32 columns (a short prompt's launch, LightningArgs::slice_columns): 165 / 201
// registers, 2 / 1 CTAs per SM.
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kernel_attribute.cuh"
#include "kernels/cuda/lightning_tile.cuh"
#include "kernels/cuda/mma.cuh"

namespace tnl::cuda {
namespace {

using detail::kLightningBlock;
using detail::kLightningThreads;
using detail::ldmatrix_x4;
using detail::ldmatrix_x4_trans;
using detail::mma_16816;
using detail::pack2;
using detail::scale2;

template <typename T, int EK, int EV, bool kStatesOnly>
__global__ void __launch_bounds__(kLightningThreads, EK >= 256 ? 1 : 2)
    lightning_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, LightningArgs a,
                     T* __restrict__ o) {
  using L = detail::LightningLayout<T, EK, EV, kStatesOnly>;
  constexpr int B = kLightningBlock, MT = EK / 16, NT = EV / 8;
  // State tiles per warp: whole m-tile rows when there are ≥ 4 of them, else halves of the columns.
  constexpr int kWarpsPerMT = MT >= 4 ? 1 : 4 / MT;
  constexpr int kSMT = MT >= 4 ? MT / 4 : 1, kSNT = NT / kWarpsPerMT;
  static_assert(NT % 2 == 0 && kSNT % 2 == 0, "ldmatrix.x4 loads n-tiles in pairs");
  extern __shared__ __align__(128) unsigned char smem[];
  T* q_s = reinterpret_cast<T*>(smem + L::q);
  T* k_s = reinterpret_cast<T*>(smem + L::k);
  T* v_s = reinterpret_cast<T*>(smem + L::v);
  T* sb = reinterpret_cast<T*>(smem + L::sb);
  float* pw = reinterpret_cast<float*>(smem + L::pw);  // λ^i: every decay of a block is one of these

  const int seg = blockIdx.x, h = blockIdx.y, slice = blockIdx.z;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const detail::LightningSegmentView sv = detail::lightning_segment(a, seg);
  const int tok0 = sv.tok0, len = sv.len, seq = sv.seq;
  const bool last = sv.last, alone = sv.alone;
  const int64_t n = a.total_tokens, e = a.e, D = a.heads * e, state = int64_t(EK) * e;
  detail::fill_decay_powers(pw, a.rates[h], tid, kLightningThreads);
  const T* qh = q + (int64_t(h) * n + tok0) * EK;
  const T* kh = k + (int64_t(h) * n + tok0) * EK;
  const T* vh = v + (int64_t(h) * n + tok0) * e + slice * EV;
  float* slot_S = a.layer_state + int64_t(a.seq_slot[seq]) * a.slot_stride + h * state + slice * EV;
  float* scratch_S = a.scratch + (int64_t(seg) * a.heads + h) * state + slice * EV;

  // This warp's tiles of S: fp32 C fragments, element (row, col) of the head's [EK × e] state.
  const int s_m0 = (warp / kWarpsPerMT) * kSMT, s_n0 = (warp % kWarpsPerMT) * kSNT;
  float s_acc[kSMT][kSNT][4];
  // f(pair of accumulators, row, col) for each of this warp's pairs (c0,c1 / c2,c3) of S.
  auto each_state_pair = [&](auto f) {
#pragma unroll
    for (int mi = 0; mi < kSMT; ++mi) {
#pragma unroll
      for (int ni = 0; ni < kSNT; ++ni) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          f(s_acc[mi][ni][2 * half], s_acc[mi][ni][2 * half + 1], (s_m0 + mi) * 16 + g + 8 * half,
            (s_n0 + ni) * 8 + 2 * t);
        }
      }
    }
  };

  // Rows past the segment's end are zero: they must add nothing to P·V and Kᵀ·V.
  auto load_block = [&](int bi, int buf) {
    const int m = min(B, len - bi * B);
    const int64_t t0 = int64_t(bi) * B;
    T* qb = q_s + buf * B * L::ldk;
    T* kb = k_s + buf * B * L::ldk;
    T* vb = v_s + buf * B * L::ldv;
    const uint4 zero = make_uint4(0, 0, 0, 0);
    for (int idx = tid; idx < B * (EK / 8); idx += kLightningThreads) {
      const int r = idx / (EK / 8), c = (idx % (EK / 8)) * 8;
      if (r < m) {
        if (!kStatesOnly) detail::cp_async16(qb + r * L::ldk + c, qh + (t0 + r) * EK + c);
        detail::cp_async16(kb + r * L::ldk + c, kh + (t0 + r) * EK + c);
      } else {
        if (!kStatesOnly) *reinterpret_cast<uint4*>(qb + r * L::ldk + c) = zero;
        *reinterpret_cast<uint4*>(kb + r * L::ldk + c) = zero;
      }
    }
    for (int idx = tid; idx < B * (EV / 8); idx += kLightningThreads) {
      const int r = idx / (EV / 8), c = (idx % (EV / 8)) * 8;
      if (r < m) {
        detail::cp_async16(vb + r * L::ldv + c, vh + (t0 + r) * e + c);
      } else {
        *reinterpret_cast<uint4*>(vb + r * L::ldv + c) = zero;
      }
    }
  };

  // ldmatrix row addresses (see mma.cuh): A from row-major tiles, B from
  // row-major [n × k] (non-transposed) or [k × n] (transposed) tiles.
  const int a_row = (lane & 7) + ((lane >> 3) & 1) * 8, a_col = (lane >> 4) * 8;
  const int bn_row = (lane & 7) + (lane >> 4) * 8, bn_col = ((lane >> 3) & 1) * 8;

  detail::wait_for_predecessor();  // q, k, v, the scan's entering states and the slots are written before
  detail::allow_dependents();
  const int num_blocks = (len + B - 1) / B;
  if (num_blocks > 0) load_block(0, 0);
  detail::cp_async_commit();

  const float* in = kStatesOnly ? nullptr : alone ? (a.seq_fresh[seq] ? nullptr : slot_S) : scratch_S;
  each_state_pair([&](float& lo, float& hi, int row, int col) {
    const float2 x = in ? *reinterpret_cast<const float2*>(in + row * e + col) : float2{0, 0};
    lo = x.x;
    hi = x.y;
  });
  auto write_sb = [&] {
    each_state_pair([&](float& lo, float& hi, int row, int col) {
      *reinterpret_cast<uint32_t*>(sb + row * L::ldv + col) = pack2<T>(lo, hi);
    });
  };
  if (!kStatesOnly) write_sb();
  for (int bi = 0; bi < num_blocks; ++bi) {
    if (bi + 1 < num_blocks) load_block(bi + 1, (bi + 1) & 1);
    detail::cp_async_commit();
    detail::cp_async_wait<1>();
    __syncthreads();  // block bi's tiles, and Sb of the state entering it, are in place
    const int m = min(B, len - bi * B);
    const T* Q = q_s + (bi & 1) * B * L::ldk;
    const T* K = k_s + (bi & 1) * B * L::ldk;
    const T* V = v_s + (bi & 1) * B * L::ldv;

    if (!kStatesOnly) {
      const int row0 = 16 * warp;
      float o_acc[NT][4] = {};
      float p_acc[B / 8][4] = {};
      // Q·Sb (inter) and Q·Kᵀ (scores of the key tiles at or before this warp's rows) share the k-loop.
#pragma unroll
      for (int ks = 0; ks < EK / 16; ++ks) {
        uint32_t qa[4];
        ldmatrix_x4(qa, Q + (row0 + a_row) * L::ldk + 16 * ks + a_col);
#pragma unroll
        for (int np = 0; np < NT / 2; ++np) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, sb + (16 * ks + a_row) * L::ldv + 16 * np + a_col);
          mma_16816<T>(o_acc[2 * np], qa, b[0], b[1]);
          mma_16816<T>(o_acc[2 * np + 1], qa, b[2], b[3]);
        }
#pragma unroll
        for (int jp = 0; jp < B / 16; ++jp) {
          if (jp > warp) continue;
          uint32_t b[4];
          ldmatrix_x4(b, K + (16 * jp + bn_row) * L::ldk + 16 * ks + bn_col);
          mma_16816<T>(p_acc[2 * jp], qa, b[0], b[1]);
          mma_16816<T>(p_acc[2 * jp + 1], qa, b[2], b[3]);
        }
      }
      // Inter rows take λ^(r+1).
      const int r_lo = row0 + g, r_hi = row0 + g + 8;
      const float d_lo = pw[r_lo + 1], d_hi = pw[r_hi + 1];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        o_acc[nt][0] *= d_lo;
        o_acc[nt][1] *= d_lo;
        o_acc[nt][2] *= d_hi;
        o_acc[nt][3] *= d_hi;
      }
      // P = scores ⊙ λ^(r−j) on j ≤ r < m, then P·V. Only the diagonal key tiles and a
      // partial block need the mask (a select, not a product: padded rows may hold anything).
      const bool full = m == B;
#pragma unroll
      for (int jp = 0; jp < B / 16; ++jp) {
        if (jp > warp) continue;
        const bool unmasked = full && jp < warp;
        uint32_t pa[4];  // A fragment: (rows g, keys 0-7), (rows g+8, keys 0-7), (g, 8-15), (g+8, 8-15)
        detail::masked_scores_fragment<T>(pa, p_acc[2 * jp], p_acc[2 * jp + 1], jp, unmasked, r_lo, r_hi, m, t, pw);
#pragma unroll
        for (int np = 0; np < NT / 2; ++np) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, V + (16 * jp + a_row) * L::ldv + 16 * np + a_col);
          mma_16816<T>(o_acc[2 * np], pa, b[0], b[1]);
          mma_16816<T>(o_acc[2 * np + 1], pa, b[2], b[3]);
        }
      }
      T* ob = o + (tok0 + int64_t(bi) * B) * D + h * e + slice * EV;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const int col = 8 * nt + 2 * t;
        if (r_lo < m) *reinterpret_cast<uint32_t*>(ob + r_lo * D + col) = pack2<T>(o_acc[nt][0], o_acc[nt][1]);
        if (r_hi < m) *reinterpret_cast<uint32_t*>(ob + r_hi * D + col) = pack2<T>(o_acc[nt][2], o_acc[nt][3]);
      }
    }

    // S ← λ^m S + Kᵀ diag(λ^(m−1−r)) V: the decay scales Kᵀ's fragments (k = token).
    const float decay_m = pw[m];
#pragma unroll
    for (int mi = 0; mi < kSMT; ++mi) {
#pragma unroll
      for (int ni = 0; ni < kSNT; ++ni) {
#pragma unroll
        for (int i = 0; i < 4; ++i) s_acc[mi][ni][i] *= decay_m;
      }
    }
#pragma unroll
    for (int ks = 0; ks < B / 16; ++ks) {
      const detail::KeyDecays decays = detail::key_decays(ks, m, t, pw);
#pragma unroll
      for (int mi = 0; mi < kSMT; ++mi) {
        uint32_t ka[4];
        ldmatrix_x4_trans(ka, K + (16 * ks + bn_row) * L::ldk + 16 * (s_m0 + mi) + bn_col);
        detail::scale_key_fragment<T>(ka, decays);
#pragma unroll
        for (int np = 0; np < kSNT / 2; ++np) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, V + (16 * ks + a_row) * L::ldv + 8 * (s_n0 + 2 * np) + a_col);
          mma_16816<T>(s_acc[mi][2 * np], ka, b[0], b[1]);
          mma_16816<T>(s_acc[mi][2 * np + 1], ka, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with this block's tiles and with Sb
    if (!kStatesOnly) write_sb();
  }

  // Leaving state: a part's local state (the states pass: its CTAs walk the plan's
  // parts), or the sequence's final state.
  float* out = kStatesOnly ? scratch_S : last ? slot_S : nullptr;
  if (!out) return;
  each_state_pair([&](float& lo, float& hi, int row, int col) {
    *reinterpret_cast<float2*>(out + row * e + col) = float2{lo, hi};
  });
}

template <typename T, int EK, int EV, bool kStatesOnly>
cudaError_t launch_pass(const T* q, const T* k, const T* v, const LightningArgs& a, T* o, cudaStream_t stream) {
  using L = detail::LightningLayout<T, EK, EV, kStatesOnly>;
  auto kernel = lightning_kernel<T, EK, EV, kStatesOnly>;
  cudaError_t err = reserve_dynamic_shared_memory<lightning_kernel<T, EK, EV, kStatesOnly>>(int(L::bytes));
  if (err != cudaSuccess) return err;
  const dim3 grid(unsigned(a.num_segments), unsigned(a.heads), unsigned(a.e / EV));
  return launch_dependent(kernel, grid, dim3(kLightningThreads), L::bytes, stream, q, k, v, a, o);
}

template <typename T, int EK, int EV>
cudaError_t launch(const T* q, const T* k, const T* v, const LightningArgs& a, T* o, cudaStream_t stream) {
  return detail::launch_lightning_passes(
      a, stream, [&](const LightningArgs& parts) { return launch_pass<T, EK, EV, true>(q, k, v, parts, o, stream); },
      [&] { return launch_pass<T, EK, EV, false>(q, k, v, a, o, stream); });
}

}  // namespace

template <typename T>
cudaError_t lightning_prefill(const T* q, const T* k, const T* v, const LightningArgs& a, T* o, cudaStream_t stream) {
  if (!q || !k || !v || !o || !a.rates || !a.segments || !a.seq_slot || !a.seq_fresh || !a.layer_state) {
    return cudaErrorInvalidValue;
  }
  const bool carry_ready = a.multi && a.parts && a.scratch;  // what a cut sequence's passes need
  if (a.heads <= 0 || a.total_tokens < 0 || a.num_segments < 0 || (a.num_multi > 0 && !carry_ready)) {
    return cudaErrorInvalidValue;
  }
  if (a.num_segments == 0) return cudaSuccess;
  const int64_t e = a.e, ek = a.ek;  // the tile shapes there are; the backend prefills others by the recurrence
  const bool narrow = a.slice_columns != 0 && a.slice_columns == detail::lightning_narrow_slice(e);
  if (a.slice_columns != 0 && !narrow && a.slice_columns != detail::lightning_slice(e)) return cudaErrorInvalidValue;
  // The warpgroup tile writes O in 16-byte chunks (q, k and v are read so by both).
  const bool o_aligned = reinterpret_cast<uintptr_t>(o) % 16 == 0 && (a.heads * e) % 8 == 0;
  if (ek == 128 && !narrow && o_aligned && a.allow_wgmma && lightning_wgmma_available()) {
    return detail::lightning_wgmma<T>(q, k, v, a, o, stream);
  }
  if (e == 128 && ek == 128) return narrow ? launch<T, 128, 32>(q, k, v, a, o, stream) : launch<T, 128, 64>(q, k, v, a, o, stream);
  if (e == 128 && ek == 256) return narrow ? launch<T, 256, 32>(q, k, v, a, o, stream) : launch<T, 256, 64>(q, k, v, a, o, stream);
  if (e == 64 && ek == 64) return launch<T, 64, 64>(q, k, v, a, o, stream);
  if (e == 64 && ek == 128) return launch<T, 128, 64>(q, k, v, a, o, stream);
  if (e == 32 && ek == 32) return launch<T, 32, 32>(q, k, v, a, o, stream);
  if (e == 32 && ek == 64) return launch<T, 64, 32>(q, k, v, a, o, stream);
  return cudaErrorInvalidValue;
}

template cudaError_t lightning_prefill<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                                      const LightningArgs&, __nv_bfloat16*, cudaStream_t);
template cudaError_t lightning_prefill<__half>(const __half*, const __half*, const __half*, const LightningArgs&,
                                               __half*, cudaStream_t);

}  // namespace tnl::cuda
