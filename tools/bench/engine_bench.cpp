#include "tools/bench/engine_bench.h"

#include <cuda_runtime.h>
#include <nvtx3/nvToolsExt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "engine/cuda/cuda_backend.h"

namespace tnl::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Lightning tile block B for a layer's (e, e_k) (kernels/cuda/lightning_prefill.cu).
int64_t lightning_block(int64_t e, int64_t ek) { return e == 128 && ek == 256 ? 32 : 64; }

// Attention FLOPs per token (blocked form): causal intra-block products plus q·S and k vᵀ.
double attention_flops_per_token(const ModelConfig& c, bool prefill) {
  double f = 0;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const int64_t e = c.head_dim(), ek = c.key_dim(l);
    f += double(c.num_heads) * ((prefill ? double(lightning_block(e, ek) * (ek + e)) : 0.0) + 4.0 * double(ek * e));
  }
  return f;
}

int64_t device_memory_used() {
  size_t free_bytes = 0, total = 0;
  cudaMemGetInfo(&free_bytes, &total);
  return int64_t(total - free_bytes);
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = int32_t(rng() % uint64_t(vocab));
  return t;
}

// A chunk whose token is drawn on the GPU (greedy: RowSampling's defaults), nothing copied back.
SequenceChunk sampled_on_device(int64_t slot, int64_t position, std::vector<int32_t> tokens) {
  SequenceChunk c{int32_t(slot), position, std::move(tokens), LogitsMode::kNone};
  c.sample = DeviceSampling{};
  return c;
}

Expected<double> time_step_ms(Backend& backend, const StepPlan& plan) {
  StepOutput out;
  const auto start = Clock::now();
  TNL_RETURN_IF_ERROR(backend.run_step(plan, &out));
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Prefills slots [0, count) to `context` tokens, several sequences per step.
Status fill_contexts(Backend& backend, int64_t count, int64_t context, int64_t budget, uint64_t seed) {
  const int64_t vocab = backend.config().vocab_size, chunk = std::min<int64_t>(context, 8192);
  std::vector<int64_t> done(size_t(count), 0);
  int64_t next = 0;  // first slot not yet full
  while (next < count) {
    StepPlan plan;
    int64_t tokens = 0;
    for (int64_t s = next; s < count; ++s) {
      const int64_t n = std::min(chunk, context - done[size_t(s)]);
      if (n == 0) continue;
      if (tokens + n > budget) break;
      plan.chunks.push_back({int32_t(s), done[size_t(s)], random_tokens(n, vocab, seed + uint64_t(s * 131 + done[size_t(s)])),
                             LogitsMode::kNone});
      done[size_t(s)] += n;
      tokens += n;
    }
    StepOutput out;
    TNL_RETURN_IF_ERROR(backend.run_step(plan, &out));
    while (next < count && done[size_t(next)] == context) ++next;
  }
  return Status::ok();
}

// Whole run_step calls of copies only (what the engine pays: the upload of the
// copy list, the launch, the synchronisation), each next to 2 × bytes ÷ bandwidth
// for device copies. Restores from the host tier cross PCIe (no floor measured).
Status bench_state_copies(Backend& backend, double state_bytes, int64_t reps, EngineBenchResult* result) {
  const StateRef live0{StateTier::kLive, 0};
  struct Case {
    std::string name;
    std::vector<StateCopy> copies;
    bool device_only;
  };
  std::vector<Case> cases;
  cases.push_back({"state snapshot live -> cache, 1 slot", {{live0, {StateTier::kCache, 0}}}, true});
  cases.push_back({"state restore cache -> live, 1 slot", {{{StateTier::kCache, 0}, live0}}, true});
  std::vector<StateCopy> sixteen;
  for (int32_t i = 0; i < 16; ++i) sixteen.push_back({{StateTier::kLive, i % backend.num_slots()}, {StateTier::kCache, 1 + i}});
  cases.push_back({"state snapshot live -> cache, 16 slots", sixteen, true});
  cases.push_back({"state demotion cache -> host, 1 slot (async)", {{{StateTier::kCache, 0}, {StateTier::kHost, 0}}}, false});
  cases.push_back({"state restore host -> live, 1 slot", {{{StateTier::kHost, 0}, live0}}, false});
  for (const Case& c : cases) {
    std::vector<double> times;
    StepPlan plan;
    plan.copies_after = c.copies;
    for (int64_t i = 0; i < 3 + reps; ++i) {
      TNL_ASSIGN_OR_RETURN(const double ms, time_step_ms(backend, plan));
      if (i >= 3) times.push_back(ms);
    }
    Figure f;
    f.section = "state";
    f.name = c.name;
    f.time_ms = median(times);
    f.bytes = c.device_only ? 2.0 * state_bytes * double(c.copies.size()) : 0.0;
    f.extra = {{"state_bytes", state_bytes}, {"copies", c.copies.size()}};
    spdlog::info("{}: {:.4f} ms", f.name, f.time_ms);
    result->figures.push_back(std::move(f));
  }
  return Status::ok();
}

}  // namespace

