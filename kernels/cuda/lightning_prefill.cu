// Lightning Attention prefill, per segment (model-spec §5.3), and its launcher.
//
// CTA = (segment, head, value slice); it walks the segment's blocks of B tokens
// in order, keeping S [EK, EV] in shared memory:
//   scores = Q Kᵀ                              (WMMA, causal tiles only)
//   P      = scores ⊙ λ^(r−j) [j ≤ r < m]
//   O      = (λ^(r+1) Q) Sb + P V              (inter + intra, one accumulator)
//   S      = λ^m S + (λ^(m−1−r) K)ᵀ V          (fp32 accumulators loaded from S)
// The next block's Q, K, V arrive by cp.async while this one computes.
// Registers: WMMA fragments only (≤ 4 accumulators live per warp).
// Shared memory: LightningLayout::bytes (≈ 203 KB for EK=128, EV=64, B=64;
// ≈ 223 KB for the LRPE tile EK=256, EV=64, B=32): one CTA per SM.
// A segment that is not its sequence's first starts from zero; lightning_carry
// adds its incoming state afterwards.
#include <mma.h>

#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/lightning_tile.cuh"

namespace tnl::cuda {
namespace {

using namespace nvcuda;
using detail::from_f32;
using detail::to_f32;

template <typename T, int EK, int EV, int B>
__global__ void __launch_bounds__(256, 1)
    lightning_segment_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                             LightningArgs a, T* __restrict__ o) {
  using L = detail::LightningLayout<T, EK, EV, B>;
  extern __shared__ __align__(128) unsigned char smem[];
  T* q_raw = reinterpret_cast<T*>(smem + L::q_raw);
  T* k_raw = reinterpret_cast<T*>(smem + L::k_raw);
  T* v_raw = reinterpret_cast<T*>(smem + L::v_raw);
  T* qd = reinterpret_cast<T*>(smem + L::qd);
  T* kd = reinterpret_cast<T*>(smem + L::kd);
  float* S = reinterpret_cast<float*>(smem + L::s);
  T* Sb = reinterpret_cast<T*>(smem + L::sb);
  float* Sc = reinterpret_cast<float*>(smem + L::sc);
  float* O = Sc;  // aliased: scores die before O is born within a block
  T* P = reinterpret_cast<T*>(smem + L::p);
  float* pw = reinterpret_cast<float*>(smem + L::pw);

  const int seg = blockIdx.x, h = blockIdx.y, slice = blockIdx.z;
  const int tid = threadIdx.x, warp = tid >> 5;
  const int tok0 = a.segments[4 * seg], len = a.segments[4 * seg + 1];
  const int seq = a.segments[4 * seg + 2], flags = a.segments[4 * seg + 3];
  const int64_t n = a.total_tokens, e = a.e, D = a.heads * a.e;
  const T* qh = q + int64_t(h) * n * EK;
  const T* kh = k + int64_t(h) * n * EK;
  const T* vh = v + int64_t(h) * n * e + slice * EV;
  const float rate = a.rates[h];
  for (int i = tid; i <= B; i += L::kThreads) pw[i] = expf(-rate * float(i));

  // Incoming state: the slot's for a continuing sequence's first segment, else zero.
  const bool from_slot = (flags & LightningPlan::kFirst) && !a.seq_fresh[seq];
  float* slot_S = a.layer_state + int64_t(a.seq_slot[seq]) * a.slot_stride + int64_t(h) * EK * e + slice * EV;
  for (int idx = tid; idx < EK * EV; idx += L::kThreads) {
    const int i = idx / EV, c = idx % EV;
    const float s = from_slot ? slot_S[int64_t(i) * e + c] : 0.0f;
    S[i * L::lds + c] = s;
    Sb[i * L::ldv + c] = from_f32<T>(s);
  }

  const int num_blocks = (len + B - 1) / B;
  auto issue_load = [&](int bi) {
    const int buf = bi & 1, m = min(B, len - bi * B);
    const int64_t t0 = tok0 + int64_t(bi) * B;
    T* qb = q_raw + buf * B * L::ldk;
    T* kb = k_raw + buf * B * L::ldk;
    T* vb = v_raw + buf * B * L::ldv;
    const uint4 zero = make_uint4(0, 0, 0, 0);
    for (int idx = tid; idx < B * (EK / 8); idx += L::kThreads) {
      const int r = idx / (EK / 8), c = (idx % (EK / 8)) * 8;
      if (r < m) {
        detail::cp_async16(qb + r * L::ldk + c, qh + (t0 + r) * EK + c);
        detail::cp_async16(kb + r * L::ldk + c, kh + (t0 + r) * EK + c);
      } else {  // rows past the segment end must be finite: P·V and Kdᵀ·V multiply them by 0
        *reinterpret_cast<uint4*>(qb + r * L::ldk + c) = zero;
        *reinterpret_cast<uint4*>(kb + r * L::ldk + c) = zero;
      }
    }
    for (int idx = tid; idx < B * (EV / 8); idx += L::kThreads) {
      const int r = idx / (EV / 8), c = (idx % (EV / 8)) * 8;
      if (r < m) {
        detail::cp_async16(vb + r * L::ldv + c, vh + (t0 + r) * e + c);
      } else {
        *reinterpret_cast<uint4*>(vb + r * L::ldv + c) = zero;
      }
    }
  };

  if (num_blocks > 0) issue_load(0);
  detail::cp_async_commit();
  for (int bi = 0; bi < num_blocks; ++bi) {
    if (bi + 1 < num_blocks) issue_load(bi + 1);
    detail::cp_async_commit();
    detail::cp_async_wait<1>();
    __syncthreads();
    const int buf = bi & 1, m = min(B, len - bi * B);
    const T* Q = q_raw + buf * B * L::ldk;
    const T* K = k_raw + buf * B * L::ldk;
    const T* V = v_raw + buf * B * L::ldv;

    // Phase 1: causal score tiles Q Kᵀ.
    constexpr int RT = B / 16;
    for (int tile = warp; tile < RT * RT; tile += L::kWarps) {
      const int rt = tile / RT, ct = tile % RT;
      if (ct > rt) continue;
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int kk = 0; kk < EK / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, Q + rt * 16 * L::ldk + kk * 16, L::ldk);
        wmma::load_matrix_sync(fb, K + ct * 16 * L::ldk + kk * 16, L::ldk);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Sc + rt * 16 * L::ldsc + ct * 16, acc, L::ldsc, wmma::mem_row_major);
    }
    __syncthreads();

