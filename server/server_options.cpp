#include "server/server_options.h"

#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <thread>

#include <CLI/CLI.hpp>

#include "tools/common/backend_flags.h"

namespace tnl::server {

void add_server_flags(CLI::App& app, ServerOptions& o) {
  app.add_option("--model", o.model, "Checkpoint directory (config.json, safetensors, tokenizer.model)")->required();
  app.add_option("--host", o.host, "IP address to listen on (HTTP and gRPC)")->capture_default_str();
  app.add_option("--port", o.port, "HTTP port (0: pick a free one)")->capture_default_str();
  app.add_option("--grpc-port", o.grpc_port, "gRPC port (0: pick a free one; -1: no gRPC)")->capture_default_str();
  app.add_option("--device", o.device, "Compute backend: auto, cpu, cuda")->capture_default_str();
  app.add_option("--max-num-seqs", o.max_num_seqs, "Sequences generated at once (decode-state slots)")
      ->capture_default_str();
  app.add_option("--max-num-batched-tokens", o.max_num_batched_tokens,
                 "Tokens per engine step (decodes + prefill chunks)")
      ->capture_default_str();
  app.add_option("--prefill-chunk", o.prefill_chunk, "Prompts are prefilled in chunks of this many tokens")
      ->capture_default_str();
  app.add_option("--max-queue", o.max_queue, "Waiting requests; beyond it requests get HTTP 429")
      ->capture_default_str();
  app.add_option("--max-model-len", o.max_model_len, "Longest prompt + max_tokens, in tokens")->capture_default_str();
  app.add_option("--request-timeout", o.request_timeout_s,
                 "Seconds a generation may take before it ends with finish_reason \"timeout\" (0: none)")
      ->capture_default_str();
  app.add_option("--max-body-bytes", o.max_body_bytes, "Largest HTTP request body; larger gets 413")
      ->capture_default_str();
  app.add_option("--header-timeout", o.header_timeout_s,
                 "Seconds a client has to send a request's header, and then its body (slow clients are dropped)")
      ->capture_default_str();
  app.add_option("--stream-buffer-bytes", o.stream_buffer_bytes,
                 "Unsent bytes one stream may hold (HTTP and gRPC); a client that stops reading past it is cut off "
                 "and its generation cancelled")
      ->capture_default_str();
  app.add_option("--worker-threads", o.worker_threads,
                 "Front-end worker threads: request parsing and tokenizing, gRPC event handling (0: half the cores, "
                 "between 2 and 8)")
      ->capture_default_str();
  app.add_option("--api-key", o.api_key,
                 "Require 'Authorization: Bearer <key>' on the API (default: env TNL_API_KEY; empty: open)");
  app.add_option("--drain-timeout", o.drain_timeout_s,
                 "On SIGTERM/SIGINT: seconds to let in-flight requests finish before exiting")
      ->capture_default_str();
  app.add_option("--served-model-name", o.served_model_name,
                 "Model name in the API (default: the model directory's name)");
  app.add_option("--chat-template", o.chat_template,
                 "Chat template JSON file (default: <model>/chat_template.json if present, else a plain "
                 "\"User: ...\\nAssistant:\" template)");
  app.add_option("--threads", o.threads, "CPU backend worker threads (0: all cores)")->capture_default_str();
  app.add_option("--gpu-memory-fraction", o.gpu_memory_fraction,
                 "CUDA: share of free GPU memory for weights and state slots (the slot count is logged)")
      ->capture_default_str();
  app.add_option("--gpu-dtype", o.gpu_dtype, "CUDA weight dtype: bf16 or fp16")->capture_default_str();
  tools::add_gemm_autotune_flag(app, &o.gemm_autotune);
  tools::add_tensor_parallel_flags(app, &o.tensor_parallel_size, &o.tensor_parallel_comm);
  app.add_option("--http-threads", o.http_threads, "HTTP io threads (connections are multiplexed on them)")
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error")->capture_default_str();
  app.add_option("--prefix-cache", o.prefix_cache,
                 "on, off: keep decode-state snapshots (chunk edges, prompt ends, finished requests) and start "
                 "prompts from their longest cached prefix")
      ->capture_default_str();
  app.add_option("--prefix-cache-bytes", o.prefix_cache_bytes,
                 "Memory for prefix-cache snapshots: GPU memory on CUDA, RAM on the CPU (-1: CUDA takes half of what "
                 "the live slots leave, the CPU 512 MiB)")
      ->capture_default_str();
  app.add_option("--step-trace", o.step_trace,
                 "Write the step loop's timeline to this file, a JSON object per step and per first token "
                 "(diagnosis: docs/operations.md)");
  app.add_option("--prefix-cache-host-bytes", o.prefix_cache_host_bytes,
                 "CUDA: pinned host RAM for snapshots evicted from GPU memory (0: none)")
      ->capture_default_str();
}

void finalize_server_options(ServerOptions& o) {
  if (o.api_key.empty()) {
    if (const char* env = std::getenv("TNL_API_KEY")) o.api_key = env;
  }
  if (const char* env = std::getenv("TNL_TEST_FATAL_STEP")) o.test_fatal_step = std::atoll(env);
  if (o.served_model_name.empty()) {
    std::filesystem::path dir(o.model);
    if (!dir.has_filename()) dir = dir.parent_path();
    o.served_model_name = dir.filename().string();
  }
}

Status ServerOptions::validate() const {
  auto positive = [](const char* flag, double v) -> Status {
    if (!(v > 0)) return invalid_argument(std::string(flag) + " must be positive");
    return Status::ok();
  };
  if (!std::filesystem::is_directory(model)) return invalid_argument("--model: '" + model + "' is not a directory");
  if (port < 0 || port > 65535) return invalid_argument("--port must be in [0, 65535]");
  if (grpc_port < -1 || grpc_port > 65535) return invalid_argument("--grpc-port must be in [-1, 65535]");
  if (port != 0 && port == grpc_port) return invalid_argument("--port and --grpc-port must differ");
  if (device != "auto" && device != "cpu" && device != "cuda") {
    return invalid_argument("--device must be auto, cpu or cuda");
  }
  TNL_RETURN_IF_ERROR(positive("--max-num-seqs", max_num_seqs));
  TNL_RETURN_IF_ERROR(positive("--max-num-batched-tokens", max_num_batched_tokens));
  TNL_RETURN_IF_ERROR(positive("--prefill-chunk", prefill_chunk));
  TNL_RETURN_IF_ERROR(positive("--max-queue", max_queue));
  if (max_model_len < 2) return invalid_argument("--max-model-len must be at least 2");
  if (request_timeout_s < 0) return invalid_argument("--request-timeout must be ≥ 0");
  if (max_body_bytes < 1024) return invalid_argument("--max-body-bytes must be at least 1024");
  TNL_RETURN_IF_ERROR(positive("--header-timeout", header_timeout_s));
  if (drain_timeout_s < 0) return invalid_argument("--drain-timeout must be ≥ 0");
  if (threads < 0) return invalid_argument("--threads must be ≥ 0");
  if (!(gpu_memory_fraction >= 0.05f && gpu_memory_fraction <= 1.0f)) {
    return invalid_argument("--gpu-memory-fraction must be in [0.05, 1]");
  }
  if (gpu_dtype != "bf16" && gpu_dtype != "fp16") return invalid_argument("--gpu-dtype must be bf16 or fp16");
  if (tensor_parallel_size < 1 || tensor_parallel_size > 64) {
    return invalid_argument("--tensor-parallel-size must be in [1, 64]");
  }
  if (tensor_parallel_comm != "auto" && tensor_parallel_comm != "nccl" && tensor_parallel_comm != "single-device" &&
      tensor_parallel_comm != "in-process") {
    return invalid_argument("--tensor-parallel-comm must be auto, nccl, single-device or in-process");
  }
  if (http_threads < 1 || http_threads > 64) return invalid_argument("--http-threads must be in [1, 64]");
  if (worker_threads < 0 || worker_threads > 64) return invalid_argument("--worker-threads must be in [0, 64]");
  if (stream_buffer_bytes < 4096) return invalid_argument("--stream-buffer-bytes must be at least 4096");
  if (prefix_cache != "on" && prefix_cache != "off") return invalid_argument("--prefix-cache must be on or off");
  if (prefix_cache_bytes < -1) return invalid_argument("--prefix-cache-bytes must be -1 (automatic) or ≥ 0");
  if (prefix_cache_host_bytes < 0) return invalid_argument("--prefix-cache-host-bytes must be ≥ 0");
  if (served_model_name.empty()) return invalid_argument("--served-model-name must not be empty");
  if (!chat_template.empty() && !std::filesystem::is_regular_file(chat_template)) {
    return invalid_argument("--chat-template: '" + chat_template + "' is not a file");
  }
  return Status::ok();
}

EngineOptions ServerOptions::engine_options() const {
  EngineOptions e;
  e.max_num_seqs = max_num_seqs;
  e.max_num_batched_tokens = max_num_batched_tokens;
  e.prefill_chunk = prefill_chunk;
  e.max_queue = max_queue;
  e.max_model_len = max_model_len;
  e.request_timeout = std::chrono::milliseconds(int64_t(request_timeout_s * 1000));
  e.prefix_cache = prefix_cache == "on";
  e.step_trace_path = step_trace;
  return e;
}

BackendOptions ServerOptions::backend_options() const {
  BackendOptions b;
  b.device = device;
  b.max_slots = max_num_seqs;
  b.max_step_tokens = max_num_batched_tokens;
  b.cpu_threads = threads;
  b.gpu_memory_fraction = gpu_memory_fraction;
  b.gpu_dtype = gpu_dtype;
  b.gemm_autotune = gemm_autotune;
  b.tensor_parallel_size = tensor_parallel_size;
  b.tensor_parallel_comm = tensor_parallel_comm;
  b.test_fatal_step = test_fatal_step;
  b.prefix_cache_bytes = prefix_cache == "on" ? prefix_cache_bytes : 0;  // -1 (automatic) unless set
  b.prefix_cache_host_bytes = prefix_cache == "on" ? prefix_cache_host_bytes : 0;
  return b;
}

HttpLimits ServerOptions::http_limits() const {
  HttpLimits l;
  l.max_body_bytes = max_body_bytes;
  l.header_timeout = std::chrono::milliseconds(int64_t(header_timeout_s * 1000));
  l.stream_buffer_bytes = stream_buffer_bytes;
  return l;
}

FrontEndLimits ServerOptions::front_end_limits() const {
  FrontEndLimits l;
  l.stream_buffer_bytes = stream_buffer_bytes;
  // Tokenizing a long conversation costs milliseconds per request: on a GPU node
  // with many cores, more workers keep up with many clients.
  l.worker_threads = worker_threads > 0 ? worker_threads
                                        : std::clamp(int32_t(std::thread::hardware_concurrency() / 2), 2, 8);
  return l;
}

}  // namespace tnl::server
