// copy_states: whole decode-state copies (restores, snapshots, forks, the staging
// of demotions) in one launch. Each CTA finds its source and destination from
// per-layer tables that live on the device (uploaded once, at start-up) and from
// the copies themselves, passed by value as kernel parameters: a step's copies
// cost one launch, with nothing built per tile on the host, nothing uploaded and
// nothing allocated while serving.
//
// A state is L per-layer blocks of layer_floats[ℓ] floats, held in one of two
// layouts (engine/cuda/state_store.h):
//   layered  layer ℓ of slot s at base + layer_base[ℓ] + s · layer_floats[ℓ]  (live slots)
//   packed   slot s at base + s · state_floats, its layer ℓ at + packed_offset[ℓ]  (cache, staging)
// The copies of one launch run at the same time: none may read or write a slot
// another one writes (engine/concurrent_copies.h decides where launches split).
// Each layer block is split into tiles of kStateTileFloats; a CTA of 256 threads
// copies one tile with 16-byte loads, so every offset must be a multiple of 4
// floats and every base 16-byte aligned (checked). The CPU reference is memcpy.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace tnl::cuda {

// 32 KB: a 13.1 MB slot is ~400 CTAs, three or four on each of 132 SMs, where
// 64 KB tiles (~200) left half the SMs with two and the rest with one
// (tnl-bench's kernel figure, H200: 12.7-12.9 -> 12.4-12.5 us a slot, 0.1115 ->
// 0.1094 ms for 16).
inline constexpr int32_t kStateTileFloats = 8192;
inline constexpr int32_t kMaxStateCopies = 64;  // per launch: the parameters stay under 4 KB

// The layouts' per-layer tables: `tables` is a device array of 3·num_layers
// int64 — layer_floats, then layer_base, then packed_offset.
struct StateGeometry {
  const int64_t* tables = nullptr;
  int32_t num_layers = 0;
  int32_t max_layer_tiles = 0;  // ⌈max layer_floats / kStateTileFloats⌉
  int64_t state_floats = 0;     // a packed slot: Σ layer_floats
};

// The host side of StateGeometry: the tables to upload, checked.
struct StateTables {
  std::vector<int64_t> layer_floats, layer_base, packed_offset;
  // cudaErrorInvalidValue unless every size and offset is a multiple of 4 and the
  // three tables have one entry a layer.
  cudaError_t check() const;
  std::vector<int64_t> packed() const;  // the device array's contents
  int32_t max_layer_tiles() const;
  int64_t state_floats() const;
};

struct StateAddress {
  float* base = nullptr;
  int32_t slot = 0;
  bool layered = false;
};

struct StateCopyJob {
  StateAddress from;
  StateAddress to;
};

struct StateCopyBatch {
  StateCopyJob jobs[kMaxStateCopies];
  int32_t count = 0;
};

// Enqueues every copy of `batch` (count in [0, kMaxStateCopies]) as one launch.
cudaError_t copy_states(const StateGeometry& geometry, const StateCopyBatch& batch, cudaStream_t stream);

}  // namespace tnl::cuda
