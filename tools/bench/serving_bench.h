// Serving benchmarks: the same random-weight CUDA backend driven through the
// Engine (scheduler, step loop, sampling, detokenizing, event sinks), so that
// host work per step shows up beside the engine figures of engine_bench.h.
//   - serving S streams x N tokens: S greedy requests with P-token prompts, all
//     admitted at once; the figure is the time per decode step while every
//     stream is decoding (floor: the decode step's bytes, as "decode b=S"), and
//     again with a repetition and frequency penalty on every request;
//   - TTFT of a lone P'-token prompt: submit to first token (floor: its prefill).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/status.h"
#include "tools/bench/report.h"

namespace tnl::bench {

struct ServingBenchOptions {
  int64_t streams = 256;
  int64_t prompt_tokens = 512;
  int64_t output_tokens = 256;
  int64_t lone_prompt_tokens = 2048;
  int reps = 5;                                   // lone-prompt runs (the median is reported)
  std::string tokenizer_dir = "models/tnl-brown-12m";  // prompts are ids below its vocabulary
  std::string gpu_dtype = "bf16";
  bool gemm_autotune = true;  // BackendOptions::gemm_autotune
  int32_t small_batch_max_rows = -1;  // BackendOptions::small_batch_max_rows
  bool programmatic_gemms = true;     // BackendOptions::programmatic_gemms
  int32_t tensor_parallel_size = 1;
  std::string tensor_parallel_comm = "auto";
  uint64_t seed = 1;
};

Expected<std::vector<Figure>> run_serving_benchmarks(const ModelConfig& config, const ServingBenchOptions& options);

}  // namespace tnl::bench
