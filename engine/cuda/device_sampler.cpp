#include "engine/cuda/device_sampler.h"

#include <algorithm>
#include <array>

#include "engine/cuda/cuda_status.h"

namespace tnl {

int64_t DeviceSampler::device_bytes(int32_t num_slots, int64_t vocab, int64_t entries) {
  const int64_t rows = num_slots, words = (vocab + 31) / 32;
  return rows * int64_t(sizeof(cuda::SampleRowArgs) + sizeof(SampledToken)) + entries * int64_t(sizeof(PenaltyEntry)) +
         rows * words * 4 /* masks */ + rows * vocab * 4 /* adjusted rows */ +
         int64_t(num_slots) * (vocab * 4 + words * 4) /* penalty rows */;
}

Status DeviceSampler::prepare(int32_t num_slots, int64_t vocab, int64_t entries) {
  const int64_t rows = num_slots, words = (vocab + 31) / 32;
  TNL_RETURN_IF_ERROR(args_host_.reserve(rows));
  TNL_RETURN_IF_ERROR(results_host_.reserve(rows));
  TNL_RETURN_IF_ERROR(entries_host_.reserve(entries));
  TNL_RETURN_IF_ERROR(masks_host_.reserve(rows * words));
  TNL_RETURN_IF_ERROR(d_args_.allocate(rows));
  TNL_RETURN_IF_ERROR(d_results_.allocate(rows));
  TNL_RETURN_IF_ERROR(d_entries_.allocate(entries));
  TNL_RETURN_IF_ERROR(d_masks_.allocate(rows * words));
  TNL_RETURN_IF_ERROR(work_.allocate(rows * vocab));
  TNL_RETURN_IF_ERROR(penalty_counts_.allocate(int64_t(num_slots) * vocab));
  TNL_RETURN_IF_ERROR(penalty_prompt_bits_.allocate(int64_t(num_slots) * words));
  penalty_row_built_.assign(size_t(num_slots), 0);
  return Status::ok();
}

std::array<const void*, 11> DeviceSampler::buffer_addresses() const {
  return {args_host_.get(), entries_host_.get(), masks_host_.get(),  results_host_.get(),
          d_args_.get(),    d_entries_.get(),    d_masks_.get(),     d_results_.get(),
          work_.get(),      penalty_counts_.get(), penalty_prompt_bits_.get()};
}

Status DeviceSampler::enqueue(const StepPlan& plan, const std::vector<int32_t>& sample_row, const float* logits,
                              int64_t vocab, cudaStream_t stream) {
  // Sizes first, so that the rows and entries are written straight into pinned
  // memory (the previous step's copies out of it have finished: every step ends
  // in a stream synchronisation).
  chunk_of_.clear();
  const std::array<const void*, 11> before = buffer_addresses();
  int64_t num_entries = 0, mask_words = 0;
  bool penalty_rows = false;
  const int64_t words_per_mask = (vocab + 31) / 32;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    if (!plan.chunks[i].sample) continue;
    chunk_of_.push_back(i);
    const DeviceSampling& d = *plan.chunks[i].sample;
    num_entries += int64_t(d.penalties.size());
    if (d.penalty_row != PenaltyRowMode::kNone) {
      // prepare() made a row for every live slot, of this vocabulary.
      const int32_t slot = plan.chunks[i].slot;
      const auto num_rows = int32_t(penalty_row_built_.size());
      if (slot < 0 || slot >= num_rows || penalty_counts_.size() != int64_t(num_rows) * vocab) {
        return invalid_argument("chunk " + std::to_string(i) + ": no penalty row for slot " + std::to_string(slot) +
                                " (prepared: " + std::to_string(num_rows) + " slots)");
      }
      penalty_rows = true;
      if (d.penalty_row == PenaltyRowMode::kRebuild) {
        penalty_row_built_[size_t(slot)] = 1;
      } else if (!penalty_row_built_[size_t(slot)]) {
        return internal_error("chunk " + std::to_string(i) + ": keeps the penalty row of slot " +
                              std::to_string(slot) + ", which was never built");
      }
    }
    if (d.allowed_mask) {
      if (int64_t(d.allowed_mask->size()) != words_per_mask) {
        return invalid_argument("chunk " + std::to_string(i) + ": allowed_mask holds " +
                                std::to_string(d.allowed_mask->size()) + " words, the vocabulary needs " +
                                std::to_string(words_per_mask));
      }
      mask_words += words_per_mask;
    }
  }
  if (chunk_of_.empty()) return Status::ok();
  const auto rows = int64_t(chunk_of_.size());
  TNL_RETURN_IF_ERROR(args_host_.reserve(rows));
  TNL_RETURN_IF_ERROR(entries_host_.reserve(std::max<int64_t>(1, num_entries)));
  TNL_RETURN_IF_ERROR(masks_host_.reserve(std::max<int64_t>(1, mask_words)));
  int64_t entry = 0, word = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const DeviceSampling& d = *plan.chunks[chunk_of_[size_t(r)]].sample;
    cuda::SampleRowArgs& a = args_host_.get()[r];
    a = cuda::SampleRowArgs{};
    a.params = d.params;
    a.row = sample_row[chunk_of_[size_t(r)]];
    a.penalty_begin = int32_t(entry);
    a.penalty_count = int32_t(d.penalties.size());
    a.want_logprob = d.want_logprob ? 1 : 0;
    a.penalty_mode = d.penalty_row;
    if (d.penalty_row != PenaltyRowMode::kNone) a.penalty_slot = plan.chunks[chunk_of_[size_t(r)]].slot;
    std::copy(d.penalties.begin(), d.penalties.end(), entries_host_.get() + entry);
    entry += int64_t(d.penalties.size());
    if (d.allowed_mask) {
      a.mask_begin = int32_t(word);
      std::copy(d.allowed_mask->begin(), d.allowed_mask->end(), masks_host_.get() + word);
      word += words_per_mask;
    }
  }

  TNL_RETURN_IF_ERROR(d_args_.reserve(rows));
  TNL_RETURN_IF_ERROR(d_results_.reserve(rows));
  TNL_RETURN_IF_ERROR(d_entries_.reserve(std::max<int64_t>(1, num_entries)));
  TNL_RETURN_IF_ERROR(d_masks_.reserve(std::max<int64_t>(1, mask_words)));
  if (num_entries > 0 || mask_words > 0 || penalty_rows) {
    TNL_RETURN_IF_ERROR(work_.reserve(rows * vocab));  // adjusted copies of rows
  }
  TNL_CUDA_TRY(cudaMemcpyAsync(d_args_.get(), args_host_.get(), size_t(rows) * sizeof(cuda::SampleRowArgs),
                               cudaMemcpyHostToDevice, stream));
  if (num_entries > 0) {
    TNL_CUDA_TRY(cudaMemcpyAsync(d_entries_.get(), entries_host_.get(), size_t(num_entries) * sizeof(PenaltyEntry),
                                 cudaMemcpyHostToDevice, stream));
  }
  if (mask_words > 0) {
    TNL_CUDA_TRY(cudaMemcpyAsync(d_masks_.get(), masks_host_.get(), size_t(mask_words) * sizeof(uint32_t),
                                 cudaMemcpyHostToDevice, stream));
  }
  cuda::PenaltyRows rows_state;
  if (penalty_rows) rows_state = {penalty_counts_.get(), penalty_prompt_bits_.get()};
  TNL_CUDA_TRY(cuda::sample_rows(logits, vocab, d_args_.get(), rows, d_entries_.get(), d_masks_.get(), rows_state,
                                 work_.get(), d_results_.get(), stream));
  TNL_RETURN_IF_ERROR(results_host_.reserve(rows));
  TNL_CUDA_TRY(cudaMemcpyAsync(results_host_.get(), d_results_.get(), size_t(rows) * sizeof(SampledToken),
                               cudaMemcpyDeviceToHost, stream));
  if (buffer_addresses() != before) ++growths_;
  return Status::ok();
}

void DeviceSampler::collect(size_t num_chunks, std::vector<SampledToken>* sampled) const {
  sampled->assign(num_chunks, SampledToken{});
  for (size_t r = 0; r < chunk_of_.size(); ++r) (*sampled)[chunk_of_[r]] = results_host_.get()[r];
}

}  // namespace tnl
