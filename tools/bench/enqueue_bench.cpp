#include "tools/bench/enqueue_bench.h"

#include <cuda_bf16.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <string>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/gemm.h"
#include "kernels/cuda/device_attribute.h"
#include "kernels/cuda/launchers.h"
#include "tools/bench/gpu_timer.h"

namespace tnl::bench {
namespace {

using T = __nv_bfloat16;
using Clock = std::chrono::steady_clock;

// Host µs per call: batches of kCalls calls timed on the host clock, the stream
// drained between batches (so that the launch queue never fills and blocks the
// host: what is timed is the CPU's work, not waiting for the GPU).
constexpr int kCalls = 64, kBatches = 20;

Expected<double> host_us_per_call(cudaStream_t stream, const std::function<Status()>& call) {
  TNL_RETURN_IF_ERROR(call());  // first call: module loading, plan creation
  TNL_CUDA_TRY(cudaStreamSynchronize(stream));
  std::vector<double> per_call;
  for (int b = 0; b < kBatches; ++b) {
    const auto start = Clock::now();
    for (int i = 0; i < kCalls; ++i) TNL_RETURN_IF_ERROR(call());
    per_call.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count() / kCalls);
    TNL_CUDA_TRY(cudaStreamSynchronize(stream));
  }
  return median(per_call);
}

}  // namespace

