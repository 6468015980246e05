// Carrying state across the segments of a long prefill (model-spec §5.3).
//
// After lightning_segment_kernel, scratch[j] holds segment j's outgoing state as
// if its incoming state were zero (the first segment's includes the slot state).
//  scan:       In_j = Out_{j−1};  Out_j = λ^len_j In_j + local_j. scratch[j] ← In_j,
//              the last Out → the slot. Thread per 4 floats of [ek, e], 16-byte accesses.
//  correction: o_r += λ^(r+1) q_r · In_j for the rows r of every non-first segment
//              (WMMA, fp32 accumulators loaded from o). CTA = (segment, head,
//              value slice × row group); shared ≈ 86 KB at ek=256.
#include <mma.h>

#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/lightning_tile.cuh"

namespace tnl::cuda::detail {
namespace {

using namespace nvcuda;

__global__ void segment_scan_kernel(LightningArgs a) {
  const int mi = blockIdx.x, h = blockIdx.y;
  const int64_t state = a.ek * a.e;
  const int64_t f = (int64_t(blockIdx.z) * blockDim.x + threadIdx.x) * 4;
  if (f >= state) return;
  const int seq = a.multi[3 * mi], first = a.multi[3 * mi + 1], count = a.multi[3 * mi + 2];
  const float rate = a.rates[h];
  float4 s = *reinterpret_cast<const float4*>(a.scratch + (int64_t(first) * a.heads + h) * state + f);
  for (int j = first + 1; j < first + count; ++j) {
    float4* p = reinterpret_cast<float4*>(a.scratch + (int64_t(j) * a.heads + h) * state + f);
    const float4 local = *p;
    *p = s;
    const float decay = expf(-rate * float(a.segments[4 * j + 1]));
    s.x = decay * s.x + local.x; s.y = decay * s.y + local.y;
    s.z = decay * s.z + local.z; s.w = decay * s.w + local.w;
  }
  *reinterpret_cast<float4*>(a.layer_state + int64_t(a.seq_slot[seq]) * a.slot_stride + h * state + f) = s;
}

constexpr int kRowGroups = 8;
constexpr int kRows = 64;

template <typename T, int EK, int EV>
struct CarryLayout {
  static constexpr int ldk = EK + 8, ldv = EV + 8, lds = EV + 4;
  static constexpr size_t up(size_t x) { return (x + 127) / 128 * 128; }
  static constexpr size_t sb = 0;                                   // [EK][ldv] T: In_j slice
  static constexpr size_t qd = up(sb + EK * ldv * sizeof(T));       // [kRows][ldk] T
  static constexpr size_t of = up(qd + kRows * ldk * sizeof(T));    // [kRows][lds] float
  static constexpr size_t bytes = up(of + kRows * lds * sizeof(float));
};

template <typename T, int EK, int EV>
__global__ void __launch_bounds__(256) segment_correction_kernel(const T* __restrict__ q, LightningArgs a,
                                                                  T* __restrict__ o) {
  using L = CarryLayout<T, EK, EV>;
  extern __shared__ __align__(128) unsigned char smem[];
  const int seg = blockIdx.x, h = blockIdx.y;
  const int slice = blockIdx.z / kRowGroups, group = blockIdx.z % kRowGroups;
  const int flags = a.segments[4 * seg + 3];
  if (flags & LightningPlan::kFirst) return;  // its incoming state was applied in the segment kernel
  T* Sb = reinterpret_cast<T*>(smem + L::sb);
  T* qd = reinterpret_cast<T*>(smem + L::qd);
  float* Of = reinterpret_cast<float*>(smem + L::of);
  const int tid = threadIdx.x, warp = tid >> 5;
  const int tok0 = a.segments[4 * seg], len = a.segments[4 * seg + 1];
  const int64_t n = a.total_tokens, e = a.e, D = a.heads * e;
  const float rate = a.rates[h];
  const float* in = a.scratch + (int64_t(seg) * a.heads + h) * EK * e + slice * EV;
  for (int idx = tid; idx < EK * EV; idx += 256) {
    const int i = idx / EV, c = idx % EV;
    Sb[i * L::ldv + c] = from_f32<T>(in[int64_t(i) * e + c]);
  }
  const T* qh = q + int64_t(h) * n * EK;
  const int blocks = (len + kRows - 1) / kRows;
  for (int rb = group; rb < blocks; rb += kRowGroups) {
    const int r0 = rb * kRows, m = min(kRows, len - r0);
    __syncthreads();  // Sb ready; previous row block's Of consumed
    for (int idx = tid; idx < kRows * EK; idx += 256) {
      const int r = idx / EK, c = idx % EK;
      const float x = r < m ? to_f32(qh[int64_t(tok0 + r0 + r) * EK + c]) * expf(-rate * float(r0 + r + 1)) : 0.0f;
      qd[r * L::ldk + c] = from_f32<T>(x);
    }
    for (int idx = tid; idx < kRows * EV; idx += 256) {
      const int r = idx / EV, c = idx % EV;
      Of[r * L::lds + c] = r < m ? to_f32(o[int64_t(tok0 + r0 + r) * D + h * e + slice * EV + c]) : 0.0f;
    }
    __syncthreads();
    constexpr int CT = EV / 16;
    for (int tile = warp; tile < (kRows / 16) * CT; tile += 8) {
      const int rt = tile / CT, ct = tile % CT;
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, Of + rt * 16 * L::lds + ct * 16, L::lds, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < EK / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, qd + rt * 16 * L::ldk + kk * 16, L::ldk);
        wmma::load_matrix_sync(fb, Sb + kk * 16 * L::ldv + ct * 16, L::ldv);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Of + rt * 16 * L::lds + ct * 16, acc, L::lds, wmma::mem_row_major);
    }
    __syncthreads();
    for (int idx = tid; idx < kRows * EV; idx += 256) {
      const int r = idx / EV, c = idx % EV;
      if (r < m) o[int64_t(tok0 + r0 + r) * D + h * e + slice * EV + c] = from_f32<T>(Of[r * L::lds + c]);
    }
  }
}

