// The backend flags every tool shares (--device, --threads, ...), in one place.
#pragma once

#include <CLI/CLI.hpp>

#include "engine/backend_options.h"

namespace tnl::tools {

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
}

}  // namespace tnl::tools
