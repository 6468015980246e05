// The prefix state cache and forks, end to end over the real CPU backend and a
// tiny random model: exactness is the contract.
//   - a hit on a snapshot at a chunk boundary, or a whole prompt cached, gives
//     tokens and logprobs bit-identical to a cold run;
//   - continuing from a finish-time snapshot equals continuing the original
//     sequence in place, bit for bit, and a cold run within fp32 tolerance;
//   - eviction under pressure never changes outputs;
//   - a fork group equals its requests run independently, bit for bit;
//   - the cache can be turned off;
//   - a backend that runs copies concurrently keeps these results only by
//     splitting its launches where engine/concurrent_copies.h says.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <set>
#include <memory>
#include <random>
#include <vector>

#include "engine/checkpoint/checkpoint.h"
#include "engine/concurrent_copies.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/sampling/sampler.h"
#include "engine/scheduler/engine.h"
#include "tests/support/test_model.h"
#include "tests/unit/scheduler/engine_test_support.h"

namespace tnl {
namespace {

using test::EventCollector;
constexpr int32_t kChunk = 16;

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  FinishReason finish = FinishReason::kNone;
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class PrefixCacheEngineTest : public ::testing::Test {
 protected:
  // The shipped trained model (12M parameters, LRPE on layer 0): its next-token
  // distributions are spread like a real model's, so seeded draws differ and
  // logprobs are far from 0 (a small random model is too peaked for that).
  static std::filesystem::path model_dir() { return test::source_dir() / "models/tnl-brown-12m"; }

  static void SetUpTestSuite() {
    auto ckpt = Checkpoint::open(model_dir());
    ASSERT_TRUE(ckpt.has_value()) << ckpt.status().to_string();
    checkpoint_ = std::move(ckpt).value().release();
  }
  static void TearDownTestSuite() {
    delete checkpoint_;
    checkpoint_ = nullptr;
  }

  static BackendOptions backend_options(int64_t cache_slots) {
    BackendOptions bo;
    bo.device = "cpu";
    bo.max_slots = 8;
    bo.prefill_block = 8;
    bo.cpu_threads = 2;
    bo.prefix_cache_bytes = cache_slots * checkpoint_->config().state_bytes_per_sequence();
    return bo;
  }

  // cache_slots < 0: the cache turned off by the engine option (the backend still has slots).
  static std::unique_ptr<Engine> make_engine(int64_t cache_slots) {
    auto backend = make_cpu_backend(*checkpoint_, backend_options(cache_slots < 0 ? 64 : cache_slots));
    EXPECT_TRUE(backend.has_value()) << backend.status().to_string();
    if (!backend.has_value()) return nullptr;
    EngineOptions o;
    o.max_num_seqs = 8;
    o.prefill_chunk = kChunk;
    o.max_num_batched_tokens = kChunk + 8 + 8;
    o.max_queue = 256;
    o.max_model_len = 1024;
    o.prefix_cache = cache_slots >= 0;
    o.model_fingerprint = checkpoint_->fingerprint();
    auto tokenizer = Tokenizer::load(model_dir());
    EXPECT_TRUE(tokenizer.has_value()) << tokenizer.status().to_string();
    auto engine = Engine::create(std::move(backend).value(), std::move(tokenizer).value(), o);
    EXPECT_TRUE(engine.has_value()) << engine.status().to_string();
    return engine.has_value() ? std::move(engine).value() : nullptr;
  }

  static std::vector<int32_t> random_ids(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<int32_t> ids(n);
    for (int32_t& t : ids) t = 4 + int32_t(rng() % 4000);
    return ids;
  }

  static GenerationRequest request(std::vector<int32_t> prompt, int32_t max_tokens, std::optional<uint64_t> seed = {}) {
    GenerationRequest r;
    r.prompt_ids = std::move(prompt);
    r.max_tokens = max_tokens;
    r.ignore_eos = true;
    r.sampling.logprobs = 0;
    r.sampling.temperature = seed ? 0.9f : 0.0f;
    r.sampling.seed = seed;
    return r;
  }

  static Outcome outcome_of(const EventCollector& c) {
    Outcome o;
    o.tokens = c.tokens();
    o.finish = c.finish();
    for (const auto& e : c.events()) {
      for (const auto& lp : e.logprobs) o.logprobs.push_back(lp.logprob);
    }
    return o;
  }

  static Outcome run(Engine& engine, GenerationRequest r) {
    EventCollector c;
    EXPECT_TRUE(engine.submit(std::move(r), c.sink()).has_value());
    EXPECT_TRUE(c.wait_finished(std::chrono::seconds(60)));
    EXPECT_NE(c.finish(), FinishReason::kError) << c.error().to_string();
    return outcome_of(c);
  }

  static inline Checkpoint* checkpoint_ = nullptr;
};

TEST_F(PrefixCacheEngineTest, HitsOnAChunkEdgeJustPastItAndOnAWholePromptAreBitIdenticalToCold) {
  const std::vector<int32_t> base = random_ids(44, 5);
  auto prompt = [&](size_t n) { return std::vector<int32_t>(base.begin(), base.begin() + long(n)); };
  auto cold = make_engine(-1);
  ASSERT_TRUE(cold);
  struct Case {
    size_t prompt_len;
    int64_t hit;  // tokens restored: a chunk edge, or the whole prompt
  };
  // After a 32-token prompt the cache holds snapshots at 16 (a chunk edge) and 32
  // (a chunk edge and the prompt's end, with its last logits row).
  const Case cases[] = {{32, 32}, {33, 32}, {44, 32}, {16 + 1, 16}, {20, 16}};
  for (const Case& c : cases) {
    for (std::optional<uint64_t> seed : {std::optional<uint64_t>(), std::optional<uint64_t>(4242)}) {
      auto warm = make_engine(64);  // fresh: only the warm-up's snapshots
      ASSERT_TRUE(warm);
      run(*warm, request(prompt(32), 4));
      const uint64_t hit_before = warm->stats().prefix_cache.hit_tokens_total;
      const Outcome want = run(*cold, request(prompt(c.prompt_len), 6, seed));
      const Outcome got = run(*warm, request(prompt(c.prompt_len), 6, seed));
      EXPECT_EQ(int64_t(warm->stats().prefix_cache.hit_tokens_total - hit_before), c.hit) << "prompt of " << c.prompt_len;
      EXPECT_EQ(got.tokens, want.tokens) << "prompt of " << c.prompt_len;
      EXPECT_TRUE(same_bits(got.logprobs, want.logprobs)) << "prompt of " << c.prompt_len << ": logprobs differ in bits";
    }
  }
  EXPECT_EQ(cold->stats().prefix_cache.hits_total, 0u);
  EXPECT_FALSE(cold->stats().prefix_cache.enabled);
  // The comparison means something only if the model is uncertain somewhere.
  const Outcome sample = run(*cold, request(prompt(44), 6));
  EXPECT_LT(*std::min_element(sample.logprobs.begin(), sample.logprobs.end()), -0.1f);
}

TEST_F(PrefixCacheEngineTest, AShorterPromptsEndIsAPrefixWithinFp32Tolerance) {
  // A snapshot at an earlier prompt's end that is not a chunk edge: a longer
  // prompt starts there, so its pieces start elsewhere than a cold run's — the
  // same math in other blocks, equal within fp32 rounding (as a finish snapshot).
  const std::vector<int32_t> base = random_ids(44, 6);
  auto warm = make_engine(64);
  auto cold = make_engine(-1);
  ASSERT_TRUE(warm && cold);
  run(*warm, request({base.begin(), base.begin() + 21}, 4));
  const uint64_t hit_before = warm->stats().prefix_cache.hit_tokens_total;
  const Outcome got = run(*warm, request(base, 6));
  const Outcome want = run(*cold, request(base, 6));
  EXPECT_EQ(warm->stats().prefix_cache.hit_tokens_total - hit_before, 21u);
  EXPECT_EQ(got.tokens, want.tokens);
  ASSERT_EQ(got.logprobs.size(), want.logprobs.size());
  for (size_t i = 0; i < got.logprobs.size(); ++i) EXPECT_NEAR(got.logprobs[i], want.logprobs[i], 1e-4) << i;
}

TEST_F(PrefixCacheEngineTest, AChunkEdgeWithoutALogitsRowIsNoWholePromptHit) {
  // The snapshot at 16 of a 32-token prompt kept no logits row: a 16-token prompt
  // must compute its last chunk (nothing shorter is cached), and still be exact.
  const std::vector<int32_t> base = random_ids(32, 8);
  auto warm = make_engine(64);
  auto cold = make_engine(-1);
  ASSERT_TRUE(warm && cold);
  run(*warm, request(base, 2));
  const std::vector<int32_t> first16(base.begin(), base.begin() + 16);
  const uint64_t computed = warm->stats().prompt_tokens_total;
  const Outcome got = run(*warm, request(first16, 5));
  EXPECT_EQ(warm->stats().prompt_tokens_total - computed, 16u);
  const Outcome want = run(*cold, request(first16, 5));
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_TRUE(same_bits(got.logprobs, want.logprobs));
}

TEST_F(PrefixCacheEngineTest, WholePromptHitComputesNoPromptToken) {
  auto warm = make_engine(64);
  ASSERT_TRUE(warm);
  const std::vector<int32_t> p = random_ids(37, 9);
  const Outcome first = run(*warm, request(p, 5));
  const uint64_t computed = warm->stats().prompt_tokens_total;
  const Outcome second = run(*warm, request(p, 5));
  EXPECT_EQ(second.tokens, first.tokens);
  EXPECT_TRUE(same_bits(second.logprobs, first.logprobs));
  EXPECT_EQ(warm->stats().prompt_tokens_total, computed) << "the second run prefilled prompt tokens";
  EXPECT_GE(warm->stats().prompt_tokens_cached_total, 37u);
}

// The original sequence continued in place, driven by hand on a bare backend with
// the engine's chunking: prompt in chunks, the generated tokens decoded one by one,
// then `more` as prompt chunks (ending on multiples of kChunk; from an unaligned
// position, the whole rest when it fits in one chunk), then greedy decodes.
// Returns the greedy tokens and their logprobs as the engine computes them.
// `last_alone`: the last generated token is decoded on its own (as an export of
// prompt + generated computes it) instead of starting the next prompt chunk.
Outcome continue_in_place(Backend& backend, const std::vector<int32_t>& prompt, const std::vector<int32_t>& generated,
                          const std::vector<int32_t>& more, int32_t max_tokens, bool last_alone = false) {
  Outcome o;
  StepOutput out;
  int64_t pos = 0;
  auto prefill = [&](const std::vector<int32_t>& tokens) {
    size_t i = 0;
    while (i < tokens.size()) {
      const int64_t rest = int64_t(tokens.size() - i);
      const int64_t end = pos % kChunk != 0 && rest <= kChunk ? pos + rest
                                                              : std::min<int64_t>(pos + rest, (pos / kChunk + 1) * kChunk);
      const size_t n = size_t(end - pos);
      StepPlan plan{{{0, pos, std::vector<int32_t>(tokens.begin() + long(i), tokens.begin() + long(i + n)),
                      LogitsMode::kLast}}};
      EXPECT_TRUE(backend.run_step(plan, &out).is_ok());
      pos += int64_t(n);
      i += n;
    }
  };
  prefill(prompt);
  const size_t decoded = last_alone ? generated.size() : generated.size() - 1;
  for (size_t i = 0; i < decoded; ++i) {
    StepPlan plan{{{0, pos, {generated[i]}, LogitsMode::kLast}}};
    EXPECT_TRUE(backend.run_step(plan, &out).is_ok());
    ++pos;
  }
  std::vector<int32_t> tail;
  if (!last_alone) tail.push_back(generated.back());
  tail.insert(tail.end(), more.begin(), more.end());
  prefill(tail);
  for (int32_t t = 0; t < max_tokens; ++t) {
    const std::span<const float> row = out.row(out.num_rows() - 1);
    const int32_t token = int32_t(std::max_element(row.begin(), row.end()) - row.begin());
    o.tokens.push_back(token);
    o.logprobs.push_back(float(row[size_t(token)] - log_sum_exp(row)));
    StepPlan plan{{{0, pos, {token}, LogitsMode::kLast}}};
    EXPECT_TRUE(backend.run_step(plan, &out).is_ok());
    ++pos;
  }
  return o;
}

TEST_F(PrefixCacheEngineTest, ContinuingAFinishedResponseEqualsContinuingInPlaceAndColdWithinTolerance) {
  auto warm = make_engine(64);
  auto cold = make_engine(-1);
  ASSERT_TRUE(warm && cold);
  const std::vector<int32_t> p = random_ids(20, 31);
  const Outcome a = run(*warm, request(p, 10));  // finish snapshot: p + first 9 generated tokens (29)
  const std::vector<int32_t> x = random_ids(7, 32);
  std::vector<int32_t> next = p;
  next.insert(next.end(), a.tokens.begin(), a.tokens.end());
  next.insert(next.end(), x.begin(), x.end());
  const uint64_t hits_before = warm->stats().prefix_cache.hit_tokens_total;
  const Outcome b = run(*warm, request(next, 5));
  EXPECT_EQ(warm->stats().prefix_cache.hit_tokens_total - hits_before, 29u) << "the finish snapshot was not used";

  auto bare = make_cpu_backend(*checkpoint_, backend_options(0));
  ASSERT_TRUE(bare.has_value());
  const Outcome in_place = continue_in_place(**bare, p, a.tokens, x, 5);
  EXPECT_EQ(b.tokens, in_place.tokens);
  EXPECT_TRUE(same_bits(b.logprobs, in_place.logprobs)) << "not bit-identical to continuing in place";

  const Outcome c = run(*cold, request(next, 5));
  EXPECT_EQ(b.tokens, c.tokens);
  ASSERT_EQ(b.logprobs.size(), c.logprobs.size());
  for (size_t i = 0; i < b.logprobs.size(); ++i) EXPECT_NEAR(b.logprobs[i], c.logprobs[i], 1e-4) << i;
}

Expected<std::string> export_now(Engine& engine, std::vector<int32_t> tokens) {
  std::promise<Expected<std::string>> promise;
  Status posted = engine.export_state(std::move(tokens), [&](Expected<std::string> blob) { promise.set_value(std::move(blob)); });
  if (!posted.is_ok()) return posted;
  return promise.get_future().get();
}

Expected<int64_t> import_now(Engine& engine, const std::string& blob) {
  std::promise<Expected<int64_t>> promise;
  Status posted = engine.import_state(std::as_bytes(std::span(blob.data(), blob.size())),
                                      [&](Expected<int64_t> n) { promise.set_value(std::move(n)); });
  if (!posted.is_ok()) return posted;
  return promise.get_future().get();
}

TEST_F(PrefixCacheEngineTest, ExportImportContinueEqualsContinuingInPlace) {
  auto a = make_engine(64);
  ASSERT_TRUE(a);
  const std::vector<int32_t> p = random_ids(20, 41), x = random_ids(9, 42);
  const Outcome first = run(*a, request(p, 10));
  std::vector<int32_t> finished = p;  // the finish snapshot: p + 9 of the 10 generated tokens
  finished.insert(finished.end(), first.tokens.begin(), first.tokens.end() - 1);
  std::vector<int32_t> whole = p;  // p + every generated token: not cached, computed by the export
  whole.insert(whole.end(), first.tokens.begin(), first.tokens.end());
  std::vector<int32_t> next = whole;
  next.insert(next.end(), x.begin(), x.end());

  for (bool computed : {false, true}) {
    Expected<std::string> blob = export_now(*a, computed ? whole : finished);
    ASSERT_TRUE(blob.has_value()) << blob.status().to_string();
    auto b = make_engine(64);  // another replica, or this one after a restart
    ASSERT_TRUE(b);
    Expected<int64_t> imported = import_now(*b, *blob);
    ASSERT_TRUE(imported.has_value()) << imported.status().to_string();
    EXPECT_EQ(*imported, int64_t(computed ? whole.size() : finished.size()));
    const Outcome got = run(*b, request(next, 5));
    EXPECT_EQ(b->stats().prefix_cache.hit_tokens_total, uint64_t(*imported)) << "the import was not used";
    EXPECT_EQ(b->stats().prompt_tokens_total, next.size() - uint64_t(*imported));

    auto bare = make_cpu_backend(*checkpoint_, backend_options(0));
    ASSERT_TRUE(bare.has_value());
    const Outcome in_place = continue_in_place(**bare, p, first.tokens, x, 5, /*last_alone=*/computed);
    EXPECT_EQ(got.tokens, in_place.tokens) << (computed ? "computed export" : "cached export");
    EXPECT_TRUE(same_bits(got.logprobs, in_place.logprobs)) << (computed ? "computed export" : "cached export");
  }
}

TEST_F(PrefixCacheEngineTest, BlobsForAnotherModelOrCorruptedAreRefusedWithTheReason) {
  auto a = make_engine(64);
  ASSERT_TRUE(a);
  Expected<std::string> blob = export_now(*a, random_ids(12, 5));
  ASSERT_TRUE(blob.has_value()) << blob.status().to_string();
  auto refused = [&](const std::string& bytes) {
    Status s = a->import_state(std::as_bytes(std::span(bytes.data(), bytes.size())), [](Expected<int64_t>) {
      ADD_FAILURE() << "a bad blob reached the loop";
    });
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    return s.message();
  };
  std::string corrupted = *blob;
  corrupted[corrupted.size() / 2] ^= 0x40;
  EXPECT_NE(refused(corrupted).find("checksum"), std::string::npos);
  EXPECT_NE(refused(blob->substr(0, blob->size() - 100)).find("state blob"), std::string::npos);
  EXPECT_NE(refused("not a blob at all, clearly").find("magic"), std::string::npos);
  // Another model: the same bytes checked against another fingerprint.
  StateBlobLayout other = a->state_layout();
  other.model_fingerprint = "0123456789abcdef";
  Expected<StateBlob> parsed = parse_state_blob(std::as_bytes(std::span(blob->data(), blob->size())), other);
  ASSERT_FALSE(parsed.has_value());
  EXPECT_NE(parsed.status().message().find("another model"), std::string::npos) << parsed.status().message();
  // Without a cache there is nowhere to import to.
  auto off = make_engine(-1);
  ASSERT_TRUE(off);
  Expected<int64_t> n = import_now(*off, *blob);
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.status().code(), StatusCode::kFailedPrecondition);
}

// The CPU backend, its copies run as a GPU backend runs them: in launches whose
// copies take effect in any order — here the reverse of the plan's, one order a
// launch may take. kOneLaunch puts every copy of a list in one launch (what the
// CUDA state store did until December 2026); kSplit splits where ConcurrentCopies
// says.
class LaunchedCopiesBackend : public Backend {
 public:
  enum class Launches { kOneLaunch, kSplit };
  LaunchedCopiesBackend(std::unique_ptr<Backend> inner, Launches launches)
      : inner_(std::move(inner)), launches_(launches) {}

