// The engine over a backend that samples on its device (FakeBackend in its
// device-sampling mode runs the CPU reference of the GPU kernel): tokens match
// host sampling when greedy, seeded draws repeat, logprobs come back, the rows
// stay on the device, and requests that need top logprobs fall back to the host.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/scheduler/engine.h"
#include "tests/unit/scheduler/engine_test_support.h"

namespace tnl {
namespace {

using test::EventCollector;
using test::FakeBackend;

struct Generation {
  std::vector<int32_t> tokens;
  std::vector<GenerationEvent> events;
  std::vector<SequenceChunk> chunks;
};

// An engine over a FakeBackend with `slots` slots (and as many sequences);
// *fake is the backend it owns. Null (with a test failure) when it cannot start.
std::unique_ptr<Engine> fake_engine(int32_t slots, bool device_sampling, bool spread_logits, int32_t step_tokens,
                                    int32_t prefill_chunk, FakeBackend** fake) {
  auto backend = std::make_unique<FakeBackend>(slots);
  backend->set_device_sampling(device_sampling);
  backend->set_spread_logits(spread_logits);
  *fake = backend.get();
  EngineOptions o;
  o.max_num_seqs = slots;
  o.max_num_batched_tokens = step_tokens;
  o.prefill_chunk = prefill_chunk;
  auto engine = Engine::create(std::move(backend), test::load_test_tokenizer(), o);
  EXPECT_TRUE(engine.has_value()) << engine.status().to_string();
  return engine.has_value() ? std::move(engine).value() : nullptr;
}

Generation generate(bool device_sampling, const GenerationRequest& request, bool spread_logits = false) {
  FakeBackend* fake = nullptr;
  const std::unique_ptr<Engine> engine = fake_engine(4, device_sampling, spread_logits, 32, 16, &fake);
  if (!engine) return {};
  EventCollector c;
  EXPECT_TRUE(engine->submit(request, c.sink()).has_value());
  EXPECT_TRUE(c.wait_finished());
  return {c.tokens(), c.events(), fake->chunks_run()};
}

GenerationRequest request_of(int32_t max_tokens) {
  GenerationRequest r;
  for (int32_t i = 0; i < 30; ++i) r.prompt_ids.push_back(10 + (i * 13) % 700);
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  r.sampling.temperature = 0.0f;
  return r;
}

TEST(DeviceSampling, GreedyTokensEqualHostSamplingAndRowsStayOnTheDevice) {
  const GenerationRequest r = request_of(12);
  const Generation host = generate(false, r), device = generate(true, r);
  ASSERT_EQ(device.tokens.size(), 12u);
  EXPECT_EQ(device.tokens, host.tokens);
  int sampled_chunks = 0;
  for (const SequenceChunk& c : device.chunks) {
    if (!c.sample) continue;
    ++sampled_chunks;
    EXPECT_EQ(c.logits, LogitsMode::kNone) << "a device-sampled row need not travel";
  }
  EXPECT_EQ(sampled_chunks, 12);
  for (const SequenceChunk& c : host.chunks) EXPECT_FALSE(c.sample);
}

TEST(DeviceSampling, ChosenTokenLogprobComesFromTheDevice) {
  GenerationRequest r = request_of(4);
  r.sampling.logprobs = 0;
  const Generation device = generate(true, r);
  size_t n = 0;
  for (const GenerationEvent& e : device.events) {
    ASSERT_EQ(e.logprobs.size(), e.token_ids.size());
    for (const SampleResult& lp : e.logprobs) {
      EXPECT_NEAR(lp.logprob, -std::log1p(799.0 * std::exp(-10.0)), 1e-5);  // +10 on one id of 800
      EXPECT_TRUE(lp.top.empty());
      ++n;
    }
  }
  EXPECT_EQ(n, 4u);
}

TEST(DeviceSampling, TopLogprobsFallBackToTheHost) {
  GenerationRequest r = request_of(3);
  r.sampling.logprobs = 2;
  const Generation device = generate(true, r);
  for (const SequenceChunk& c : device.chunks) EXPECT_FALSE(c.sample);
  for (const GenerationEvent& e : device.events) {
    for (const SampleResult& lp : e.logprobs) EXPECT_EQ(lp.top.size(), 2u);
  }
}

TEST(DeviceSampling, SeededDrawsRepeatAndPenaltiesReachTheBackend) {
  GenerationRequest r = request_of(40);
  r.sampling.temperature = 1.5f;
  r.sampling.top_p = 0.999f;
  r.sampling.seed = 1234;
  r.sampling.presence_penalty = 0.5f;
  r.sampling.repetition_penalty = 1.1f;
  const Generation a = generate(true, r), b = generate(true, r);
  EXPECT_EQ(a.tokens, b.tokens) << "same seed, same tokens";
  r.sampling.seed = 99;
  EXPECT_NE(generate(true, r).tokens, a.tokens) << "at T = 1.5 forty draws of another seed differ somewhere";

  // The prompt's set travels once, with the first sampled chunk (repetition
  // penalty; no output yet); every later chunk keeps the slot's row on the
  // device and carries nothing (no biases).
  std::vector<const SequenceChunk*> sampled;
  for (const SequenceChunk& c : a.chunks) {
    if (c.sample) sampled.push_back(&c);
  }
  ASSERT_EQ(sampled.size(), 40u);
  EXPECT_EQ(sampled[0]->sample->penalty_row, PenaltyRowMode::kRebuild);
  int32_t outputs = 0, prompt = 0;
  for (const PenaltyEntry& e : sampled[0]->sample->penalties) {
    outputs += e.output_count;
    prompt += e.in_prompt;
  }
  EXPECT_EQ(outputs, 0);
  std::vector<int32_t> unique_prompt = r.prompt_ids;
  std::sort(unique_prompt.begin(), unique_prompt.end());
  unique_prompt.erase(std::unique(unique_prompt.begin(), unique_prompt.end()), unique_prompt.end());
  EXPECT_EQ(prompt, int32_t(unique_prompt.size()));
  for (size_t i = 1; i < sampled.size(); ++i) {
    EXPECT_EQ(sampled[i]->sample->penalty_row, PenaltyRowMode::kKept) << "token " << i;
    EXPECT_TRUE(sampled[i]->sample->penalties.empty()) << "token " << i << ": the counts stay on the device";
  }
  EXPECT_GT(sampled.back()->sample->params.uniform, 0.0);
}

TEST(DeviceSampling, PenaltiesWithoutBiasesSendNoRowAndBiasesTravelAlone) {
  GenerationRequest r = request_of(6);
  r.controls.logit_bias = {{7, -1.5f}, {11, 2.0f}};
  for (const SequenceChunk& c : generate(true, r).chunks) {
    if (!c.sample) continue;
    EXPECT_EQ(c.sample->penalty_row, PenaltyRowMode::kNone) << "no penalty: no slot row";
    ASSERT_EQ(c.sample->penalties.size(), 2u);
    EXPECT_EQ(c.sample->penalties[0].output_count + c.sample->penalties[0].in_prompt, 0);
  }
  r.sampling.frequency_penalty = 0.5f;
  int kept = 0;
  for (const SequenceChunk& c : generate(true, r).chunks) {
    if (!c.sample || c.sample->penalty_row != PenaltyRowMode::kKept) continue;
    ++kept;
    ASSERT_EQ(c.sample->penalties.size(), 2u) << "a kept row still takes the biases every step";
    EXPECT_EQ(c.sample->penalties[1].bias, 2.0f);
  }
  EXPECT_EQ(kept, 5);
}

// Requests with penalties that preempt each other on one slot: the preempted
// request resumes in the slot whose row the others rebuilt since, so it must
// rebuild its row from the full list (its counts so far included); every
// request's tokens equal its solo run with the host sampling.
TEST(DeviceSampling, PenaltyRowsRebuiltAfterPreemptionGiveTheHostTokens) {
  auto make = [](int32_t i, int32_t priority) {
    GenerationRequest r = request_of(24);
    for (int32_t& t : r.prompt_ids) t = 10 + (t + 37 * i) % 700;
    r.sampling.temperature = 0.9f;
    r.sampling.seed = 500 + i;
    r.sampling.repetition_penalty = 1.3f;
    r.sampling.frequency_penalty = 0.4f;
    r.sampling.presence_penalty = 0.2f;
    r.priority = priority;
    return r;
  };
  const std::vector<GenerationRequest> requests = {make(0, 5), make(1, 0), make(2, 0)};

  FakeBackend* fake = nullptr;
  const std::unique_ptr<Engine> engine = fake_engine(1, true, true, 64, 32, &fake);
  ASSERT_NE(engine, nullptr);
  std::vector<EventCollector> got(requests.size());
  fake->gate_after(8);  // the first runs 8 steps, then the better ones arrive and preempt it
  ASSERT_TRUE(engine->submit(requests[0], got[0].sink()).has_value());
  ASSERT_TRUE(fake->wait_held());
  ASSERT_TRUE(engine->submit(requests[1], got[1].sink()).has_value());
  ASSERT_TRUE(engine->submit(requests[2], got[2].sink()).has_value());
  fake->release();
  for (EventCollector& c : got) ASSERT_TRUE(c.wait_finished());
  EXPECT_EQ(engine->stats().preemptions_total, 1u);

  for (size_t i = 0; i < requests.size(); ++i) {
    const std::vector<int32_t> want = generate(false, requests[i], /*spread_logits=*/true).tokens;
    ASSERT_EQ(want.size(), 24u);
    EXPECT_EQ(got[i].tokens(), want) << "request " << i;
  }
  // The preempted requests rebuilt their rows mid-generation: a rebuild that
  // carries output counts.
  int mid_rebuilds = 0;
  for (const SequenceChunk& c : fake->chunks_run()) {
    if (!c.sample || c.sample->penalty_row != PenaltyRowMode::kRebuild) continue;
    int32_t outputs = 0;
    for (const PenaltyEntry& e : c.sample->penalties) outputs += e.output_count;
    mid_rebuilds += outputs > 0;
  }
  EXPECT_GE(mid_rebuilds, 1);
}

TEST(DeviceSampling, SameSeedSameTokensOnTheHostAndDevicePaths) {
  // One rule set: a seeded request draws the same tokens whether the backend
  // samples on its device, the host samples (a backend that cannot), or the
  // request asks for top logprobs (host path on a device-sampling backend).
  GenerationRequest r = request_of(40);
  r.sampling.temperature = 1.0f;
  r.sampling.top_k = 200;
  r.sampling.top_p = 0.9f;
  r.sampling.min_p = 0.01f;
  r.sampling.frequency_penalty = 0.3f;
  r.sampling.seed = 77;
  const Generation device = generate(true, r, /*spread_logits=*/true);
  const Generation host = generate(false, r, true);
  GenerationRequest with_top = r;
  with_top.sampling.logprobs = 3;
  const Generation device_backend_host_path = generate(true, with_top, true);
  ASSERT_EQ(device.tokens.size(), 40u);
  EXPECT_EQ(host.tokens, device.tokens);
  EXPECT_EQ(device_backend_host_path.tokens, device.tokens);
  std::set<int32_t> distinct(device.tokens.begin(), device.tokens.end());
  EXPECT_GT(distinct.size(), 10u) << "the rows must make the draw matter";
}

}  // namespace
}  // namespace tnl
