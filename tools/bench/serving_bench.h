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

#include "engine/backend_options.h"
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
  BackendOptions backend;  // as EngineBenchOptions::backend
  uint64_t seed = 1;
};

Expected<std::vector<Figure>> run_serving_benchmarks(const ModelConfig& config, const ServingBenchOptions& options);

}  // namespace tnl::bench
