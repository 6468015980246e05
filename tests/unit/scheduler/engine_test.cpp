// The Engine over a deterministic fake backend: generation and finish reasons,
// events and text, cancel, queue limits, timeouts, validation, drain, backend
// errors, shutdown, stats.
#include "engine/scheduler/engine.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "tests/unit/scheduler/engine_test_support.h"

namespace tnl {
namespace {

using namespace std::chrono_literals;
using test::EventCollector;
using test::FakeBackend;

struct EngineUnderTest {
  FakeBackend* backend = nullptr;  // owned by the engine
  std::unique_ptr<Engine> engine;
};

EngineUnderTest make_engine(EngineOptions options, int32_t backend_slots = 8,
                            const std::function<void(FakeBackend&)>& configure = {}) {
  auto backend = std::make_unique<FakeBackend>(backend_slots);
  if (configure) configure(*backend);
  EngineUnderTest e;
  e.backend = backend.get();
  auto tokenizer = test::load_test_tokenizer();
  EXPECT_NE(tokenizer, nullptr);
  auto created = Engine::create(std::move(backend), std::move(tokenizer), options);
  EXPECT_TRUE(created.has_value()) << created.status().to_string();
  if (created.has_value()) e.engine = std::move(created).value();
  return e;
}

EngineOptions small_options() {
  EngineOptions o;
  o.max_num_seqs = 4;
  o.max_num_batched_tokens = 32;
  o.prefill_chunk = 16;
  o.max_queue = 64;
  o.max_model_len = 4096;
  return o;
}

GenerationRequest request(std::vector<int32_t> prompt, int32_t max_tokens) {
  GenerationRequest r;
  r.prompt_ids = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0.0f;
  return r;
}

std::vector<int32_t> prompt_of(int32_t len, int32_t first = 10) {
  std::vector<int32_t> p(len);
  for (int32_t i = 0; i < len; ++i) p[i] = first + (i * 7) % 700;
  return p;
}

// What greedy decoding over the fake backend produces for `prompt`.
std::vector<int32_t> expected_tokens(const std::vector<int32_t>& prompt, int32_t n) {
  std::vector<int32_t> out;
  int64_t pos = static_cast<int64_t>(prompt.size()) - 1;
  int32_t last = prompt.back();
  for (int32_t i = 0; i < n; ++i) {
    last = FakeBackend::default_next(pos++, last);
    out.push_back(last);
  }
  return out;
}

TEST(Engine, GreedyGenerationUntilMaxTokens) {
  auto e = make_engine(small_options());
  ASSERT_TRUE(e.engine);
  EventCollector c;
  const auto prompt = prompt_of(40);  // three chunks of 16, 16, 8
  auto id = e.engine->submit(request(prompt, 12), c.sink());
  ASSERT_TRUE(id.has_value()) << id.status().to_string();
  ASSERT_TRUE(c.wait_finished());
  EXPECT_EQ(c.finish(), FinishReason::kLength);
  EXPECT_EQ(c.tokens(), expected_tokens(prompt, 12));
  const auto events = c.events();
  EXPECT_EQ(events.size(), 12u) << "one event per step per sequence with a new token";
  EXPECT_EQ(events.back().completion_tokens, 12);
  EXPECT_EQ(events.back().prompt_tokens, 40);
  for (size_t i = 0; i + 1 < events.size(); ++i) EXPECT_EQ(events[i].finish, FinishReason::kNone);

  // Streamed text is the detokenized output, continuing the prompt's text.
  const Tokenizer& tok = e.engine->tokenizer();
  const std::vector<int32_t> generated = c.tokens();
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), generated.begin(), generated.end());
  const std::string full = tok.decode(all);
  const std::string prompt_text = tok.decode(prompt);
  ASSERT_EQ(full.compare(0, prompt_text.size(), prompt_text), 0);
  EXPECT_EQ(c.text(), full.substr(prompt_text.size()));

  // The prompt went in fixed chunks.
  std::vector<std::pair<int64_t, size_t>> prefill;
  for (const auto& ch : e.backend->chunks_run()) {
    if (ch.tokens.size() > 1 || ch.start_pos < 40) prefill.emplace_back(ch.start_pos, ch.tokens.size());
  }
  EXPECT_EQ(prefill, (std::vector<std::pair<int64_t, size_t>>{{0, 16}, {16, 16}, {32, 8}}));
}

