// ServerOptions: every tnl-server flag, in one struct, parsed by CLI11 and
// validated once at start-up (docs/operations.md lists them all).
#pragma once

#include <cstdint>
#include <string>

#include "engine/backend_options.h"
#include "engine/scheduler/engine.h"
#include "engine/status.h"
#include "server/core/server_context.h"
#include "server/http/http_session.h"

namespace CLI {
class App;
}

namespace tnl::server {

struct ServerOptions {
  std::string model;                   // checkpoint directory (config.json, weights, tokenizer.model)
  std::string host = "127.0.0.1";
  int32_t port = 8000;                 // HTTP; 0 picks a free port (logged)
  int32_t grpc_port = 50051;           // 0 picks a free port (logged); -1 disables gRPC
  std::string device = "auto";         // auto, cpu, cuda
  int32_t max_num_seqs = 64;
  int32_t max_num_batched_tokens = 512;
  int32_t prefill_chunk = 256;
  int32_t max_queue = 256;
  int64_t max_model_len = 4096;
  std::string step_trace;              // empty: no step trace
  double request_timeout_s = 0;        // 0: none
  uint64_t max_body_bytes = 8u << 20;
  double header_timeout_s = 10;
  uint64_t stream_buffer_bytes = 1 << 20;  // unsent bytes per stream before a non-reading client is cut off
  int32_t worker_threads = 0;          // front-end workers (request parsing/tokenizing, gRPC events); 0: automatic
  int64_t test_fatal_step = 0;         // env TNL_TEST_FATAL_STEP: test hook, see fault_injecting_backend.h
  std::string api_key;                 // empty: no authentication (env TNL_API_KEY)
  double drain_timeout_s = 30;
  std::string served_model_name;       // default: the model directory's name
  std::string chat_template;           // file; default: <model>/chat_template.json, else plain
  int32_t threads = 0;                 // CPU backend worker threads; 0: all cores
  float gpu_memory_fraction = 0.9f;    // CUDA: share of free device memory for weights + state slots
  std::string gpu_dtype = "bf16";
  bool gemm_autotune = true;           // CUDA: GEMM kernels of large steps chosen by timing at start-up
  int32_t tensor_parallel_size = 1;            // ranks the model is split over (model-spec §7)
  std::string tensor_parallel_comm = "auto";   // auto, nccl, single-device, in-process      // CUDA weight dtype: bf16 or fp16
  int32_t http_threads = 2;            // io threads of the HTTP front end
  std::string log_level = "info";
  std::string prefix_cache = "on";     // on, off: snapshot states, start prompts from cached prefixes
  int64_t prefix_cache_bytes = -1;     // snapshot slots in GPU memory (RAM on the CPU); -1: automatic
  int64_t prefix_cache_host_bytes = int64_t(4) << 30;  // CUDA: pinned host-RAM tier behind it

  Status validate() const;
  EngineOptions engine_options() const;
  BackendOptions backend_options() const;
  HttpLimits http_limits() const;
  FrontEndLimits front_end_limits() const;
};

// Registers every flag on `app` bound to `options`.
void add_server_flags(CLI::App& app, ServerOptions& options);
// After parsing: fills defaults that depend on other values or the environment.
void finalize_server_options(ServerOptions& options);

}  // namespace tnl::server
