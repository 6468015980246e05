#include "kernels/cuda/copy_states.h"

#include <algorithm>
#include <cstdint>

namespace tnl::cuda {
namespace {

// Loads per thread in flight: a copy of one state (13 MB at the 385M shape, ~200
// tiles, all resident at once) moves at the rate of its outstanding loads, and one
// 16-byte load a thread (~0.8 MB in flight on the chip) held a one-slot snapshot
// to 27% of the copy bandwidth; eight keep ~6 MB in flight.
constexpr int kLoadsInFlight = 8;
constexpr int kThreads = 256;

__device__ __forceinline__ float* layer_address(const StateAddress& a, const StateGeometry& g, int32_t layer) {
  const int64_t layer_floats = g.tables[layer];
  const int64_t layer_base = g.tables[g.num_layers + layer];
  const int64_t packed_offset = g.tables[2 * g.num_layers + layer];
  return a.layered ? a.base + layer_base + int64_t(a.slot) * layer_floats
                   : a.base + int64_t(a.slot) * g.state_floats + packed_offset;
}

// Grid: (tile within the layer, layer, copy). __grid_constant__: the copies are
// read where the launch put them (indexing a plain parameter array by blockIdx
// would copy all of it into each thread's local memory first).
__global__ void __launch_bounds__(kThreads) copy_states_kernel(const __grid_constant__ StateGeometry g,
                                                               const __grid_constant__ StateCopyBatch batch) {
  const int32_t layer = int32_t(blockIdx.y);
  const int64_t begin = int64_t(blockIdx.x) * kStateTileFloats;
  const int64_t layer_floats = g.tables[layer];
  if (begin >= layer_floats) return;  // a layer smaller than the largest
  const StateCopyJob& job = batch.jobs[blockIdx.z];
  const int32_t n4 = int32_t(min(int64_t(kStateTileFloats), layer_floats - begin) / 4);
  const float4* __restrict__ src = reinterpret_cast<const float4*>(layer_address(job.from, g, layer) + begin);
  float4* __restrict__ dst = reinterpret_cast<float4*>(layer_address(job.to, g, layer) + begin);
  const int32_t stride = kThreads;
  int32_t i = int32_t(threadIdx.x);
  for (; i + (kLoadsInFlight - 1) * stride < n4; i += kLoadsInFlight * stride) {
    float4 v[kLoadsInFlight];
#pragma unroll
    for (int u = 0; u < kLoadsInFlight; ++u) v[u] = src[i + u * stride];
#pragma unroll
    for (int u = 0; u < kLoadsInFlight; ++u) dst[i + u * stride] = v[u];
  }
  for (; i < n4; i += stride) dst[i] = src[i];
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

cudaError_t StateTables::check() const {
  const size_t L = layer_floats.size();
  if (L == 0 || L > 65535 || layer_base.size() != L || packed_offset.size() != L) return cudaErrorInvalidValue;
  for (size_t l = 0; l < L; ++l) {
    if (layer_floats[l] <= 0 || layer_floats[l] % 4 != 0 || layer_base[l] < 0 || layer_base[l] % 4 != 0 ||
        packed_offset[l] < 0 || packed_offset[l] % 4 != 0) {
      return cudaErrorInvalidValue;
    }
  }
  return max_layer_tiles() > 0 ? cudaSuccess : cudaErrorInvalidValue;
}

std::vector<int64_t> StateTables::packed() const {
  std::vector<int64_t> out = layer_floats;
  out.insert(out.end(), layer_base.begin(), layer_base.end());
  out.insert(out.end(), packed_offset.begin(), packed_offset.end());
  return out;
}

int32_t StateTables::max_layer_tiles() const {
  int64_t most = 0;
  for (int64_t n : layer_floats) most = std::max(most, n);
  const int64_t tiles = (most + kStateTileFloats - 1) / kStateTileFloats;
  return tiles <= (int64_t(1) << 31) - 1 ? int32_t(tiles) : 0;
}

int64_t StateTables::state_floats() const {
  int64_t total = 0;
  for (int64_t n : layer_floats) total += n;
  return total;
}

cudaError_t copy_states(const StateGeometry& g, const StateCopyBatch& batch, cudaStream_t stream) {
  if (batch.count == 0) return cudaSuccess;
  if (batch.count < 0 || batch.count > kMaxStateCopies || g.tables == nullptr || g.num_layers < 1 ||
      g.num_layers > 65535 || g.max_layer_tiles < 1 || g.state_floats % 4 != 0) {
    return cudaErrorInvalidValue;
  }
  for (int32_t i = 0; i < batch.count; ++i) {
    const StateCopyJob& j = batch.jobs[i];
    if (!aligned16(j.from.base) || !aligned16(j.to.base) || j.from.base == nullptr || j.to.base == nullptr ||
        j.from.slot < 0 || j.to.slot < 0) {
      return cudaErrorInvalidValue;
    }
  }
  const dim3 grid(unsigned(g.max_layer_tiles), unsigned(g.num_layers), unsigned(batch.count));
  copy_states_kernel<<<grid, kThreads, 0, stream>>>(g, batch);
  return cudaGetLastError();
}

}  // namespace tnl::cuda
