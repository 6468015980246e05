#include "tools/bench/serving_bench.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>

#include "engine/cuda/cuda_backend.h"
#include "engine/scheduler/engine.h"
#include "engine/tokenizer/tokenizer.h"
#include "tools/bench/engine_bench.h"

namespace tnl::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// What the sinks record, from the engine's step-loop thread.
class Tracker {
 public:
  explicit Tracker(size_t requests) : first_(requests), tokens_(requests, 0) {}

  EventSink sink(size_t i) {
    return [this, i](GenerationEvent&& e) {
      std::lock_guard lock(mu_);
      const auto now = Clock::now();
      if (!e.token_ids.empty() && tokens_[i] == 0) first_[i] = now;
      tokens_[i] += int64_t(e.token_ids.size());
      if (e.finish != FinishReason::kNone) {
        if (e.finish == FinishReason::kError) error_ = e.error;
        last_ = now;
        ++finished_;
        done_.notify_all();
      }
    };
  }
  // Waits for every request; their error, if any.
  Status wait() {
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return finished_ == tokens_.size(); });
    return error_;
  }
  Clock::time_point first(size_t i) const { return first_[i]; }
  Clock::time_point last_first() const { return *std::max_element(first_.begin(), first_.end()); }
  Clock::time_point last() const { return last_; }
  int64_t tokens() const {
    int64_t n = 0;
    for (int64_t t : tokens_) n += t;
    return n;
  }

 private:
  std::mutex mu_;
  std::condition_variable done_;
  std::vector<Clock::time_point> first_;
  std::vector<int64_t> tokens_;
  Clock::time_point last_;
  size_t finished_ = 0;
  Status error_;
};

std::vector<int32_t> prompt_ids(int64_t n, int32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = int32_t(3 + rng() % uint64_t(vocab - 3));  // past pad/bos/eos
  return ids;
}

GenerationRequest greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
  GenerationRequest r;
  r.prompt_ids = std::move(prompt);
  r.max_tokens = int32_t(max_tokens);
  r.ignore_eos = true;
  r.sampling.temperature = 0.0f;
  return r;
}

}  // namespace

Expected<std::vector<Figure>> run_serving_benchmarks(const ModelConfig& config, const ServingBenchOptions& o) {
  BackendOptions bo = o.backend;
  bo.device = "cuda";
  bo.max_slots = int32_t(o.streams);
  bo.max_step_tokens = 8192;
  TNL_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, make_cuda_backend_random(config, bo, o.seed));
  TNL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::load(o.tokenizer_dir));
  const int32_t vocab = int32_t(std::min<int64_t>(tokenizer->vocab_size(), config.vocab_size));
  EngineOptions eo;
  eo.max_num_seqs = int32_t(o.streams);
  eo.max_num_batched_tokens = 8192;
  eo.prefill_chunk = 2048;
  eo.max_queue = int32_t(o.streams) + 16;
  eo.max_model_len = std::max(o.prompt_tokens + o.output_tokens, o.lone_prompt_tokens + 1) + 16;
  eo.prefix_cache = false;  // every prompt is computed: the figures are not cache hits
  TNL_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::create(std::move(backend), std::move(tokenizer), eo));
  const int64_t state_bytes = config.state_bytes_per_sequence();
  std::vector<Figure> figures;

  // S streams at once: the decode-phase step time, once every stream has its first
  // token; then the same with a repetition and frequency penalty on every request
  // (the device keeps each slot's counts: the step should not grow with the prompts).
  for (const bool penalties : {false, true}) {
    Tracker t(size_t(o.streams));
    const auto start = Clock::now();
    for (int64_t i = 0; i < o.streams; ++i) {
      GenerationRequest r = greedy(prompt_ids(o.prompt_tokens, vocab, o.seed + uint64_t(i)), o.output_tokens);
      if (penalties) {
        r.sampling.repetition_penalty = 1.1f;
        r.sampling.frequency_penalty = 0.2f;
      }
      TNL_RETURN_IF_ERROR(engine->submit(std::move(r), t.sink(size_t(i))).status());
    }
    TNL_RETURN_IF_ERROR(t.wait());
    const double window_ms = ms_between(t.last_first(), t.last());
    // Every stream decodes its remaining tokens in the window; the step count is
    // what the slowest stream had left.
    const double steps = double(o.output_tokens - 1);
    Figure f;
    f.section = "serving";
    f.name = "serving " + std::to_string(o.streams) + " streams x " + std::to_string(o.output_tokens) + " tok" +
             (penalties ? " repetition+frequency penalty" : "");
    f.time_ms = window_ms / std::max(1.0, steps);
    f.tokens = double(o.streams);
    f.flops = double(o.streams) * flops_per_token(config, true);
    f.bytes = weight_bytes_per_step(config, o.streams, 2) + 2.0 * double(o.streams * state_bytes);
    f.extra = {{"wall_ms", ms_between(start, t.last())}, {"decode_window_ms", window_ms}, {"tokens", t.tokens()}};
    spdlog::info("{}: {:.3f} ms per decode step, {:.0f} tokens/s over the whole run", f.name, f.time_ms,
                 double(t.tokens()) / ms_between(start, t.last()) * 1e3);
    figures.push_back(std::move(f));
  }

  // A lone long prompt: time to its first token, median of the runs.
  {
    std::vector<double> ttft;
    for (int r = 0; r < std::max(1, o.reps); ++r) {
      Tracker t(1);
      const auto start = Clock::now();
      TNL_RETURN_IF_ERROR(
          engine->submit(greedy(prompt_ids(o.lone_prompt_tokens, vocab, o.seed + 1000 + uint64_t(r)), 1), t.sink(0))
              .status());
      TNL_RETURN_IF_ERROR(t.wait());
      ttft.push_back(ms_between(start, t.first(0)));
    }
    std::sort(ttft.begin(), ttft.end());
    Figure f;
    f.section = "serving";
    f.name = "serving TTFT lone prompt n=" + std::to_string(o.lone_prompt_tokens);
    f.time_ms = ttft[ttft.size() / 2];
    f.tokens = double(o.lone_prompt_tokens);
    f.flops = double(o.lone_prompt_tokens) * flops_per_token(config, false) + 2.0 * double(config.vocab_size * config.dim);
    f.bytes = weight_bytes_per_step(config, 1, 2) + double(state_bytes);
    f.extra = {{"min_ms", ttft.front()}, {"max_ms", ttft.back()}};
    spdlog::info("{}: median {:.3f} ms (min {:.3f})", f.name, f.time_ms, ttft.front());
    figures.push_back(std::move(f));
  }
  return figures;
}

}  // namespace tnl::bench