  const ModelConfig& config() const override { return inner_->config(); }
  std::string name() const override { return "launched-copies"; }
  int32_t num_slots() const override { return inner_->num_slots(); }
  int64_t state_bytes_per_slot() const override { return inner_->state_bytes_per_slot(); }
  int32_t num_state_slots(StateTier tier) const override { return inner_->num_state_slots(tier); }
  Status read_state(StateRef slot, std::span<std::byte> out) override { return inner_->read_state(slot, out); }
  Status write_state(StateRef slot, std::span<const std::byte> in) override { return inner_->write_state(slot, in); }

  Status run_step(const StepPlan& plan, StepOutput* out) override {
    TNL_RETURN_IF_ERROR(run_copies(plan.copies_before));
    StepPlan chunks_only = plan;
    chunks_only.copies_before.clear();
    chunks_only.copies_after.clear();
    TNL_RETURN_IF_ERROR(inner_->run_step(chunks_only, out));
    return run_copies(plan.copies_after);
  }

 private:
  Status run_copies(const std::vector<StateCopy>& copies) {
    std::vector<StateCopy> launch;
    ConcurrentCopies conflicts;
    for (const StateCopy& c : copies) {
      if (launches_ == Launches::kSplit && conflicts.conflicts(c)) {
        TNL_RETURN_IF_ERROR(run_launch(launch));
        launch.clear();
        conflicts.clear();
      }
      conflicts.add(c);
      launch.push_back(c);
    }
    return run_launch(launch);
  }
  Status run_launch(const std::vector<StateCopy>& launch) {
    std::vector<std::byte> state(static_cast<size_t>(state_bytes_per_slot()));
    for (auto c = launch.rbegin(); c != launch.rend(); ++c) {
      TNL_RETURN_IF_ERROR(inner_->read_state(c->from, state));
      TNL_RETURN_IF_ERROR(inner_->write_state(c->to, state));
    }
    return Status::ok();
  }