double flops_per_token(const ModelConfig& c, bool logits) {
  const double projections = double(c.num_layers) * double(4 * c.hidden_dim * c.dim + c.dim * c.hidden_dim +
                                                           3 * c.glu_dim * c.dim);
  return 2.0 * (projections + (logits ? double(c.vocab_size * c.dim) : 0.0));
}

double weight_bytes_per_step(const ModelConfig& c, int64_t batch, int64_t bytes_per_weight) {
  const double embedding = double(c.vocab_size * c.dim);
  const double gathered = c.tie_word_embeddings ? 0.0 : double(batch * c.dim) - embedding;  // untied: b rows, not V
  return (double(c.num_parameters()) + gathered) * double(bytes_per_weight);
}

Expected<EngineBenchResult> run_engine_benchmarks(const ModelConfig& config, const EngineBenchOptions& o) {
  EngineBenchResult result;
  BackendOptions bo = o.backend;
  bo.device = "cuda";
  bo.max_slots = int32_t(std::max<int64_t>(1, *std::max_element(o.decode_batches.begin(), o.decode_batches.end())));
  // Room for the state-copy figures (prefix-cache snapshots, restores, demotions).
  bo.prefix_cache_bytes = 32 * config.state_bytes_per_sequence();
  bo.prefix_cache_host_bytes = 4 * config.state_bytes_per_sequence();
  bo.max_step_tokens = int32_t(std::max<int64_t>(4096, o.fill_tokens_per_step));
  TNL_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, make_cuda_backend_random(config, bo, o.seed));
  if (backend->num_slots() < bo.max_slots) {
    return resource_exhausted("the GPU holds " + std::to_string(backend->num_slots()) + " state slots, the benchmark needs " +
                              std::to_string(bo.max_slots));
  }
  const int64_t state_bytes = backend->state_bytes_per_slot(), V = config.vocab_size;
  auto note_memory = [&] { result.peak_memory_bytes = std::max(result.peak_memory_bytes, device_memory_used()); };

  // One prefill figure: `plan`'s steps timed (its first two are warm-ups; the very
  // first is what a server pays for a shape it never saw). Each figure's timed steps
  // sit in an NVTX range of its name (ncu --nvtx-include "NAME/"). Its memory
  // floor writes every chunk's state and reads `states_read` more (decoding rows).
  auto prefill_figure = [&](const std::string& name, const StepPlan& plan, int64_t states_read = 0) -> Status {
    int64_t tokens = 0;
    for (const SequenceChunk& c : plan.chunks) tokens += int64_t(c.tokens.size());
    std::vector<double> times, enqueue_ms, device_ms;
    double first_ms = 0.0;
    backend->set_step_timing(true);  // two events a step, for the host/device split (not in decode figures)
    for (int i = 0; i < 2 + std::max(3, o.reps / 4); ++i) {
      if (i == 2) nvtxRangePushA(name.c_str());
      TNL_ASSIGN_OR_RETURN(const double ms, time_step_ms(*backend, plan));
      if (i == 0) first_ms = ms;
      if (i >= 2) {
        times.push_back(ms);
        const Backend::StepTiming t = backend->last_step_timing();
        enqueue_ms.push_back(double(t.enqueue_us) / 1e3);
        device_ms.push_back(double(t.device_us) / 1e3);
      }
    }
    nvtxRangePop();
    backend->set_step_timing(false);
    note_memory();
    const double rows = double(plan.chunks.size());  // one logits row each
    Figure f;
    f.section = "prefill";
    f.name = name;
    f.time_ms = median(times);
    f.tokens = double(tokens);
    f.flops = double(tokens) * (flops_per_token(config, false) + attention_flops_per_token(config, true)) +
              rows * (flops_per_token(config, true) - flops_per_token(config, false));
    f.bytes = weight_bytes_per_step(config, 1, 2) + (rows + double(states_read)) * double(state_bytes);
    // The host's enqueue time beside the device's: where they are close, the GPU
    // waits for the host's launches (the device time includes those waits).
    f.extra = {{"first_step_ms", first_ms}, {"enqueue_ms", median(enqueue_ms)}, {"device_ms", median(device_ms)}};
    spdlog::info("{}: {:.3f} ms, {:.0f} tokens/s (host enqueue {:.3f} ms, device {:.3f} ms; first step of this "
                 "shape: {:.3f} ms)",
                 f.name, f.time_ms, f.tokens / f.time_ms * 1e3, median(enqueue_ms), median(device_ms), first_ms);
    result.figures.push_back(std::move(f));
    return Status::ok();
  };
  // Prefill: one fresh prompt of n tokens per step; the last row's logits come back.
  for (int64_t n : o.prefill ? o.prefill_lengths : std::vector<int64_t>{}) {
    const StepPlan plan{{{0, 0, random_tokens(n, V, o.seed + uint64_t(n)), LogitsMode::kLast}}};
    TNL_RETURN_IF_ERROR(prefill_figure("prefill n=" + std::to_string(n), plan));
  }
  // Conversation turns: k slots continue from a state (written by a fresh prefill
  // first, so that it holds real numbers) at position turn_context.
  for (int64_t k : o.prefill ? o.turn_batches : std::vector<int64_t>{}) {
    if (k > bo.max_slots) continue;
    StepPlan fresh, turn;
    for (int64_t i = 0; i < k; ++i) {
      std::vector<int32_t> tokens = random_tokens(o.turn_tokens, V, o.seed + 7919 * uint64_t(i + 1));
      fresh.chunks.push_back({int32_t(i), 0, tokens, LogitsMode::kLast});
      turn.chunks.push_back({int32_t(i), o.turn_context, std::move(tokens), LogitsMode::kLast});
    }
    TNL_RETURN_IF_ERROR(time_step_ms(*backend, fresh).status());
    TNL_RETURN_IF_ERROR(prefill_figure("turn " + std::to_string(k) + "x" + std::to_string(o.turn_tokens) + " at " +
                                           std::to_string(o.turn_context),
                                       turn));
  }

  // A serving step at full load: decodes beside fresh prompts (all sampled on the
  // device, greedy), then the prompts alone, each a prefill figure (the step's
  // host/device split). The prompts take the slots after the decoding ones.
  auto mixed_figures = [&](int64_t context, const std::vector<int64_t>& position) -> Status {
    StepPlan mixed, prompts;
    for (int64_t s = 0; s < o.mixed_decodes; ++s) {
      mixed.chunks.push_back(sampled_on_device(s, position[size_t(s)], {int32_t((s * 7) % V)}));
    }
    for (int64_t i = 0; i < o.mixed_prompts; ++i) {
      prompts.chunks.push_back(sampled_on_device(
          o.mixed_decodes + i, 0, random_tokens(o.mixed_prompt_tokens, V, o.seed + 4099 * uint64_t(i + 1))));
      mixed.chunks.push_back(prompts.chunks.back());
    }
    const std::string shape = std::to_string(o.mixed_prompts) + "x" + std::to_string(o.mixed_prompt_tokens);
    TNL_RETURN_IF_ERROR(prefill_figure("mixed " + std::to_string(o.mixed_decodes) + " decodes (ctx " +
                                           std::to_string(context) + ") + " + shape + " fresh prompts",
                                       mixed, /*states_read=*/o.mixed_decodes));
    return prefill_figure(shape + " fresh prompts alone", prompts);
  };

  // Decode: every batch size at every context; each sampled token is drawn on the GPU (greedy).
  const int64_t slots = bo.max_slots;
  for (int64_t context : o.decode ? o.contexts : std::vector<int64_t>{}) {
    const auto fill_start = Clock::now();
    TNL_RETURN_IF_ERROR(fill_contexts(*backend, slots, context, o.fill_tokens_per_step, o.seed + uint64_t(context)));
    const double fill_s = std::chrono::duration<double>(Clock::now() - fill_start).count();
    spdlog::info("prefilled {} sequences to {} tokens in {:.1f} s", slots, context, fill_s);
    result.fill_seconds += fill_s;
    note_memory();
    std::vector<int64_t> position(size_t(slots), context);
    for (int64_t b : o.decode_batches) {
      const std::string name = "decode b=" + std::to_string(b) + " ctx=" + std::to_string(context);
      std::vector<double> times;
      for (int i = 0; i < 3 + o.reps; ++i) {
        if (i == 3) nvtxRangePushA(name.c_str());
        StepPlan plan;
        for (int64_t s = 0; s < b; ++s) {
          plan.chunks.push_back(sampled_on_device(s, position[size_t(s)]++, {int32_t((s * 7 + i) % V)}));
        }
        TNL_ASSIGN_OR_RETURN(const double ms, time_step_ms(*backend, plan));
        if (i >= 3) times.push_back(ms);  // the first steps capture this batch's CUDA graph
      }
      nvtxRangePop();
      note_memory();
      Figure f;
      f.section = "decode";
      f.name = name;
      f.time_ms = median(times);
      f.tokens = double(b);
      f.flops = double(b) * (flops_per_token(config, true) + attention_flops_per_token(config, false));
      f.bytes = weight_bytes_per_step(config, b, 2) + 2.0 * double(b * state_bytes);  // states read and written
      f.extra = {{"batch", b}, {"context", context}};
      spdlog::info("{}: {:.3f} ms/step, {:.0f} tokens/s", f.name, f.time_ms, f.tokens / f.time_ms * 1e3);
      result.figures.push_back(std::move(f));
    }
    if (context == o.contexts.front() && o.mixed_decodes + o.mixed_prompts <= slots && o.mixed_prompts > 0) {
      TNL_RETURN_IF_ERROR(mixed_figures(context, position));
    }
  }
  TNL_RETURN_IF_ERROR(bench_state_copies(*backend, double(state_bytes), o.reps, &result));
  return result;
}

}  // namespace tnl::bench