    // Phase 2: decay mask; decayed queries and keys.
    for (int idx = tid; idx < B * B; idx += L::kThreads) {
      const int r = idx / B, j = idx % B;
      P[r * L::ldp + j] = from_f32<T>(j <= r && r < m ? Sc[r * L::ldsc + j] * pw[r - j] : 0.0f);
    }
    for (int idx = tid; idx < B * EK; idx += L::kThreads) {
      const int r = idx / EK, c = idx % EK;
      qd[r * L::ldk + c] = from_f32<T>(to_f32(Q[r * L::ldk + c]) * pw[r + 1]);
      kd[r * L::ldk + c] = from_f32<T>(r < m ? to_f32(K[r * L::ldk + c]) * pw[m - 1 - r] : 0.0f);
    }
    __syncthreads();

    // Phase 3: O tiles (inter + intra) and S tiles (decay + update), spread over warps.
    constexpr int CT = EV / 16, nO = RT * CT, nS = (EK / 16) * CT;
    const float decay_m = pw[m];
    for (int tile = warp; tile < nO + nS; tile += L::kWarps) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      if (tile < nO) {
        const int rt = tile / CT, ct = tile % CT;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int kk = 0; kk < EK / 16; ++kk) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
          wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
          wmma::load_matrix_sync(fa, qd + rt * 16 * L::ldk + kk * 16, L::ldk);
          wmma::load_matrix_sync(fb, Sb + kk * 16 * L::ldv + ct * 16, L::ldv);
          wmma::mma_sync(acc, fa, fb, acc);
        }
        for (int kk = 0; kk <= rt; ++kk) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
          wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
          wmma::load_matrix_sync(fa, P + rt * 16 * L::ldp + kk * 16, L::ldp);
          wmma::load_matrix_sync(fb, V + kk * 16 * L::ldv + ct * 16, L::ldv);
          wmma::mma_sync(acc, fa, fb, acc);
        }
        wmma::store_matrix_sync(O + rt * 16 * L::lds + ct * 16, acc, L::lds, wmma::mem_row_major);
      } else {
        const int st = tile - nO, it = st / CT, ct = st % CT;
        float* s_tile = S + it * 16 * L::lds + ct * 16;
        wmma::load_matrix_sync(acc, s_tile, L::lds, wmma::mem_row_major);
#pragma unroll
        for (int i = 0; i < acc.num_elements; ++i) acc.x[i] *= decay_m;
#pragma unroll
        for (int kk = 0; kk < RT; ++kk) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::col_major> fa;  // Kdᵀ
          wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
          wmma::load_matrix_sync(fa, kd + kk * 16 * L::ldk + it * 16, L::ldk);
          wmma::load_matrix_sync(fb, V + kk * 16 * L::ldv + ct * 16, L::ldv);
          wmma::mma_sync(acc, fa, fb, acc);
        }
        wmma::store_matrix_sync(s_tile, acc, L::lds, wmma::mem_row_major);
      }
    }
    __syncthreads();

    // Phase 4: T copy of the new state; O rows < m to global, 16 bytes per store.
    for (int idx = tid; idx < EK * EV; idx += L::kThreads) {
      const int i = idx / EV, c = idx % EV;
      Sb[i * L::ldv + c] = from_f32<T>(S[i * L::lds + c]);
    }
    for (int idx = tid; idx < B * (EV / 8); idx += L::kThreads) {
      const int r = idx / (EV / 8), c = (idx % (EV / 8)) * 8;
      if (r < m) {
        detail::Pack8<T> pk;
#pragma unroll
        for (int j = 0; j < 8; ++j) pk.v[j] = from_f32<T>(O[r * L::lds + c + j]);
        *reinterpret_cast<detail::Pack8<T>*>(o + (tok0 + int64_t(bi) * B + r) * D + h * e + slice * EV + c) = pk;
      }
    }
    __syncthreads();
  }

  // Outgoing state: into the slot when this segment is its whole sequence, else scratch.
  const bool whole = (flags & LightningPlan::kFirst) && (flags & LightningPlan::kLast);
  float* dst = whole ? slot_S : a.scratch + (int64_t(seg) * a.heads + h) * EK * e + slice * EV;
  for (int idx = tid; idx < EK * EV; idx += L::kThreads) {
    const int i = idx / EV, c = idx % EV;
    dst[int64_t(i) * e + c] = S[i * L::lds + c];
  }
}

