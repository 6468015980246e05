// The step loop hands a sequence's later tokens to its stream while the next step
// runs (continuous_batcher.h, "Overlap"). These tests step a ContinuousBatcher by
// hand over the fake backend and watch when each event arrives: inside the next
// step's run_step (the backend's while_running) or at once.
#include "engine/scheduler/continuous_batcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/scheduler/engine_test_support.h"

namespace tnl {
namespace {

using test::EventCollector;
using test::FakeBackend;

// The fake backend, telling whether a step is under way (events handed out
// during one came through while_running).
class StepAwareBackend : public FakeBackend {
 public:
  using FakeBackend::FakeBackend;
  Status run_step(const StepPlan& plan, StepOutput* out) override {
    in_step_ = true;
    Status s = FakeBackend::run_step(plan, out);
    in_step_ = false;
    return s;
  }
  bool in_step() const { return in_step_; }

 private:
  bool in_step_ = false;
};

class DeferredEventsTest : public ::testing::Test {
 protected:
  DeferredEventsTest() : backend_(4), tokenizer_(test::load_test_tokenizer()) {
    options_.max_num_seqs = 4;
    options_.max_num_batched_tokens = 32;
    options_.prefill_chunk = 16;
    SchedulerLimits limits;
    limits.num_slots = 4;
    limits.max_num_batched_tokens = options_.max_num_batched_tokens;
    limits.prefill_chunk = options_.prefill_chunk;
    batcher_ = std::make_unique<ContinuousBatcher>(backend_, *tokenizer_, options_, limits);
  }

  // Queues a greedy request of `max_tokens` whose events land in `c`, each
  // event's arrival noted as during a step or not.
  void add(uint64_t id, int32_t max_tokens, EventCollector* c, std::vector<bool>* during_step) {
    GenerationRequest r;
    r.prompt_ids = {10, 17, 24, 31, 38};
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0.0f;
    c->on_event([this, during_step](const GenerationEvent&) { during_step->push_back(backend_.in_step()); });
    batcher_->add(id, std::move(r), c->sink(), EngineClock::now());
  }

