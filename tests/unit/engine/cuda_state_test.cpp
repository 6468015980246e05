// The CUDA backend's state slots (engine/cuda/state_store.*): every copy the
// prefix cache, forks and preemption plan — live → cache (snapshot), cache → host
// (demotion through staging and the side stream), host → live and cache → live
// (restores), live → live (fork) — moves the state exactly, byte for byte, in plan
// order, also where copies of one list depend on each other; read_state/write_state
// round-trip. Skips without a CUDA device (CI).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "engine/backend.h"
#include "tests/support/test_model.h"
#if defined(TNL_WITH_CUDA)
#include "engine/cuda/cuda_backend.h"
#endif

namespace tnl {
namespace {

#if defined(TNL_WITH_CUDA)
// A CUDA backend of the tiny model with these tiers, and live slot 0 holding a
// real state (a prefill of `prompt` random tokens).
struct CopyFixture {
  std::unique_ptr<Backend> backend;
  std::vector<std::byte> prefilled;  // live slot 0's state after the prefill

  std::vector<std::byte> read(StateTier tier, int32_t index) const {
    std::vector<std::byte> out(size_t(backend->state_bytes_per_slot()));
    EXPECT_TRUE(backend->read_state({tier, index}, out).is_ok());
    return out;
  }
};

CopyFixture make_copy_fixture(int32_t live, int32_t cache, int32_t host, int32_t prompt, uint32_t seed) {
  const ModelConfig config = test::tiny_config();  // e = 8, LRPE on layer 0: layers of two sizes
  BackendOptions o;
  o.device = "cuda";
  o.max_slots = live;
  o.prefix_cache_bytes = cache * config.state_bytes_per_sequence();
  o.prefix_cache_host_bytes = host * config.state_bytes_per_sequence();
  CopyFixture f;
  auto created = make_cuda_backend_random(config, o, seed);
  EXPECT_TRUE(created.has_value()) << created.status().to_string();
  if (!created.has_value()) return f;
  f.backend = std::move(created).value();
  EXPECT_EQ(f.backend->num_state_slots(StateTier::kLive), live);
  EXPECT_EQ(f.backend->num_state_slots(StateTier::kCache), cache);
  EXPECT_EQ(f.backend->num_state_slots(StateTier::kHost), host);
  std::mt19937 rng(seed);
  std::vector<int32_t> tokens(static_cast<size_t>(prompt));
  for (int32_t& t : tokens) t = int32_t(rng() % uint32_t(config.vocab_size));
  StepOutput out;
  EXPECT_TRUE(f.backend->run_step(StepPlan{{{0, 0, tokens, LogitsMode::kLast}}}, &out).is_ok());
  f.prefilled = f.read(StateTier::kLive, 0);
  return f;
}
#endif

TEST(CudaStateSlots, EveryCopyMovesTheStateExactlyInPlanOrder) {
#if !defined(TNL_WITH_CUDA)
  GTEST_SKIP() << "built without CUDA";
#else
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const CopyFixture f = make_copy_fixture(/*live=*/4, /*cache=*/3, /*host=*/2, /*prompt=*/37, 3);
  ASSERT_TRUE(f.backend);
  Backend& b = *f.backend;
  const size_t bytes = size_t(b.state_bytes_per_slot());
  auto read = [&](StateTier tier, int32_t index) { return f.read(tier, index); };
  std::mt19937 rng(3);
  StepOutput out;
  const std::vector<std::byte> s0 = f.prefilled;
  std::vector<float> as_floats(bytes / 4);
  std::memcpy(as_floats.data(), s0.data(), bytes);
  EXPECT_GT(std::count_if(as_floats.begin(), as_floats.end(), [](float v) { return v != 0.0f; }), int64_t(bytes / 8));

  // One copies-only step: snapshot, demotion, restores from host and cache, a fork.
  StepPlan plan;
  plan.copies_after = {{{StateTier::kLive, 0}, {StateTier::kCache, 1}},
                       {{StateTier::kCache, 1}, {StateTier::kHost, 0}},
                       {{StateTier::kHost, 0}, {StateTier::kLive, 2}},
                       {{StateTier::kCache, 1}, {StateTier::kLive, 3}},
                       {{StateTier::kLive, 0}, {StateTier::kLive, 1}}};
  ASSERT_TRUE(b.run_step(plan, &out).is_ok());
  EXPECT_EQ(read(StateTier::kCache, 1), s0);
  EXPECT_EQ(read(StateTier::kHost, 0), s0);
  EXPECT_EQ(read(StateTier::kLive, 1), s0);
  EXPECT_EQ(read(StateTier::kLive, 2), s0);
  EXPECT_EQ(read(StateTier::kLive, 3), s0);

  // write_state and a restore into a live slot that then keeps decoding.
  std::vector<std::byte> noise(bytes);
  for (std::byte& v : noise) v = std::byte(rng() % 64);  // small exponents: finite floats
  ASSERT_TRUE(b.write_state({StateTier::kCache, 2}, noise).is_ok());
  EXPECT_EQ(read(StateTier::kCache, 2), noise);
  StepPlan restore;
  restore.copies_before = {{{StateTier::kCache, 1}, {StateTier::kLive, 2}}};
  restore.chunks = {{2, 37, {5}, LogitsMode::kLast}};
  StepOutput restored_out, direct_out;
  ASSERT_TRUE(b.run_step(restore, &restored_out).is_ok());
  ASSERT_TRUE(b.run_step(StepPlan{{{0, 37, {5}, LogitsMode::kLast}}}, &direct_out).is_ok());
  EXPECT_EQ(restored_out.logits, direct_out.logits) << "a restored slot decodes exactly as the original";
  EXPECT_EQ(read(StateTier::kLive, 2), read(StateTier::kLive, 0));

  // Copies that depend on each other in one list (engine/concurrent_copies.h):
  // a finish snapshot, then a restore into the slot it read; a fork of the
  // restored state; a restore of the snapshot just taken. Plan order, exactly.
  const std::vector<std::byte> s_live0 = read(StateTier::kLive, 0);
  StepPlan dependent;
  dependent.copies_before = {{{StateTier::kLive, 0}, {StateTier::kCache, 0}},
                             {{StateTier::kCache, 2}, {StateTier::kLive, 0}},
                             {{StateTier::kLive, 0}, {StateTier::kLive, 1}},
                             {{StateTier::kCache, 0}, {StateTier::kLive, 3}}};
  ASSERT_TRUE(b.run_step(dependent, &out).is_ok());
  EXPECT_EQ(read(StateTier::kCache, 0), s_live0) << "the snapshot read the slot before the restore wrote it";
  EXPECT_EQ(read(StateTier::kLive, 0), noise);
  EXPECT_EQ(read(StateTier::kLive, 1), noise) << "the fork read the restored state";
  EXPECT_EQ(read(StateTier::kLive, 3), s_live0) << "the restore read the snapshot taken before it";

  // Copies the backend cannot do are refused, not run.
  StepPlan bad;
  bad.copies_before = {{{StateTier::kLive, 0}, {StateTier::kHost, 1}}};
  EXPECT_FALSE(b.run_step(bad, &out).is_ok());
  bad.copies_before = {{{StateTier::kCache, 7}, {StateTier::kLive, 0}}};
  EXPECT_FALSE(b.run_step(bad, &out).is_ok());
#endif
}

// More copies than one launch takes (kMaxStateCopies = 64): the list goes out in
// several launches, and a copy that depends on one in the launch being built
// still waits for it.
TEST(CudaStateSlots, ACopyListLongerThanALaunchKeepsPlanOrder) {
#if !defined(TNL_WITH_CUDA)
  GTEST_SKIP() << "built without CUDA";
#else
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const CopyFixture f = make_copy_fixture(/*live=*/2, /*cache=*/70, /*host=*/0, /*prompt=*/21, 4);
  ASSERT_TRUE(f.backend);
  const std::vector<std::byte>& s0 = f.prefilled;
  StepPlan plan;
  for (int32_t i = 0; i < 66; ++i) plan.copies_before.push_back({{StateTier::kLive, 0}, {StateTier::kCache, i}});
  plan.copies_before.push_back({{StateTier::kCache, 65}, {StateTier::kLive, 1}});  // reads the 66th snapshot
  StepOutput out;
  ASSERT_TRUE(f.backend->run_step(plan, &out).is_ok());
  for (int32_t i : {0, 63, 64, 65}) EXPECT_EQ(f.read(StateTier::kCache, i), s0) << "cache slot " << i;
  EXPECT_EQ(f.read(StateTier::kLive, 1), s0);
#endif
}

TEST(CudaServing, NothingAllocatesOrRecapturesAfterStartUp) {
#if !defined(TNL_WITH_CUDA)
  GTEST_SKIP() << "built without CUDA";
#else
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  ModelConfig config = test::tiny_config();
  config.num_heads = 2;  // e = 16
  BackendOptions o;
  o.device = "cuda";
  o.max_slots = 8;
  o.max_step_tokens = 512;
  auto created = make_cuda_backend_random(config, o, 9);
  ASSERT_TRUE(created.has_value()) << created.status().to_string();
  Backend& b = **created;
  const Backend::Counters at_start = b.counters();
  EXPECT_EQ(at_start.graph_captures, 4) << "buckets 1, 2, 4, 8 are captured at start-up";
  std::mt19937 rng(4);
  auto tokens = [&](size_t n) {
    std::vector<int32_t> t(n);
    for (int32_t& x : t) x = int32_t(rng() % uint32_t(config.vocab_size));
    return t;
  };
  StepOutput out;
  // Prefill steps up to the token budget, several sequences at once, then decodes
  // of every batch size, each sampled on the GPU.
  std::vector<int64_t> pos(8, 0);
  for (size_t len : {7, 100, 255, 60}) {
    StepPlan plan;
    for (int32_t slot = 0; slot < 2; ++slot) {
      plan.chunks.push_back({slot * 4 + int32_t(len % 4), 0, tokens(len), LogitsMode::kLast});
      pos[size_t(plan.chunks.back().slot)] = int64_t(len);
    }
    ASSERT_TRUE(b.run_step(plan, &out).is_ok());
  }
  // Sampling with everything it can carry: penalty rows (rebuilt from a list,
  // then kept), biases, and allowed-token masks.
  std::vector<bool> row_built(8, false);
  const auto words = size_t((config.vocab_size + 31) / 32);
  for (int32_t batch : {1, 3, 5, 8, 2, 8}) {
    StepPlan plan;
    for (int32_t slot = 0; slot < batch; ++slot) {
      SequenceChunk c{slot, pos[size_t(slot)]++, {int32_t(slot + 1)}, LogitsMode::kNone};
      c.sample = DeviceSampling{};
      c.sample->params.temperature = 0.7f;
      c.sample->params.inv_temperature = 1.0f / 0.7f;
      c.sample->params.uniform = 0.5;
      if (slot % 2 == 0) {
        c.sample->params.repetition_penalty = 1.2f;
        c.sample->penalty_row = row_built[size_t(slot)] ? PenaltyRowMode::kKept : PenaltyRowMode::kRebuild;
        if (!row_built[size_t(slot)]) {
          for (int32_t t = 0; t < 30; ++t) c.sample->penalties.push_back({t * 3 + slot, t % 3, 1, 0.0f});  // ids < 96
        }
        row_built[size_t(slot)] = true;
      } else {
        c.sample->penalties = {{5, 0, 0, -1.0f}, {9, 0, 0, 2.0f}};
        c.sample->allowed_mask = std::make_shared<std::vector<uint32_t>>(words, 0x5555'5555u);
      }
      plan.chunks.push_back(std::move(c));
    }
    ASSERT_TRUE(b.run_step(plan, &out).is_ok());
  }
  const Backend::Counters after = b.counters();
  EXPECT_EQ(after.graph_captures, at_start.graph_captures);
  EXPECT_EQ(after.buffer_growths, at_start.buffer_growths);
#endif
}

// The step trace's host/device split (Backend::set_step_timing): nothing while
// off; on, every kind of step — a prefill, a graph-replayed decode, a step of
// copies only — reports its enqueue time and a device span.
TEST(CudaServing, StepTimingSplitsHostAndDeviceOnlyWhenOn) {
#if !defined(TNL_WITH_CUDA)
  GTEST_SKIP() << "built without CUDA";
#else
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const ModelConfig config = test::tiny_config();
  BackendOptions o;
  o.device = "cuda";
  o.max_slots = 4;
  o.prefix_cache_bytes = 2 * config.state_bytes_per_sequence();
  auto created = make_cuda_backend_random(config, o, 5);
  ASSERT_TRUE(created.has_value()) << created.status().to_string();
  Backend& b = **created;
  std::vector<int32_t> prompt(300);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 37 + 11) % size_t(config.vocab_size));
  StepOutput out;
  ASSERT_TRUE(b.run_step(StepPlan{{{0, 0, prompt, LogitsMode::kLast}}}, &out).is_ok());
  EXPECT_EQ(b.last_step_timing().enqueue_us, -1) << "off by default";
  EXPECT_EQ(b.last_step_timing().device_us, -1);

