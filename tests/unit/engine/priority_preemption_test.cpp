// Priority and preemption over the real CPU backend and a tiny random model.
// Exactness is the contract: a sequence preempted (its state copied to host
// memory, its slot given away) and resumed later produces the same tokens and
// logprobs, bit for bit, as when it runs alone — whether it was decoding or still
// prefilling, greedy or seeded, alone in the engine or next to the prefix cache
// and a fork group. Equal priorities never preempt and stay first come, first
// served.
//
// Most tests drive the ContinuousBatcher step by step (what the engine's loop
// does), so that the moment a request arrives is exact; one goes through the
// threaded Engine.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "engine/checkpoint/checkpoint.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/scheduler/continuous_batcher.h"
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
  std::vector<float> prompt_logprobs;
  FinishReason finish = FinishReason::kNone;
};

bool operator==(const Outcome& a, const Outcome& b) {
  auto same_bits = [](const std::vector<float>& x, const std::vector<float>& y) {
    // memcmp of an empty vector would pass null (undefined even for 0 bytes).
    return x.size() == y.size() && (x.empty() || std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0);
  };
  return a.tokens == b.tokens && a.finish == b.finish && same_bits(a.logprobs, b.logprobs) &&
         same_bits(a.prompt_logprobs, b.prompt_logprobs);
}

Outcome outcome_of(const EventCollector& c) {
  Outcome o;
  o.tokens = c.tokens();
  o.finish = c.finish();
  for (const auto& e : c.events()) {
    for (const auto& lp : e.logprobs) o.logprobs.push_back(lp.logprob);
    for (const auto& lp : e.prompt_logprobs) o.prompt_logprobs.push_back(lp.logprob);
  }
  return o;
}

GenerationRequest make_request(int32_t prompt_len, int32_t max_tokens, int32_t priority, uint64_t prompt_seed,
                               std::optional<uint64_t> sampling_seed = {}) {
  std::mt19937_64 rng(prompt_seed);
  GenerationRequest r;
  r.request_id = "p" + std::to_string(prompt_seed);
  for (int32_t i = 0; i < prompt_len; ++i) r.prompt_ids.push_back(4 + int32_t(rng() % 796));
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  r.priority = priority;
  r.sampling.logprobs = 0;
  r.sampling.temperature = sampling_seed ? 0.9f : 0.0f;
  r.sampling.seed = sampling_seed;
  return r;
}

class PriorityPreemptionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ModelConfig config = test::tiny_config();
    config.vocab_size = 800;  // the test tokenizer's vocabulary
    const auto dir = test::make_random_checkpoint(config, 23);
    ASSERT_FALSE(dir.empty());
    auto ckpt = Checkpoint::open(dir);
    ASSERT_TRUE(ckpt.has_value()) << ckpt.status().to_string();
    checkpoint_ = std::move(ckpt).value().release();
    tokenizer_ = test::load_test_tokenizer().release();
    ASSERT_NE(tokenizer_, nullptr);
  }
  static void TearDownTestSuite() {
    delete checkpoint_;
    checkpoint_ = nullptr;
    delete tokenizer_;
    tokenizer_ = nullptr;
  }

  static std::unique_ptr<Backend> make_backend(int32_t slots, bool prefix_cache) {
    BackendOptions bo;
    bo.device = "cpu";
    bo.max_slots = slots;
    bo.prefill_block = 8;
    bo.cpu_threads = 1;
    bo.prefix_cache_bytes = prefix_cache ? 16 * checkpoint_->config().state_bytes_per_sequence() : 0;
    auto backend = make_cpu_backend(*checkpoint_, bo);
    EXPECT_TRUE(backend.has_value()) << backend.status().to_string();
    return backend.has_value() ? std::move(backend).value() : nullptr;
  }

  static EngineOptions engine_options(int32_t slots, bool prefix_cache) {
    EngineOptions o;
    o.max_num_seqs = slots;
    o.prefill_chunk = kChunk;
    o.max_num_batched_tokens = kChunk + slots + 8;
    o.max_queue = 64;
    o.max_model_len = 1024;
    o.prefix_cache = prefix_cache;
    return o;
  }

  // A ContinuousBatcher over its own CPU backend, stepped by the test.
  class Stepper {
   public:
    Stepper(int32_t slots, bool prefix_cache)
        : backend_(make_backend(slots, prefix_cache)), options_(engine_options(slots, prefix_cache)) {
      SchedulerLimits limits;
      limits.num_slots = slots;
      limits.max_num_batched_tokens = options_.max_num_batched_tokens;
      limits.prefill_chunk = kChunk;
      if (prefix_cache) limits.cache_slots = backend_->num_state_slots(StateTier::kCache);
      batcher_ = std::make_unique<ContinuousBatcher>(*backend_, *tokenizer_, options_, limits);
    }

    uint64_t add(GenerationRequest r) {
      const uint64_t id = next_id_++;
      batcher_->add(id, std::move(r), sink(id), EngineClock::now());
      return id;
    }
    std::vector<uint64_t> add_group(std::vector<GenerationRequest> rs) {
      std::vector<uint64_t> ids;
      std::vector<EventSink> sinks;
      for (size_t i = 0; i < rs.size(); ++i) {
        ids.push_back(next_id_++);
        sinks.push_back(sink(ids.back()));
      }
      batcher_->add_group(ids, std::move(rs), std::move(sinks), EngineClock::now());
      return ids;
    }
    // One step() and its tokens handed out (the engine's loop does that while the
    // next step runs).
    void step(int n = 1) {
      for (int i = 0; i < n && batcher_->has_work(); ++i) step_once();
    }
    void run_to_end() {
      for (int i = 0; i < 10000 && batcher_->has_work(); ++i) step_once();
      EXPECT_FALSE(batcher_->has_work());
    }
    // Steps until `id` has produced `n` tokens.
    void run_until_tokens(uint64_t id, size_t n) {
      for (int i = 0; i < 1000 && collectors_[id]->tokens().size() < n; ++i) step_once();
      ASSERT_GE(collectors_[id]->tokens().size(), n);
    }
    Outcome outcome(uint64_t id) const { return outcome_of(*collectors_.at(id)); }
    size_t num_tokens(uint64_t id) const { return collectors_.at(id)->tokens().size(); }
    EngineStats stats() const { return batcher_->stats(); }
    int64_t state_bytes() const { return backend_->state_bytes_per_slot(); }
    const std::vector<uint64_t>& finish_order() const { return finish_order_; }

   private:
    void step_once() {
      batcher_->step();
      batcher_->emit_deferred_events();
    }
    EventSink sink(uint64_t id) {
      auto& c = collectors_[id];
      c = std::make_unique<EventCollector>();
      EventSink inner = c->sink();
      return [this, id, inner](GenerationEvent&& e) {
        if (e.finish != FinishReason::kNone) finish_order_.push_back(id);
        inner(std::move(e));
      };
    }

    std::unique_ptr<Backend> backend_;
    EngineOptions options_;
    std::unique_ptr<ContinuousBatcher> batcher_;
    std::map<uint64_t, std::unique_ptr<EventCollector>> collectors_;
    std::vector<uint64_t> finish_order_;
    uint64_t next_id_ = 1;
  };

  // What `r` produces alone in an engine of one slot.
  static Outcome solo(GenerationRequest r) {
    Stepper s(1, /*prefix_cache=*/false);
    const uint64_t id = s.add(std::move(r));
    s.run_to_end();
    EXPECT_EQ(s.stats().preemptions_total, 0u);
    return s.outcome(id);
  }

  static inline Checkpoint* checkpoint_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
};

