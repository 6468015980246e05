#include "engine/cuda/gemm.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "engine/cuda/capture_edges.h"
#include "engine/cuda/cuda_status.h"
#include "kernels/cuda/dependency_probe.h"

namespace tnl {
namespace {

constexpr int kCandidates = 16;          // heuristic results asked for when tuning
constexpr int kTimedRuns = 4;            // calls per timing (each on the next weight matrix)
constexpr int kTimingRounds = 2;         // every candidate timed this often, best kept
constexpr double kRequiredGain = 0.97;   // a candidate replaces the first pick only below 97% of its time
constexpr uintptr_t kAlignment = 256;    // cuBLASLt's default assumption about every operand's address

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kAlignment == 0; }

// The weight matrices a timing cycles through: at least one, each aligned.
Status check_timing_weights(std::span<const void* const> weights, const std::string& what) {
  if (weights.empty()) return invalid_argument(what + " needs at least one weight matrix");
  for (const void* w : weights) {
    if (!aligned(w)) return invalid_argument(what + ": a weight matrix is not 256-byte aligned");
  }
  return Status::ok();
}

// Two CUDA events, destroyed with the pair.
struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  static Expected<EventPair> create() {
    EventPair e;
    TNL_CUDA_TRY(cudaEventCreate(&e.start));
    TNL_CUDA_TRY(cudaEventCreate(&e.stop));
    return e;
  }
  EventPair() = default;
  EventPair(EventPair&& o) noexcept : start(std::exchange(o.start, nullptr)), stop(std::exchange(o.stop, nullptr)) {}
  EventPair& operator=(EventPair&&) = delete;
  ~EventPair() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
};

}  // namespace

// A shape's descriptors (row-major Y[n,out] = X·Wᵀ is column-major
// Yᶜ[out,n] = op(Wᶜ)·Xᶜ with Wᶜ = W viewed column-major [in,out], op = transpose)
// and the algorithm it runs.
struct GemmRunner::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t w = nullptr, x = nullptr, y = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool programmatic = false;  // algo passed probe_programmatic()
  ~Plan() {
    if (y) cublasLtMatrixLayoutDestroy(y);
    if (x) cublasLtMatrixLayoutDestroy(x);
    if (w) cublasLtMatrixLayoutDestroy(w);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

Expected<std::unique_ptr<GemmRunner>> GemmRunner::create(cudaDataType_t operand_type, cudaStream_t stream,
                                                         void* workspace, size_t workspace_bytes) {
  if (operand_type != CUDA_R_16BF && operand_type != CUDA_R_16F) {
    return invalid_argument("GemmRunner: operands must be bf16 or fp16");
  }
  if (workspace_bytes > 0 && !aligned(workspace)) return invalid_argument("GemmRunner: workspace is not 256-byte aligned");
  cublasLtHandle_t handle = nullptr;
  TNL_CUBLAS_TRY(cublasLtCreate(&handle));
  std::unique_ptr<GemmRunner> runner(new GemmRunner(handle, operand_type, stream, workspace, workspace_bytes));
  TNL_RETURN_IF_ERROR(runner->fence_.allocate(256));
  return runner;
}

GemmRunner::GemmRunner(cublasLtHandle_t handle, cudaDataType_t operand_type, cudaStream_t stream, void* workspace,
                       size_t workspace_bytes)
    : handle_(handle),
      operand_type_(operand_type),
      stream_(stream),
      workspace_(workspace),
      workspace_bytes_(workspace_bytes) {}

GemmRunner::~GemmRunner() {
  plans_.clear();
  cublasLtDestroy(handle_);
}

Expected<GemmRunner::Plan*> GemmRunner::plan_for(const GemmShape& s) {
  auto found = plans_.find(s.key());
  if (found != plans_.end()) return found->second.get();
  if (s.n <= 0 || s.in <= 0 || s.out <= 0) {
    return invalid_argument("GEMM shape n=" + std::to_string(s.n) + " in=" + std::to_string(s.in) +
                            " out=" + std::to_string(s.out) + " has an empty side");
  }
  auto plan = std::make_unique<Plan>();
  TNL_CUBLAS_TRY(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;
  TNL_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof(transpose)));
  TNL_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof(none)));
  TNL_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&plan->w, operand_type_, uint64_t(s.in), uint64_t(s.out), s.in));
  TNL_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&plan->x, operand_type_, uint64_t(s.in), uint64_t(s.n), s.in));
  TNL_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&plan->y, s.f32_out ? CUDA_R_32F : operand_type_, uint64_t(s.out),
                                        uint64_t(s.n), s.out));
  TNL_ASSIGN_OR_RETURN(const std::vector<cublasLtMatmulHeuristicResult_t> first, candidates(*plan, 1));
  if (first.empty()) {
    return internal_error("cuBLASLt has no algorithm for the GEMM n=" + std::to_string(s.n) +
                          " in=" + std::to_string(s.in) + " out=" + std::to_string(s.out));
  }
  plan->algo = first[0].algo;
  Plan* p = plan.get();
  plans_.emplace(s.key(), std::move(plan));
  return p;
}

