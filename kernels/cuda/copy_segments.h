// copy_segments: many device-to-device float copies in one launch — the state
// slot copies of a step (restores, snapshots, forks) move a state that lives in
// per-layer segments, and one cudaMemcpyAsync per segment would cost a launch
// each (L of them per copy).
//
// Each segment is split into tiles of kCopyTileFloats; one CTA of 256 threads
// copies one tile with 16-byte loads. Requirements (checked by the launcher):
// src, dst 16-byte aligned and n a multiple of 4 (every state segment is: the CUDA
// backend requires e % 4 == 0). The CPU reference is memcpy.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace tnl::cuda {

struct CopySegment {
  const float* src = nullptr;
  float* dst = nullptr;
  int64_t n = 0;  // floats
};

// One tile of a segment, as the kernel takes it (built by split_copy_tiles).
struct CopyTile {
  const float* src = nullptr;
  float* dst = nullptr;
  int32_t n = 0;  // floats, ≤ kCopyTileFloats
};
inline constexpr int32_t kCopyTileFloats = 16384;

// Splits segments into tiles; cudaErrorInvalidValue (and no tiles) for a
// misaligned or odd-sized segment.
cudaError_t split_copy_tiles(const std::vector<CopySegment>& segments, std::vector<CopyTile>* tiles);

// Copies every tile; `tiles` is a device array of n_tiles CopyTile (uploaded by the caller).
cudaError_t copy_tiles(const CopyTile* tiles, int64_t n_tiles, cudaStream_t stream);

}  // namespace tnl::cuda