TEST_F(PriorityPreemptionTest, ADecodingSequenceIsPreemptedAndResumesBitIdentical) {
  const GenerationRequest low = make_request(40, 48, /*priority=*/5, 1);
  const GenerationRequest high = make_request(10, 8, /*priority=*/0, 2);
  Stepper s(1, /*prefix_cache=*/false);
  const uint64_t a = s.add(low);
  s.run_until_tokens(a, 5);
  const uint64_t b = s.add(high);
  s.step();
  EngineStats mid = s.stats();
  EXPECT_EQ(mid.preemptions_total, 1u);
  EXPECT_EQ(mid.swapped_sequences, 1);
  EXPECT_EQ(mid.preemption_swap_bytes_total, uint64_t(s.state_bytes())) << "copied out so far";
  EXPECT_EQ(mid.running, 1);
  EXPECT_EQ(mid.waiting, 1);
  EXPECT_EQ(s.num_tokens(a), 5u) << "the preempted sequence pauses";
  s.run_to_end();

  EXPECT_EQ(s.finish_order(), (std::vector<uint64_t>{b, a})) << "the better priority finishes first";
  EXPECT_TRUE(s.outcome(a) == solo(low)) << "preempted and resumed = uninterrupted, bit for bit";
  EXPECT_TRUE(s.outcome(b) == solo(high));
  const EngineStats end = s.stats();
  EXPECT_EQ(end.preemptions_total, 1u);
  EXPECT_EQ(end.preemption_swap_bytes_total, 2 * uint64_t(s.state_bytes())) << "out and back in";
  EXPECT_EQ(end.swapped_sequences, 0);
  EXPECT_GT(s.state_bytes(), 0);
}

TEST_F(PriorityPreemptionTest, APrefillingSequenceKeepsItsProgressAndPromptLogprobs) {
  GenerationRequest low = make_request(100, 12, /*priority=*/3, 3);  // chunks of 16: 7 steps of prompt
  low.prompt_logprobs = true;
  const GenerationRequest high = make_request(20, 6, /*priority=*/-2, 4);
  Stepper s(1, /*prefix_cache=*/false);
  const uint64_t a = s.add(low);
  s.step(3);  // 48 prompt tokens computed
  ASSERT_EQ(s.num_tokens(a), 0u);
  const uint64_t b = s.add(high);
  s.step();
  EXPECT_EQ(s.stats().preemptions_total, 1u);
  EXPECT_EQ(s.stats().swapped_sequences, 1);
  s.run_to_end();

  EXPECT_EQ(s.finish_order(), (std::vector<uint64_t>{b, a}));
  const Outcome resumed = s.outcome(a);
  EXPECT_EQ(resumed.prompt_logprobs.size(), 100u);
  EXPECT_TRUE(resumed == solo(low));
  EXPECT_TRUE(s.outcome(b) == solo(high));
  EXPECT_EQ(s.stats().preemption_swap_bytes_total, 2 * uint64_t(s.state_bytes()));
  // Every prompt token was computed once: no prefill was redone after the swap.
  EXPECT_EQ(s.stats().prompt_tokens_total, 120u);
}

TEST_F(PriorityPreemptionTest, SeededSamplingContinuesItsRandomStreamAfterPreemption) {
  const GenerationRequest low = make_request(30, 40, /*priority=*/1, 5, /*sampling_seed=*/99);
  const GenerationRequest high = make_request(12, 10, /*priority=*/0, 6, /*sampling_seed=*/7);
  Stepper s(1, /*prefix_cache=*/false);
  const uint64_t a = s.add(low);
  s.run_until_tokens(a, 9);
  const uint64_t b = s.add(high);
  s.run_to_end();
  EXPECT_EQ(s.stats().preemptions_total, 1u);
  EXPECT_EQ(s.finish_order(), (std::vector<uint64_t>{b, a}));
  EXPECT_TRUE(s.outcome(a) == solo(low));
  EXPECT_TRUE(s.outcome(b) == solo(high));
}