Expected<std::vector<cublasLtMatmulHeuristicResult_t>> GemmRunner::candidates(const Plan& p, int count) {
  cublasLtMatmulPreference_t pref = nullptr;
  TNL_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = workspace_bytes_;
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(count));
  int returned = 0;
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.w, p.x, p.y, p.y, pref, count, results.data(), &returned);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  TNL_CUBLAS_TRY(st);
  results.resize(size_t(std::max(returned, 0)));
  return results;
}

Status GemmRunner::pin(const GemmShape& s, int candidate) {
  TNL_ASSIGN_OR_RETURN(Plan * p, plan_for(s));
  TNL_ASSIGN_OR_RETURN(const std::vector<cublasLtMatmulHeuristicResult_t> results, candidates(*p, kCandidates));
  if (candidate < 0 || size_t(candidate) >= results.size()) {
    return out_of_range("the GEMM has " + std::to_string(results.size()) + " candidates, not " +
                        std::to_string(candidate + 1));
  }
  p->algo = results[size_t(candidate)].algo;
  p->programmatic = false;
  return Status::ok();
}

bool GemmRunner::programmatic(const GemmShape& s) const {
  const auto found = plans_.find(s.key());
  return found != plans_.end() && found->second->programmatic;
}

Expected<bool> GemmRunner::probe_programmatic(const GemmShape& s, const void* w) {
  TNL_ASSIGN_OR_RETURN(Plan * p, plan_for(s));
  p->programmatic = false;
  TNL_ASSIGN_OR_RETURN(std::optional<ProbeBuffers> buffers, probe_buffers(s, w));
  if (!buffers) return false;
  TNL_ASSIGN_OR_RETURN(p->programmatic, waits_for_predecessor(s, *p, p->algo, w, *buffers));
  return p->programmatic;
}

// Allocates the probe's operands for `s` and fills x_src from w; nullopt where
// the shape cannot be probed (w too small for the input, in not a multiple of 8).
Expected<std::optional<GemmRunner::ProbeBuffers>> GemmRunner::probe_buffers(const GemmShape& s, const void* w) {
  if (s.out < s.n || s.in % 8 != 0 || !aligned(w)) return std::optional<ProbeBuffers>{};
  std::optional<ProbeBuffers> b(std::in_place);
  const int64_t elem = 2;
  b->x_bytes = s.n * s.in * elem;
  b->y_bytes = s.n * s.out * (s.f32_out ? 4 : elem);
  TNL_RETURN_IF_ERROR(b->x_src.allocate(b->x_bytes));
  TNL_RETURN_IF_ERROR(b->x.allocate(b->x_bytes));
  TNL_RETURN_IF_ERROR(b->y.allocate(b->y_bytes));
  TNL_RETURN_IF_ERROR(b->y_ref.allocate(b->y_bytes));
  TNL_CUDA_TRY(cudaMemcpyAsync(b->x_src.get(), w, size_t(b->x_bytes), cudaMemcpyDeviceToDevice, stream_));
  return b;
}

