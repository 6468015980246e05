// The prefix state cache on the CUDA backend, end to end over the shipped model:
// requests that start from a snapshot (a chunk edge, a whole prompt, a finished
// response, a host-tier restore after eviction) agree with cold runs within the
// bf16 tolerance of model-spec §6. Skips without a CUDA device (CI).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "engine/checkpoint/checkpoint.h"
#include "engine/scheduler/engine.h"
#include "tests/support/test_paths.h"
#include "tests/unit/scheduler/engine_test_support.h"
#if defined(TNL_WITH_CUDA)
#include "engine/cuda/cuda_backend.h"
#endif

namespace tnl {
namespace {

using test::EventCollector;

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
};

TEST(CudaPrefixCache, CachedRequestsAgreeWithColdOnesWithinBf16Tolerance) {
#if !defined(TNL_WITH_CUDA)
  GTEST_SKIP() << "built without CUDA";
#else
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const auto dir = test::source_dir() / "models/tnl-brown-12m";
  auto ckpt = Checkpoint::open(dir);
  ASSERT_TRUE(ckpt.has_value()) << ckpt.status().to_string();
  auto make = [&](bool cache) {
    BackendOptions bo;
    bo.device = "cuda";
    bo.max_slots = 8;
    // Two snapshot slots and a host tier: the later requests restore demoted states.
    bo.prefix_cache_bytes = 2 * (*ckpt)->config().state_bytes_per_sequence();
    bo.prefix_cache_host_bytes = 16 * (*ckpt)->config().state_bytes_per_sequence();
    auto backend = make_cuda_backend(**ckpt, bo);
    EXPECT_TRUE(backend.has_value()) << backend.status().to_string();
    EngineOptions o;
    o.max_num_seqs = 8;
    o.prefill_chunk = 32;
    o.max_num_batched_tokens = 64;
    o.max_model_len = 2048;
    o.prefix_cache = cache;
    o.model_fingerprint = (*ckpt)->fingerprint();
    auto engine = Engine::create(std::move(backend).value(), std::move(Tokenizer::load(dir)).value(), o);
    EXPECT_TRUE(engine.has_value()) << engine.status().to_string();
    return std::move(engine).value();
  };
  auto run = [](Engine& e, std::vector<int32_t> prompt, int32_t n) {
    GenerationRequest r;
    r.prompt_ids = std::move(prompt);
    r.max_tokens = n;
    r.ignore_eos = true;
    r.sampling.temperature = 0.0f;
    r.sampling.logprobs = 0;
    EventCollector c;
    EXPECT_TRUE(e.submit(std::move(r), c.sink()).has_value());
    EXPECT_TRUE(c.wait_finished(std::chrono::seconds(60)));
    Outcome o;
    o.tokens = c.tokens();
    for (const auto& ev : c.events()) {
      for (const auto& lp : ev.logprobs) o.logprobs.push_back(lp.logprob);
    }
    return o;
  };
  auto cold = make(false), warm = make(true);
  std::mt19937 rng(17);
  auto ids = [&](size_t n) {
    std::vector<int32_t> v(n);
    for (int32_t& t : v) t = 4 + int32_t(rng() % 4000);
    return v;
  };
  std::vector<std::vector<int32_t>> prompts;
  const std::vector<int32_t> stem = ids(100);
  for (size_t len : {64, 64, 80, 100, 33, 100}) prompts.emplace_back(stem.begin(), stem.begin() + long(len));
  const std::vector<int32_t> first = run(*warm, prompts[0], 6).tokens;  // finish snapshot: 64 + 5
  std::vector<int32_t> follow = prompts[0];
  follow.insert(follow.end(), first.begin(), first.end());
  const std::vector<int32_t> more = ids(20);
  follow.insert(follow.end(), more.begin(), more.end());
  prompts.push_back(follow);
  int compared = 0;
  for (const auto& p : prompts) {
    const Outcome w = run(*warm, p, 6), c = run(*cold, p, 6);
    ASSERT_EQ(w.logprobs.size(), c.logprobs.size());
    // Greedy paths may part where two tokens are within rounding of each other:
    // compare while they agree.
    for (size_t i = 0; i < w.tokens.size() && w.tokens[i] == c.tokens[i]; ++i) {
      EXPECT_NEAR(w.logprobs[i], c.logprobs[i], 0.05) << "prompt of " << p.size() << ", token " << i;
      ++compared;
    }
  }
  EXPECT_GT(compared, 20);
  const EngineStats s = warm->stats();
  EXPECT_GE(s.prefix_cache.hits_total, 4u);
  EXPECT_GT(s.prefix_cache.demotions_total, 0u) << "two device slots should have overflowed to the host";
  std::printf("cuda prefix cache: %llu hits, %llu hit tokens, %llu demotions, %llu host restores, %d tokens compared\n",
              (unsigned long long)s.prefix_cache.hits_total, (unsigned long long)s.prefix_cache.hit_tokens_total,
              (unsigned long long)s.prefix_cache.demotions_total, (unsigned long long)s.prefix_cache.host_restores_total,
              compared);
#endif
}

}  // namespace
}  // namespace tnl
