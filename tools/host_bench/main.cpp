// tnl-host-bench: the step loop's host work per step (planning, handing tokens
// out) with a backend that computes nothing, so that the figure is the engine's
// own cost at N concurrent streams: on a GPU, what the device waits for between
// steps unless it overlaps a step. Rounds of N streams (ignore_eos) run
// back to back; with --step-trace, tools/step_trace_summary.py splits each step
// into planning, run_step (here: the work handed to StepPlan::while_running) and
// the handling of the sampled tokens.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "engine/backend.h"
#include "engine/scheduler/engine.h"
#include "engine/tokenizer/tokenizer.h"

using namespace tnl;

namespace {

// Samples every chunk's token on "the device" at once: a hash of the chunk's last
// token and position, below the vocabulary, past the special ids; or, given
// `text` (token ids), the text's id at the chunk's position (each slot from its
// own offset), so that the tokens spell real text. Rows the host asks for come
// back as zeros.
class InstantBackend final : public Backend {
 public:
  InstantBackend(int32_t vocab, int32_t slots, int32_t cache_slots, std::vector<int32_t> text)
      : config_(tiny_model_config(vocab, /*eos_token_id=*/2)),
        slots_(slots),
        cache_slots_(cache_slots),
        text_(std::move(text)) {}
  const ModelConfig& config() const override { return config_; }
  std::string name() const override { return "instant"; }
  int32_t num_slots() const override { return slots_; }
  int64_t state_bytes_per_slot() const override { return 64; }
  bool samples_on_device() const override { return true; }
  int32_t num_state_slots(StateTier tier) const override {
    if (tier == StateTier::kLive) return slots_;
    return tier == StateTier::kCache ? cache_slots_ : 0;
  }
  Status run_step(const StepPlan& plan, StepOutput* out) override {
    if (plan.while_running) plan.while_running();
    if (plan.prepare_sampling) TNL_RETURN_IF_ERROR(plan.prepare_sampling());
    out->vocab_size = config_.vocab_size;
    out->row_begin.assign(plan.chunks.size(), -1);
    out->sampled.assign(plan.chunks.size(), SampledToken{});
    int64_t rows = 0;  // rows the host asked for (the prefix cache keeps a prompt's last): zeros
    for (size_t i = 0; i < plan.chunks.size(); ++i) {
      const SequenceChunk& c = plan.chunks[i];
      if (c.logits == LogitsMode::kNone) continue;
      out->row_begin[i] = int32_t(rows);
      rows += c.logits == LogitsMode::kAll ? int64_t(c.tokens.size()) : 1;
    }
    out->logits.assign(size_t(rows * config_.vocab_size), 0.0f);
    for (size_t i = 0; i < plan.chunks.size(); ++i) {
      const SequenceChunk& c = plan.chunks[i];
      // A spread of ordinary and byte-fallback pieces, as a random model draws.
      const uint64_t h = (uint64_t(uint32_t(c.tokens.back())) + 1) * 0x9E3779B97F4A7C15ull + uint64_t(c.start_pos);
      if (!c.sample) continue;
      out->sampled[i].token =
          text_.empty() ? 3 + int32_t((h >> 33) % uint64_t(config_.vocab_size - 3))
                        : text_[size_t(c.start_pos + int64_t(c.tokens.size()) + int64_t(c.slot) * 7919) % text_.size()];
    }
    return Status::ok();
  }
  Status read_state(StateRef, std::span<std::byte>) override { return Status::ok(); }
  Status write_state(StateRef, std::span<const std::byte>) override { return Status::ok(); }

