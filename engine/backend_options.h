// BackendOptions: what a user may choose about the compute backend. One struct,
// validated once at start-up (tools and the server fill it from their flags).
#pragma once

#include <cstdint>
#include <string>

namespace tnl {

struct BackendOptions {
  std::string device = "auto";      // "auto" (cuda when a GPU is present, else cpu), "cpu", "cuda"
  int32_t max_slots = 64;           // decode-state slots wanted (CUDA may grant fewer: memory)
  int32_t max_step_tokens = 4096;   // tokens in the largest step (the engine's max_num_batched_tokens):
                                    // CUDA reserves activation memory for it before sizing slots
  int64_t prefill_block = 64;       // Lightning Attention block size B (tokens)
  int32_t cpu_threads = 0;          // CPU backend worker threads; 0: all cores
  float gpu_memory_fraction = 0.9f; // CUDA: share of free device memory for weights + state slots
  std::string gpu_dtype = "bf16";   // CUDA weight dtype: "bf16" or "fp16"
  int32_t gpu_device = 0;           // CUDA device ordinal
  // CUDA: choose the cuBLASLt kernel of each GEMM shape of large steps by timing
  // its candidates at start-up (engine/cuda/gemm.h). Off: cuBLASLt's heuristic
  // pick, which does not depend on timing, so a restarted server computes the
  // same bits.
  bool gemm_autotune = true;
  // CUDA: the most token rows of a step that take the fused small-batch layers
  // (kernels/cuda/small_batch_linear.h) instead of cuBLASLt and the separate norm,
  // gate and SGLU launches; -1: as many as fit (16, or 8 at the 7B shape), 0:
  // never. For measuring one path against the other (tnl-bench).
  int32_t small_batch_max_rows = -1;
  // CUDA: the decode graphs' cuBLASLt GEMMs enter behind programmatic edges, as
  // dependent launches, where a start-up probe shows their kernel waits for its
  // predecessor (engine/cuda/gemm.h); off: ordinary edges. For measuring (tnl-bench).
  bool programmatic_gemms = true;
  // CUDA: Lightning prefill cuts sequences into segments until about this many
  // CTAs per SM work at once (kernels/cuda/lightning_plan.cu). For measuring (tnl-bench).
  int32_t lightning_ctas_per_sm = 2;
  // CUDA: steps of at least this many token rows compute the SGLU product in the
  // epilogue of their own [W1; W2] GEMM (kernels/cuda/sglu_gemm.cu, sm_90a) instead
  // of cuBLASLt's GEMM and a product pass; 0: never. Below ~6k rows cuBLASLt's GEMM
  // and the pass were as fast or faster (docs/architecture.md). For measuring (tnl-bench).
  int32_t fused_sglu_min_rows = 6144;
  // Prefix state cache (snapshot slots). cache: the backend's own memory (GPU
  // memory, or RAM on the CPU); -1: CUDA takes half of what the memory fraction
  // leaves after the live slots, the CPU 512 MiB. host: a RAM tier behind GPU
  // memory (CUDA only; pinned). 0 (the default: tools that run one sequence need
  // none) turns a tier off; tnl-server asks for -1.
  int64_t prefix_cache_bytes = 0;
  int64_t prefix_cache_host_bytes = 0;
  // Tensor parallelism (model-spec §7): the model is split over this many ranks
  // (H and G must divide by it). CPU: threads of this process sharing the cores.
  // CUDA: one GPU per rank from gpu_device on, meeting through NCCL; or, with
  // tensor_parallel_comm "single-device", every rank on gpu_device (to test the
  // sharded CUDA path on one GPU: no speed-up, no CUDA graphs).
  int32_t tensor_parallel_size = 1;
  std::string tensor_parallel_comm = "auto";  // "auto" (CPU: in-process, CUDA: nccl), "nccl", "single-device"
  int64_t test_fatal_step = 0;      // test hook: > 0 makes step N and later fail fatally
                                    // (fault_injecting_backend.h; with tensor parallelism, in
                                    // the last rank only); 0 in production
};

}  // namespace tnl
