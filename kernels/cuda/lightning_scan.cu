// The scan between the two passes of a Lightning prefill whose sequences span
// several segments (lightning_prefill.cu). For each such sequence and head, with
// P_i = part i's local state (the states pass, in the parts' scratch) and the
// running state R (the slot's state, or zero for a fresh sequence):
//   R ← λ^{len_i} R + P_i over the sequence's parts in order, and wherever a
//   segment begins, its entering state ← R (the segments' scratch).
// Thread per 4 floats of [e_k, e] (16-byte accesses). The part states a thread
// needs are loaded 8 at a time, ahead of the dependent chain of updates.
// A dependent launch (dependent_launch.cuh) of the states pass it follows.
#include <climits>

#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/lightning_tile.cuh"

namespace tnl::cuda::detail {
namespace {

constexpr int kThreads = 256, kAhead = 8;

__global__ void __launch_bounds__(kThreads) lightning_scan_kernel(LightningArgs a) {
  detail::wait_for_predecessor();  // the local states are the states pass's output
  detail::allow_dependents();
  const int mi = blockIdx.x, h = blockIdx.y;
  const int64_t state = a.ek * a.e;
  const int64_t f = (int64_t(blockIdx.z) * kThreads + threadIdx.x) * 4;
  if (f >= state) return;
  const int* m = a.multi + 5 * mi;
  const int seq = m[0], first = m[1], count = m[2], first_part = m[3], parts = m[4];
  const float rate = a.rates[h];
  const float* slot = a.layer_state + int64_t(a.seq_slot[seq]) * a.slot_stride + h * state + f;
  float4 s = a.seq_fresh[seq] ? make_float4(0.f, 0.f, 0.f, 0.f) : *reinterpret_cast<const float4*>(slot);
  auto entering = [&](int j) {
    return reinterpret_cast<float4*>(a.scratch + (int64_t(first + j) * a.heads + h) * state + f);
  };
  const float* part_states = a.part_states();
  auto local_at = [&](int i) {
    return reinterpret_cast<const float4*>(part_states + (int64_t(first_part + i) * a.heads + h) * state + f);
  };
  *entering(0) = s;
  int next = 1;  // the segment whose entering state comes next, and where it begins
  int next_begin = count > 1 ? a.segments[4 * (first + 1)] : INT_MAX;
  for (int i0 = 0; i0 < parts; i0 += kAhead) {
    float4 local[kAhead];
    float decay[kAhead];
    int end[kAhead];
#pragma unroll
    for (int u = 0; u < kAhead; ++u) {
      const int i = i0 + u;
      if (i < parts) {
        const int* p = a.parts + 4 * (first_part + i);
        local[u] = *local_at(i);
        decay[u] = expf(-rate * float(p[1]));
        end[u] = p[0] + p[1];
      }
    }
#pragma unroll
    for (int u = 0; u < kAhead; ++u) {
      if (i0 + u >= parts) break;
      s.x = decay[u] * s.x + local[u].x;
      s.y = decay[u] * s.y + local[u].y;
      s.z = decay[u] * s.z + local[u].z;
      s.w = decay[u] * s.w + local[u].w;
      if (end[u] == next_begin) {
        *entering(next) = s;
        ++next;
        next_begin = next < count ? a.segments[4 * (first + next)] : INT_MAX;
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
