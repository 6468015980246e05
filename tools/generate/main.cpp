// tnl-generate: stream a completion of one prompt to stdout; speeds to stderr.
//
// A single sequence in slot 0: the prompt is prefilled in chunks (continuing the
// slot's state), then tokens are decoded one at a time by the recurrence.
#include <chrono>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "engine/sampling/sampler.h"
#include "tools/common/backend_flags.h"
#include "tools/common/load_model.h"
#include "tools/common/stderr_logging.h"

namespace {

using Clock = std::chrono::steady_clock;

int fail(const tnl::Status& s) {
  std::fprintf(stderr, "tnl-generate: %s\n", s.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tnl-generate: generate text from a TransNormerLLM checkpoint"};
  std::string model_dir, prompt;
  int32_t max_tokens = 128;
  int32_t prefill_chunk = 512;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  tnl::SamplingParams sampling;
  sampling.temperature = 0.8f;
  tnl::BackendOptions backend_options;
  backend_options.max_slots = 1;
  app.add_option("--model", model_dir, "Checkpoint directory (config.json, safetensors, tokenizer.model)")->required();
  app.add_option("--prompt", prompt, "Prompt text")->required();
  app.add_option("--max-tokens", max_tokens, "Tokens to generate at most")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--temperature", sampling.temperature, "Sampling temperature (0: greedy)")->capture_default_str();
  app.add_option("--top-p", sampling.top_p, "Nucleus sampling mass")->capture_default_str();
  app.add_option("--top-k", sampling.top_k, "Keep the k most likely tokens (0: off)")->capture_default_str();
  app.add_option("--min-p", sampling.min_p, "Drop tokens below min_p × the top probability")->capture_default_str();
  app.add_option("--repetition-penalty", sampling.repetition_penalty, "Repetition penalty (1: off)")->capture_default_str();
  app.add_option("--seed", sampling.seed, "Random seed (same seed, same tokens)");
  app.add_option("--stop", stop, "Stop string (repeatable)");
  app.add_flag("--ignore-eos", ignore_eos, "Keep generating after the end-of-sequence token");
  app.add_option("--prefill-chunk", prefill_chunk, "Prompt tokens per prefill step")->check(CLI::PositiveNumber)->capture_default_str();
  tnl::tools::add_backend_flags(app, &backend_options);
  CLI11_PARSE(app, argc, argv);
  tnl::tools::log_to_stderr();

  if (tnl::Status s = sampling.validate(); !s) return fail(s);
  auto loaded = tnl::tools::load_model(model_dir, backend_options);
  if (!loaded) return fail(loaded.status());
  tnl::Backend& model = *loaded->backend;
  const tnl::Tokenizer& tokenizer = *loaded->tokenizer;

  const std::vector<int32_t> prompt_ids = tokenizer.encode(prompt);
  if (prompt_ids.empty()) return fail(tnl::invalid_argument("the prompt is empty"));
  if (tnl::Status s = tnl::tools::check_ids_in_vocabulary(prompt_ids, model.config()); !s) return fail(s);

  tnl::Sampler sampler(sampling, prompt_ids);
  tnl::IncrementalDetokenizer detokenizer(tokenizer, prompt_ids);
  tnl::StopMatcher stop_matcher(stop);
  tnl::StepOutput out;

  // Prefill in chunks; only the last chunk asks for logits.
  const auto t0 = Clock::now();
  int64_t pos = 0;
  while (pos < int64_t(prompt_ids.size())) {
    const int64_t n = std::min<int64_t>(prefill_chunk, int64_t(prompt_ids.size()) - pos);
    tnl::StepPlan plan;
    tnl::SequenceChunk chunk;
    chunk.slot = 0;
    chunk.start_pos = pos;
    chunk.tokens.assign(prompt_ids.begin() + pos, prompt_ids.begin() + pos + n);
    chunk.logits = pos + n == int64_t(prompt_ids.size()) ? tnl::LogitsMode::kLast : tnl::LogitsMode::kNone;
    plan.chunks.push_back(std::move(chunk));
    if (tnl::Status s = model.run_step(plan, &out); !s) return fail(s);
    pos += n;
  }
  const auto t1 = Clock::now();

  int32_t generated = 0;
  bool stopped = false;
  while (generated < max_tokens && !stopped) {
    const tnl::SampleResult r = sampler.sample(out.row(0));
    ++generated;
    if (!ignore_eos && r.token == model.config().eos_token_id) break;
    std::cout << stop_matcher.push(detokenizer.push(r.token), &stopped) << std::flush;
    if (stopped || generated == max_tokens) break;
    tnl::StepPlan plan;
    plan.chunks.push_back({0, pos++, {r.token}, tnl::LogitsMode::kLast});
    if (tnl::Status s = model.run_step(plan, &out); !s) return fail(s);
  }
  if (!stopped) std::cout << stop_matcher.push(detokenizer.flush(), &stopped) << stop_matcher.flush();
  std::cout << std::endl;
  const auto t2 = Clock::now();

  const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
  const double decode_s = std::chrono::duration<double>(t2 - t1).count();
  std::fprintf(stderr, "[%s] prompt: %zu tokens, %.1f tok/s | decode: %d tokens, %.1f tok/s | state %.2f MB/sequence\n",
               model.name().c_str(), prompt_ids.size(), double(prompt_ids.size()) / prefill_s, generated,
               generated / decode_s, double(model.state_bytes_per_slot()) / 1e6);
  return 0;
}