TEST_F(PriorityPreemptionTest, TheWorstPriorityIsPreemptedAndTheOthersRunOn) {
  const GenerationRequest mid = make_request(20, 30, /*priority=*/3, 7);
  const GenerationRequest worst = make_request(24, 30, /*priority=*/8, 8);
  const GenerationRequest best = make_request(8, 10, /*priority=*/-1, 9);
  Stepper s(2, /*prefix_cache=*/false);
  const uint64_t m = s.add(mid);
  const uint64_t w = s.add(worst);
  s.run_until_tokens(w, 4);
  const size_t mid_before = s.num_tokens(m);
  const size_t worst_before = s.num_tokens(w);
  const uint64_t b = s.add(best);
  s.step(3);
  EXPECT_EQ(s.stats().preemptions_total, 1u);
  EXPECT_EQ(s.num_tokens(w), worst_before) << "the worst priority waits";
  EXPECT_EQ(s.num_tokens(m), mid_before + 3) << "the middle one keeps decoding";
  s.run_to_end();
  EXPECT_EQ(s.finish_order().front(), b);
  EXPECT_EQ(s.finish_order().back(), w);
  EXPECT_TRUE(s.outcome(m) == solo(mid));
  EXPECT_TRUE(s.outcome(w) == solo(worst));
  EXPECT_TRUE(s.outcome(b) == solo(best));
}

TEST_F(PriorityPreemptionTest, EqualPrioritiesNeverPreemptAndStayFirstComeFirstServed) {
  Stepper s(1, /*prefix_cache=*/false);
  const uint64_t first = s.add(make_request(20, 20, 0, 10));
  s.run_until_tokens(first, 2);
  const uint64_t worse_a = s.add(make_request(10, 4, 2, 11));
  const uint64_t worse_b = s.add(make_request(10, 4, 1, 12));
  const uint64_t equal_a = s.add(make_request(10, 4, 0, 13));
  const uint64_t equal_b = s.add(make_request(10, 4, 0, 14));
  s.run_to_end();
  EXPECT_EQ(s.stats().preemptions_total, 0u);
  EXPECT_EQ(s.finish_order(), (std::vector<uint64_t>{first, equal_a, equal_b, worse_b, worse_a}));
}

TEST_F(PriorityPreemptionTest, PreemptionLeavesThePrefixCacheAndForksSound) {
  // A fork group (n = 2, seeded choices) of a low priority on both slots; a better
  // request arrives while the group's leader still prefills (the group cannot be
  // preempted then) and preempts one member once the state is forked. Afterwards
  // the prefix cache serves the group's prompt: every output equals its solo run.
  GenerationRequest member0 = make_request(40, 24, /*priority=*/4, 15, /*sampling_seed=*/31);
  GenerationRequest member1 = member0;
  member1.sampling.seed = 32;
  const GenerationRequest high = make_request(18, 6, /*priority=*/0, 16);
  Stepper s(2, /*prefix_cache=*/true);
  const std::vector<uint64_t> group = s.add_group({member0, member1});
  s.step();  // the leader's first chunk
  const uint64_t b = s.add(high);
  s.step();
  EXPECT_EQ(s.stats().preemptions_total, 0u) << "an unfinished fork is not preempted";
  s.run_to_end();
  const EngineStats stats = s.stats();
  EXPECT_EQ(stats.forks_total, 1u);
  EXPECT_EQ(stats.preemptions_total, 1u);
  EXPECT_EQ(stats.swapped_sequences, 0);
  EXPECT_EQ(s.finish_order().front(), b);
  EXPECT_TRUE(s.outcome(group[0]) == solo(member0));
  EXPECT_TRUE(s.outcome(group[1]) == solo(member1));
  EXPECT_TRUE(s.outcome(b) == solo(high));

  // The cache still holds sound snapshots: the same prompt again starts from one.
  const uint64_t hits_before = stats.prefix_cache.hits_total;
  const uint64_t again = s.add(member0);
  s.run_to_end();
  EXPECT_GT(s.stats().prefix_cache.hits_total, hits_before);
  EXPECT_TRUE(s.outcome(again) == solo(member0));

  // The better request's finish snapshot was taken from the slot the preempted
  // member resumed in, in the same step: it must hold the finished request's
  // state, not the member's. A prompt extending it starts there, as it does on an
  // engine where nothing was preempted.
  GenerationRequest next_turn = high;
  next_turn.priority = 0;
  for (int32_t t : s.outcome(b).tokens) next_turn.prompt_ids.push_back(t);
  for (int32_t t : {11, 12, 13}) next_turn.prompt_ids.push_back(t);
  const uint64_t hits_before_turn = s.stats().prefix_cache.hits_total;
  const uint64_t turn = s.add(next_turn);
  s.run_to_end();
  EXPECT_GT(s.stats().prefix_cache.hits_total, hits_before_turn);
  Stepper reference(1, /*prefix_cache=*/true);
  reference.add(high);
  reference.run_to_end();
  const uint64_t reference_turn = reference.add(next_turn);
  reference.run_to_end();
  EXPECT_TRUE(s.outcome(turn) == reference.outcome(reference_turn));
}

