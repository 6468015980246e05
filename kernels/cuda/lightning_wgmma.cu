// Lightning Attention prefill passes on Hopper's warpgroup MMA (sm_90a): the
// e_k = 128, 64-column tile of lightning_prefill.cu (same plan, same arguments,
// same three-launch scheme for cut sequences), its products issued as wgmma.
//
// Why: the mma.sync kernel is bound by instruction issue (Nsight Compute: IPC
// ~1.5, the ALU pipe busiest); every m16n8k16 product there comes with its own
// ldmatrix loads and address arithmetic, about ten instructions per mma. Here
// one warpgroup instruction computes a 64×64×16 product straight from shared
// memory, so a block's 28 products replace ~750 mma.sync and their loads.
// Tiles are loaded by cp.async two blocks ahead at two warpgroups a CTA (three
// stages), one block ahead at one.
//
// CTA = (segment, head, value columns): G warpgroups of 4 warps, warpgroup i owning
// 64 value columns (its S, Sb, V and O columns), all of them sharing one copy of
// the block's Q and K tiles. At e = 128 a CTA of two warpgroups takes the whole
// head: the 64-column mma.sync CTAs read every Q and K tile twice, a third of the
// launch's memory traffic, which bounds this kernel once its products are cheap.
// Blocks of B = 64 tokens; per block with entering state S (fp32, in the accumulators):
//   O = diag(λ^(r+1)) (Q Sb) + ((Q Kᵀ) ⊙ M) V        (wgmma: Q, K, Sb, V from
//   S = λ^m S + Kᵀ diag(λ^(m−1−r)) V                  shared memory; P and the
// decayed Kᵀ from registers). Q·Kᵀ is computed whole (the masked half costs
// tensor-core time only, which is not what bounds this kernel). Q, K, V land by
// cp.async in 128-byte-swizzled tiles (wgmma.cuh); Sb, a T copy of S, is
// rewritten after every block.
//
// A block's O rows and the next Sb leave the registers by stmatrix (four 8×8
// tiles an instruction): O through a per-warp stage in shared memory, so that
// each global store is a whole 16-byte chunk and eight lanes write a 128-byte row
// (32-column four-byte stores throttled the LSU and held their address registers).
//
// What the next block waits for is S (through Sb), so a warpgroup writes its Sb as
// soon as its S update is done, while its P·V still runs, and O goes out after.
// One CTA barrier a block, at its top: the block's tiles have landed, every Sb is
// written, and every warp is past the block before, whose buffer the next load
// then takes. Sb is its warpgroup's own, so its rewrite waits only for that
// warpgroup's warps (a named barrier of 128 threads).
//
// Resources (sm_90a, nvcc 13.0, -Xptxas -v): the output pass 254–255 registers
// (8–16 bytes of spills in three of its four instances), the states-only pass
// 186–210; shared memory ~193 KB at two warpgroups (three stages: one CTA an SM),
// ~105 KB at one (two stages: two CTAs an SM).
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_attribute.h"
#include "kernels/cuda/kernel_attribute.cuh"
#include "kernels/cuda/lightning_tile.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace tnl::cuda::detail {
namespace {

constexpr int kB = kLightningBlock;  // 64 tokens
constexpr int kEK = 128, kEV = 64;
constexpr uint32_t kHalfTile = 64 * 128;     // bytes: 64 rows × 64 T (one swizzled region)
constexpr uint32_t kQKTile = 2 * kHalfTile;  // a block's Q (or K): e_k = 128 as two regions
constexpr uint32_t kVTile = kHalfTile;       // a block's V of one warpgroup: 64 tokens × 64 columns
constexpr uint32_t kSbBytes = kEK * 128;     // Sb of one warpgroup: 128 rows × 64 columns
constexpr uint32_t kOStage = 16 * 128;       // a warp's O rows on their way out: 16 rows × 64 columns

// Byte offsets from the 1,024-aligned base of dynamic shared memory, G warpgroups.
// Stages: blocks whose tiles are in flight or in use. A CTA of two warpgroups has
// an SM to itself and loads a block's 64 KB at the SM's share of the bandwidth
// (~23 GB/s): two blocks ahead keep that stream going while a block computes.
// One warpgroup (two CTAs an SM) keeps to two stages to fit.
template <bool kStatesOnly, int G>
struct WgmmaLayout {
  static constexpr int stages = G == 2 ? 3 : 2;
  static constexpr uint32_t q = 0;                                      // [stages][Q tile]
  static constexpr uint32_t k = kStatesOnly ? 0 : stages * kQKTile;     // [stages][K tile]
  static constexpr uint32_t v = k + stages * kQKTile;                   // [stages][G][V tile]
  static constexpr uint32_t sb = v + stages * G * kVTile;               // [G][Sb]
  static constexpr uint32_t o = sb + (kStatesOnly ? 0 : G * kSbBytes);   // [G · 4 warps][O stage]
  static constexpr uint32_t pw = o + (kStatesOnly ? 0 : G * 4 * kOStage);  // λ^i, i = 0…B
  static constexpr uint32_t bytes = pw + (kB + 1) * sizeof(float);
  static constexpr size_t launch_bytes = bytes + 1024;               // room to align the base
};

// This warp's 16 rows of an m64n64 accumulator (wgmma.cuh's layout), as T, into
// rows row0 … row0 + 15 of the swizzled region at shared address `region`: four
// stmatrix.x4 of two n-tiles each, in place of 32 four-byte stores. Eight lanes
// write one matrix's 8 rows of one chunk: the swizzle puts them in distinct banks.
template <typename T>
__device__ __forceinline__ void store_warp_rows(uint32_t region, int row0, const float (&d)[32], int lane) {
  const int row = row0 + (lane & 7) + ((lane >> 3) & 1) * 8, next_tile = lane >> 4;
#pragma unroll
  for (int j = 0; j < 8; j += 2) {
    stmatrix_x4(region + sw128_offset(row, j + next_tile), pack2<T>(d[4 * j], d[4 * j + 1]),
                pack2<T>(d[4 * j + 2], d[4 * j + 3]), pack2<T>(d[4 * j + 4], d[4 * j + 5]),
                pack2<T>(d[4 * j + 6], d[4 * j + 7]));
  }
}

template <typename T, bool kStatesOnly, int G>
__global__ void __launch_bounds__(G * kLightningThreads, G == 1 ? 2 : 1)
    lightning_wgmma_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                           LightningArgs a, T* __restrict__ o) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using L = WgmmaLayout<kStatesOnly, G>;
  constexpr int kThreads = G * kLightningThreads;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  // The swizzle is on absolute address bits: align the base to 1,024 bytes.
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t base = (raw + 1023u) & ~1023u;
  unsigned char* smem = smem_raw + (base - raw);
  float* pw = reinterpret_cast<float*>(smem + L::pw);

  const int seg = blockIdx.x, h = blockIdx.y;
  // Warp `warp` of warpgroup `wg`, which owns value columns [64·slice, 64·slice + 64).
  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int slice = int(blockIdx.z) * G + wg;
  const LightningSegmentView sv = lightning_segment(a, seg);
  const int tok0 = sv.tok0, len = sv.len, seq = sv.seq;
  const bool last = sv.last, alone = sv.alone;
  const int64_t n = a.total_tokens, e = a.e, D = a.heads * e, state = int64_t(kEK) * e;
  fill_decay_powers(pw, a.rates[h], tid, kThreads);
  const T* qh = q + (int64_t(h) * n + tok0) * kEK;
  const T* kh = k + (int64_t(h) * n + tok0) * kEK;
  const T* vh = v + (int64_t(h) * n + tok0) * e + int(blockIdx.z) * G * kEV;  // the CTA's columns
  float* slot_S = a.layer_state + int64_t(a.seq_slot[seq]) * a.slot_stride + h * state + slice * kEV;
  float* scratch_S = a.scratch + (int64_t(seg) * a.heads + h) * state + slice * kEV;

  // S as two m64n64 accumulators: s_acc[mt][4j + i] is row 64·mt + 16·warp + g + 8·(i/2),
  // column 8j + 2t + (i mod 2) of the head's [e_k × slice] state.
  float s_acc[2][32];
  auto each_state_pair = [&](auto f) {
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          f(s_acc[mt][4 * j + 2 * half], s_acc[mt][4 * j + 2 * half + 1], 64 * mt + 16 * warp + g + 8 * half,
            8 * j + 2 * t);
        }
      }
    }
  };

  // Rows past the segment's end are zero: they must add nothing to P·V and Kᵀ·V.
  auto load_block = [&](int bi, int buf) {
    const int m = min(kB, len - bi * kB);
    const int64_t t0 = int64_t(bi) * kB;
    const uint4 zero = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int i = 0; i < kB * 16 / kThreads; ++i) {  // Q and K: 16 chunks a row
      const int idx = tid + i * kThreads, r = idx >> 4, c = idx & 15;
      const uint32_t off = uint32_t(c >> 3) * kHalfTile + sw128_offset(r, c & 7);
      unsigned char* qs = smem + L::q + buf * kQKTile + off;
      unsigned char* ks = smem + L::k + buf * kQKTile + off;
      if (r < m) {
        if (!kStatesOnly) cp_async16(qs, qh + (t0 + r) * kEK + 8 * c);
        cp_async16(ks, kh + (t0 + r) * kEK + 8 * c);
      } else {
        if (!kStatesOnly) *reinterpret_cast<uint4*>(qs) = zero;
        *reinterpret_cast<uint4*>(ks) = zero;
      }
    }
