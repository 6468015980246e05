// ServerContext: what both front ends share — the engine, the served model's name
// and chat template, request limits, the API key, the live front-end counters and
// the front-end worker pool. Created once in main() and outlives both front ends.
// Everything mutable in it is atomic: it is read and written from the HTTP io
// threads, gRPC's threads and the workers.
//
// Workers (`workers()`): a small thread pool owned here for front-end work that
// must not run on an io thread or the engine's step loop — parsing and tokenizing
// requests (a prompt of megabytes costs milliseconds to seconds) and turning engine
// events into gRPC messages (the step loop's callbacks only post).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include <boost/asio/thread_pool.hpp>

#include "engine/scheduler/engine.h"
#include "engine/tokenizer/prompt_token_cache.h"
#include "server/api/chat_template.h"
#include "server/api/completion_spec.h"
#include "server/api/prometheus.h"
#include "server/core/finished_responses.h"

namespace tnl::server {

struct FrontEndMetrics {
  std::atomic<uint64_t> http_requests{0};
  std::atomic<uint64_t> http_4xx{0};
  std::atomic<uint64_t> http_5xx{0};
  std::atomic<uint64_t> rejected_overload{0};
  std::atomic<uint64_t> client_disconnects{0};
  std::atomic<uint64_t> stalled_clients{0};   // cut off: stopped reading past --stream-buffer-bytes
  std::atomic<uint64_t> grpc_requests{0};
  std::atomic<int64_t> open_connections{0};
  // Generations a front end still has to answer (submitted, or finished but not yet
  // written out). Draining waits for this to reach 0.
  std::atomic<int64_t> active_generations{0};

  FrontEndCounters snapshot(bool ready, bool alive) const {
    FrontEndCounters c;
    c.http_requests_total = http_requests.load();
    c.http_errors_4xx_total = http_4xx.load();
    c.http_errors_5xx_total = http_5xx.load();
    c.rejected_overload_total = rejected_overload.load();
    c.client_disconnects_total = client_disconnects.load();
    c.stalled_clients_total = stalled_clients.load();
    c.grpc_requests_total = grpc_requests.load();
    c.open_connections = open_connections.load();
    c.ready = ready;
    c.alive = alive;
    return c;
  }
};

struct FrontEndLimits {
  uint64_t stream_buffer_bytes = 1 << 20;  // unsent bytes one stream may hold before its client is cut off
  int32_t worker_threads = 2;
};

class ServerContext {
 public:
  ServerContext(Engine& engine, std::string served_model_name, ChatTemplate chat_template, std::string api_key,
                int64_t created_unix_s, FrontEndLimits front_end_limits = {});
  ~ServerContext();  // joins the workers

  Engine& engine() const { return engine_; }
  const std::string& served_model_name() const { return served_model_name_; }
  const ChatTemplate& chat_template() const { return chat_template_; }
  const SpecLimits& limits() const { return limits_; }
  const std::string& api_key() const { return api_key_; }
  const FrontEndLimits& front_end_limits() const { return front_end_limits_; }
  boost::asio::thread_pool& workers() { return workers_; }
  FinishedResponses& finished_responses() { return finished_responses_; }
  const FinishedResponses& finished_responses() const { return finished_responses_; }
  void join_workers() { workers_.join(); }  // before the engine goes away
  int64_t created() const { return created_; }
  FrontEndMetrics& metrics() { return metrics_; }
  // Prompt texts are encoded through this (thread-safe): a conversation's resent
  // history reuses the ids of its last turn (prompt_token_cache.h).
  PromptTokenCache& prompt_tokens() { return prompt_tokens_; }
  const PromptTokenCache& prompt_tokens() const { return prompt_tokens_; }
  static constexpr size_t kPromptTokenCacheBytes = size_t(64) << 20;

  // "Ready": the model is loaded (always, once this exists), we are not draining
  // and the engine is alive.
  bool ready() const { return !draining_.load() && engine_.health().is_ok(); }
  void begin_drain();

  // "<prefix>-<random hex>-<counter>": unique per process run, cheap, no lock.
  std::string next_request_id(const char* prefix);

  // Constant-time comparison against the configured key ("Bearer <key>" header
  // value; the scheme is case-insensitive, RFC 7235).
  bool authorized(std::string_view authorization_header) const;

 private:
  Engine& engine_;
  std::string served_model_name_;
  ChatTemplate chat_template_;
  SpecLimits limits_;
  std::string api_key_;  // empty: no authentication
  int64_t created_;
  FrontEndMetrics metrics_;
  PromptTokenCache prompt_tokens_;
  std::atomic<bool> draining_{false};
  std::string id_salt_;
  std::atomic<uint64_t> next_id_{1};
  FrontEndLimits front_end_limits_;
  FinishedResponses finished_responses_;
  boost::asio::thread_pool workers_;  // last: its threads may use everything above
};

}  // namespace tnl::server
