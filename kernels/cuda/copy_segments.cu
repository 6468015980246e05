#include "kernels/cuda/copy_segments.h"

#include <algorithm>
#include <cstdint>

namespace tnl::cuda {
namespace {

// Loads per thread in flight: a copy of one state (13 MB at the 385M shape, ~200
// tiles, all resident at once) moves at the rate of its outstanding loads, and one
// 16-byte load a thread (~0.8 MB in flight on the chip) held a one-slot snapshot
// to 27% of the copy bandwidth; eight keep ~6 MB in flight.
constexpr int kLoadsInFlight = 8;

__global__ void copy_tiles_kernel(const CopyTile* __restrict__ tiles) {
  const CopyTile t = tiles[blockIdx.x];
  const float4* __restrict__ src = reinterpret_cast<const float4*>(t.src);
  float4* __restrict__ dst = reinterpret_cast<float4*>(t.dst);
  const int32_t n4 = t.n / 4, stride = int32_t(blockDim.x);
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

cudaError_t split_copy_tiles(const std::vector<CopySegment>& segments, std::vector<CopyTile>* tiles) {
  tiles->clear();
  for (const CopySegment& s : segments) {
    if (s.n < 0 || s.n % 4 != 0 || !aligned16(s.src) || !aligned16(s.dst)) {
      tiles->clear();
      return cudaErrorInvalidValue;
    }
    for (int64_t at = 0; at < s.n; at += kCopyTileFloats) {
      const int64_t n = std::min<int64_t>(kCopyTileFloats, s.n - at);
      tiles->push_back({s.src + at, s.dst + at, int32_t(n)});
    }
  }
  return cudaSuccess;
}

cudaError_t copy_tiles(const CopyTile* tiles, int64_t n_tiles, cudaStream_t stream) {
  if (n_tiles == 0) return cudaSuccess;
  if (n_tiles < 0 || n_tiles > (int64_t(1) << 31) - 1 || tiles == nullptr) return cudaErrorInvalidValue;
  copy_tiles_kernel<<<unsigned(n_tiles), 256, 0, stream>>>(tiles);
  return cudaGetLastError();
}

}  // namespace tnl::cuda