#pragma unroll
    for (int i = 0; i < kB * 8 * G / kThreads; ++i) {  // V: 8 chunks a row per warpgroup
      const int idx = tid + i * kThreads, r = idx / (8 * G), c = idx % (8 * G);
      unsigned char* vs = smem + L::v + (buf * G + (c >> 3)) * kVTile + sw128_offset(r, c & 7);
      if (r < m) {
        cp_async16(vs, vh + (t0 + r) * e + 8 * c);
      } else {
        *reinterpret_cast<uint4*>(vs) = zero;
      }
    }
  };

  wait_for_predecessor();  // q, k, v, the scan's entering states and the slots are written before
  allow_dependents();
  const int num_blocks = (len + kB - 1) / kB;
  constexpr int kStages = L::stages;
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) {  // one commit group a block, empty past the end
    if (i < num_blocks) load_block(i, i);
    cp_async_commit();
  }

  const float* in = kStatesOnly ? nullptr : alone ? (a.seq_fresh[seq] ? nullptr : slot_S) : scratch_S;
  each_state_pair([&](float& lo, float& hi, int row, int col) {
    const float2 x = in ? *reinterpret_cast<const float2*>(in + row * e + col) : float2{0, 0};
    lo = x.x;
    hi = x.y;
  });
  const uint32_t sb_own = L::sb + wg * kSbBytes;  // this warpgroup's Sb
  const uint32_t sb_lo = sw128_descriptor_lo(base + sb_own);
  auto write_sb = [&] {
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) store_warp_rows<T>(base + sb_own, 64 * mt + 16 * warp, s_acc[mt], lane);
  };
  if (!kStatesOnly) write_sb();
  // S ← λ^m S for the next block of m tokens. Done here, where no warpgroup product
  // is running, rather than beside the next block's products: ptxas would wait for
  // those before touching registers a product wrote (C7517).
  auto decay_state = [&](int m) {
    const float decay_m = pw[m];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
      for (int i = 0; i < 32; ++i) s_acc[mt][i] *= decay_m;
    }
  };
  if (num_blocks > 0) {
    __syncthreads();  // pw
    decay_state(min(kB, len));
  }

  // ldmatrix row addresses of the transposed K fragments (as in lightning_prefill.cu).
  const int bn_row = (lane & 7) + (lane >> 4) * 8, bn_chunk = (lane >> 3) & 1;
  for (int bi = 0; bi < num_blocks; ++bi) {
    cp_async_wait<kStages - 2>();  // block bi's group has landed (the groups of blocks ≤ bi + stages − 2 are in)
    fence_proxy_async();  // this thread's tiles (and Sb) visible to wgmma
    __syncthreads();      // everyone's; and every warp is past block bi − 1
    // Block bi + stages − 1 into the buffer block bi − 1 left: issued after the
    // barrier, which is then the only one a block takes.
    if (bi + kStages - 1 < num_blocks) load_block(bi + kStages - 1, (bi + kStages - 1) % kStages);
    cp_async_commit();
    const int m = min(kB, len - bi * kB);
    // Descriptor low words of this block's tiles (wgmma.cuh); a k-step adds offset / 16.
    const int buf = bi % kStages;
    const uint32_t q_lo = sw128_descriptor_lo(base + L::q + buf * kQKTile);
    const uint32_t k_lo = sw128_descriptor_lo(base + L::k + buf * kQKTile);
    const uint32_t v_lo = sw128_descriptor_lo(base + L::v + (buf * G + wg) * kVTile);  // this warpgroup's columns
    const int row0 = 16 * warp, r_lo = row0 + g, r_hi = row0 + g + 8;

    float o_acc[32], p_acc[32];
    if (!kStatesOnly) {
      // Q·Sb (inter) and Q·Kᵀ (scores), k = e_k in 8 steps.
      wgmma_fence();
#pragma unroll
      for (int s = 0; s < kEK / 16; ++s) {
        const uint32_t step = uint32_t(s >> 2) * kHalfTile + uint32_t(s & 3) * 32;
        wgmma_m64n64k16_ss<T>(o_acc, sw128_descriptor_at(q_lo + step / 16), sw128_descriptor_at(sb_lo + s * 128),
                              s > 0, Major::kMN);
      }
#pragma unroll
      for (int s = 0; s < kEK / 16; ++s) {
        const uint32_t step = uint32_t(s >> 2) * kHalfTile + uint32_t(s & 3) * 32;
        wgmma_m64n64k16_ss<T>(p_acc, sw128_descriptor_at(q_lo + step / 16), sw128_descriptor_at(k_lo + step / 16),
                              s > 0, Major::kK);
      }
      wgmma_commit();
    }

    // S ← λ^m S + Kᵀ diag(λ^(m−1−r)) V (s_acc already holds λ^m S): the decays scale
    // Kᵀ's fragments (k = token).
    uint32_t ka[4][2][4];
#pragma unroll
    for (int s = 0; s < kB / 16; ++s) {
      const KeyDecays decays = key_decays(s, m, t, pw);
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        // Kᵀ rows 64·mt + 16·warp…: chunks 2·warp and 2·warp + 1 of region mt.
        ldmatrix_x4_trans(ka[s][mt], smem + L::k + buf * kQKTile + mt * kHalfTile +
                                         sw128_offset(16 * s + bn_row, 2 * warp + bn_chunk));
        scale_key_fragment<T>(ka[s][mt], decays);
      }
    }
    wgmma_fence();
