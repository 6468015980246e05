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
#include "tools/bench/bench_inputs.h"
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
  // which used to set its kernel's shared-memory attribute on every call.
  LightningInputs lightning;
  TNL_RETURN_IF_ERROR(lightning.make(1, 64, model.num_heads, model.head_dim(), 1, stream));

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
      {"Lightning launch, 1 segment",
       [&]() -> Status {
         TNL_CUDA_TRY(lightning.launch(stream));
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