  std::unique_ptr<Backend> inner_;
  Launches launches_;
};

// A finished sequence's snapshot and a restore into the slot it freed come in one
// copy list (scheduler_test shows the plan). Run in one launch, the restore may
// land first and the snapshot then keeps the restored state under the finished
// sequence's key: its next turn continues from the wrong state.
TEST_F(PrefixCacheEngineTest, ConcurrentCopiesKeepOutputsOnlyWhenLaunchesSplitAtDependencies) {
  const std::vector<int32_t> shared = random_ids(40, 51), turn = random_ids(20, 52), extra = random_ids(6, 53);
  std::vector<int32_t> other(shared.begin(), shared.begin() + 34);  // hits the 32-token snapshot of `shared`
  other.push_back(7);
  // One slot: the waiting request takes the finished one's slot in the next step.
  auto make = [&](std::optional<LaunchedCopiesBackend::Launches> launches) -> std::unique_ptr<Engine> {
    auto cpu = make_cpu_backend(*checkpoint_, backend_options(16));
    EXPECT_TRUE(cpu.has_value()) << cpu.status().to_string();
    if (!cpu.has_value()) return nullptr;
    std::unique_ptr<Backend> backend = std::move(cpu).value();
    if (launches) backend = std::make_unique<LaunchedCopiesBackend>(std::move(backend), *launches);
    EngineOptions o;
    o.max_num_seqs = 1;
    o.prefill_chunk = kChunk;
    o.max_num_batched_tokens = kChunk + 8;
    o.max_queue = 16;
    o.max_model_len = 1024;
    o.model_fingerprint = checkpoint_->fingerprint();
    auto tokenizer = Tokenizer::load(model_dir());
    EXPECT_TRUE(tokenizer.has_value());
    if (!tokenizer.has_value()) return nullptr;
    auto engine = Engine::create(std::move(backend), std::move(tokenizer).value(), o);
    EXPECT_TRUE(engine.has_value()) << engine.status().to_string();
    return engine.has_value() ? std::move(engine).value() : nullptr;
  };
  // The next turn of the first conversation, after the step that finished it
  // also restored the other request into its slot.
  auto next_turn = [&](Engine& engine) {
    run(engine, request(shared, 3));  // snapshots at 16, 32 and 40
    EventCollector first, second;
    EXPECT_TRUE(engine.submit(request(turn, 8), first.sink()).has_value());
    EXPECT_TRUE(engine.submit(request(other, 3), second.sink()).has_value());  // waits for the slot
    EXPECT_TRUE(first.wait_finished(std::chrono::seconds(60)));
    EXPECT_TRUE(second.wait_finished(std::chrono::seconds(60)));
    std::vector<int32_t> next = turn;
    const std::vector<int32_t> generated = first.tokens();
    next.insert(next.end(), generated.begin(), generated.end());
    next.insert(next.end(), extra.begin(), extra.end());
    const uint64_t hits_before = engine.stats().prefix_cache.hit_tokens_total;
    const Outcome o = run(engine, request(next, 6));
    EXPECT_EQ(engine.stats().prefix_cache.hit_tokens_total - hits_before, 27u) << "the finish snapshot was not used";
    return o;
  };
  auto in_order = make(std::nullopt);
  auto split = make(LaunchedCopiesBackend::Launches::kSplit);
  auto one_launch = make(LaunchedCopiesBackend::Launches::kOneLaunch);
  ASSERT_TRUE(in_order && split && one_launch);
  const Outcome want = next_turn(*in_order);
  const Outcome got = next_turn(*split);
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_TRUE(same_bits(got.logprobs, want.logprobs)) << "split launches changed the outputs";
  const Outcome raced = next_turn(*one_launch);
  EXPECT_FALSE(same_bits(raced.logprobs, want.logprobs))
      << "one launch per list should have kept the wrong state: the test no longer builds the dependent plan";
}

TEST_F(PrefixCacheEngineTest, EvictionUnderPressureNeverChangesOutputs) {
  auto cold = make_engine(-1);
  auto tight = make_engine(3);  // three snapshot slots for many prefixes
  ASSERT_TRUE(cold && tight);
  // Prompts that end on chunk edges: every hit (an edge, or a whole prompt) is
  // bit-identical, so any difference would come from an eviction gone wrong.
  std::vector<std::vector<int32_t>> prompts;
  for (int family = 0; family < 3; ++family) {
    const std::vector<int32_t> stem = random_ids(48, 100 + uint64_t(family));
    for (size_t len : {16, 32, 48, 32}) prompts.emplace_back(stem.begin(), stem.begin() + long(len));
  }
  std::mt19937_64 rng(7);
  for (int round = 0; round < 2; ++round) {
    std::shuffle(prompts.begin(), prompts.end(), rng);
    for (const auto& p : prompts) {
      const Outcome want = run(*cold, request(p, 4));
      const Outcome got = run(*tight, request(p, 4));
      EXPECT_EQ(got.tokens, want.tokens);
      EXPECT_TRUE(same_bits(got.logprobs, want.logprobs));
    }
  }
  const EngineStats s = tight->stats();
  EXPECT_GT(s.prefix_cache.evictions_total, 0u);
  EXPECT_GT(s.prefix_cache.hits_total, 0u);
  EXPECT_LE(s.prefix_cache.slots_used, 3);
}

TEST_F(PrefixCacheEngineTest, AForkGroupEqualsItsRequestsRunIndependently) {
  for (bool cache : {false, true}) {
    auto independent = make_engine(-1);
    auto forked = make_engine(cache ? 64 : -1);
    ASSERT_TRUE(independent && forked);
    const std::vector<int32_t> p = random_ids(35, 77);
    std::vector<GenerationRequest> group;
    for (uint64_t i = 0; i < 4; ++i) {
      group.push_back(request(p, 8, 900 + i));
      group.back().sampling.temperature = 2.0f;  // the random model is peaked: make the draws differ
    }
    std::vector<Outcome> want;
    for (const GenerationRequest& r : group) want.push_back(run(*independent, r));

    std::vector<std::unique_ptr<EventCollector>> collectors;
    std::vector<EventSink> sinks;
    for (size_t i = 0; i < group.size(); ++i) {
      collectors.push_back(std::make_unique<EventCollector>());
      sinks.push_back(collectors.back()->sink());
    }
    ASSERT_TRUE(forked->submit_group(group, std::move(sinks)).has_value());
    for (size_t i = 0; i < group.size(); ++i) {
      ASSERT_TRUE(collectors[i]->wait_finished(std::chrono::seconds(60)));
      const Outcome got = outcome_of(*collectors[i]);
      EXPECT_EQ(got.tokens, want[i].tokens) << "choice " << i << (cache ? " (cache on)" : "");
      EXPECT_TRUE(same_bits(got.logprobs, want[i].logprobs)) << "choice " << i;
    }
    const EngineStats s = forked->stats();
    EXPECT_EQ(s.forks_total, 3u);
    EXPECT_EQ(s.prompt_tokens_total, 35u) << "the prompt is prefilled once for the group";
    std::set<std::vector<int32_t>> distinct;
    for (const Outcome& o : want) distinct.insert(o.tokens);
    EXPECT_GT(distinct.size(), 1u) << "seeded choices should differ";
  }
}

TEST_F(PrefixCacheEngineTest, TurnedOffItNeitherSnapshotsNorHits) {
  auto off = make_engine(-1);
  ASSERT_TRUE(off);
  const std::vector<int32_t> p = random_ids(40, 3);
  run(*off, request(p, 3));
  run(*off, request(p, 3));
  const EngineStats s = off->stats();
  EXPECT_FALSE(s.prefix_cache.enabled);
  EXPECT_EQ(s.prefix_cache.queries_total, 0u);
  EXPECT_EQ(s.prefix_cache.snapshots_total, 0u);
  EXPECT_EQ(s.prompt_tokens_total, 80u);
}

}  // namespace
}  // namespace tnl
