// Row-major projections through cuBLASLt: Y[n, out] = X[n, in] · W[out, in]ᵀ,
// bf16/fp16 operands, fp32 accumulation; Y is T, or the fp32 residual stream
// with beta = 1 (the residual add fused into the GEMM).
//
// Each shape runs one cuBLASLt algorithm (kernel, tile, split-K, ...) chosen
// once: tune() times the candidates cuBLASLt's heuristic offers and keeps the
// fastest (the backend's start-up does it for the row buckets of large steps,
// gemm_rows.h); any other shape runs the heuristic's first pick, which is what
// cublasGemmEx would run. The heuristic ranks by a model of the kernels, not by a
// measurement: at prefill sizes the measured choice is a few percent faster
// (docs/architecture.md, "GEMM kernels").
//
// A chosen algorithm is fixed for the runner's life: a shape runs the same kernel
// on every call of a process (which one may differ between start-ups when tuned).
//
// Captured into a graph, a shape that probe_programmatic() has passed enters
// behind programmatic edges (capture_edges.h), as our own kernels do, so that
// it is placed while the kernel ahead of it still runs.
//
// Threads: one owner (the CUDA backend's step thread); not thread-safe.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <tuple>
#include <vector>

#include "engine/cuda/device_buffer.h"
#include "engine/status.h"

namespace tnl {

struct GemmShape {
  int64_t n = 0, in = 0, out = 0;
  bool f32_out = false;     // Y is fp32 (else the operand type)
  bool accumulate = false;  // Y = beta·Y + X·Wᵀ with beta ≠ 0 (else Y = X·Wᵀ)
  auto key() const { return std::tuple(n, in, out, f32_out, accumulate); }
};

// What tune() found for one shape.
struct GemmTuning {
  int candidates = 0;         // algorithms timed (the heuristic's, those that ran)
  int chosen = 0;             // index of the kept one in the heuristic's order (0: its first pick)
  double first_pick_us = 0;   // the heuristic's first pick, µs per call
  double chosen_us = 0;       // the kept one
};

// Sums over the shapes a warm-up tuned (for its log line).
struct GemmTuningTotals {
  int shapes = 0, candidates = 0, changed = 0;
  double first_pick_us = 0, chosen_us = 0;
  void add(const GemmTuning& t) {
    ++shapes;
    candidates += t.candidates;
    changed += t.chosen != 0;
    first_pick_us += t.first_pick_us;
    chosen_us += t.chosen_us;
  }
};

// What choose_for_graphs() did for one shape.
struct GraphGemmChoice {
  bool first_pick_waits = false;  // the heuristic's first pick passed the probe: kept
  bool programmatic = false;      // the shape enters captured graphs behind programmatic edges
  int chosen = 0;                 // index of the kept candidate in the heuristic's order
  double first_pick_us = 0;       // timed only when the first pick did not wait
  double chosen_us = 0;
};

class GemmRunner {
 public:
  // operand_type: CUDA_R_16BF or CUDA_R_16F. workspace: device memory the
  // kernels may use, fixed so that GEMMs inside captured graphs never allocate.
  static Expected<std::unique_ptr<GemmRunner>> create(cudaDataType_t operand_type, cudaStream_t stream,
                                                      void* workspace, size_t workspace_bytes);
  ~GemmRunner();
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;

  // y = beta·y + x·wᵀ on the runner's stream. beta must be 0 unless s.accumulate.
  Status run(const GemmShape& s, const void* x, const void* w, void* y, float beta);

  // Times every candidate of `s` (each call on the next of `weights`, so that the
  // weights come from memory as in a step, not from L2; each after a memset that
  // no kernel overlaps, so that a call counts from its start to its end as when
  // the next kernel of a step waits for it) and keeps the fastest; the heuristic's
  // first pick stays unless another is ≥ 3% faster (timing noise must not flip a
  // choice). Writes y; synchronizes the stream.
  Expected<GemmTuning> tune(const GemmShape& s, const void* x, std::span<const void* const> weights, void* y,
                            float beta);

  // Runs `s` with the heuristic's candidate #candidate from now on (tests check
  // every candidate's result; out_of_range past the last).
  Status pin(const GemmShape& s, int candidate);

  // Whether `s`'s kernel waits for a programmatic predecessor before it reads
  // its input, measured: a graph of [kernels/cuda/dependency_probe.h's delayed
  // copy into x → programmatic edge → the GEMM] must give the bits of the GEMM
  // run after the copy (a kernel that read x early would see the zeros x held).
  // On success the shape enters captured graphs behind programmatic edges from
  // then on; a later pin() or tune() forgets it. Uses w's first n·in elements as
  // the input (false without probing where w has fewer, or in is not a multiple
  // of 8; false where the product is all zeros, which cannot tell). Synchronizes
  // the stream; allocates scratch buffers for the probe.
  Expected<bool> probe_programmatic(const GemmShape& s, const void* w);
  bool programmatic(const GemmShape& s) const;

  // For a shape that runs inside captured graphs (decode steps): keeps the
  // heuristic's first pick if it passes probe_programmatic(); else times the
  // candidates (as tune() does) and takes the fastest one that passes, if it is
  // at most `credit_us` slower than the first pick in isolation — what entering
  // as a dependent launch is expected to save. Otherwise the first pick stays,
  // on ordinary edges; credit_us < 0 probes the first pick only (nothing is
  // timed, so the choice does not vary between runs). Writes y; synchronizes the stream.
  Expected<GraphGemmChoice> choose_for_graphs(const GemmShape& s, const void* x, std::span<const void* const> weights,
                                              void* y, float beta, double credit_us);

 private:
  struct Plan;
  GemmRunner(cublasLtHandle_t handle, cudaDataType_t operand_type, cudaStream_t stream, void* workspace,
             size_t workspace_bytes);
  Expected<Plan*> plan_for(const GemmShape& s);
  Expected<std::vector<cublasLtMatmulHeuristicResult_t>> candidates(const Plan& p, int count);
  Status launch(const Plan& p, const cublasLtMatmulAlgo_t& algo, const void* x, const void* w, void* y, float beta);
  Expected<std::vector<double>> time_candidates(Plan& p, std::vector<cublasLtMatmulHeuristicResult_t>& results,
                                                const void* x, std::span<const void* const> weights, void* y,
                                                float beta);
  // Scratch operands of the probe for one shape: x_src holds the input (w's first
  // rows), x is what the probed GEMM reads, y and y_ref its result and the reference.
  struct ProbeBuffers {
    DeviceBuffer<std::byte> x_src, x, y, y_ref;
    int64_t x_bytes = 0, y_bytes = 0;
  };
  Expected<std::optional<ProbeBuffers>> probe_buffers(const GemmShape& s, const void* w);
  Expected<bool> waits_for_predecessor(const GemmShape& s, const Plan& p, const cublasLtMatmulAlgo_t& algo,
                                       const void* w, ProbeBuffers& buffers);

  cublasLtHandle_t handle_;
  cudaDataType_t operand_type_;
  cudaStream_t stream_;
  void* workspace_;
  size_t workspace_bytes_;
  DeviceBuffer<std::byte> fence_;  // tune() writes it between timed calls
  std::map<std::tuple<int64_t, int64_t, int64_t, bool, bool>, std::unique_ptr<Plan>> plans_;
};

}  // namespace tnl
