// Batched decode in the recurrent form (model-spec §5.2), fused with φ and LRPE
// on the token's q and k (read straight from the qkvu GEMM output).
//
// Memory-bound: per (sequence, head) the fp32 state [ek, e] is read once and
// written once, 16 bytes per access, 8 independent loads in flight per thread,
// the first batch issued before φ/LRPE of q and k (which it does not need) and,
// as a dependent launch (dependent_launch.cuh), before the qkvu launch ahead of it
// has finished.
// CTA = (sequence, head, column slice), 256 threads. Columns are independent in
// both S ← λS + k vᵀ and o = qᵀS, so a head's state splits into column slices
// (DecodeArgs::column_slices): at batch 1 a head is one CTA of 64 KB in and out
// (e = 128), which leaves all but a few SMs idle and the step bound by one SM's
// latency; slices give the launch more CTAs, each a smaller share. Thread (row
// group rg, column group c4) owns columns [4·c4, 4·c4+4) of its slice in rows rg,
// rg + rows_per_pass, … . The partial o of each row group meets in shared memory
// (rows_per_pass × slice floats).
// Registers: 77/thread (8 float4 in flight: 3 CTAs an SM; 16 in flight take 126 and
// 2 CTAs an SM, 1% slower at batch 128-256 on an H100); shared: (2·ek + e + 256·4) floats.
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launchers.h"

namespace tnl::cuda {
namespace {

constexpr int kThreads = 256;
// The launcher's choice of column slices: enough CTAs for the chip, slices of at
// least kMinSliceColumns columns.
constexpr int64_t kTargetCtas = 256;
constexpr int64_t kMinSliceColumns = 16;

// kInFlight: state rows per thread per batch of loads (8: an e_k = 128 head at
// e = 128 in two batches; 16: in one).
template <typename T, int kInFlight, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks) recurrent_decode_kernel(const T* qkvu, DecodeArgs a, T* o) {
  extern __shared__ float shared[];
  const int64_t b = blockIdx.x, h = blockIdx.y;
  const int e = int(a.e);
  const int ek = a.lrpe ? 2 * e : e;
  const int64_t D = a.heads * e;
  const int cols = e / int(gridDim.z);      // this CTA's slice: columns [c0, c0 + cols)
  const int c0 = int(blockIdx.z) * cols;
  float* qf = shared;        // [ek]
  float* kf = qf + ek;       // [ek]
  float* vf = kf + ek;       // [e]
  float* partial = vf + e;   // [rows_per_pass, cols]

  const int groups = cols / 4;              // float4 column groups per row of the slice
  const int rows_per_pass = kThreads / groups;
  const int rg = threadIdx.x / groups, c4 = threadIdx.x % groups;
  const bool active = rg < rows_per_pass;
  const int32_t pos = a.positions[b];
  const bool fresh = pos == 0;
  float* S = a.layer_state + int64_t(a.slots[b]) * a.slot_stride + h * int64_t(ek) * e + c0;
  float4 s[kInFlight];
  auto load_rows = [&](int a0) {
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      const int r = a0 + u * rows_per_pass;
      s[u] = (active && r < ek && !fresh) ? __ldcs(reinterpret_cast<const float4*>(S + int64_t(r) * e) + c4)
                                          : make_float4(0.f, 0.f, 0.f, 0.f);
    }
  };
  // The first rows are in flight while q, k, v are prepared (they do not depend on
  // them) and, unless the launch before may write them, while it finishes
  // (dependent_launch.cuh): qkvu is its output.
  detail::allow_dependents();
  if (!a.state_ready_early) detail::wait_for_predecessor();
  load_rows(rg);
  if (a.state_ready_early) detail::wait_for_predecessor();

  const T* row = qkvu + b * 4 * D + h * e;
  for (int i = threadIdx.x; i < e; i += kThreads) {
    const float qv = apply_activation(a.act, detail::to_f32(row[i]));
    const float kv = apply_activation(a.act, detail::to_f32(row[D + i]));
    vf[i] = detail::to_f32(row[2 * D + i]);
    if (a.lrpe) {
      float s, c;
      detail::lrpe_sincos(a.theta[h * e + i], pos, &s, &c);
      qf[i] = qv * c; qf[e + i] = qv * s;
      kf[i] = kv * c; kf[e + i] = kv * s;
    } else {
      qf[i] = qv; kf[i] = kv;
    }
  }
  __syncthreads();

