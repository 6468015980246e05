// The backend flags every tool shares (--device, --threads, ...), in one place.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "engine/backend_options.h"

namespace tnl::tools {

// --tensor-parallel-size and --tensor-parallel-comm (tnl-server, tnl-generate,
// tnl-eval and tnl-bench: the same words everywhere).
inline void add_tensor_parallel_flags(CLI::App& app, int32_t* size, std::string* comm) {
  app.add_option("--tensor-parallel-size", *size,
                 "Split the model over this many ranks (heads, SGLU width and vocabulary; the model's heads and "
                 "SGLU width must divide by it). CUDA: one GPU each from device 0; CPU: threads sharing the cores")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--tensor-parallel-comm", *comm,
                 "How the ranks meet: auto (CUDA: nccl, CPU: in-process), nccl, single-device (every CUDA rank on "
                 "one GPU: a test of the sharded path, no speed-up) or in-process")
      ->check(CLI::IsMember({"auto", "nccl", "single-device", "in-process"}))
      ->capture_default_str();
}

// --gemm-autotune (tnl-server and every tool with backend flags).
inline void add_gemm_autotune_flag(CLI::App& app, bool* on) {
  app.add_option("--gemm-autotune", *on,
                 "CUDA: time cuBLASLt's candidate kernels for the GEMM shapes of large steps at start-up and keep "
                 "the fastest (false: the heuristic's pick, the same on every start)")
      ->capture_default_str();
}

inline void add_backend_flags(CLI::App& app, BackendOptions* o) {
  app.add_option("--device", o->device, "Compute device: auto (cuda when a GPU is present), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--threads", o->cpu_threads, "CPU backend threads (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--block", o->prefill_block, "Lightning Attention block size (tokens)")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}))
      ->capture_default_str();
  app.add_option("--gpu-memory-fraction", o->gpu_memory_fraction,
                 "CUDA: share of free GPU memory for weights and state slots")
      ->check(CLI::Range(0.05f, 1.0f))
      ->capture_default_str();
  app.add_option("--gpu-dtype", o->gpu_dtype, "CUDA weight dtype: bf16 or fp16")
      ->check(CLI::IsMember({"bf16", "fp16"}))
      ->capture_default_str();
  add_gemm_autotune_flag(app, &o->gemm_autotune);
  add_tensor_parallel_flags(app, &o->tensor_parallel_size, &o->tensor_parallel_comm);
}

}  // namespace tnl::tools