TEST(Engine, StopsOnEosUnlessIgnored) {
  auto eos_at_pos_12 = [](FakeBackend& b) {
    b.set_next_token([](int64_t pos, int32_t t) { return pos == 12 ? FakeBackend::kEos : FakeBackend::default_next(pos, t); });
  };
  auto e = make_engine(small_options(), 8, eos_at_pos_12);
  EventCollector stop, ignore;
  GenerationRequest r = request(prompt_of(8), 20);  // rows at positions 7…12: the 6th token
  ASSERT_TRUE(e.engine->submit(r, stop.sink()).has_value());
  r.ignore_eos = true;
  ASSERT_TRUE(e.engine->submit(r, ignore.sink()).has_value());
  ASSERT_TRUE(stop.wait_finished());
  ASSERT_TRUE(ignore.wait_finished());
  EXPECT_EQ(stop.finish(), FinishReason::kStop);
  ASSERT_EQ(stop.tokens().size(), 6u);
  EXPECT_EQ(stop.tokens().back(), FakeBackend::kEos);
  EXPECT_EQ(ignore.finish(), FinishReason::kLength);
  EXPECT_EQ(ignore.tokens().size(), 20u);
}

TEST(Engine, StopsOnStopTokenIds) {
  auto e = make_engine(small_options());
  const auto prompt = prompt_of(5);
  const auto expected = expected_tokens(prompt, 10);
  EventCollector c;
  GenerationRequest r = request(prompt, 10);
  r.stop_token_ids = {expected[3]};
  ASSERT_TRUE(e.engine->submit(r, c.sink()).has_value());
  ASSERT_TRUE(c.wait_finished());
  EXPECT_EQ(c.finish(), FinishReason::kStop);
  const auto first = std::find(expected.begin(), expected.end(), expected[3]);
  EXPECT_EQ(c.tokens(), std::vector<int32_t>(expected.begin(), first + 1));
}

TEST(Engine, StopStringCutsTheTextEvenAcrossTokens) {
  auto e = make_engine(small_options());
  const auto prompt = prompt_of(6);
  EventCollector plain;
  ASSERT_TRUE(e.engine->submit(request(prompt, 24), plain.sink()).has_value());
  ASSERT_TRUE(plain.wait_finished());
  const std::string text = plain.text();
  ASSERT_GE(text.size(), 12u) << "fake output too short to pick a stop string";
  // A stop string from the middle of the text: likely spans a token boundary.
  const size_t at = text.size() / 2;
  const std::string stop = text.substr(at, 4);
  const size_t first = text.find(stop);
  EventCollector stopped;
  GenerationRequest r = request(prompt, 24);
  r.stop = {stop};
  ASSERT_TRUE(e.engine->submit(r, stopped.sink()).has_value());
  ASSERT_TRUE(stopped.wait_finished());
  EXPECT_EQ(stopped.finish(), FinishReason::kStop);
  EXPECT_EQ(stopped.text(), text.substr(0, first));
  EXPECT_LT(stopped.tokens().size(), 24u);
}

TEST(Engine, LogprobsAndPromptLogprobs) {
  auto e = make_engine(small_options());
  EventCollector c;
  GenerationRequest r = request(prompt_of(20), 3);
  r.sampling.logprobs = 2;
  r.prompt_logprobs = true;
  ASSERT_TRUE(e.engine->submit(r, c.sink()).has_value());
  ASSERT_TRUE(c.wait_finished());
  const auto events = c.events();
  ASSERT_EQ(events.size(), 3u);
  ASSERT_EQ(events[0].prompt_logprobs.size(), 20u);
  EXPECT_EQ(events[1].prompt_logprobs.size(), 0u);
  for (size_t i = 1; i < 20; ++i) {
    EXPECT_EQ(events[0].prompt_logprobs[i].token, r.prompt_ids[i]);
    EXPECT_EQ(events[0].prompt_logprobs[i].top.size(), 2u);
    EXPECT_LT(events[0].prompt_logprobs[i].logprob, 0.0f);
  }
  for (const auto& ev : events) {
    ASSERT_EQ(ev.logprobs.size(), ev.token_ids.size());
    for (const auto& lp : ev.logprobs) {
      EXPECT_EQ(lp.top.size(), 2u);
      // The fake row: +10 on one id, 0 on the other 799.
      EXPECT_NEAR(lp.logprob, -std::log1p(799.0 * std::exp(-10.0)), 1e-5);
    }
  }
}