TEST_F(PriorityPreemptionTest, TheEngineServesABetterPriorityFirstWhileAWorseOneWaits) {
  auto created = Engine::create(make_backend(1, false), test::load_test_tokenizer(), engine_options(1, false));
  ASSERT_TRUE(created.has_value()) << created.status().to_string();
  Engine& engine = *created.value();
  const GenerationRequest low = make_request(30, 200, /*priority=*/10, 17);
  const GenerationRequest high = make_request(12, 5, /*priority=*/-10, 18);
  EventCollector a, b;
  // The engine thread holds at low's third event until high is queued: on a busy
  // machine it could otherwise finish all of low's tokens before this thread
  // submits high (seen once under ctest -j2), and nothing would be preempted.
  std::promise<void> third_event, high_queued;
  std::shared_future<void> queued = high_queued.get_future().share();
  int events_seen = 0;  // the engine thread's only
  a.on_event([&](const GenerationEvent&) {
    if (++events_seen != 3) return;
    third_event.set_value();
    queued.wait();
  });
  // What low had reached when high finished, read on the engine thread as high's
  // last event goes out: once this thread wakes, low may already have run to its
  // end (seen under ctest -j2 on a loaded machine).
  std::atomic<int> low_when_high_finished{-1};
  b.on_event([&](const GenerationEvent& e) {
    if (e.finish != FinishReason::kNone) low_when_high_finished = int(a.finish());
  });
  ASSERT_TRUE(engine.submit(low, a.sink()).has_value());
  ASSERT_EQ(third_event.get_future().wait_for(std::chrono::seconds(20)), std::future_status::ready);
  const bool submitted = engine.submit(high, b.sink()).has_value();
  high_queued.set_value();
  ASSERT_TRUE(submitted);
  ASSERT_TRUE(b.wait_finished());
  EXPECT_EQ(FinishReason(low_when_high_finished.load()), FinishReason::kNone)
      << "the worse priority was paused, not finished first";
  ASSERT_TRUE(a.wait_finished(std::chrono::seconds(120)));
  EXPECT_TRUE(outcome_of(a) == solo(low));
  EXPECT_TRUE(outcome_of(b) == solo(high));
  const EngineStats stats = engine.stats();
  EXPECT_EQ(stats.preemptions_total, 1u);
  EXPECT_EQ(stats.swapped_sequences, 0);

  GenerationRequest bad = high;
  bad.priority = kMaxPriority + 1;
  EventCollector c;
  const auto refused = engine.submit(bad, c.sink());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("priority"), std::string::npos);
}

}  // namespace
}  // namespace tnl