#pragma unroll
    for (int s = 0; s < kB / 16; ++s) {
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) wgmma_m64n64k16_rs<T>(s_acc[mt], ka[s][mt], sw128_descriptor_at(v_lo + s * 128), 1);
    }
    wgmma_commit();

    if (!kStatesOnly) {
      wgmma_wait<1>();  // Q·Sb and Q·Kᵀ are done (the S update may still run)
      fence_registers(o_acc);
      fence_registers(p_acc);
      // Inter rows take λ^(r+1).
      const float d_lo = pw[r_lo + 1], d_hi = pw[r_hi + 1];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        o_acc[4 * j] *= d_lo;
        o_acc[4 * j + 1] *= d_lo;
        o_acc[4 * j + 2] *= d_hi;
        o_acc[4 * j + 3] *= d_hi;
      }
      // P = scores ⊙ λ^(r−j) on j ≤ r < m (a select, not a product: padded rows may
      // hold anything), as A fragments of k-steps of 16 keys: masked_scores_fragment
      // (lightning_tile.cuh) with zeros above the diagonal, written out because
      // calling the helper here changed the generated code (not measured; this keeps
      // the machine code of the tile that was).
      const bool full = m == kB;
      uint32_t pa[4][4];
#pragma unroll
      for (int s = 0; s < kB / 16; ++s) {
        const bool unmasked = full && s < warp;
#pragma unroll
        for (int half = 0; half < 2; ++half) {  // key tiles 2s and 2s + 1
          const float* c = p_acc + 4 * (2 * s + half);
          const int j = 8 * (2 * s + half) + 2 * t;
          auto masked = [&](float x, int r, int col) {
            return unmasked || (col <= r && r < m) ? x * pw[r - col] : 0.0f;
          };
          pa[s][2 * half] = s > warp ? 0u : pack2<T>(masked(c[0], r_lo, j), masked(c[1], r_lo, j + 1));
          pa[s][2 * half + 1] = s > warp ? 0u : pack2<T>(masked(c[2], r_hi, j), masked(c[3], r_hi, j + 1));
        }
      }
      wgmma_fence();
