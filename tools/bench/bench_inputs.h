// Device inputs of the kernel benchmarks: host vectors uploaded, per-head decay
// rates, and a whole Lightning prefill launch's operands (random q, k, v; fresh
// states; the plan and its device copies).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_buffer.h"
#include "engine/status.h"
#include "kernels/cuda/launchers.h"

namespace tnl::bench {

template <typename U>
Status upload(const std::vector<U>& host, DeviceBuffer<U>* out) {
  TNL_RETURN_IF_ERROR(out->allocate(std::max<int64_t>(1, int64_t(host.size()))));
  if (!host.empty()) TNL_CUDA_TRY(cudaMemcpy(out->get(), host.data(), host.size() * sizeof(U), cudaMemcpyHostToDevice));
  return Status::ok();
}

// Decay rates of a mid-depth layer of a 24-layer model (the rate only scales values).
std::vector<float> rates_for(int64_t heads);

// `batch` fresh sequences of `n` tokens, `heads` heads of width e = e_k, planned
// for `target_ctas` CTAs (state_parts: plan_lightning's); `args` points into the buffers.
struct LightningInputs {
  cuda::LightningPlan plan;
  DeviceBuffer<__nv_bfloat16> q, k, v, out;
  DeviceBuffer<int32_t> segments, multi, parts, slots, fresh;
  DeviceBuffer<float> rates, states, scratch;
  cuda::LightningArgs args;

  Status make(int64_t batch, int64_t n, int64_t heads, int64_t e, int64_t target_ctas, cudaStream_t stream,
              int32_t state_parts = 0);
  cudaError_t launch(cudaStream_t stream) {
    return cuda::lightning_prefill<__nv_bfloat16>(q.get(), k.get(), v.get(), args, out.get(), stream);
  }
};

}  // namespace tnl::bench
