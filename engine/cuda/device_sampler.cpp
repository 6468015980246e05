#include "engine/cuda/device_sampler.h"

#include <algorithm>

#include "engine/cuda/cuda_status.h"

namespace tnl {

Status DeviceSampler::enqueue(const StepPlan& plan, const std::vector<int32_t>& sample_row, const float* logits,
                              int64_t vocab, cudaStream_t stream) {
  args_.clear();
  entries_.clear();
  chunk_of_.clear();
  bool penalties = false;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const std::optional<DeviceSampling>& d = plan.chunks[i].sample;
    if (!d) continue;
    cuda::SampleRowArgs a;
    a.params = d->params;
    a.row = sample_row[i];
    a.penalty_begin = int32_t(entries_.size());
    a.penalty_count = int32_t(d->penalties.size());
    a.want_logprob = d->want_logprob ? 1 : 0;
    penalties = penalties || !d->penalties.empty();
    entries_.insert(entries_.end(), d->penalties.begin(), d->penalties.end());
    args_.push_back(a);
    chunk_of_.push_back(i);
  }
  if (args_.empty()) return Status::ok();

  const auto rows = int64_t(args_.size());
  TNL_RETURN_IF_ERROR(d_args_.reserve(rows));
  TNL_RETURN_IF_ERROR(d_results_.reserve(rows));
  TNL_RETURN_IF_ERROR(d_entries_.reserve(std::max<int64_t>(1, int64_t(entries_.size()))));
  if (penalties) TNL_RETURN_IF_ERROR(work_.reserve(rows * vocab));
  TNL_RETURN_IF_ERROR(args_host_.assign(args_.data(), rows));
  TNL_CUDA_TRY(cudaMemcpyAsync(d_args_.get(), args_host_.get(), args_.size() * sizeof(args_[0]),
                               cudaMemcpyHostToDevice, stream));
  if (!entries_.empty()) {
    TNL_RETURN_IF_ERROR(entries_host_.assign(entries_.data(), int64_t(entries_.size())));
    TNL_CUDA_TRY(cudaMemcpyAsync(d_entries_.get(), entries_host_.get(), entries_.size() * sizeof(entries_[0]),
                                 cudaMemcpyHostToDevice, stream));
  }
  TNL_CUDA_TRY(cuda::sample_rows(logits, vocab, d_args_.get(), rows, d_entries_.get(), work_.get(), d_results_.get(),
                                 stream));
  TNL_RETURN_IF_ERROR(results_host_.reserve(rows));
  TNL_CUDA_TRY(cudaMemcpyAsync(results_host_.get(), d_results_.get(), size_t(rows) * sizeof(SampledToken),
                               cudaMemcpyDeviceToHost, stream));
  return Status::ok();
}

void DeviceSampler::collect(size_t num_chunks, std::vector<SampledToken>* sampled) const {
  sampled->assign(num_chunks, SampledToken{});
  for (size_t r = 0; r < chunk_of_.size(); ++r) (*sampled)[chunk_of_[r]] = results_host_.get()[r];
}

}  // namespace tnl