Expected<bool> GemmRunner::waits_for_predecessor(const GemmShape& s, const Plan& p, const cublasLtMatmulAlgo_t& algo,
                                                 const void* w, ProbeBuffers& b) {
  constexpr int64_t kDelayNs = 50'000;  // ≫ the GEMM: a kernel that read x early has long finished
  const int64_t x_bytes = b.x_bytes, y_bytes = b.y_bytes;
  DeviceBuffer<std::byte>& x = b.x;
  DeviceBuffer<std::byte>& y = b.y;
  DeviceBuffer<std::byte>& y_ref = b.y_ref;
  const float beta = s.accumulate ? 1.0f : 0.0f;
  // The reference: the GEMM of x = w's first rows, run after x is written.
  TNL_CUDA_TRY(cudaMemcpyAsync(x.get(), b.x_src.get(), size_t(x_bytes), cudaMemcpyDeviceToDevice, stream_));
  TNL_CUDA_TRY(cudaMemsetAsync(y_ref.get(), 0, size_t(y_bytes), stream_));
  TNL_RETURN_IF_ERROR(launch(p, algo, x.get(), w, y_ref.get(), beta));
  // The probe: x zero until the delayed copy writes it, the GEMM behind a programmatic edge.
  TNL_CUDA_TRY(cudaMemsetAsync(x.get(), 0, size_t(x_bytes), stream_));
  TNL_CUDA_TRY(cudaMemsetAsync(y.get(), 0, size_t(y_bytes), stream_));
  TNL_CUDA_TRY(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  cudaError_t err = cuda::delayed_copy(b.x_src.get(), x.get(), x_bytes, kDelayNs, stream_);
  if (err == cudaSuccess) err = make_next_capture_edges_programmatic(stream_);
  const Status launched = err == cudaSuccess ? launch(p, algo, x.get(), w, y.get(), beta) : Status::ok();
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
  cudaGraphExec_t exec = nullptr;
  if (err == cudaSuccess && launched.is_ok() && ended == cudaSuccess) err = cudaGraphInstantiate(&exec, graph, 0);
  if (graph) cudaGraphDestroy(graph);
  if (err == cudaSuccess && launched.is_ok() && ended == cudaSuccess) err = cudaGraphLaunch(exec, stream_);
  if (exec) cudaGraphExecDestroy(exec);
  if (err != cudaSuccess || !launched.is_ok() || ended != cudaSuccess) {
    // A graph the runtime would not build this way (say, cuBLASLt put a memset
    // first): the shape keeps its ordinary edges; the error is not sticky.
    (void)cudaGetLastError();
    spdlog::debug("GEMM n={} in={} out={}: no programmatic edge ({})", s.n, s.in, s.out,
                  err != cudaSuccess ? cudaGetErrorString(err)
                  : !launched.is_ok() ? launched.to_string()
                                      : cudaGetErrorString(ended));
    TNL_CUDA_TRY(cudaStreamSynchronize(stream_));
    return false;
  }
  std::vector<std::byte> got(static_cast<size_t>(y_bytes)), want(static_cast<size_t>(y_bytes));
  TNL_CUDA_TRY(cudaMemcpyAsync(got.data(), y.get(), size_t(y_bytes), cudaMemcpyDeviceToHost, stream_));
  TNL_CUDA_TRY(cudaMemcpyAsync(want.data(), y_ref.get(), size_t(y_bytes), cudaMemcpyDeviceToHost, stream_));
  TNL_CUDA_TRY(cudaStreamSynchronize(stream_));
  // A zero product cannot tell an early read from a late one.
  const bool informative = std::any_of(want.begin(), want.end(), [](std::byte b) { return b != std::byte{0}; });
  return informative && got == want;
}

Status GemmRunner::launch(const Plan& p, const cublasLtMatmulAlgo_t& algo, const void* x, const void* w, void* y,
                          float beta) {
  const float alpha = 1.0f;
  TNL_CUBLAS_TRY(cublasLtMatmul(handle_, p.desc, &alpha, w, p.w, x, p.x, &beta, y, p.y, y, p.y, &algo, workspace_,
                            workspace_bytes_, stream_));
  return Status::ok();
}

Status GemmRunner::run(const GemmShape& s, const void* x, const void* w, void* y, float beta) {
  if (s.n == 0) return Status::ok();
  if (beta != 0.0f && !s.accumulate) return invalid_argument("GEMM: beta != 0 on a shape that does not accumulate");
  if (!aligned(x) || !aligned(w) || !aligned(y)) return invalid_argument("GEMM: an operand is not 256-byte aligned");
  TNL_ASSIGN_OR_RETURN(Plan * p, plan_for(s));
  if (p->programmatic) TNL_CUDA_TRY(make_next_capture_edges_programmatic(stream_));
  return launch(*p, p->algo, x, w, y, beta);
}

// Per candidate: one untimed call (it may load its kernel), then the best of
// kTimingRounds timings of kTimedRuns calls, each on the next weight matrix and
// after a 4-byte memset that no kernel overlaps: so a call is timed from its
// start to its last CTA's end, as inside a step where the next kernel waits for
// it (the fence's own time, measured alone, is subtracted). -1: the candidate
// failed (and is marked so). Runs on `p`'s operands; leaves p.algo alone.
Expected<std::vector<double>> GemmRunner::time_candidates(Plan& p, std::vector<cublasLtMatmulHeuristicResult_t>& results,
                                                          const void* x, std::span<const void* const> weights, void* y,
                                                          float beta) {
  TNL_ASSIGN_OR_RETURN(EventPair events, EventPair::create());
  auto timed_us = [&](auto enqueue_call) -> Expected<double> {
    TNL_CUDA_TRY(cudaEventRecord(events.start, stream_));
    for (int r = 0; r < kTimedRuns; ++r) {
      TNL_CUDA_TRY(cudaMemsetAsync(fence_.get(), 0, 4, stream_));
      TNL_RETURN_IF_ERROR(enqueue_call(r));
    }
    TNL_CUDA_TRY(cudaEventRecord(events.stop, stream_));
    TNL_CUDA_TRY(cudaEventSynchronize(events.stop));
    float ms = 0;
    TNL_CUDA_TRY(cudaEventElapsedTime(&ms, events.start, events.stop));
    return 1e3 * double(ms) / kTimedRuns;
  };
  double fence_us = -1.0;
  std::vector<double> best_us(results.size(), -1.0);
  for (int round = 0; round < kTimingRounds; ++round) {
    TNL_ASSIGN_OR_RETURN(const double alone, timed_us([](int) { return Status::ok(); }));
    if (fence_us < 0 || alone < fence_us) fence_us = alone;
    for (size_t c = 0; c < results.size(); ++c) {
      if (results[c].state != CUBLAS_STATUS_SUCCESS) continue;
      if (round == 0 && !launch(p, results[c].algo, x, weights[0], y, beta).is_ok()) {
        results[c].state = CUBLAS_STATUS_NOT_SUPPORTED;
        cudaGetLastError();
        continue;
      }
      TNL_ASSIGN_OR_RETURN(const double us, timed_us([&](int r) {
                             return launch(p, results[c].algo, x, weights[size_t(r + 1) % weights.size()], y, beta);
                           }));
      if (best_us[c] < 0 || us < best_us[c]) best_us[c] = us;
    }
  }
  for (double& us : best_us) {
    if (us >= 0) us = std::max(0.0, us - fence_us);
  }
  return best_us;
}

Expected<GemmTuning> GemmRunner::tune(const GemmShape& s, const void* x, std::span<const void* const> weights,
                                      void* y, float beta) {
  TNL_RETURN_IF_ERROR(check_timing_weights(weights, "GEMM tuning"));
  TNL_RETURN_IF_ERROR(run(s, x, weights[0], y, beta));  // validates, and makes the plan
  Plan& p = *plans_.at(s.key());
  TNL_ASSIGN_OR_RETURN(std::vector<cublasLtMatmulHeuristicResult_t> results, candidates(p, kCandidates));
  TNL_ASSIGN_OR_RETURN(const std::vector<double> best_us, time_candidates(p, results, x, weights, y, beta));

  GemmTuning t;
  int chosen = -1;
  for (size_t c = 0; c < results.size(); ++c) {
    if (best_us[c] < 0) continue;
    ++t.candidates;
    if (chosen < 0 || best_us[c] < best_us[size_t(chosen)]) chosen = int(c);
  }
  if (chosen < 0) return t;  // nothing ran: keep the plan's first pick
  // The first pick keeps its place unless the fastest beats it clearly.
  if (best_us[0] >= 0 && best_us[size_t(chosen)] > kRequiredGain * best_us[0]) chosen = 0;
  t.chosen = chosen;
  t.first_pick_us = best_us[0];
  t.chosen_us = best_us[size_t(chosen)];
  p.programmatic = false;  // probe again: the kernel may change
  p.algo = results[size_t(chosen)].algo;
  spdlog::debug("GEMM n={} in={} out={}{}: {} candidates, first pick {:.2f} us, kept #{} {:.2f} us", s.n, s.in, s.out,
                s.f32_out ? " (fp32 out)" : "", t.candidates, t.first_pick_us, t.chosen, t.chosen_us);
  return t;
}

Expected<GraphGemmChoice> GemmRunner::choose_for_graphs(const GemmShape& s, const void* x,
                                                        std::span<const void* const> weights, void* y, float beta,
                                                        double credit_us) {
  TNL_RETURN_IF_ERROR(check_timing_weights(weights, "GEMM choice"));
  TNL_RETURN_IF_ERROR(run(s, x, weights[0], y, beta));  // validates, and makes the plan
  Plan& p = *plans_.at(s.key());
  GraphGemmChoice choice;
  p.programmatic = false;
  TNL_ASSIGN_OR_RETURN(std::optional<ProbeBuffers> buffers, probe_buffers(s, weights[0]));
  if (!buffers) return choice;
  // The first pick stays when it waits.
  TNL_ASSIGN_OR_RETURN(p.programmatic, waits_for_predecessor(s, p, p.algo, weights[0], *buffers));
  choice.first_pick_waits = p.programmatic;
  if (p.programmatic) {
    choice.programmatic = true;
    return choice;
  }
  if (credit_us < 0) return choice;  // no choice by timing
  TNL_ASSIGN_OR_RETURN(std::vector<cublasLtMatmulHeuristicResult_t> results, candidates(p, kCandidates));
  TNL_ASSIGN_OR_RETURN(const std::vector<double> best_us, time_candidates(p, results, x, weights, y, beta));
  if (results.empty() || best_us[0] < 0) return choice;
  choice.first_pick_us = best_us[0];
  // The fastest candidate that waits, if it costs at most credit_us more.
  int chosen = -1;
  for (size_t c = 1; c < results.size(); ++c) {
    if (best_us[c] < 0 || best_us[c] > best_us[0] + credit_us) continue;
    if (chosen >= 0 && best_us[c] >= best_us[size_t(chosen)]) continue;
    TNL_ASSIGN_OR_RETURN(const bool waits, waits_for_predecessor(s, p, results[c].algo, weights[0], *buffers));
    if (waits) chosen = int(c);
  }
  if (chosen < 0) return choice;
  p.algo = results[size_t(chosen)].algo;
  p.programmatic = true;
  choice.programmatic = true;
  choice.chosen = chosen;
  choice.chosen_us = best_us[size_t(chosen)];
  return choice;
}

}  // namespace tnl