Expected<std::vector<Figure>> run_enqueue_benchmarks(const ModelConfig& model, int64_t rows, cudaStream_t stream) {
  const int64_t d = model.dim, D = model.hidden_dim;
  DeviceBuffer<float> x;
  DeviceBuffer<T> a, w, y;
  DeviceBuffer<std::byte> workspace;
  DeviceBuffer<int32_t> ints;
  TNL_RETURN_IF_ERROR(x.allocate(rows * d));
  TNL_RETURN_IF_ERROR(a.allocate(rows * d));
  TNL_RETURN_IF_ERROR(w.allocate(4 * D * d));
  TNL_RETURN_IF_ERROR(y.allocate(rows * 4 * D));
  TNL_RETURN_IF_ERROR(workspace.allocate(32 << 20));
  TNL_RETURN_IF_ERROR(ints.allocate(1024));
  TNL_CUDA_TRY(cuda::fill_uniform(a.get(), a.size(), 1, 0.1f, stream));
  TNL_CUDA_TRY(cuda::fill_uniform(w.get(), w.size(), 2, 0.1f, stream));
  TNL_CUDA_TRY(cudaMemsetAsync(x.get(), 0, size_t(x.size()) * sizeof(float), stream));
  TNL_ASSIGN_OR_RETURN(std::unique_ptr<GemmRunner> gemm,
                       GemmRunner::create(CUDA_R_16BF, stream, workspace.get(), size_t(workspace.size())));
  int32_t* pinned = nullptr;
  TNL_CUDA_TRY(cudaMallocHost(&pinned, 1024 * sizeof(int32_t)));
  std::unique_ptr<int32_t, decltype(&cudaFreeHost)> pinned_owner(pinned, &cudaFreeHost);
  cudaEvent_t event = nullptr;
  TNL_CUDA_TRY(cudaEventCreate(&event));
  std::unique_ptr<CUevent_st, decltype(&cudaEventDestroy)> event_owner(event, &cudaEventDestroy);

  // One 64-token sequence's Lightning launch (its output pass alone: one segment),
  // which sets its kernel's shared-memory attribute on every call.
  const int64_t H = model.num_heads, e = model.head_dim(), n = 64;
  DeviceBuffer<T> q, k, v, o;
  DeviceBuffer<float> rates, state;
  DeviceBuffer<int32_t> segments, seq_ints;
  TNL_RETURN_IF_ERROR(q.allocate(n * H * e));
  TNL_RETURN_IF_ERROR(k.allocate(n * H * e));
  TNL_RETURN_IF_ERROR(v.allocate(n * H * e));
  TNL_RETURN_IF_ERROR(o.allocate(n * H * e));
  TNL_RETURN_IF_ERROR(rates.allocate(H));
  TNL_RETURN_IF_ERROR(state.allocate(H * e * e));
  TNL_CUDA_TRY(cuda::fill_uniform(q.get(), q.size(), 3, 0.1f, stream));
  TNL_CUDA_TRY(cuda::fill_uniform(k.get(), k.size(), 4, 0.1f, stream));
  TNL_CUDA_TRY(cuda::fill_uniform(v.get(), v.size(), 5, 1.0f, stream));
  TNL_CUDA_TRY(cuda::fill_uniform_f32(rates.get(), rates.size(), 6, 0.1f, stream));
  const cuda::LightningPlan plan = cuda::plan_lightning({int32_t(n)}, H, e, 1);
  const std::vector<int32_t> seq = {0, 1};  // slot 0, fresh
  TNL_RETURN_IF_ERROR(segments.allocate(int64_t(plan.segments.size())));
  TNL_RETURN_IF_ERROR(seq_ints.allocate(2));
  TNL_CUDA_TRY(cudaMemcpy(segments.get(), plan.segments.data(), plan.segments.size() * sizeof(int32_t),
                          cudaMemcpyHostToDevice));
  TNL_CUDA_TRY(cudaMemcpy(seq_ints.get(), seq.data(), seq.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
  cuda::LightningArgs la;
  la.total_tokens = n;
  la.heads = H;
  la.ek = e;
  la.e = e;
  la.rates = rates.get();
  la.segments = segments.get();
  la.set_plan(plan);
  la.seq_slot = seq_ints.get();
  la.seq_fresh = seq_ints.get() + 1;
  la.layer_state = state.get();
  la.slot_stride = H * e * e;

  struct Case {
    std::string name;
    std::function<Status()> call;
  };
  const GemmShape qkvu{rows, d, 4 * D, false, false};
  const std::vector<Case> cases = {
      {"cuBLASLt GEMM " + std::to_string(rows) + "x" + std::to_string(d) + "x" + std::to_string(4 * D),
       [&] { return gemm->run(qkvu, a.get(), w.get(), y.get(), 0.0f); }},
      {"kernel launch with PDL (srms_norm, 1 row)",
       [&]() -> Status {
         TNL_CUDA_TRY(cuda::srms_norm<T>(x.get(), d, nullptr, 1, a.get(), stream));
         return Status::ok();
       }},
      {"Lightning launch, 1 segment (its attribute set included)",
       [&]() -> Status {
         TNL_CUDA_TRY(cuda::lightning_prefill<T>(q.get(), k.get(), v.get(), la, o.get(), stream));
         return Status::ok();
       }},
      {"device attribute query (cudaGetDevice + attribute)",
       [&]() -> Status {
         if (cuda::current_device_attribute(cudaDevAttrComputeCapabilityMajor) <= 0) return internal_error("no device");
         return Status::ok();
       }},
      {"cudaMemcpyAsync 4 KB pinned host -> device",
       [&]() -> Status {
         TNL_CUDA_TRY(cudaMemcpyAsync(ints.get(), pinned, 1024 * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
         return Status::ok();
       }},
      {"cudaEventRecord",
       [&]() -> Status {
         TNL_CUDA_TRY(cudaEventRecord(event, stream));
         return Status::ok();
       }},
  };
  std::vector<Figure> figures;
  for (const Case& c : cases) {
    TNL_ASSIGN_OR_RETURN(const double us, host_us_per_call(stream, c.call));
    Figure f;
    f.section = "host";
    f.name = c.name;
    f.time_ms = us / 1e3;
    f.extra = {{"host_us_per_call", us}};
    spdlog::info("host enqueue, {}: {:.2f} us per call", c.name, us);
    figures.push_back(std::move(f));
  }
  return figures;
}

}  // namespace tnl::bench