template <typename T, int EK, int EV>
cudaError_t launch_correction(const T* q, const LightningArgs& a, T* o, cudaStream_t stream) {
  using L = CarryLayout<T, EK, EV>;
  auto kernel = segment_correction_kernel<T, EK, EV>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(L::bytes));
  if (err != cudaSuccess) return err;
  const dim3 grid(unsigned(a.num_segments), unsigned(a.heads), unsigned(a.e / EV * kRowGroups));
  kernel<<<grid, 256, L::bytes, stream>>>(q, a, o);
  return cudaGetLastError();
}

}  // namespace

template <typename T>
cudaError_t lightning_carry(const T* q, const LightningArgs& a, T* o, cudaStream_t stream) {
  const int64_t state = a.ek * a.e;
  const dim3 scan_grid(unsigned(a.num_multi), unsigned(a.heads), unsigned(ceil_div(state, 256 * 4)));
  segment_scan_kernel<<<scan_grid, 256, 0, stream>>>(a);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  const int64_t e = a.e, ek = a.ek;
  if (e == 128 && ek == 128) return launch_correction<T, 128, 64>(q, a, o, stream);
  if (e == 128 && ek == 256) return launch_correction<T, 256, 64>(q, a, o, stream);
  if (e == 64 && ek == 64) return launch_correction<T, 64, 64>(q, a, o, stream);
  if (e == 64 && ek == 128) return launch_correction<T, 128, 64>(q, a, o, stream);
  if (e == 32 && ek == 32) return launch_correction<T, 32, 32>(q, a, o, stream);
  if (e == 32 && ek == 64) return launch_correction<T, 64, 32>(q, a, o, stream);
  return cudaErrorInvalidValue;
}

template cudaError_t lightning_carry<__nv_bfloat16>(const __nv_bfloat16*, const LightningArgs&, __nv_bfloat16*,
                                                    cudaStream_t);
template cudaError_t lightning_carry<__half>(const __half*, const LightningArgs&, __half*, cudaStream_t);

}  // namespace tnl::cuda::detail