TEST(Engine, CancelFreesTheSlotWithinOneStep) {
  EngineOptions o = small_options();
  o.max_num_seqs = 1;
  o.max_num_batched_tokens = 16;
  auto e = make_engine(o, 8, [](FakeBackend& b) { b.set_step_delay(2ms); });
  EventCollector a, b;
  std::atomic<int64_t> steps_at_cancel{-1}, steps_at_final{-1};
  a.on_event([&](const GenerationEvent& ev) {
    if (ev.finish != FinishReason::kNone) steps_at_final = e.backend->steps_done();
  });
  auto id = e.engine->submit(request(prompt_of(4), 1000), a.sink());
  ASSERT_TRUE(id.has_value());
  ASSERT_TRUE(a.wait_events(3));
  ASSERT_TRUE(e.engine->submit(request(prompt_of(4), 3), b.sink()).has_value());  // waits for the only slot
  steps_at_cancel = e.backend->steps_done();
  e.engine->cancel(*id);
  ASSERT_TRUE(a.wait_finished());
  EXPECT_EQ(a.finish(), FinishReason::kCancelled);
  EXPECT_LE(steps_at_final - steps_at_cancel, 1) << "the cancelled sequence ran more than one more step";
  ASSERT_TRUE(b.wait_finished());
  EXPECT_EQ(b.finish(), FinishReason::kLength);
  // Stats are published after the step whose events we saw.
  for (int i = 0; i < 200 && !e.engine->idle(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(e.engine->stats().slots_used, 0);
  e.engine->cancel(*id);      // already finished: ignored
  e.engine->cancel(123456);   // never issued: ignored
}

TEST(Engine, QueueFullIsResourceExhausted) {
  EngineOptions o = small_options();
  o.max_num_seqs = 1;
  o.max_num_batched_tokens = 16;
  o.max_queue = 2;
  auto e = make_engine(o, 8, [](FakeBackend& b) { b.gate_after(1); });
  EventCollector a, b, c, d;
  ASSERT_TRUE(e.engine->submit(request(prompt_of(4), 5), a.sink()).has_value());
  ASSERT_TRUE(e.backend->wait_entered(2));  // step 1 done (a running), step 2 held at the gate
  ASSERT_TRUE(e.engine->submit(request(prompt_of(4), 2), b.sink()).has_value());
  ASSERT_TRUE(e.engine->submit(request(prompt_of(4), 2), c.sink()).has_value());
  auto rejected = e.engine->submit(request(prompt_of(4), 2), d.sink());
  ASSERT_FALSE(rejected.has_value());
  EXPECT_EQ(rejected.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(rejected.status().message().find("max_queue 2"), std::string::npos) << rejected.status().message();
  EXPECT_EQ(e.engine->stats().waiting, 2);
  e.backend->release();
  ASSERT_TRUE(a.wait_finished());
  ASSERT_TRUE(b.wait_finished());
  ASSERT_TRUE(c.wait_finished());
  EXPECT_EQ(c.finish(), FinishReason::kLength);
}

TEST(Engine, RequestTimeout) {
  // Deterministic under any slowdown (sanitizers): the running request's second
  // step is held at the gate until both deadlines have passed, so the queued
  // one can never reach the slot in time.
  EngineOptions o = small_options();
  o.max_num_seqs = 1;
  o.max_num_batched_tokens = 16;
  o.request_timeout = 60ms;
  auto e = make_engine(o, 8, [](FakeBackend& b) { b.gate_after(1); });
  EventCollector running, queued;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(e.engine->submit(request(prompt_of(4), 3000), running.sink()).has_value());
  ASSERT_TRUE(e.backend->wait_entered(2));  // step 1 done (a token out), step 2 held
  ASSERT_TRUE(e.engine->submit(request(prompt_of(4), 3000), queued.sink()).has_value());  // never gets the slot
  std::this_thread::sleep_for(150ms);  // past both deadlines
  e.backend->release();
  ASSERT_TRUE(running.wait_finished());
  ASSERT_TRUE(queued.wait_finished());
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(running.finish(), FinishReason::kTimeout);
  EXPECT_EQ(queued.finish(), FinishReason::kTimeout);
  EXPECT_GT(running.tokens().size(), 0u);
  EXPECT_TRUE(queued.tokens().empty());
  EXPECT_LT(took, 5s);
}

TEST(Engine, ValidationErrorsSayWhatIsWrong) {
  auto e = make_engine(small_options());
  EventCollector c;
  auto expect_invalid = [&](GenerationRequest r, const std::string& needle, StatusCode code = StatusCode::kInvalidArgument) {
    auto id = e.engine->submit(std::move(r), c.sink());
    ASSERT_FALSE(id.has_value()) << needle;
    EXPECT_EQ(id.status().code(), code) << id.status().to_string();
    EXPECT_NE(id.status().message().find(needle), std::string::npos) << id.status().message();
  };
  expect_invalid(request({}, 4), "empty");
  expect_invalid(request({5, 6, FakeBackend::kVocab}, 4), "prompt token 2 has id 800");
  expect_invalid(request({5, -1}, 4), "outside the model's vocabulary");
  expect_invalid(request({5}, 0), "max_tokens must be ≥ 1");
  expect_invalid(request(prompt_of(100), 4000), "max_model_len (4096)");
  GenerationRequest hot = request({5}, 4);
  hot.sampling.temperature = 5.0f;
  expect_invalid(hot, "temperature", StatusCode::kOutOfRange);
  GenerationRequest stops = request({5}, 4);
  stops.stop_token_ids = {9999};
  expect_invalid(stops, "stop_token_ids");
  auto no_sink = e.engine->submit(request({5}, 4), EventSink{});
  EXPECT_EQ(no_sink.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(c.events().empty());
  EXPECT_TRUE(e.engine->idle());
}

TEST(Engine, FatalBackendErrorLatchesTheEngineDead) {
  // A sticky device error poisons every later step: the engine fails what is
  // running and what is queued, refuses new work and reports itself unhealthy.
  EngineOptions o = small_options();
  o.max_num_seqs = 1;
  auto e = make_engine(o, 1, [](FakeBackend& b) {
    b.set_fatal_from_step(5);
    b.set_step_delay(1ms);
  });
  EXPECT_TRUE(e.engine->health().is_ok());
  EventCollector running, waiting;
  ASSERT_TRUE(e.engine->submit(request({5, 6, 7}, 1000), running.sink()).has_value());
  ASSERT_TRUE(e.engine->submit(request({8, 9}, 10), waiting.sink()).has_value());
  ASSERT_TRUE(running.wait_finished());
  ASSERT_TRUE(waiting.wait_finished());
  for (EventCollector* c : {&running, &waiting}) {
    EXPECT_EQ(c->finish(), FinishReason::kError);
    EXPECT_EQ(c->error().code(), StatusCode::kUnavailable);
    EXPECT_NE(c->error().message().find("device lost"), std::string::npos) << c->error().message();
  }
  EXPECT_FALSE(e.engine->health().is_ok());
  EXPECT_NE(e.engine->health().message().find("dead"), std::string::npos);
  EventCollector later;
  auto refused = e.engine->submit(request({1, 2}, 3), later.sink());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  const int64_t steps = e.backend->steps_entered();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(e.backend->steps_entered(), steps) << "a dead engine runs no more steps";
}

TEST(Engine, AbortAllEndsRunningAndWaitingRequestsWithTheReason) {
  EngineOptions o = small_options();
  o.max_num_seqs = 1;
  auto e = make_engine(o, 1, [](FakeBackend& b) { b.set_step_delay(1ms); });
  EventCollector running, waiting;
  ASSERT_TRUE(e.engine->submit(request({5, 6, 7}, 3000), running.sink()).has_value());
  ASSERT_TRUE(e.engine->submit(request({8, 9}, 10), waiting.sink()).has_value());
  ASSERT_TRUE(running.wait_events(2));
  e.engine->abort_all(unavailable("the server is shutting down: drain timeout"));
  ASSERT_TRUE(running.wait_finished());
  ASSERT_TRUE(waiting.wait_finished());
  for (EventCollector* c : {&running, &waiting}) {
    EXPECT_EQ(c->finish(), FinishReason::kError);
    EXPECT_EQ(c->error().message(), "the server is shutting down: drain timeout");
  }
  EXPECT_TRUE(e.engine->health().is_ok()) << "aborting is not dying";
  EventCollector after;
  ASSERT_TRUE(e.engine->submit(request({1, 2}, 3), after.sink()).has_value());
  ASSERT_TRUE(after.wait_finished());
  EXPECT_EQ(after.finish(), FinishReason::kLength);
}

TEST(Engine, NonFiniteLogitsFailOnlyThatRequest) {
  auto e = make_engine(small_options(), 8, [](FakeBackend& b) {
    b.set_next_token([](int64_t pos, int32_t token) { return FakeBackend::default_next(pos, token); });
    b.set_nan_token(42);
  });
  EventCollector bad, good;
  ASSERT_TRUE(e.engine->submit(request({5, 42}, 4), bad.sink()).has_value());
  ASSERT_TRUE(e.engine->submit(request({5, 6}, 4), good.sink()).has_value());
  ASSERT_TRUE(bad.wait_finished());
  ASSERT_TRUE(good.wait_finished());
  EXPECT_EQ(bad.finish(), FinishReason::kError);
  EXPECT_NE(bad.error().message().find("non-finite"), std::string::npos) << bad.error().message();
  EXPECT_EQ(good.finish(), FinishReason::kLength);
  EXPECT_TRUE(e.engine->health().is_ok());
}

TEST(Engine, CreateRejectsUnworkableOptions) {
  EngineOptions o = small_options();
  o.prefill_chunk = 64;  // > max_num_batched_tokens 32
  auto created = Engine::create(std::make_unique<FakeBackend>(4), test::load_test_tokenizer(), o);
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(created.status().message().find("prefill_chunk"), std::string::npos);

  o = small_options();
  o.max_num_seqs = 64;  // 64 slots wanted, but the backend's 4 bound it: 16 + 4 - 1 ≤ 32 works
  created = Engine::create(std::make_unique<FakeBackend>(4), test::load_test_tokenizer(), o);
  ASSERT_TRUE(created.has_value()) << created.status().to_string();
  EXPECT_EQ(created.value()->stats().slots_total, 4);

  o.max_num_seqs = 0;
  EXPECT_FALSE(Engine::create(std::make_unique<FakeBackend>(4), test::load_test_tokenizer(), o).has_value());
  EXPECT_FALSE(Engine::create(nullptr, test::load_test_tokenizer(), small_options()).has_value());
}

TEST(Engine, DrainRefusesNewRequestsAndFinishesInFlight) {
  auto e = make_engine(small_options(), 8, [](FakeBackend& b) { b.set_step_delay(1ms); });
  EventCollector a;
  ASSERT_TRUE(e.engine->submit(request(prompt_of(10), 30), a.sink()).has_value());
  e.engine->begin_drain();
  EventCollector b;
  auto refused = e.engine->submit(request(prompt_of(10), 3), b.sink());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(a.wait_finished());
  EXPECT_EQ(a.finish(), FinishReason::kLength);
  EXPECT_EQ(a.tokens().size(), 30u);
  for (int i = 0; i < 200 && !e.engine->idle(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(e.engine->idle());
}

TEST(Engine, BackendErrorFailsTheStepAndTheEngineKeepsServing) {
  constexpr int32_t kPoison = 666;
  EngineOptions o = small_options();
  auto e = make_engine(o, 8, [](FakeBackend& b) { b.set_poison_token(kPoison); });
  EventCollector bad;
  ASSERT_TRUE(e.engine->submit(request({10, 11, kPoison, 12}, 4), bad.sink()).has_value());
  ASSERT_TRUE(bad.wait_finished());
  EXPECT_EQ(bad.finish(), FinishReason::kError);
  EXPECT_EQ(bad.error().code(), StatusCode::kInternal);
  EXPECT_NE(bad.error().message().find("poison"), std::string::npos) << bad.error().to_string();
  for (int i = 0; i < 200 && !e.engine->idle(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(e.engine->stats().slots_used, 0);

  EventCollector good;
  const auto prompt = prompt_of(20);
  ASSERT_TRUE(e.engine->submit(request(prompt, 6), good.sink()).has_value());
  ASSERT_TRUE(good.wait_finished());
  EXPECT_EQ(good.finish(), FinishReason::kLength);
  EXPECT_EQ(good.tokens(), expected_tokens(prompt, 6));
}

TEST(Engine, BackendErrorSparesSequencesOutsideTheStep) {
  // Two slots: a decoding request and the poisoned one share the failing step
  // (run_step's one status leaves both slots undefined, so both fail); a request
  // waiting for a slot is untouched and completes afterwards.
  constexpr int32_t kPoison = 666;
  EngineOptions o = small_options();
  o.max_num_seqs = 2;
  auto e = make_engine(o, 8, [](FakeBackend& b) {
    b.set_poison_token(kPoison);
    b.set_step_delay(1ms);  // the decoding request must still run when the gate closes
  });
  EventCollector decoding, bad, waiting;
  ASSERT_TRUE(e.engine->submit(request(prompt_of(6), 4000), decoding.sink()).has_value());
  ASSERT_TRUE(decoding.wait_events(2));
  e.backend->hold();
  ASSERT_TRUE(e.backend->wait_held());
  ASSERT_TRUE(e.engine->submit(request({10, kPoison}, 4), bad.sink()).has_value());
  ASSERT_TRUE(e.engine->submit(request(prompt_of(3), 2), waiting.sink()).has_value());
  e.backend->release();
  ASSERT_TRUE(bad.wait_finished());
  ASSERT_TRUE(decoding.wait_finished());
  ASSERT_TRUE(waiting.wait_finished());
  EXPECT_EQ(bad.finish(), FinishReason::kError);
  EXPECT_EQ(decoding.finish(), FinishReason::kError);
  EXPECT_EQ(waiting.finish(), FinishReason::kLength);
  EXPECT_EQ(waiting.tokens(), expected_tokens(prompt_of(3), 2));
}

TEST(Engine, DestructorCancelsEverything) {
  EngineOptions o = small_options();
  o.max_num_seqs = 2;
  std::vector<std::unique_ptr<EventCollector>> collectors;
  {
    auto e = make_engine(o, 8, [](FakeBackend& b) { b.set_step_delay(1ms); });
    for (int i = 0; i < 6; ++i) {
      collectors.push_back(std::make_unique<EventCollector>());
      ASSERT_TRUE(e.engine->submit(request(prompt_of(5 + i), 3000), collectors.back()->sink()).has_value());
    }
    ASSERT_TRUE(collectors[0]->wait_events(2));
  }
  for (const auto& c : collectors) {
    const auto events = c->events();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().finish, FinishReason::kCancelled);
    EXPECT_EQ(std::count_if(events.begin(), events.end(), [](const GenerationEvent& ev) { return ev.finish != FinishReason::kNone; }), 1);
  }
}

TEST(Engine, StatsCountTokensRequestsAndLatencies) {
  EngineOptions o = small_options();
  auto e = make_engine(o, 3);
  std::vector<std::unique_ptr<EventCollector>> cs;
  int32_t prompt_total = 0;
  for (int i = 0; i < 5; ++i) {
    cs.push_back(std::make_unique<EventCollector>());
    prompt_total += 7 + i;
    ASSERT_TRUE(e.engine->submit(request(prompt_of(7 + i), 4), cs.back()->sink()).has_value());
  }
  for (auto& c : cs) ASSERT_TRUE(c->wait_finished());
  for (int i = 0; i < 200 && !e.engine->idle(); ++i) std::this_thread::sleep_for(5ms);
  const EngineStats s = e.engine->stats();
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.waiting, 0);
  EXPECT_EQ(s.slots_used, 0);
  EXPECT_EQ(s.slots_total, 3);
  EXPECT_EQ(s.requests_finished_total, 5u);
  EXPECT_EQ(s.prompt_tokens_total, static_cast<uint64_t>(prompt_total));
  EXPECT_EQ(s.generation_tokens_total, 20u);
  EXPECT_EQ(s.time_to_first_token.count, 5u);
  EXPECT_EQ(s.time_per_output_token.count, 15u);
  EXPECT_EQ(s.e2e_latency.count, 5u);
  EXPECT_GT(s.step_time.count, 0u);
  const auto& h = s.e2e_latency;
  ASSERT_EQ(h.bucket_counts.size(), h.bucket_bounds.size());
  EXPECT_TRUE(std::is_sorted(h.bucket_counts.begin(), h.bucket_counts.end())) << "buckets are cumulative";
  EXPECT_LE(h.bucket_counts.back(), h.count);
}

// --step-trace: one line per step whose counts add up to what the backend ran,
// and one line per request at its first token, after its arrival.
TEST(Engine, StepTraceRecordsEveryStepAndFirstToken) {
  EngineOptions o = small_options();
  o.step_trace_path = ::testing::TempDir() + "/engine_step_trace.jsonl";
  std::vector<std::unique_ptr<EventCollector>> cs;
  int64_t prompt_total = 0;
  {
    auto e = make_engine(o, 3);
    ASSERT_TRUE(e.engine);
    for (int i = 0; i < 5; ++i) {
      cs.push_back(std::make_unique<EventCollector>());
      prompt_total += 20 + i;  // two chunks each (16 + the rest)
      GenerationRequest r = request(prompt_of(20 + i), 4);
      if (i == 0) {  // as a front end sets them
        r.received = std::chrono::steady_clock::now() - 1ms;
        r.prepared = r.received + 500us;
      }
      ASSERT_TRUE(e.engine->submit(std::move(r), cs.back()->sink()).has_value());
    }
    for (auto& c : cs) ASSERT_TRUE(c->wait_finished());
    for (int i = 0; i < 200 && !e.engine->idle(); ++i) std::this_thread::sleep_for(5ms);
  }  // the engine (and its trace) closes here: everything is flushed
  std::ifstream in(o.step_trace_path);
  ASSERT_TRUE(in);
  int64_t steps = 0, decodes = 0, prefill_tokens = 0, prefill_chunks = 0, first_tokens = 0, first_token_lines = 0;
  int64_t with_received = 0;
  int64_t last_step_us = -1;
  std::string line;
  // First the origin on the steady clock: before the engine was made, after this test began.
  ASSERT_TRUE(std::getline(in, line));
  const nlohmann::json origin = nlohmann::json::parse(line);
  ASSERT_TRUE(origin.contains("origin_steady_us")) << line;
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count();
  EXPECT_GT(origin["origin_steady_us"].get<int64_t>(), 0);
  EXPECT_LE(origin["origin_steady_us"].get<int64_t>(), now_us);
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("first_token")) {
      ++first_token_lines;
      EXPECT_GE(j["at_us"].get<int64_t>(), j["arrival_us"].get<int64_t>());
      EXPECT_GE(j["prompt_tokens"].get<int64_t>(), 20);
      if (j.contains("received_us")) {
        ++with_received;
        EXPECT_EQ(j["prompt_tokens"].get<int64_t>(), 20) << "only the first request says when it was received";
        EXPECT_GE(j["arrival_us"].get<int64_t>() - j["received_us"].get<int64_t>(), 1000);
        ASSERT_TRUE(j.contains("prepared_us"));
        // 500 µs apart; each is rounded down to a whole µs on its own, so 499 or 500.
        EXPECT_NEAR(j["prepared_us"].get<int64_t>() - j["received_us"].get<int64_t>(), 500, 1);
      }
      continue;
    }
    ++steps;
    EXPECT_GE(j["step_us"].get<int64_t>(), last_step_us) << "steps in order";
    last_step_us = j["step_us"].get<int64_t>();
    for (const char* k : {"plan_us", "run_us", "emit_us"}) EXPECT_GE(j[k].get<int64_t>(), 0) << k;
    EXPECT_FALSE(j["failed"].get<bool>());
    EXPECT_FALSE(j.contains("device_us") || j.contains("enqueue_us")) << "the CPU backend does not time its steps";
    EXPECT_LE(j["running"].get<int64_t>(), 3);
    decodes += j["decodes"].get<int64_t>();
    prefill_tokens += j["prefill_tokens"].get<int64_t>();
    prefill_chunks += j["prefill_chunks"].get<int64_t>();
    first_tokens += j["first_tokens"].get<int64_t>();
  }
  EXPECT_GT(steps, 0);
  EXPECT_EQ(prefill_tokens, prompt_total);
  EXPECT_EQ(prefill_chunks, 10) << "two chunks per prompt";
  EXPECT_EQ(decodes, 5 * 3) << "every token after the first is a decode";
  EXPECT_EQ(first_tokens, 5);
  EXPECT_EQ(first_token_lines, 5);
  EXPECT_EQ(with_received, 1);
}

TEST(Engine, StepTraceThatCannotBeWrittenIsAnError) {
  EngineOptions o = small_options();
  o.step_trace_path = ::testing::TempDir() + "/no/such/dir/trace.jsonl";
  auto created = Engine::create(std::make_unique<FakeBackend>(3), test::load_test_tokenizer(), o);
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(created.status().message().find("no/such/dir/trace.jsonl"), std::string::npos) << created.status().message();
}

}  // namespace
}  // namespace tnl
