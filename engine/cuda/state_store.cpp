#include "engine/cuda/state_store.h"

#include <cstring>

namespace tnl {

StateStore::~StateStore() {
  // The main stream belongs to the backend (destroyed before this, after its last sync).
  if (side_) {
    cudaStreamSynchronize(side_);
    cudaStreamDestroy(side_);
  }
  for (auto* events : {&host_written_, &host_read_, &staging_free_}) {
    for (cudaEvent_t e : *events) cudaEventDestroy(e);
  }
}

Status StateStore::init(const ModelConfig& config, int32_t live_slots, int32_t cache_slots, int32_t host_slots,
                        cudaStream_t main) {
  main_ = main;
  live_slots_ = live_slots;
  host_slots_ = host_slots;
  int64_t live_offset = 0, slot_offset = 0;
  for (int64_t l = 0; l < config.num_layers; ++l) {
    const int64_t floats = config.state_floats(l);
    layer_floats_.push_back(floats);
    layer_offset_.push_back(live_offset);
    slot_offset_.push_back(slot_offset);
    live_offset += floats * (live_slots + 1);  // + the scratch slot
    slot_offset += floats;
  }
  state_floats_ = slot_offset;
  const cuda::StateTables tables{layer_floats_, layer_offset_, slot_offset_};
  if (tables.check() != cudaSuccess) {
    return invalid_argument("the CUDA backend copies decode states in 16-byte pieces: every layer's state must be a "
                            "multiple of 4 floats");
  }
  const std::vector<int64_t> packed = tables.packed();
  TNL_RETURN_IF_ERROR(tables_.allocate(int64_t(packed.size())));
  TNL_CUDA_TRY(cudaMemcpy(tables_.get(), packed.data(), packed.size() * sizeof(int64_t), cudaMemcpyHostToDevice));
  geometry_ = {tables_.get(), int32_t(layer_floats_.size()), tables.max_layer_tiles(), state_floats_};
  TNL_RETURN_IF_ERROR(live_.allocate(live_offset));
  TNL_RETURN_IF_ERROR(cache_.allocate(state_floats_ * cache_slots));
  TNL_CUDA_TRY(cudaMemsetAsync(live_.get(), 0, size_t(live_.bytes()), main_));
  if (cache_slots > 0) TNL_CUDA_TRY(cudaMemsetAsync(cache_.get(), 0, size_t(cache_.bytes()), main_));
  if (host_slots > 0) {
    TNL_CUDA_TRY(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
    TNL_RETURN_IF_ERROR(staging_.allocate(state_floats_ * kStagingSlots));
    TNL_RETURN_IF_ERROR(host_.reserve(state_floats_ * host_slots));
    std::memset(host_.get(), 0, size_t(state_floats_ * host_slots) * sizeof(float));
    for (int32_t i = 0; i < host_slots; ++i) {
      for (auto* events : {&host_written_, &host_read_}) {
        cudaEvent_t e = nullptr;
        TNL_CUDA_TRY(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
        events->push_back(e);
      }
    }
    for (int32_t i = 0; i < kStagingSlots; ++i) {
      cudaEvent_t e = nullptr;
      TNL_CUDA_TRY(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
      staging_free_.push_back(e);
    }
  }
  return Status::ok();
}

int32_t StateStore::slots(StateTier tier) const {
  switch (tier) {
    case StateTier::kLive: return live_slots_;
    case StateTier::kCache: return state_floats_ ? int32_t(cache_.size() / state_floats_) : 0;
    case StateTier::kHost: return host_slots_;
  }
  return 0;
}

float* StateStore::live_layer(int32_t slot, int64_t layer) const {
  return live_.get() + layer_offset_[size_t(layer)] + int64_t(slot) * layer_floats_[size_t(layer)];
}

float* StateStore::slot_base(StateRef slot) const {
  switch (slot.tier) {
    case StateTier::kCache: return cache_.get() + int64_t(slot.index) * state_floats_;
    case StateTier::kHost: return host_.get() + int64_t(slot.index) * state_floats_;
    case StateTier::kLive: break;
  }
  return nullptr;
}

cuda::StateAddress StateStore::address(StateRef slot) const {
  switch (slot.tier) {
    case StateTier::kLive: return {live_.get(), slot.index, /*layered=*/true};
    case StateTier::kCache: return {cache_.get(), slot.index, /*layered=*/false};
    case StateTier::kHost: break;
  }
  return {};
}

Status StateStore::add_device_copy(const StateCopy& copy) {
  // A full launch, or one holding a copy this one depends on, goes first.
  if (batch_.count == cuda::kMaxStateCopies || launch_.conflicts(copy)) TNL_RETURN_IF_ERROR(flush_copies());
  launch_.add(copy);
  batch_.jobs[batch_.count++] = {address(copy.from), address(copy.to)};
  return Status::ok();
}

Status StateStore::flush_copies() {
  launch_.clear();
  if (batch_.count == 0) return Status::ok();
  const cudaError_t launched = cuda::copy_states(geometry_, batch_, main_);
  batch_.count = 0;
  TNL_CUDA_TRY(launched);
  return Status::ok();
}

Status StateStore::demote(StateRef from, StateRef to) {
  // Device → staging on the main stream (after everything already enqueued there),
  // then staging → host on the side stream.
  const int32_t k = next_staging_;
  next_staging_ = (next_staging_ + 1) % kStagingSlots;
  float* staging = staging_.get() + int64_t(k) * state_floats_;
  TNL_CUDA_TRY(cudaStreamWaitEvent(main_, staging_free_[size_t(k)], 0));  // its previous transfer left
  // The staging slot is no StateRef: the launch is its own (run_copies flushed before).
  TNL_RETURN_IF_ERROR(flush_copies());
  batch_.jobs[batch_.count++] = {address(from), {staging_.get(), k, /*layered=*/false}};
  TNL_RETURN_IF_ERROR(flush_copies());
  cudaEvent_t staged = staging_free_[size_t(k)];
  TNL_CUDA_TRY(cudaEventRecord(staged, main_));
  TNL_CUDA_TRY(cudaStreamWaitEvent(side_, staged, 0));
  TNL_CUDA_TRY(cudaStreamWaitEvent(side_, host_read_[size_t(to.index)], 0));  // restores reading it are done
  TNL_CUDA_TRY(cudaMemcpyAsync(slot_base(to), staging, size_t(state_floats_) * sizeof(float), cudaMemcpyDeviceToHost,
                               side_));
  TNL_CUDA_TRY(cudaEventRecord(host_written_[size_t(to.index)], side_));
  TNL_CUDA_TRY(cudaEventRecord(staging_free_[size_t(k)], side_));
  return Status::ok();
}

Status StateStore::restore_from_host(StateRef from, StateRef to) {
  TNL_CUDA_TRY(cudaStreamWaitEvent(main_, host_written_[size_t(from.index)], 0));
  for (size_t l = 0; l < layer_floats_.size(); ++l) {
    TNL_CUDA_TRY(cudaMemcpyAsync(live_layer(to.index, int64_t(l)), slot_base(from) + slot_offset_[l],
                                 size_t(layer_floats_[l]) * sizeof(float), cudaMemcpyHostToDevice, main_));
  }
  TNL_CUDA_TRY(cudaEventRecord(host_read_[size_t(from.index)], main_));
  return Status::ok();
}

Status StateStore::run_copies(const std::vector<StateCopy>& copies) {
  // Consecutive device-to-device copies share a launch until one depends on
  // another (concurrent_copies.h); a host-tier copy ends it, to keep plan order.
  for (const StateCopy& c : copies) {
    const bool device_from = c.from.tier != StateTier::kHost, device_to = c.to.tier != StateTier::kHost;
    if (device_from && device_to) {
      TNL_RETURN_IF_ERROR(add_device_copy(c));
      continue;
    }
    TNL_RETURN_IF_ERROR(flush_copies());
    if (c.from.tier == StateTier::kCache && c.to.tier == StateTier::kHost) {
      TNL_RETURN_IF_ERROR(demote(c.from, c.to));
    } else if (c.from.tier == StateTier::kHost && c.to.tier == StateTier::kLive) {
      TNL_RETURN_IF_ERROR(restore_from_host(c.from, c.to));
    } else {
      return invalid_argument(std::string("state copy ") + state_tier_name(c.from.tier) + " -> " +
                              state_tier_name(c.to.tier) + " is not supported by the CUDA backend");
    }
  }
  return flush_copies();
}

Status StateStore::sync_all() {
  TNL_CUDA_TRY(cudaStreamSynchronize(main_));
  if (side_) TNL_CUDA_TRY(cudaStreamSynchronize(side_));
  return Status::ok();
}

Status StateStore::read(StateRef slot, std::span<std::byte> out) {
  if (int64_t(out.size()) != state_floats_ * int64_t(sizeof(float))) return invalid_argument("read_state: wrong size");
  TNL_RETURN_IF_ERROR(sync_all());
  auto* dst = reinterpret_cast<float*>(out.data());
  if (slot.tier == StateTier::kHost) {
    std::memcpy(dst, slot_base(slot), out.size());
    return Status::ok();
  }
  for (size_t l = 0; l < layer_floats_.size(); ++l) {
    const float* src = slot.tier == StateTier::kLive ? live_layer(slot.index, int64_t(l)) : slot_base(slot) + slot_offset_[l];
    TNL_CUDA_TRY(cudaMemcpy(dst + slot_offset_[l], src, size_t(layer_floats_[l]) * sizeof(float), cudaMemcpyDeviceToHost));
  }
  return Status::ok();
}

Status StateStore::write(StateRef slot, std::span<const std::byte> in) {
  if (int64_t(in.size()) != state_floats_ * int64_t(sizeof(float))) return invalid_argument("write_state: wrong size");
  TNL_RETURN_IF_ERROR(sync_all());
  const auto* src = reinterpret_cast<const float*>(in.data());
  if (slot.tier == StateTier::kHost) {
    std::memcpy(slot_base(slot), src, in.size());
    return Status::ok();
  }
  for (size_t l = 0; l < layer_floats_.size(); ++l) {
    float* dst = slot.tier == StateTier::kLive ? live_layer(slot.index, int64_t(l)) : slot_base(slot) + slot_offset_[l];
    TNL_CUDA_TRY(cudaMemcpy(dst, src + slot_offset_[l], size_t(layer_floats_[l]) * sizeof(float), cudaMemcpyHostToDevice));
  }
  return Status::ok();
}

}  // namespace tnl
