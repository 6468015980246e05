// copy_states (kernels/cuda/copy_states.h): layers of every size class the
// kernel's loops distinguish — whole tiles (the unrolled loop alone), a tile's
// unrolled part plus a remainder, remainders only, a single float4 — copied
// between the layered (live) and packed (cache) layouts, in both directions and
// live to live, in one launch, equal memcpy at the same addresses bit for bit,
// and nothing else in either region changes; a launch of kMaxStateCopies copies
// reaches every one; bad layouts and arguments are refused. Skips without a GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/cuda/copy_states.h"
#include "tests/unit/kernels_cuda/device_test_support.h"

namespace tnl {
namespace {

using cuda::kStateTileFloats;

struct Regions {
  cuda::StateTables tables;
  int32_t live_slots = 0, cache_slots = 0;
  int64_t live_floats() const {
    int64_t n = 0;
    for (int64_t f : tables.layer_floats) n += f * live_slots;
    return n;
  }
  int64_t cache_floats() const { return tables.state_floats() * cache_slots; }
  // Where layer l of a slot starts, in floats from its region's start.
  int64_t offset(int32_t slot, bool layered, size_t l) const {
    return layered ? tables.layer_base[l] + int64_t(slot) * tables.layer_floats[l]
                   : int64_t(slot) * tables.state_floats() + tables.packed_offset[l];
  }
};

Regions make_regions(const std::vector<int64_t>& layer_floats, int32_t live_slots, int32_t cache_slots) {
  Regions r;
  r.live_slots = live_slots;
  r.cache_slots = cache_slots;
  r.tables.layer_floats = layer_floats;
  int64_t live = 0, packed = 0;
  for (int64_t n : layer_floats) {
    r.tables.layer_base.push_back(live);
    r.tables.packed_offset.push_back(packed);
    live += n * live_slots;
    packed += n;
  }
  return r;
}

struct Copy {
  bool from_live;
  int32_t from;
  bool to_live;
  int32_t to;
};

// Runs `copies` as one launch and checks both regions against memcpy.
void expect_copies_exact(const Regions& r, const std::vector<Copy>& copies) {
  std::mt19937 rng(5);
  std::vector<uint32_t> live(size_t(r.live_floats())), cache(size_t(r.cache_floats()));
  for (uint32_t& b : live) b = rng();  // every bit pattern, NaNs too: a copy, not arithmetic
  for (uint32_t& b : cache) b = rng();

  float *live_dev = nullptr, *cache_dev = nullptr;
  int64_t* tables_dev = nullptr;
  ASSERT_EQ(cudaMalloc(&live_dev, live.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&cache_dev, cache.size() * 4), cudaSuccess);
  const std::vector<int64_t> packed = r.tables.packed();
  ASSERT_EQ(cudaMalloc(&tables_dev, packed.size() * 8), cudaSuccess);
  cudaMemcpy(live_dev, live.data(), live.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(cache_dev, cache.data(), cache.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(tables_dev, packed.data(), packed.size() * 8, cudaMemcpyHostToDevice);

  ASSERT_EQ(r.tables.check(), cudaSuccess);
  const cuda::StateGeometry g{tables_dev, int32_t(r.tables.layer_floats.size()), r.tables.max_layer_tiles(),
                              r.tables.state_floats()};
  cuda::StateCopyBatch batch;
  std::vector<uint32_t> want_live = live, want_cache = cache;
  for (const Copy& c : copies) {
    batch.jobs[batch.count++] = {{c.from_live ? live_dev : cache_dev, c.from, c.from_live},
                                 {c.to_live ? live_dev : cache_dev, c.to, c.to_live}};
    for (size_t l = 0; l < r.tables.layer_floats.size(); ++l) {
      const uint32_t* src = (c.from_live ? live.data() : cache.data()) + r.offset(c.from, c.from_live, l);
      uint32_t* dst = (c.to_live ? want_live.data() : want_cache.data()) + r.offset(c.to, c.to_live, l);
      std::memcpy(dst, src, size_t(r.tables.layer_floats[l]) * 4);
    }
  }
  ASSERT_EQ(cuda::copy_states(g, batch, nullptr), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  std::vector<uint32_t> got_live(live.size()), got_cache(cache.size());
  cudaMemcpy(got_live.data(), live_dev, live.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(got_cache.data(), cache_dev, cache.size() * 4, cudaMemcpyDeviceToHost);
  int64_t wrong = 0;
  for (size_t i = 0; i < live.size(); ++i) wrong += got_live[i] != want_live[i];
  for (size_t i = 0; i < cache.size(); ++i) wrong += got_cache[i] != want_cache[i];
  EXPECT_EQ(wrong, 0) << "floats differing from memcpy (or written outside the destinations)";

  // Refusals: a misaligned base, too many copies.
  cuda::StateCopyBatch bad = batch;
  bad.jobs[0].to.base = live_dev + 1;
  EXPECT_EQ(cuda::copy_states(g, bad, nullptr), cudaErrorInvalidValue);
  bad = batch;
  bad.count = cuda::kMaxStateCopies + 1;
  EXPECT_EQ(cuda::copy_states(g, bad, nullptr), cudaErrorInvalidValue);
  cudaFree(tables_dev);
  cudaFree(cache_dev);
  cudaFree(live_dev);
}

TEST(CopyStates, EverySizeClassCopiesExactlyBetweenLayoutsAndTouchesNothingElse) {
  TNL_SKIP_WITHOUT_CUDA();
  // Layers (floats, multiples of 4): several whole tiles, tile + unrolled part +
  // remainder, below one unrolled pass, one float4.
  const Regions r = make_regions({3 * int64_t(kStateTileFloats), kStateTileFloats + 8192 + 44, 8188, 4}, 3, 3);
  // A snapshot, a restore and a fork: no copy reads or writes what another writes.
  expect_copies_exact(r, {{true, 0, false, 1}, {false, 2, true, 1}, {true, 0, true, 2}});
}

TEST(CopyStates, AFullLaunchReachesEveryCopy) {
  TNL_SKIP_WITHOUT_CUDA();
  const Regions r = make_regions({8, 4}, cuda::kMaxStateCopies, cuda::kMaxStateCopies);
  std::vector<Copy> copies;
  for (int32_t i = 0; i < cuda::kMaxStateCopies; ++i) copies.push_back({false, i, true, cuda::kMaxStateCopies - 1 - i});
  expect_copies_exact(r, copies);
}

TEST(CopyStates, LayoutsThatAreNotInFloat4sAreRefused) {
  Regions r = make_regions({8, 6}, 1, 1);
  EXPECT_EQ(r.tables.check(), cudaErrorInvalidValue);
  r = make_regions({8, 4}, 1, 1);
  EXPECT_EQ(r.tables.check(), cudaSuccess);
  r.tables.packed_offset.pop_back();
  EXPECT_EQ(r.tables.check(), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace tnl
