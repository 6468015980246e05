// copy_segments (kernels/cuda/copy_segments.h): segments of every size class the
// kernel's loops distinguish — whole tiles (the unrolled loop alone), a tile's
// unrolled part plus a remainder, remainders only, a single float4 — copied in one
// launch equal memcpy bit for bit (random floats, NaN payloads included), and the
// floats around each destination stay as they were. Misaligned or odd segments are
// refused. Skips without a GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/cuda/copy_segments.h"
#include "tests/unit/kernels_cuda/device_test_support.h"

namespace tnl {
namespace {

using cuda::CopySegment;
using cuda::CopyTile;
using cuda::kCopyTileFloats;

TEST(CopySegments, EverySizeClassCopiesExactlyAndTouchesNothingElse) {
  TNL_SKIP_WITHOUT_CUDA();
  // Sizes in floats (multiples of 4): several whole tiles, tile + unrolled part +
  // remainder, below one unrolled pass, one float4.
  const std::vector<int64_t> sizes = {3 * int64_t(kCopyTileFloats), kCopyTileFloats + 8192 + 44, 8192 + 4, 8188, 4};
  constexpr int64_t kGap = 64;  // floats between destinations, checked untouched
  int64_t src_total = 0, dst_total = kGap;
  for (int64_t n : sizes) {
    src_total += n;
    dst_total += n + kGap;
  }
  std::mt19937 rng(7);
  std::vector<uint32_t> src_bits(static_cast<size_t>(src_total)), dst_bits(static_cast<size_t>(dst_total));
  for (uint32_t& b : src_bits) b = rng();  // every bit pattern, NaNs too: a copy, not arithmetic
  for (uint32_t& b : dst_bits) b = rng();

  float *src = nullptr, *dst = nullptr;
  CopyTile* tiles_dev = nullptr;
  ASSERT_EQ(cudaMalloc(&src, src_bits.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dst, dst_bits.size() * 4), cudaSuccess);
  cudaMemcpy(src, src_bits.data(), src_bits.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dst, dst_bits.data(), dst_bits.size() * 4, cudaMemcpyHostToDevice);

  std::vector<CopySegment> segments;
  std::vector<uint32_t> expected = dst_bits;
  int64_t s_at = 0, d_at = kGap;
  for (int64_t n : sizes) {
    segments.push_back({src + s_at, dst + d_at, n});
    std::memcpy(expected.data() + d_at, src_bits.data() + s_at, size_t(n) * 4);
    s_at += n;
    d_at += n + kGap;
  }
  std::vector<CopyTile> tiles;
  ASSERT_EQ(cuda::split_copy_tiles(segments, &tiles), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&tiles_dev, tiles.size() * sizeof(CopyTile)), cudaSuccess);
  cudaMemcpy(tiles_dev, tiles.data(), tiles.size() * sizeof(CopyTile), cudaMemcpyHostToDevice);
  ASSERT_EQ(cuda::copy_tiles(tiles_dev, int64_t(tiles.size()), nullptr), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  std::vector<uint32_t> got(dst_bits.size());
  cudaMemcpy(got.data(), dst, got.size() * 4, cudaMemcpyDeviceToHost);
  int64_t wrong = 0;
  for (size_t i = 0; i < got.size(); ++i) wrong += got[i] != expected[i];
  EXPECT_EQ(wrong, 0) << "floats differing from memcpy (or written outside the destinations)";

  // Refusals: a misaligned source, a size that is not a multiple of 4.
  std::vector<CopyTile> none;
  EXPECT_EQ(cuda::split_copy_tiles({{src + 1, dst, 4}}, &none), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::split_copy_tiles({{src, dst, 6}}, &none), cudaErrorInvalidValue);
  EXPECT_TRUE(none.empty());
  cudaFree(tiles_dev);
  cudaFree(dst);
  cudaFree(src);
}

}  // namespace
}  // namespace tnl
