#include "kernels/cuda/copy_segments.h"

#include <algorithm>
#include <cstdint>

namespace tnl::cuda {
namespace {

__global__ void copy_tiles_kernel(const CopyTile* tiles) {
  const CopyTile t = tiles[blockIdx.x];
  const float4* src = reinterpret_cast<const float4*>(t.src);
  float4* dst = reinterpret_cast<float4*>(t.dst);
  const int32_t n4 = t.n / 4;
  for (int32_t i = threadIdx.x; i < n4; i += blockDim.x) dst[i] = src[i];
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