#pragma unroll
      for (int s = 0; s < kB / 16; ++s) wgmma_m64n64k16_rs<T>(o_acc, pa[s], sw128_descriptor_at(v_lo + s * 128), 1);
      wgmma_commit();
    }
    // The next block waits on S (through Sb), not on O: S first, while P·V runs.
    if (kStatesOnly) {
      wgmma_wait<0>();
    } else {
      wgmma_wait<1>();  // the S update is done (P·V may still run)
    }
    fence_registers(s_acc[0]);
    fence_registers(s_acc[1]);
    if (!kStatesOnly) {
      // Sb is this warpgroup's own: once each of its warps is past this block's Q·Sb
      // (waited for above), it may change.
      warpgroup_barrier(wg);
      write_sb();
    }
    if (bi + 1 < num_blocks) decay_state(min(kB, len - (bi + 1) * kB));
    if (!kStatesOnly) {
      wgmma_wait<0>();
      fence_registers(o_acc);
      // Through this warp's stage, so that each store is a whole 16-byte chunk and
      // eight lanes write a row's 128 bytes (the launcher checks o's alignment).
      const uint32_t stage = L::o + (wg * 4 + warp) * kOStage;
      store_warp_rows<T>(base + stage, 0, o_acc, lane);
      __syncwarp();
      T* ob = o + (tok0 + int64_t(bi) * kB + row0) * D + h * e + slice * kEV;
#pragma unroll
      for (int i = 0; i < 4; ++i) {  // 16 rows × 8 chunks
        const int r = (lane >> 3) + 4 * i, c = lane & 7;
        const uint4 x = *reinterpret_cast<const uint4*>(smem + stage + sw128_offset(r, c));
        if (row0 + r < m) *reinterpret_cast<uint4*>(ob + int64_t(r) * D + 8 * c) = x;
      }
    }
  }

  // Leaving state: a part's local state (the states pass: its CTAs walk the plan's
  // parts), or the sequence's final state.
  float* out = kStatesOnly ? scratch_S : last ? slot_S : nullptr;
  if (!out) return;
  each_state_pair([&](float& lo, float& hi, int row, int col) {
    *reinterpret_cast<float2*>(out + row * e + col) = float2{lo, hi};
  });
