#include "tools/bench/bench_inputs.h"

#include <cmath>

#include "engine/cuda/cuda_status.h"

namespace tnl::bench {

std::vector<float> rates_for(int64_t heads) {
  std::vector<float> r;
  for (int64_t h = 0; h < heads; ++h) r.push_back(float(std::exp2(-8.0 * double(h + 1) / double(heads)) * 0.5));
  return r;
}

Status LightningInputs::make(int64_t batch, int64_t n, int64_t heads, int64_t e, int64_t target_ctas,
                             cudaStream_t stream, int32_t state_parts) {
  const int64_t N = batch * n;
  TNL_RETURN_IF_ERROR(q.allocate(heads * N * e));
  TNL_RETURN_IF_ERROR(k.allocate(heads * N * e));
  TNL_RETURN_IF_ERROR(v.allocate(heads * N * e));
  TNL_RETURN_IF_ERROR(out.allocate(N * heads * e));
  TNL_CUDA_TRY(cuda::fill_uniform(q.get(), q.size(), 11, 0.1f, stream));
  TNL_CUDA_TRY(cuda::fill_uniform(k.get(), k.size(), 12, 0.1f, stream));
  TNL_CUDA_TRY(cuda::fill_uniform(v.get(), v.size(), 13, 1.0f, stream));

  plan = cuda::plan_lightning(std::vector<int32_t>(static_cast<size_t>(batch), int32_t(n)), heads, e, target_ctas,
                              0, state_parts);
  std::vector<int32_t> slot_ids(static_cast<size_t>(batch)), fresh_flags(static_cast<size_t>(batch), 1);
  for (int64_t i = 0; i < batch; ++i) slot_ids[size_t(i)] = int32_t(i);
  TNL_RETURN_IF_ERROR(upload(plan.segments, &segments));
  TNL_RETURN_IF_ERROR(upload(plan.multi, &multi));
  TNL_RETURN_IF_ERROR(upload(plan.parts, &parts));
  TNL_RETURN_IF_ERROR(upload(slot_ids, &slots));
  TNL_RETURN_IF_ERROR(upload(fresh_flags, &fresh));
  TNL_RETURN_IF_ERROR(upload(rates_for(heads), &rates));
  TNL_RETURN_IF_ERROR(states.allocate(batch * heads * e * e));
  TNL_RETURN_IF_ERROR(scratch.allocate(std::max<int64_t>(1, cuda::lightning_scratch_floats(plan, heads, e, e))));

  args = {};
  args.total_tokens = N;
  args.heads = heads;
  args.ek = e;
  args.e = e;
  args.rates = rates.get();
  args.segments = segments.get();
  args.multi = multi.get();
  args.parts = parts.get();
  args.set_plan(plan);
  args.seq_slot = slots.get();
  args.seq_fresh = fresh.get();
  args.layer_state = states.get();
  args.slot_stride = heads * e * e;
  args.scratch = scratch.get();
  return Status::ok();
}

}  // namespace tnl::bench
