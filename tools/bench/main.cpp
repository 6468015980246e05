// tnl-bench: kernel and engine benchmarks of the CUDA backend on a random-weight
// model built from any config.json, every figure next to its physical floor
// (bytes ÷ measured bandwidth, FLOPs ÷ measured matmul peak). Prints a table and
// writes the same figures as JSON. A tool, not a test: it asserts nothing.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "engine/cuda/cuda_backend.h"
#include "engine/model_config.h"
#include "tools/bench/ceilings.h"
#include "tools/bench/engine_bench.h"
#include "tools/bench/enqueue_bench.h"
#include "tools/bench/kernel_bench.h"
#include "tools/bench/serving_bench.h"
#include "tools/common/backend_flags.h"
#include "tools/common/stderr_logging.h"

int main(int argc, char** argv) {
  tnl::tools::log_to_stderr();
  CLI::App app{"tnl-bench: CUDA kernel and engine benchmarks against the hardware's floors"};
  std::string config_path = "tools/bench/configs/tnl-385m.json";  // run from the repository root
  std::string json_path;
  bool skip_kernels = false, skip_engine = false;
  tnl::bench::KernelBenchOptions ko;
  tnl::bench::EngineBenchOptions eo;
  app.add_option("--config", config_path, "config.json of the model shape (tools/bench/configs/ has 385M, 1B, 7B)")
      ->check(CLI::ExistingPath)
      ->capture_default_str();
  app.add_option("--json", json_path, "Also write the figures to this JSON file");
  app.add_flag("--skip-kernels", skip_kernels, "Only the engine benchmarks");
  app.add_flag("--skip-engine", skip_engine, "Only the kernel benchmarks");
  bool skip_prefill = false, skip_decode = false, skip_serving = false;
  tnl::bench::ServingBenchOptions so;
  app.add_flag("--skip-serving", skip_serving, "No serving figures (the engine with its scheduler and sinks)");
  app.add_option("--serving-streams", so.streams, "Serving: concurrent greedy streams")->capture_default_str();
  app.add_option("--serving-output-tokens", so.output_tokens, "Serving: tokens per stream")->capture_default_str();
  app.add_option("--serving-prompt-tokens", so.prompt_tokens, "Serving: prompt tokens per stream")->capture_default_str();
  app.add_option("--tokenizer", so.tokenizer_dir,
                 "Serving: a checkpoint directory whose tokenizer the engine loads (prompts are random ids below "
                 "its vocabulary)")
      ->capture_default_str();
  app.add_flag("--skip-prefill", skip_prefill, "Engine: no prefill figures");
  app.add_flag("--skip-decode", skip_decode, "Engine: no decode figures");
  app.add_option("--prefill-attn-lengths", ko.prefill_lengths, "Kernel: Lightning prefill lengths n")->capture_default_str();
  app.add_option("--decode-kernel-batches", ko.decode_batches, "Kernel: recurrent decode batch sizes")->capture_default_str();
  app.add_option("--prefill-lengths", eo.prefill_lengths, "Engine: prompt lengths")->capture_default_str();
  app.add_option("--turn-batches", eo.turn_batches,
                 "Engine: sequences per conversation-turn step (each prefills --turn-tokens on a state at --turn-context)")
      ->capture_default_str();
  app.add_option("--turn-tokens", eo.turn_tokens, "Engine: new tokens per conversation turn")->capture_default_str();
  app.add_option("--turn-context", eo.turn_context, "Engine: position a conversation turn starts at")->capture_default_str();
  app.add_option("--batches", eo.decode_batches, "Engine: decode batch sizes")->capture_default_str();
  app.add_option("--contexts", eo.contexts, "Engine: context lengths the decode batches start from")->capture_default_str();
  app.add_option("--reps", eo.reps, "Timed runs per figure (the median is reported)")->capture_default_str();
  tnl::tools::add_gemm_autotune_flag(app, &eo.backend.gemm_autotune);
  app.add_option("--small-batch-max-rows", eo.backend.small_batch_max_rows,
                 "CUDA: most rows of a step through the fused small-batch layers (-1: as many as fit, 0: none)")
      ->check(CLI::Range(-1, 16))
      ->capture_default_str();
  app.add_option("--programmatic-gemms", eo.backend.programmatic_gemms,
                 "CUDA: decode graphs' GEMMs as dependent launches where a start-up probe shows their kernel waits "
                 "(false: ordinary edges)")
      ->capture_default_str();
  app.add_option("--lightning-ctas-per-sm", eo.backend.lightning_ctas_per_sm,
                 "CUDA: Lightning prefill cuts sequences into segments until about this many CTAs per SM work")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  app.add_option("--fused-sglu-min-rows", eo.backend.fused_sglu_min_rows,
                 "CUDA: steps of at least this many rows take the fused [W1; W2] GEMM + SGLU product (0: never)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--gpu-dtype", eo.backend.gpu_dtype, "Weight dtype: bf16 or fp16")
      ->check(CLI::IsMember({"bf16", "fp16"}))
      ->capture_default_str();
  tnl::tools::add_tensor_parallel_flags(app, &eo.backend.tensor_parallel_size, &eo.backend.tensor_parallel_comm);
  CLI11_PARSE(app, argc, argv);
  ko.reps = eo.reps;
  eo.prefill = !skip_prefill;
  eo.decode = !skip_decode;

  if (tnl::cuda_device_count() == 0) {
    std::fprintf(stderr, "tnl-bench: no CUDA device is visible\n");
    return 1;
  }
  // A config.json file, or a checkpoint directory holding one.
  std::ifstream in(std::filesystem::is_directory(config_path) ? config_path + "/config.json" : config_path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto config = tnl::parse_model_config(text, config_path);
  if (!config.has_value()) {
    std::fprintf(stderr, "tnl-bench: %s\n", config.status().to_string().c_str());
    return 1;
  }
  spdlog::info("tnl-bench: {} ({:.0f}M parameters, L={} d={} H={} e={} G={} V={})", config_path,
               double(config->num_parameters()) / 1e6, config->num_layers, config->dim, config->num_heads,
               config->head_dim(), config->glu_dim, config->vocab_size);

  cudaStream_t stream = nullptr;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  std::vector<tnl::bench::Figure> figures;
  tnl::bench::Ceilings ceilings;
  nlohmann::json extra;
  {
    tnl::bench::GpuTimer timer;
    auto c = tnl::bench::measure_ceilings(timer, stream);
    if (!c.has_value()) {
      std::fprintf(stderr, "tnl-bench: ceilings: %s\n", c.status().to_string().c_str());
      return 1;
    }
    ceilings = *c;
    // NCCL ranks each have a GPU: the floors are N GPUs' (single-device ranks share one).
    const bool nccl = eo.backend.tensor_parallel_comm == "auto" || eo.backend.tensor_parallel_comm == "nccl";
    if (eo.backend.tensor_parallel_size > 1 && nccl) {
      ceilings.bandwidth_gbs *= eo.backend.tensor_parallel_size;
      ceilings.matmul_tflops *= eo.backend.tensor_parallel_size;
    }
    if (eo.backend.tensor_parallel_size > 1) {
      spdlog::info("tnl-bench: tensor parallelism over {} ranks ({}): engine floors are those of {} GPU(s); the "
                   "kernel figures (one GPU's) are left out",
                   eo.backend.tensor_parallel_size, nccl ? "nccl" : eo.backend.tensor_parallel_comm,
                   nccl ? eo.backend.tensor_parallel_size : 1);
      skip_kernels = true;
    }
    if (!skip_kernels) {
      auto k = tnl::bench::run_kernel_benchmarks(*config, ko, ceilings, timer, stream);
      if (!k.has_value()) {
        std::fprintf(stderr, "tnl-bench: kernels: %s\n", k.status().to_string().c_str());
        return 1;
      }
      figures.insert(figures.end(), k->begin(), k->end());
      // Host figures explain the others; a failure there leaves them out, not the rest.
      auto h = tnl::bench::run_enqueue_benchmarks(*config, 512, stream);
      if (h.has_value()) {
        figures.insert(figures.end(), h->begin(), h->end());
      } else {
        spdlog::warn("tnl-bench: host enqueue figures left out: {}", h.status().to_string());
        cudaGetLastError();
      }
    }
  }
  so.backend = eo.backend;
  so.reps = eo.reps;
  if (!skip_engine) {
    auto e = tnl::bench::run_engine_benchmarks(*config, eo);
    if (!e.has_value()) {
      std::fprintf(stderr, "tnl-bench: engine: %s\n", e.status().to_string().c_str());
      return 1;
    }
    figures.insert(figures.end(), e->figures.begin(), e->figures.end());
    extra = {{"peak_memory_bytes", e->peak_memory_bytes}, {"context_fill_seconds", e->fill_seconds}};
    std::printf("peak GPU memory in use: %.2f GB; prefilling the decode contexts took %.1f s\n",
                double(e->peak_memory_bytes) / 1e9, e->fill_seconds);
  }
  if (!skip_engine && !skip_serving) {
    auto s = tnl::bench::run_serving_benchmarks(*config, so);
    if (!s.has_value()) {
      std::fprintf(stderr, "tnl-bench: serving: %s\n", s.status().to_string().c_str());
      return 1;
    }
    figures.insert(figures.end(), s->begin(), s->end());
  }
  nlohmann::json out = tnl::bench::to_json(ceilings, figures);
  out["config"] = config_path;
  out["parameters"] = config->num_parameters();
  out["state_bytes_per_sequence"] = config->state_bytes_per_sequence();
  for (auto it = extra.begin(); it != extra.end(); ++it) out[it.key()] = it.value();
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  tnl::bench::print_table(ceilings, figures);
  cudaStreamDestroy(stream);
  return 0;
}