#else
  __trap();  // launched only where lightning_wgmma_available()
#endif
}

// G warpgroups a CTA: 2 at e = 128 (one CTA an SM: 8 warps, as two 1-warpgroup
// CTAs had), 1 at e = 64.
template <typename T, bool kStatesOnly, int G>
cudaError_t launch_wgmma_pass(const T* q, const T* k, const T* v, const LightningArgs& a, T* o, cudaStream_t stream) {
  auto kernel = lightning_wgmma_kernel<T, kStatesOnly, G>;
  constexpr size_t bytes = WgmmaLayout<kStatesOnly, G>::launch_bytes;
  static_assert(G == 1 ? bytes <= 113 * 1024 : bytes <= 227 * 1024, "shared memory for the CTAs an SM takes");
  cudaError_t err = reserve_dynamic_shared_memory<lightning_wgmma_kernel<T, kStatesOnly, G>>(int(bytes));
  if (err != cudaSuccess) return err;
  const dim3 grid(unsigned(a.num_segments), unsigned(a.heads), unsigned(a.e / (G * kEV)));
  return launch_dependent(kernel, grid, dim3(G * kLightningThreads), bytes, stream, q, k, v, a, o);
}

template <typename T, int G>
cudaError_t launch_wgmma(const T* q, const T* k, const T* v, const LightningArgs& a, T* o, cudaStream_t stream) {
  return launch_lightning_passes(
      a, stream, [&](const LightningArgs& parts) { return launch_wgmma_pass<T, true, G>(q, k, v, parts, o, stream); },
      [&] { return launch_wgmma_pass<T, false, G>(q, k, v, a, o, stream); });
}

}  // namespace

template <typename T>
cudaError_t lightning_wgmma(const T* q, const T* k, const T* v, const LightningArgs& a, T* o, cudaStream_t stream) {
  if (a.e % (2 * kEV) == 0) return launch_wgmma<T, 2>(q, k, v, a, o, stream);
  return launch_wgmma<T, 1>(q, k, v, a, o, stream);
}

template cudaError_t lightning_wgmma<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                                    const LightningArgs&, __nv_bfloat16*, cudaStream_t);
template cudaError_t lightning_wgmma<__half>(const __half*, const __half*, const __half*, const LightningArgs&, __half*,
                                             cudaStream_t);

}  // namespace tnl::cuda::detail

namespace tnl::cuda {

bool lightning_wgmma_available() {
#if defined(TNL_CUDA_HAS_SM90A)
  return current_device_attribute(cudaDevAttrComputeCapabilityMajor) == 9 &&
         current_device_attribute(cudaDevAttrComputeCapabilityMinor) == 0;
#else
  return false;
#endif
}

}  // namespace tnl::cuda
