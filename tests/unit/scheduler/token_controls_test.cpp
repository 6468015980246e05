// Token controls through the engine (FakeBackend, the test tokenizer): the
// biases of min_tokens and bad_words step by step; structured output and
// allowed_token_ids give the same tokens whether the host samples or the
// "device" does (FakeBackend runs the GPU kernel's CPU reference, masks filled
// through StepPlan::prepare_sampling), and every output matches its regex
// (std::regex: not the constraint module's code).
#include <gtest/gtest.h>

#include <regex>

#include "engine/scheduler/constraint_vocabulary.h"
#include "engine/scheduler/engine.h"
#include "engine/scheduler/token_controls.h"
#include "tests/unit/scheduler/engine_test_support.h"

namespace tnl {
namespace {

using test::EventCollector;
using test::FakeBackend;

TEST(TokenControlState, MinTokensBansEndTokensThenLetsThemThrough) {
  TokenControls c;
  c.min_tokens = 2;
  c.logit_bias = {{7, 2.5f}};
  TokenControlState s(c, 100, {3, 2, 3});
  auto bias_of = [&](int32_t token) -> std::optional<float> {
    for (const PenaltyEntry& e : s.biases()) {
      if (e.token == token) return e.bias;
    }
    return std::nullopt;
  };
  EXPECT_EQ(bias_of(2), -INFINITY);
  EXPECT_EQ(bias_of(3), -INFINITY);
  EXPECT_EQ(bias_of(7), 2.5f);
  ASSERT_TRUE(s.accept(10).is_ok());
  EXPECT_EQ(bias_of(3), -INFINITY);
  ASSERT_TRUE(s.accept(11).is_ok());
  EXPECT_FALSE(bias_of(3).has_value()) << "two tokens produced: end tokens are allowed again";
  EXPECT_EQ(bias_of(7), 2.5f);
}

TEST(TokenControlState, BadWordsBanTheTokenThatWouldCompleteThem) {
  TokenControls c;
  c.bad_words = {{5}, {8, 9, 10}};
  TokenControlState s(c, 100, {});
  auto banned = [&] {
    std::vector<int32_t> ids;
    for (const PenaltyEntry& e : s.biases()) {
      if (e.bias == -INFINITY) ids.push_back(e.token);
    }
    return ids;
  };
  EXPECT_EQ(banned(), std::vector<int32_t>({5}));
  ASSERT_TRUE(s.accept(8).is_ok());
  EXPECT_EQ(banned(), std::vector<int32_t>({5}));
  ASSERT_TRUE(s.accept(9).is_ok());
  EXPECT_EQ(banned(), std::vector<int32_t>({5, 10}));
  ASSERT_TRUE(s.accept(1).is_ok());
  EXPECT_EQ(banned(), std::vector<int32_t>({5}));
}

TEST(TokenControlState, MasksIntersectAllowedIdsAndSayWhenNothingIsLeft) {
  TokenControls c;
  c.allowed_token_ids = {1, 33, 64, 99};
  TokenControlState s(c, 100, {});
  std::vector<uint32_t> mask;
  ASSERT_TRUE(s.fill_mask(&mask).is_ok());
  ASSERT_EQ(mask.size(), 4u);
  for (int32_t id = 0; id < 100; ++id) {
    EXPECT_EQ(mask_allows(mask.data(), id), id == 1 || id == 33 || id == 64 || id == 99) << id;
  }
  EXPECT_TRUE(s.check(33, mask, {}).is_ok());
  const Status outside = s.check(2, mask, {});
  EXPECT_EQ(outside.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(outside.message().find("exclude every token"), std::string::npos) << outside.message();
}

// Generates under `controls` on a fresh engine; host or "device" sampling.
std::vector<int32_t> generate(bool device, const TokenControls& controls, float temperature, int32_t max_tokens,
                              FinishReason* finish, std::string* text) {
  auto backend = std::make_unique<FakeBackend>(4);
  backend->set_device_sampling(device);
  backend->set_spread_logits(true);
  EngineOptions o;
  o.max_num_seqs = 4;
  o.max_num_batched_tokens = 32;
  o.prefill_chunk = 16;
  auto engine = Engine::create(std::move(backend), test::load_test_tokenizer(), o);
  EXPECT_TRUE(engine.has_value()) << engine.status().to_string();
  GenerationRequest r;
  for (int32_t i = 0; i < 12; ++i) r.prompt_ids.push_back(10 + (i * 13) % 700);
  r.max_tokens = max_tokens;
  r.sampling.temperature = temperature;
  r.sampling.seed = 5;
  r.controls = controls;
  EventCollector c;
  EXPECT_TRUE((*engine)->submit(r, c.sink()).has_value());
  EXPECT_TRUE(c.wait_finished());
  *finish = c.events().back().finish;
  text->clear();
  for (const GenerationEvent& e : c.events()) *text += e.text;
  return c.tokens();
}

class ConstrainedGeneration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tok = test::load_test_tokenizer();
    vocabulary_ = new std::shared_ptr<TokenVocabulary>(constraint_vocabulary(*tok, FakeBackend::kVocab));
  }
  static void TearDownTestSuite() {
    delete vocabulary_;
    vocabulary_ = nullptr;
  }
  static std::shared_ptr<const CompiledConstraint> compile(ConstraintSpec::Kind kind, const std::string& text) {
    auto compiled = compile_constraint({kind, text}, *vocabulary_);
    EXPECT_TRUE(compiled.has_value()) << compiled.status().to_string();
    return compiled.has_value() ? *compiled : nullptr;
  }
  static std::shared_ptr<TokenVocabulary>* vocabulary_;
};
std::shared_ptr<TokenVocabulary>* ConstrainedGeneration::vocabulary_ = nullptr;

TEST_F(ConstrainedGeneration, RegexOutputsMatchAndBothSamplingPathsAgree) {
  const std::vector<std::string> patterns = {"[0-9]{2,4}-[a-z]{3}", "(cat|dog|bird)s? (sat|ran)", "[a-z ]{5,20}\\."};
  for (const std::string& pattern : patterns) {
    TokenControls c;
    c.constraint = compile(ConstraintSpec::Kind::kRegex, pattern);
    ASSERT_NE(c.constraint, nullptr);
    for (float temperature : {0.0f, 1.0f}) {
      FinishReason host_finish, device_finish;
      std::string host_text, device_text;
      const auto host = generate(false, c, temperature, 64, &host_finish, &host_text);
      const auto device = generate(true, c, temperature, 64, &device_finish, &device_text);
      EXPECT_EQ(device, host) << pattern << " T=" << temperature;
      ASSERT_EQ(host_finish, FinishReason::kStop) << pattern << ": " << host_text;
      EXPECT_TRUE(std::regex_match(host_text, std::regex(pattern))) << pattern << ": '" << host_text << "'";
    }
  }
}

TEST_F(ConstrainedGeneration, AllowedIdsAndBiasesAgreeOnBothPaths) {
  TokenControls c;
  for (int32_t id = 100; id < 160; id += 3) c.allowed_token_ids.push_back(id);
  c.logit_bias = {{103, 1.5f}, {130, -100.0f}, {400, 50.0f}};
  FinishReason fh, fd;
  std::string th, td;
  const auto host = generate(false, c, 0.8f, 24, &fh, &th);
  const auto device = generate(true, c, 0.8f, 24, &fd, &td);
  EXPECT_EQ(device, host);
  for (int32_t t : host) {
    EXPECT_TRUE(std::binary_search(c.allowed_token_ids.begin(), c.allowed_token_ids.end(), t)) << t;
    EXPECT_NE(t, 400) << "a biased token outside the allowed ids stays out";
  }
}

}  // namespace
}  // namespace tnl