  StepAwareBackend backend_;
  std::unique_ptr<Tokenizer> tokenizer_;
  EngineOptions options_;
  std::unique_ptr<ContinuousBatcher> batcher_;
};

TEST_F(DeferredEventsTest, LaterTokensReachTheirStreamWhileTheNextStepRuns) {
  EventCollector c;
  std::vector<bool> during_step;
  add(1, 5, &c, &during_step);

  batcher_->step();  // the prompt, and the first token: sent at once
  ASSERT_EQ(c.events().size(), 1u);
  EXPECT_EQ(c.events()[0].token_ids.size(), 1u);
  batcher_->step();  // token 2: held for the next step
  EXPECT_EQ(c.events().size(), 1u);
  batcher_->step();  // token 2 goes out while this step (token 3) runs
  ASSERT_EQ(c.events().size(), 2u);
  EXPECT_EQ(c.events()[1].token_ids.size(), 1u);
  while (batcher_->has_work()) batcher_->step();

  // Tokens 3 and 4 went out during the steps after theirs; token 5 ended the
  // request and went out at once with its last event.
  const std::vector<GenerationEvent> events = c.events();
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(during_step, (std::vector<bool>{false, true, true, true, false}));
  EXPECT_EQ(events.back().finish, FinishReason::kLength);
  for (const GenerationEvent& e : events) EXPECT_EQ(e.token_ids.size(), 1u);
  EXPECT_EQ(c.tokens().size(), 5u);
}

TEST_F(DeferredEventsTest, DeferringChangesNoTokenNorText) {
  EventCollector deferred, prompt;
  std::vector<bool> unused_a, unused_b;
  add(1, 12, &deferred, &unused_a);
  while (batcher_->has_work()) batcher_->step();
  // The same request again, every event handed out right after its step.
  add(2, 12, &prompt, &unused_b);
  while (batcher_->has_work()) {
    batcher_->step();
    batcher_->emit_deferred_events();
  }
  EXPECT_EQ(deferred.tokens(), prompt.tokens());
  EXPECT_EQ(deferred.text(), prompt.text());
  EXPECT_EQ(deferred.finish(), FinishReason::kLength);
  EXPECT_EQ(prompt.events().size(), 12u);
}

TEST_F(DeferredEventsTest, TextBuiltWithTheEventEqualsTextBuiltTokenByToken) {
  // Without stop strings a request's text is built when its event is (inside the
  // next step's while_running); with one, token by token as each is accepted. A
  // stop string that never matches (a control character the model's text never
  // holds) must leave every event's tokens and text as they are.
  const auto run = [this](uint64_t id, std::vector<std::string> stop) {
    EventCollector c;
    GenerationRequest r;
    r.prompt_ids = {10, 17, 24, 31, 38};
    r.max_tokens = 60;
    r.sampling.temperature = 0.0f;
    r.stop = std::move(stop);
    batcher_->add(id, std::move(r), c.sink(), EngineClock::now());
    while (batcher_->has_work()) batcher_->step();
    return c.events();
  };
  // Ids across the vocabulary, byte pieces among them, so that some tokens end
  // inside a UTF-8 character and their text waits for the next.
  backend_.set_next_token([](int64_t pos, int32_t token) { return 3 + int32_t((token * 131 + pos * 29) % 790); });
  const std::vector<GenerationEvent> deferred = run(1, {});
  const std::vector<GenerationEvent> matched = run(2, {"\x01"});
  ASSERT_EQ(deferred.size(), matched.size());
  std::string text;
  for (size_t i = 0; i < deferred.size(); ++i) {
    EXPECT_EQ(deferred[i].token_ids, matched[i].token_ids) << "event " << i;
    EXPECT_EQ(deferred[i].text, matched[i].text) << "event " << i;
    text += deferred[i].text;
  }
  EXPECT_EQ(deferred.back().finish, FinishReason::kLength);
  EXPECT_EQ(matched.back().finish, FinishReason::kLength);
  EXPECT_GT(text.size(), 20u) << "the tokens have text";
}

TEST_F(DeferredEventsTest, StopStringsEndTheRequestWhereMatchingTokenByTokenDoes) {
  // With stop strings, a token whose text cannot complete one has its text built
  // with the event too. Stops cut from the request's own text (ending in letters,
  // spaces, punctuation; one to five bytes) must end it at the token, with the
  // text, that running every token through the detokenizer and the matcher in
  // turn gives.
  const std::vector<int32_t> prompt = {10, 17, 24, 31, 38};
  struct Outcome {
    std::vector<int32_t> tokens;
    std::string text;
    FinishReason finish;
  };
  const auto run = [&](uint64_t id, std::vector<std::string> stop) {
    EventCollector c;
    GenerationRequest r;
    r.prompt_ids = prompt;
    r.max_tokens = 60;
    r.sampling.temperature = 0.0f;
    r.stop = std::move(stop);
    batcher_->add(id, std::move(r), c.sink(), EngineClock::now());
    while (batcher_->has_work()) batcher_->step();
    return Outcome{c.tokens(), c.text(), c.finish()};
  };
  backend_.set_next_token([](int64_t pos, int32_t token) { return 3 + int32_t((token * 131 + pos * 29) % 790); });
  const Outcome whole = run(1, {});
  const std::vector<int32_t>& tokens = whole.tokens;
  const std::string& text = whole.text;
  ASSERT_EQ(tokens.size(), 60u);
  ASSERT_GT(text.size(), 40u);
  uint64_t id = 2;
  int stopped_runs = 0;
  for (size_t end = 3; end < text.size(); end += 5) {
    for (size_t len : {1, 2, 5}) {
      if (len > end) continue;
      const std::string stop = text.substr(end - len, len);
      // The reference: every token through the text pipeline as it comes.
      IncrementalDetokenizer detokenizer(*tokenizer_, prompt);
      StopMatcher matcher({stop});
      std::string want_text;
      size_t want_tokens = tokens.size();
      bool stopped = false;
      for (size_t i = 0; i < tokens.size() && !stopped; ++i) {
        want_text += matcher.push(detokenizer.push(tokens[i]), &stopped);
        if (stopped) want_tokens = i + 1;
      }
      if (!stopped) {
        want_text += matcher.push(detokenizer.flush(), &stopped);
        if (!stopped) want_text += matcher.flush();
      }
      const Outcome got = run(id++, {stop});
      const std::vector<int32_t>& got_tokens = got.tokens;
      ASSERT_EQ(got_tokens.size(), want_tokens) << "stop \"" << stop << "\"";
      EXPECT_TRUE(std::equal(got_tokens.begin(), got_tokens.end(), tokens.begin())) << "stop \"" << stop << "\"";
      EXPECT_EQ(got.text, want_text) << "stop \"" << stop << "\"";
      EXPECT_EQ(got.finish, stopped ? FinishReason::kStop : FinishReason::kLength) << "stop \"" << stop << "\"";
      stopped_runs += stopped;
    }
  }
  EXPECT_GT(stopped_runs, 10) << "the stops must end requests";
}

TEST_F(DeferredEventsTest, ACancelSendsTheHeldTokenWithTheLastEvent) {
  EventCollector c;
  std::vector<bool> during_step;
  add(1, 50, &c, &during_step);
  batcher_->step();
  batcher_->step();  // token 2 held
  ASSERT_EQ(c.events().size(), 1u);
  batcher_->cancel(1);
  ASSERT_EQ(c.events().size(), 2u);
  EXPECT_EQ(c.events()[1].finish, FinishReason::kCancelled);
  EXPECT_EQ(c.events()[1].token_ids.size(), 1u) << "the held token travels with the last event";
  // The held entry is dropped without another event, and the batcher goes idle.
  while (batcher_->has_work()) batcher_->step();
  EXPECT_EQ(c.events().size(), 2u);
  EXPECT_EQ(c.tokens().size(), 2u);
}

TEST_F(DeferredEventsTest, ASequenceThatLeavesEarlyDoesNotHoldBackOthers) {
  // One request ends (length 2) while another continues: the other's held token
  // still goes out during the following step, and its stream ends complete.
  EventCollector short_one, long_one;
  std::vector<bool> a, b;
  add(1, 2, &short_one, &a);
  add(2, 6, &long_one, &b);
  while (batcher_->has_work()) batcher_->step();
  EXPECT_EQ(short_one.finish(), FinishReason::kLength);
  EXPECT_EQ(short_one.tokens().size(), 2u);
  EXPECT_EQ(long_one.finish(), FinishReason::kLength);
  EXPECT_EQ(long_one.tokens().size(), 6u);
  EXPECT_EQ(b, (std::vector<bool>{false, true, true, true, true, false}));
}

}  // namespace
}  // namespace tnl
