// StateStore: every decode state the CUDA backend holds, and the copies between
// them (engine/backend.h: StateTier, StateCopy).
//
//   live   [L][live slots + 1 scratch][H·e_k(ℓ)·e] fp32, layer-major: a decode
//          step's attention over one layer walks one contiguous region;
//   cache  [cache slots][state floats] fp32 in device memory, one block per slot
//          (prefix-cache snapshots);
//   host   [host slots][state floats] fp32 in pinned host memory (the tier behind
//          the cache).
//
// Copies run in plan order on the backend's stream. Device-to-device copies
// (restore, snapshot, fork) share one copy_states launch until a copy depends on
// one already in it (engine/concurrent_copies.h): a launch runs its copies at
// once, and a finish snapshot followed by a restore into the slot it freed must
// not (the restore would overwrite what the snapshot still reads). A demotion
// (cache → host) first copies the slot into a device staging slot on the main
// stream (microseconds), then the PCIe transfer runs on a side stream, off the
// step's critical path; events order every later use of that host slot (a restore
// waits for the transfer to land; a new transfer into it waits for the restores
// reading it) and of the staging slot.
//
// Threads: the backend's one driving thread.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <span>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/pinned_buffer.h"
#include "engine/model_config.h"
#include "engine/concurrent_copies.h"
#include "kernels/cuda/copy_states.h"

namespace tnl {

class StateStore {
 public:
  StateStore() = default;
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Allocates every tier (zeroed) and the staging slots; `main` is the backend's stream.
  Status init(const ModelConfig& config, int32_t live_slots, int32_t cache_slots, int32_t host_slots,
              cudaStream_t main);

  float* layer_state(int64_t layer) const { return live_.get() + layer_offset_[size_t(layer)]; }
  int64_t slot_stride(int64_t layer) const { return layer_floats_[size_t(layer)]; }  // H·e_k(ℓ)·e
  int32_t scratch_slot() const { return live_slots_; }  // one past the real live slots
  int32_t slots(StateTier tier) const;
  int64_t state_floats() const { return state_floats_; }
  int64_t device_bytes() const { return live_.bytes() + cache_.bytes() + staging_.bytes() + tables_.bytes(); }
  int64_t host_bytes() const { return int64_t(host_slots_) * state_floats_ * int64_t(sizeof(float)); }
  // What copy_states needs to reach these slots: the layouts' tables, and a live
  // or cache slot's address (tnl-bench times the kernel on them alone).
  const cuda::StateGeometry& geometry() const { return geometry_; }
  cuda::StateAddress address(StateRef slot) const;

  // Enqueues `copies`, in order, on the main stream (and the side stream).
  Status run_copies(const std::vector<StateCopy>& copies);
  // Synchronous: waits for every copy in flight, then reads or writes one slot
  // in the backend-independent layout (engine/backend.h).
  Status read(StateRef slot, std::span<std::byte> out);
  Status write(StateRef slot, std::span<const std::byte> in);

 private:
  static constexpr int32_t kStagingSlots = 4;

  float* slot_base(StateRef slot) const;  // cache and host: the slot's first float
  float* live_layer(int32_t slot, int64_t layer) const;
  // Adds a device copy to the launch being built, launching that first when it
  // is full or holds a copy this one depends on (concurrent_copies.h).
  Status add_device_copy(const StateCopy& copy);
  Status flush_copies();  // launches what add_device_copy gathered
  Status demote(StateRef from, StateRef to);
  Status restore_from_host(StateRef from, StateRef to);
  Status sync_all();

  cudaStream_t main_ = nullptr;
  cudaStream_t side_ = nullptr;  // D2H transfers of demotions
  int32_t live_slots_ = 0;
  int64_t state_floats_ = 0;
  std::vector<int64_t> layer_offset_;  // floats to layer ℓ's region of live_
  std::vector<int64_t> layer_floats_;  // one slot's floats in layer ℓ
  std::vector<int64_t> slot_offset_;   // floats from a slot's start to layer ℓ (cache/host layout)
  DeviceBuffer<float> live_, cache_, staging_;
  PinnedBuffer<float> host_;
  int32_t host_slots_ = 0;
  DeviceBuffer<int64_t> tables_;   // copy_states' per-layer tables (uploaded by init)
  cuda::StateGeometry geometry_;
  // The launch being built: its copies travel as kernel parameters (copied at
  // launch, so batch_ is reusable at once), launch_ its slots, for conflicts.
  cuda::StateCopyBatch batch_;
  ConcurrentCopies launch_;
  std::vector<cudaEvent_t> host_written_;           // per host slot: its last D2H transfer
  std::vector<cudaEvent_t> host_read_;              // per host slot: its last restore
  std::vector<cudaEvent_t> staging_free_;           // per staging slot: its last D2H transfer
  int32_t next_staging_ = 0;
};

}  // namespace tnl
