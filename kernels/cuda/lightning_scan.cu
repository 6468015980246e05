// The scan between the two passes of a Lightning prefill whose sequences span
// several segments (lightning_prefill.cu). For each such sequence and head, with
// L_j = segment j's local state (pass 1, in scratch) and In_0 = the slot's state
// (zero for a fresh sequence):
//   scratch[j] ← In_j,   In_{j+1} = λ^{len_j} In_j + L_j.
// Thread per 4 floats of [e_k, e] (16-byte accesses). The segment states a thread
// needs are loaded 8 at a time, ahead of the dependent chain of updates.
// A dependent launch (dependent_launch.cuh) of the states pass it follows.
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/lightning_tile.cuh"

namespace tnl::cuda::detail {
namespace {

constexpr int kThreads = 256, kAhead = 8;

__global__ void __launch_bounds__(kThreads) lightning_scan_kernel(LightningArgs a) {
  detail::wait_for_predecessor();  // the local states are pass 1's output
  detail::allow_dependents();
  const int mi = blockIdx.x, h = blockIdx.y;
  const int64_t state = a.ek * a.e;
  const int64_t f = (int64_t(blockIdx.z) * kThreads + threadIdx.x) * 4;
  if (f >= state) return;
  const int seq = a.multi[3 * mi], first = a.multi[3 * mi + 1], count = a.multi[3 * mi + 2];
  const float rate = a.rates[h];
  const float* slot = a.layer_state + int64_t(a.seq_slot[seq]) * a.slot_stride + h * state + f;
  float4 s = a.seq_fresh[seq] ? make_float4(0.f, 0.f, 0.f, 0.f) : *reinterpret_cast<const float4*>(slot);
  auto at = [&](int j) { return reinterpret_cast<float4*>(a.scratch + (int64_t(first + j) * a.heads + h) * state + f); };
  for (int j0 = 0; j0 < count; j0 += kAhead) {
    float4 local[kAhead];
    float decay[kAhead];
#pragma unroll
    for (int u = 0; u < kAhead; ++u) {
      const int j = j0 + u;
      if (j < count - 1) {  // the last segment has no local state (nothing follows it)
        local[u] = *at(j);
        decay[u] = expf(-rate * float(a.segments[4 * (first + j) + 1]));
      }
    }
#pragma unroll
    for (int u = 0; u < kAhead; ++u) {
      const int j = j0 + u;
      if (j >= count) break;
      *at(j) = s;
      if (j < count - 1) {
        s.x = decay[u] * s.x + local[u].x;
        s.y = decay[u] * s.y + local[u].y;
        s.z = decay[u] * s.z + local[u].z;
        s.w = decay[u] * s.w + local[u].w;
      }
    }
  }
}

}  // namespace

cudaError_t lightning_scan(const LightningArgs& a, cudaStream_t stream) {
  const dim3 grid(unsigned(a.num_multi), unsigned(a.heads), unsigned(ceil_div(a.ek * a.e, kThreads * 4)));
  return launch_dependent(lightning_scan_kernel, grid, dim3(kThreads), 0, stream, a);
}

}  // namespace tnl::cuda::detail
