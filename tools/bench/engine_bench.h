// Engine benchmarks through the real Backend::run_step on a random-weight model
// of any config: prefill tokens/s of one prompt, and decode tokens/s of a batch
// whose sequences were first prefilled to a context length, every sampled token
// drawn on the GPU (no logits travel). Each figure is the wall time of a whole
// step (plan upload, forward, sampling, synchronisation), median of the runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend_options.h"
#include "engine/model_config.h"
#include "engine/status.h"
#include "tools/bench/gpu_timer.h"
#include "tools/bench/report.h"

namespace tnl::bench {

struct EngineBenchOptions {
  std::vector<int64_t> prefill_lengths = {512, 2048, 8192};
  // Conversation turns: k sequences in one step, each prefilling turn_tokens new
  // tokens on top of a state at turn_context (what a burst of cached turns costs).
  std::vector<int64_t> turn_batches = {1, 6};
  int64_t turn_tokens = 512, turn_context = 4096;
  std::vector<int64_t> decode_batches = {1, 16, 64, 256};
  // A serving step at full load (after the first context's decode figures):
  // mixed_decodes sequences decode while mixed_prompts fresh prompts of
  // mixed_prompt_tokens prefill, everything sampled on the device; beside it the
  // same prompts alone. Skipped when the slots do not hold both.
  int64_t mixed_decodes = 240, mixed_prompts = 16, mixed_prompt_tokens = 256;
  std::vector<int64_t> contexts = {512, 4096, 32768};
  int64_t fill_tokens_per_step = 32768;  // prefill budget per step while filling contexts
  bool prefill = true, decode = true;   // which halves run
  int reps = 20;
  uint64_t seed = 1;
  // What the user chose about the backend (dtype, GEMM and layer paths, tensor
  // parallelism); the benchmark sets the device and the slots and step sizes it needs.
  BackendOptions backend;
};

struct EngineBenchResult {
  std::vector<Figure> figures;
  int64_t peak_memory_bytes = 0;  // device memory in use at the fullest point (cudaMemGetInfo)
  double fill_seconds = 0;        // spent prefilling contexts for the decode runs
};

Expected<EngineBenchResult> run_engine_benchmarks(const ModelConfig& config, const EngineBenchOptions& options);

// FLOPs of one token through the model's matrix products (2 per multiply-add),
// the output projection included only when `logits` is true.
double flops_per_token(const ModelConfig& config, bool logits);
// Bytes of the weights a decode step reads once (the embedding matrix only
// through the tied output projection; `batch` rows of an untied one).
double weight_bytes_per_step(const ModelConfig& config, int64_t batch, int64_t bytes_per_weight);

}  // namespace tnl::bench
