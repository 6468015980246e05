// Host cost of the calls a prefill step is made of: what the CPU spends per call
// to enqueue work (not the GPU's time). A prefill step makes ~290 such calls (24
// layers × 4 cuBLASLt GEMMs and ~8 kernel launches, plus the step's own), so a few
// µs each decide whether a short prefill is bound by the host (docs/operations.md,
// "Step trace").
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "engine/model_config.h"
#include "engine/status.h"
#include "tools/bench/report.h"

namespace tnl::bench {

// Figures of section "host": time_ms is the host's time per call (no floor).
// `rows`: the GEMM's rows (a prefill step's tokens).
Expected<std::vector<Figure>> run_enqueue_benchmarks(const ModelConfig& model, int64_t rows, cudaStream_t stream);

}  // namespace tnl::bench
