#include "server/api/prometheus.h"

#include <cstdio>

namespace tnl::server {
namespace {

// Shortest round-trip-ish form: bucket bounds print as written ("0.1", not 0.10000000000000001).
std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

void scalar(std::string& out, const char* name, const char* type, const char* help, double value) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  out.append(name).append(" ").append(number(value)).append("\n");
}

void histogram(std::string& out, const char* name, const char* help, const EngineStats::Histogram& h) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" histogram\n");
  for (size_t i = 0; i < h.bucket_bounds.size() && i < h.bucket_counts.size(); ++i) {
    out.append(name).append("_bucket{le=\"").append(number(h.bucket_bounds[i])).append("\"} ");
    out.append(std::to_string(h.bucket_counts[i])).append("\n");
  }
  out.append(name).append("_bucket{le=\"+Inf\"} ").append(std::to_string(h.count)).append("\n");
  out.append(name).append("_sum ").append(number(h.sum)).append("\n");
  out.append(name).append("_count ").append(std::to_string(h.count)).append("\n");
}

}  // namespace

std::string render_prometheus(const EngineStats& s, const FrontEndCounters& f) {
  std::string out;
  out.reserve(4096);
  scalar(out, "tnl_requests_running", "gauge", "Sequences being generated.", s.running);
  scalar(out, "tnl_requests_waiting", "gauge", "Requests queued for a slot.", s.waiting);
  scalar(out, "tnl_state_slots_used", "gauge", "Decode-state slots in use.", s.slots_used);
  scalar(out, "tnl_state_slots_total", "gauge", "Decode-state slots the backend holds.", s.slots_total);
  scalar(out, "tnl_prompt_tokens_total", "counter", "Prompt tokens processed.", double(s.prompt_tokens_total));
  scalar(out, "tnl_generation_tokens_total", "counter", "Tokens generated.", double(s.generation_tokens_total));
  scalar(out, "tnl_requests_finished_total", "counter", "Requests finished (any reason).",
         double(s.requests_finished_total));
  scalar(out, "tnl_prompt_tokens_cached_total", "counter", "Prompt tokens restored from the prefix cache, not computed.",
         double(s.prompt_tokens_cached_total));
  scalar(out, "tnl_forks_total", "counter", "Sequences started from a fork group's shared prompt (n > 1).",
         double(s.forks_total));
  scalar(out, "tnl_preemptions_total", "counter",
         "Running sequences preempted (state moved to host memory) for a better-priority request.",
         double(s.preemptions_total));
  scalar(out, "tnl_preemption_swap_bytes_total", "counter",
         "Decode-state bytes copied to host memory and back for preempted sequences.",
         double(s.preemption_swap_bytes_total));
  scalar(out, "tnl_preempted_sequences", "gauge", "Preempted sequences whose state is in host memory now.",
         s.swapped_sequences);
  const EngineStats::PrefixCacheGauges& pc = s.prefix_cache;
  scalar(out, "tnl_prefix_cache_enabled", "gauge", "1 when the prefix state cache is on.", pc.enabled ? 1 : 0);
  scalar(out, "tnl_prefix_cache_queries_total", "counter", "Admissions that looked for a cached prefix.",
         double(pc.queries_total));
  scalar(out, "tnl_prefix_cache_hits_total", "counter", "Admissions that started from a cached prefix.",
         double(pc.hits_total));
  scalar(out, "tnl_prefix_cache_hit_tokens_total", "counter", "Prompt tokens covered by cache hits.",
         double(pc.hit_tokens_total));
  scalar(out, "tnl_prefix_cache_snapshots_total", "counter", "Snapshots written.", double(pc.snapshots_total));
  scalar(out, "tnl_prefix_cache_evictions_total", "counter", "Snapshots dropped to make room.",
         double(pc.evictions_total));
  scalar(out, "tnl_prefix_cache_slots_used", "gauge", "Snapshot slots in use (GPU memory, or RAM on the CPU).",
         pc.slots_used);
  scalar(out, "tnl_prefix_cache_slots_total", "gauge", "Snapshot slots.", pc.slots_total);
  scalar(out, "tnl_prefix_cache_host_slots_used", "gauge", "Host-RAM tier slots in use.", pc.host_slots_used);
  scalar(out, "tnl_prefix_cache_host_slots_total", "gauge", "Host-RAM tier slots.", pc.host_slots_total);
  scalar(out, "tnl_prefix_cache_bytes_used", "gauge", "Bytes of snapshots held in the cache tier.",
         double(pc.slots_used) * double(pc.state_bytes));
  scalar(out, "tnl_prefix_cache_host_bytes_out_total", "counter", "Bytes moved to the host tier (evictions kept).",
         double(pc.demotions_total) * double(pc.state_bytes));
  scalar(out, "tnl_prefix_cache_host_bytes_in_total", "counter", "Bytes restored from the host tier.",
         double(pc.host_restores_total) * double(pc.state_bytes));
  histogram(out, "tnl_time_to_first_token_seconds", "Time from submit to the first generated token.",
            s.time_to_first_token);
  histogram(out, "tnl_time_per_output_token_seconds", "Time between generated tokens.", s.time_per_output_token);
  histogram(out, "tnl_e2e_request_latency_seconds", "Time from submit to the last token.", s.e2e_latency);
  histogram(out, "tnl_step_time_seconds", "Duration of one engine step.", s.step_time);
  scalar(out, "tnl_http_requests_total", "counter", "HTTP requests answered.", double(f.http_requests_total));
  scalar(out, "tnl_http_errors_4xx_total", "counter", "HTTP 4xx answers.", double(f.http_errors_4xx_total));
  scalar(out, "tnl_http_errors_5xx_total", "counter", "HTTP 5xx answers.", double(f.http_errors_5xx_total));
  scalar(out, "tnl_rejected_overload_total", "counter", "Requests refused because the queue was full.",
         double(f.rejected_overload_total));
  scalar(out, "tnl_client_disconnects_total", "counter", "Generations cancelled because the client went away.",
         double(f.client_disconnects_total));
  scalar(out, "tnl_stalled_clients_total", "counter",
         "Streams cut off because the client stopped reading (over --stream-buffer-bytes unsent).",
         double(f.stalled_clients_total));
  scalar(out, "tnl_grpc_requests_total", "counter", "gRPC calls started.", double(f.grpc_requests_total));
  scalar(out, "tnl_prompt_token_cache_hits_total", "counter",
         "Prompt texts that reused the token ids of an earlier text they begin with.",
         double(f.prompt_token_cache_hits_total));
  scalar(out, "tnl_prompt_token_cache_reused_bytes_total", "counter",
         "Prompt text bytes not tokenized again thanks to those hits.", double(f.prompt_token_cache_reused_bytes_total));
  scalar(out, "tnl_prompt_token_cache_encoded_bytes_total", "counter", "Prompt text bytes tokenized.",
         double(f.prompt_token_cache_encoded_bytes_total));
  scalar(out, "tnl_http_open_connections", "gauge", "Open HTTP connections.", double(f.open_connections));
  scalar(out, "tnl_ready", "gauge", "1 when the model is loaded and the server is not draining.", f.ready ? 1 : 0);
  scalar(out, "tnl_engine_alive", "gauge", "0 once the engine hit a fatal backend error (restart the process).",
         f.alive ? 1 : 0);
  return out;
}

}  // namespace tnl::server
