// Kernel benchmarks: Lightning Attention prefill (b sequences of n tokens, H
// heads, head width e, fresh states) and the batched recurrent decode step, on
// random bf16 inputs, and the state-copy kernel of the prefix cache on the
// model's state shape, each next to its floor.
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "engine/model_config.h"
#include "engine/status.h"
#include "tools/bench/gpu_timer.h"
#include "tools/bench/report.h"

namespace tnl::bench {

struct KernelBenchOptions {
  int64_t batch = 4, heads = 16, head_dim = 128;       // prefill attention shape
  std::vector<int64_t> prefill_lengths = {2048, 8192, 32768};
  std::vector<int64_t> decode_batches = {1, 64, 256};  // decode: same heads and head width
  int reps = 20;
};

// `model`: the state-copy figures copy whole decode states of its shape.
Expected<std::vector<Figure>> run_kernel_benchmarks(const ModelConfig& model, const KernelBenchOptions& options,
                                                    const Ceilings& ceilings, GpuTimer& timer, cudaStream_t stream);

}  // namespace tnl::bench