  b.set_step_timing(true);
  auto expect_timed = [&](const char* what) {
    const Backend::StepTiming t = b.last_step_timing();
    EXPECT_GE(t.enqueue_us, 0) << what;
    EXPECT_GE(t.device_us, 0) << what;
  };
  ASSERT_TRUE(b.run_step(StepPlan{{{1, 0, prompt, LogitsMode::kLast}}}, &out).is_ok());
  expect_timed("prefill");
  EXPECT_GT(b.last_step_timing().device_us, 0) << "300 tokens through two layers take more than a microsecond";
  StepPlan decode{{{0, 300, {7}, LogitsMode::kLast}, {1, 300, {9}, LogitsMode::kLast}}};
  ASSERT_TRUE(b.run_step(decode, &out).is_ok());
  expect_timed("decode (graph)");
  StepPlan copies;
  copies.copies_after.push_back({{StateTier::kLive, 0}, {StateTier::kCache, 1}});
  ASSERT_TRUE(b.run_step(copies, &out).is_ok());
  expect_timed("copies only");

  b.set_step_timing(false);
  ASSERT_TRUE(b.run_step(decode, &out).is_ok());
  EXPECT_EQ(b.last_step_timing().device_us, -1) << "off again";
#endif
}

}  // namespace
}  // namespace tnl
