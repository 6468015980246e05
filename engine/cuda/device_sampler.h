// DeviceSampler: samples the chunks of a step that ask for it (SequenceChunk::sample)
// from the logits rows already on the GPU, so those rows never travel to the host.
// Owns the upload buffers of the per-row parameters, penalty/bias entries and
// allowed-token masks, the adjusted-row workspace, the results, and each live
// slot's penalty row (counts and prompt flags, DeviceSampling::penalty_row).
// prepare() sizes them all at start-up. Driven by the backend's one thread.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/pinned_buffer.h"
#include "kernels/cuda/launchers.h"

namespace tnl {

class DeviceSampler {
 public:
  // Start-up: room for a step that samples every one of `num_slots` live slots
  // (parameters, masks, adjusted rows, results), every slot's penalty row, and
  // `entries` penalty and bias entries, so that serving allocates nothing (a
  // step that sends more entries still grows them: growths()).
  Status prepare(int32_t num_slots, int64_t vocab, int64_t entries);
  // The device memory prepare() takes.
  static int64_t device_bytes(int32_t num_slots, int64_t vocab, int64_t entries);
  // Buffers reallocated by enqueue() (after prepare(): a step larger than planned).
  int64_t growths() const { return growths_; }

  // Enqueues the sampling of every chunk with `sample` (sample_row[i]: its row in
  // `logits`, [rows, vocab]) and the copy of the results to the host.
  // A chunk with a penalty row needs prepare() first.
  Status enqueue(const StepPlan& plan, const std::vector<int32_t>& sample_row, const float* logits, int64_t vocab,
                 cudaStream_t stream);
  // After the stream is synchronised: the results in chunk order (token −1 for
  // chunks without `sample`).
  void collect(size_t num_chunks, std::vector<SampledToken>* sampled) const;

 private:
  std::array<const void*, 11> buffer_addresses() const;  // any change: a buffer grew

  int64_t growths_ = 0;
  std::vector<size_t> chunk_of_;           // row of the launch → plan chunk
  PinnedBuffer<cuda::SampleRowArgs> args_host_;  // built here, in pinned memory: asynchronous copies
  PinnedBuffer<PenaltyEntry> entries_host_;
  PinnedBuffer<uint32_t> masks_host_;            // allowed-token masks, ⌈V/32⌉ words per masked row
  PinnedBuffer<SampledToken> results_host_;
  DeviceBuffer<cuda::SampleRowArgs> d_args_;
  DeviceBuffer<PenaltyEntry> d_entries_;
  DeviceBuffer<uint32_t> d_masks_;
  DeviceBuffer<SampledToken> d_results_;
  DeviceBuffer<float> work_;  // [rows with penalties, vocab]
  DeviceBuffer<int32_t> penalty_counts_;       // [num_slots, vocab]
  DeviceBuffer<uint32_t> penalty_prompt_bits_;  // [num_slots, ⌈vocab/32⌉]
  // Per live slot (prepare()'s count): a kRebuild has written its row since the
  // buffers were made (a kKept on a slot never built is the caller's error, refused).
  std::vector<uint8_t> penalty_row_built_;
};

}  // namespace tnl
