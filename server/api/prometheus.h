// /metrics: Prometheus text exposition (format 0.0.4) of the engine's stats and
// the front ends' own counters.
#pragma once

#include <cstdint>
#include <string>

#include "engine/scheduler/engine.h"

namespace tnl::server {

// Counters the front ends keep (a snapshot; the live ones are atomics in FrontEndMetrics).
struct FrontEndCounters {
  uint64_t http_requests_total = 0;
  uint64_t http_errors_4xx_total = 0;
  uint64_t http_errors_5xx_total = 0;
  uint64_t rejected_overload_total = 0;  // 429 / RESOURCE_EXHAUSTED
  uint64_t client_disconnects_total = 0; // streams cancelled because the client went away
  uint64_t stalled_clients_total = 0;    // clients cut off for not reading their stream
  uint64_t grpc_requests_total = 0;
  int64_t open_connections = 0;
  bool ready = false;
  bool alive = true;                     // false once the engine latched dead
  uint64_t prompt_token_cache_hits_total = 0;          // prompts that reused an earlier text's ids
  uint64_t prompt_token_cache_reused_bytes_total = 0;  // prompt bytes not tokenized again thanks to them
  uint64_t prompt_token_cache_encoded_bytes_total = 0; // prompt bytes tokenized (through the cache)
};

std::string render_prometheus(const EngineStats& stats, const FrontEndCounters& front);

}  // namespace tnl::server