  const float lambda = expf(-a.rates[h]);
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  if (active) {
    const float4 vv = reinterpret_cast<const float4*>(vf + c0)[c4];
    for (int a0 = rg; a0 < ek; a0 += rows_per_pass * kInFlight) {
      if (a0 != rg) load_rows(a0);
#pragma unroll
      for (int u = 0; u < kInFlight; ++u) {
        const int r = a0 + u * rows_per_pass;
        if (r < ek) {
          const float kr = kf[r], qr = qf[r];
          s[u].x = lambda * s[u].x + kr * vv.x; s[u].y = lambda * s[u].y + kr * vv.y;
          s[u].z = lambda * s[u].z + kr * vv.z; s[u].w = lambda * s[u].w + kr * vv.w;
          acc.x += qr * s[u].x; acc.y += qr * s[u].y; acc.z += qr * s[u].z; acc.w += qr * s[u].w;
          __stcs(reinterpret_cast<float4*>(S + int64_t(r) * e) + c4, s[u]);
        }
      }
    }
    reinterpret_cast<float4*>(partial + rg * cols)[c4] = acc;
  }
  __syncthreads();
  for (int c = threadIdx.x; c < cols; c += kThreads) {
    float sum = 0.0f;
    for (int g = 0; g < rows_per_pass; ++g) sum += partial[g * cols + c];
    o[b * D + h * e + c0 + c] = detail::from_f32<T>(sum);
  }
}

}  // namespace

int64_t decode_column_slices(int64_t batch, int64_t heads, int64_t e) {
  int64_t slices = 1;
  while (batch * heads * slices * 2 <= kTargetCtas && e % (8 * slices) == 0 && e / (2 * slices) >= kMinSliceColumns) {
    slices *= 2;
  }
  return slices;
}

template <typename T>
cudaError_t recurrent_decode(const T* qkvu, const DecodeArgs& a, T* o, cudaStream_t stream) {
  if (a.batch < 0 || a.heads <= 0 || a.e <= 0 || a.e % 4 != 0 || a.e / 4 > kThreads || a.column_slices < 0 ||
      (a.rows_in_flight != 0 && a.rows_in_flight != 8 && a.rows_in_flight != 16)) {
    return cudaErrorInvalidValue;
  }
  const int64_t slices = a.column_slices > 0 ? a.column_slices : decode_column_slices(a.batch, a.heads, a.e);
  if (a.e % (4 * slices) != 0) return cudaErrorInvalidValue;  // whole float4 columns a slice
  if (!qkvu || !o || !a.rates || !a.positions || !a.slots || !a.layer_state || (a.lrpe && !a.theta)) {
    return cudaErrorInvalidValue;
  }
  if (a.batch == 0) return cudaSuccess;
  const int64_t ek = a.lrpe ? 2 * a.e : a.e, cols = a.e / slices;
  const int rows_per_pass = kThreads / int(cols / 4);
  const size_t smem = sizeof(float) * size_t(2 * ek + a.e + rows_per_pass * cols);
  const dim3 grid(unsigned(a.batch), unsigned(a.heads), unsigned(slices));
  if (a.rows_in_flight == 16) {
    return launch_dependent(recurrent_decode_kernel<T, 16, 1>, grid, dim3(kThreads), smem, stream, qkvu, a, o);
  }
  return launch_dependent(recurrent_decode_kernel<T, 8, 3>, grid, dim3(kThreads), smem, stream, qkvu, a, o);
}

template cudaError_t recurrent_decode<__nv_bfloat16>(const __nv_bfloat16*, const DecodeArgs&, __nv_bfloat16*, cudaStream_t);
template cudaError_t recurrent_decode<__half>(const __half*, const DecodeArgs&, __half*, cudaStream_t);

}  // namespace tnl::cuda