 private:
  ModelConfig config_;
  int32_t slots_;
  int32_t cache_slots_;  // snapshot slots of the prefix cache (copies cost nothing here)
  std::vector<int32_t> text_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tnl-host-bench: the engine's host work per step, with a backend that computes nothing"};
  int streams = 256, tokens = 256, prompt = 256, rounds = 4;
  float temperature = 0.0f, repetition_penalty = 1.0f;
  int cache_slots = 0;
  std::string tokenizer_dir = "models/tnl-brown-12m", trace;
  std::vector<std::string> stops;
  std::string text_file;
  app.add_option("--streams", streams, "Concurrent greedy streams (slots)")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--output-tokens", tokens, "Tokens per stream")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--prompt-tokens", prompt, "Prompt tokens per stream (random ids)")
      ->capture_default_str()
      ->check(CLI::Range(1, 8192));
  app.add_option("--rounds", rounds, "Rounds of --streams requests, one after another")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--temperature", temperature, "Sampling temperature (0: greedy; the backend's draw ignores it)")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, 2.0f));
  app.add_option("--repetition-penalty", repetition_penalty, "Repetition penalty of every request (1: none)")
      ->capture_default_str()
      ->check(CLI::Range(0.01f, 10.0f));
  app.add_option("--prefix-cache-slots", cache_slots,
                 "Prefix cache snapshot slots (0: the cache is off); the prompts never repeat, so it only costs")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  app.add_option("--stop", stops,
                 "A stop string of every request (repeatable; chat requests carry the template's, \"\\nUser:\" by "
                 "default): their text is then matched token by token on the step loop");
  app.add_option("--text", text_file,
                 "Generate this file's text (its tokens, each stream from its own offset) instead of random ids")
      ->check(CLI::ExistingFile);
  app.add_option("--tokenizer", tokenizer_dir, "A checkpoint directory whose tokenizer the engine loads")
      ->capture_default_str();
  app.add_option("--step-trace", trace, "Write the step loop's timeline here (tools/step_trace_summary.py reads it)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  auto tok = Tokenizer::load(tokenizer_dir);
  if (!tok.has_value()) { std::fprintf(stderr, "%s\n", tok.status().to_string().c_str()); return 1; }
  const int32_t vocab = int32_t(tok.value()->vocab_size());
  std::vector<int32_t> text_ids;
  if (!text_file.empty()) {
    std::ifstream in(text_file, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text_ids = tok.value()->encode_plain(text);
    if (text_ids.empty()) { std::fprintf(stderr, "%s: no text\n", text_file.c_str()); return 1; }
  }
  EngineOptions eo;
  eo.max_num_seqs = streams;
  eo.max_num_batched_tokens = 8192;
  eo.prefill_chunk = 2048;
  eo.max_queue = streams * 2;
  eo.prefix_cache = cache_slots > 0;
  eo.step_trace_path = trace;
  auto engine = Engine::create(std::make_unique<InstantBackend>(vocab, streams, cache_slots, std::move(text_ids)), std::move(tok).value(), eo);
  if (!engine.has_value()) { std::fprintf(stderr, "%s\n", engine.status().to_string().c_str()); return 1; }
  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;
  int64_t got = 0, stopped = 0;  // tokens that arrived; requests a stop string ended
  std::mt19937 rng(1);
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) {
    finished = 0;
    for (int s = 0; s < streams; ++s) {
      GenerationRequest q;
      for (int i = 0; i < prompt; ++i) q.prompt_ids.push_back(3 + int32_t(rng() % uint32_t(vocab - 3)));
      q.max_tokens = tokens;
      q.ignore_eos = true;
      q.sampling.temperature = temperature;
      q.sampling.repetition_penalty = repetition_penalty;
      q.stop = stops;
      auto id = engine.value()->submit(std::move(q), [&](GenerationEvent&& e) {
        std::lock_guard l(mu);
        got += int64_t(e.token_ids.size());
        stopped += e.finish == FinishReason::kStop;
        if (e.finish != FinishReason::kNone) { ++finished; cv.notify_all(); }
      });
      if (!id.has_value()) { std::fprintf(stderr, "%s\n", id.status().to_string().c_str()); return 1; }
    }
    std::unique_lock l(mu);
    cv.wait(l, [&] { return finished == streams; });
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const EngineStats st = engine.value()->stats();
  const int64_t expected = int64_t(rounds) * streams * tokens;
  std::printf("%d rounds x %d streams x %d tokens: %lld tokens in %.1f ms, %.3f us of host time per token; "
              "%llu steps, %.4f ms per step (mean)\n",
              rounds, streams, tokens, static_cast<long long>(got), ms, ms * 1e3 / double(std::max<int64_t>(got, 1)),
              static_cast<unsigned long long>(st.step_time.count),
              st.step_time.count ? st.step_time.sum / double(st.step_time.count) * 1e3 : 0.0);
  if (stopped > 0) std::printf("%lld requests ended by a stop string\n", static_cast<long long>(stopped));
  // Every token of every request arrives, but for the ones a stop string ended.
  if (stopped == 0 ? got != expected : got >= expected) {
    std::fprintf(stderr, "tnl-host-bench: %lld tokens arrived, expected %s%lld\n", static_cast<long long>(got),
                 stopped == 0 ? "" : "fewer than ", static_cast<long long>(expected));
    return 1;
  }
  return 0;
}
