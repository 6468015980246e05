// The Engine over the real CPU backend and a tiny random model: what a request
// produces never depends on what else is being served. Each request's tokens
// and logprobs (compared bit for bit) are the same when it runs alone and when
// it runs among many concurrent requests of different lengths.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "engine/checkpoint/checkpoint.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/scheduler/engine.h"
#include "tests/support/test_model.h"
#include "tests/unit/scheduler/engine_test_support.h"

namespace tnl {
namespace {

using test::EventCollector;

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::string text;
  FinishReason finish = FinishReason::kNone;
};

class EngineLoopTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ModelConfig config = test::tiny_config();
    config.vocab_size = 800;  // the test tokenizer's vocabulary, so that text is real
    const auto dir = test::make_random_checkpoint(config, 11);
    ASSERT_FALSE(dir.empty());
    auto ckpt = Checkpoint::open(dir);
    ASSERT_TRUE(ckpt.has_value()) << ckpt.status().to_string();
    checkpoint_ = std::move(ckpt).value().release();
  }
  static void TearDownTestSuite() {
    delete checkpoint_;
    checkpoint_ = nullptr;
  }

  std::unique_ptr<Engine> make_engine(int32_t slots) {
    BackendOptions bo;
    bo.device = "cpu";
    bo.max_slots = slots;
    bo.prefill_block = 8;
    bo.cpu_threads = 2;
    auto backend = make_cpu_backend(*checkpoint_, bo);
    EXPECT_TRUE(backend.has_value()) << backend.status().to_string();
    if (!backend.has_value()) return nullptr;
    EngineOptions o;
    o.max_num_seqs = slots;
    o.prefill_chunk = 16;
    o.max_num_batched_tokens = 16 + slots + 8;  // room for every decode, one chunk and a bit
    o.max_queue = 256;
    o.max_model_len = 1024;
    auto engine = Engine::create(std::move(backend).value(), test::load_test_tokenizer(), o);
    EXPECT_TRUE(engine.has_value()) << engine.status().to_string();
    return engine.has_value() ? std::move(engine).value() : nullptr;
  }

  // Request i: a prompt of 1…~90 random ordinary ids (several prefill chunks for
  // the longer ones); greedy for most, seeded sampling for every fourth.
  static GenerationRequest make_request(int i) {
    std::mt19937_64 rng(1000 + i);
    GenerationRequest r;
    r.request_id = "req-" + std::to_string(i);
    const int len = 1 + static_cast<int>((i * 37) % 90);
    for (int t = 0; t < len; ++t) r.prompt_ids.push_back(4 + static_cast<int32_t>(rng() % 796));
    r.max_tokens = 6 + i % 11;
    r.ignore_eos = (i % 2 == 0);
    r.sampling.logprobs = 0;
    if (i % 4 == 3) {
      r.sampling.temperature = 0.8f;
      r.sampling.seed = 77 + i;
    } else {
      r.sampling.temperature = 0.0f;
    }
    return r;
  }

  static Outcome outcome_of(const EventCollector& c) {
    Outcome o;
    o.tokens = c.tokens();
    o.text = c.text();
    o.finish = c.finish();
    for (const auto& e : c.events()) {
      for (const auto& lp : e.logprobs) o.logprobs.push_back(lp.logprob);
    }
    return o;
  }

  static inline Checkpoint* checkpoint_ = nullptr;
};

TEST_F(EngineLoopTest, ConcurrentRequestsMatchEachRunAlone) {
  constexpr int kRequests = 32;

  // Alone: one request at a time, nothing else in its steps.
  std::vector<Outcome> alone(kRequests);
  {
    auto engine = make_engine(8);
    ASSERT_TRUE(engine);
    for (int i = 0; i < kRequests; ++i) {
      EventCollector c;
      ASSERT_TRUE(engine->submit(make_request(i), c.sink()).has_value());
      ASSERT_TRUE(c.wait_finished(std::chrono::seconds(60)));
      alone[i] = outcome_of(c);
      ASSERT_NE(alone[i].finish, FinishReason::kError) << c.error().to_string();
    }
  }

  // The model is random but its outputs must not be degenerate for the check to mean much.
  std::set<int32_t> distinct;
  for (const Outcome& o : alone) distinct.insert(o.tokens.begin(), o.tokens.end());
  EXPECT_GT(distinct.size(), 20u);

  // Together: all submitted at once to an engine with 8 slots, so prefill chunks
  // and decodes of different requests share steps in load-dependent ways.
  auto engine = make_engine(8);
  ASSERT_TRUE(engine);
  std::vector<std::unique_ptr<EventCollector>> collectors;
  for (int i = 0; i < kRequests; ++i) {
    collectors.push_back(std::make_unique<EventCollector>());
    ASSERT_TRUE(engine->submit(make_request(i), collectors.back()->sink()).has_value());
  }
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(collectors[i]->wait_finished(std::chrono::seconds(120))) << "request " << i;
    const Outcome together = outcome_of(*collectors[i]);
    EXPECT_EQ(together.finish, alone[i].finish) << "request " << i;
    EXPECT_EQ(together.tokens, alone[i].tokens) << "request " << i;
    EXPECT_EQ(together.text, alone[i].text) << "request " << i;
    ASSERT_EQ(together.logprobs.size(), alone[i].logprobs.size()) << "request " << i;
    EXPECT_EQ(std::memcmp(together.logprobs.data(), alone[i].logprobs.data(), together.logprobs.size() * sizeof(float)),
              0)
        << "request " << i << ": logprobs differ in bits";
  }
  const EngineStats s = engine->stats();
  EXPECT_EQ(s.slots_total, 8);
  EXPECT_LE(s.slots_used, 8);
}

}  // namespace
}  // namespace tnl