template <typename T, int EK, int EV, int B>
cudaError_t launch_segments(const T* q, const T* k, const T* v, const LightningArgs& a, T* o, cudaStream_t stream) {
  using L = detail::LightningLayout<T, EK, EV, B>;
  auto kernel = lightning_segment_kernel<T, EK, EV, B>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(L::bytes));
  if (err != cudaSuccess) return err;
  const dim3 grid(unsigned(a.num_segments), unsigned(a.heads), unsigned(a.e / EV));
  kernel<<<grid, L::kThreads, L::bytes, stream>>>(q, k, v, a, o);
  return cudaGetLastError();
}

}  // namespace

template <typename T>
cudaError_t lightning_prefill(const T* q, const T* k, const T* v, const LightningArgs& a, T* o, cudaStream_t stream) {
  if (!q || !k || !v || !o || !a.rates || !a.segments || !a.seq_slot || !a.seq_fresh || !a.layer_state) {
    return cudaErrorInvalidValue;
  }
  if (a.heads <= 0 || a.total_tokens < 0 || a.num_segments < 0 || (a.num_multi > 0 && (!a.multi || !a.scratch))) {
    return cudaErrorInvalidValue;
  }
  if (a.num_segments == 0) return cudaSuccess;
  cudaError_t err = cudaErrorInvalidValue;  // unsupported (ek, e): the launcher lists the shapes it has
  const int64_t e = a.e, ek = a.ek;
  if (e == 128 && ek == 128) err = launch_segments<T, 128, 64, 64>(q, k, v, a, o, stream);
  else if (e == 128 && ek == 256) err = launch_segments<T, 256, 64, 32>(q, k, v, a, o, stream);
  else if (e == 64 && ek == 64) err = launch_segments<T, 64, 64, 64>(q, k, v, a, o, stream);
  else if (e == 64 && ek == 128) err = launch_segments<T, 128, 64, 64>(q, k, v, a, o, stream);
  else if (e == 32 && ek == 32) err = launch_segments<T, 32, 32, 64>(q, k, v, a, o, stream);
  else if (e == 32 && ek == 64) err = launch_segments<T, 64, 32, 64>(q, k, v, a, o, stream);
  if (err != cudaSuccess) return err;
  if (a.num_multi == 0) return cudaSuccess;
  return detail::lightning_carry(q, a, o, stream);
}

template cudaError_t lightning_prefill<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                                      const LightningArgs&, __nv_bfloat16*, cudaStream_t);
template cudaError_t lightning_prefill<__half>(const __half*, const __half*, const __half*, const LightningArgs&,
                                               __half*, cudaStream_t);

}  // namespace tnl::cuda
