// Structured output on the CUDA backend, default model: the same request
// sampled on the GPU (the allowed-token mask uploaded and applied by the
// sampling kernel) and on the host (logprobs with alternatives bring the rows
// back) takes the same tokens, greedy and seeded, and the outputs match their
// regex (std::regex) or parse as JSON of the schema's shape (nlohmann::json,
// not the constraint module). Skips without a CUDA device.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "engine/checkpoint/checkpoint.h"
#include "engine/scheduler/engine.h"
#include "tests/unit/scheduler/engine_test_support.h"
#if defined(TNL_WITH_CUDA)
#include "engine/cuda/cuda_backend.h"
#endif

namespace tnl {
namespace {

using test::EventCollector;

TEST(CudaConstraints, DeviceAndHostSamplingTakeTheSameConstrainedTokens) {
#if !defined(TNL_WITH_CUDA)
  GTEST_SKIP() << "built without CUDA";
#else
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const auto dir = test::source_dir() / "models/tnl-brown-12m";
  auto ckpt = Checkpoint::open(dir);
  ASSERT_TRUE(ckpt.has_value()) << ckpt.status().to_string();
  BackendOptions bo;
  bo.device = "cuda";
  bo.max_slots = 8;
  auto backend = make_cuda_backend(**ckpt, bo);
  ASSERT_TRUE(backend.has_value()) << backend.status().to_string();
  EngineOptions o;
  o.max_num_seqs = 8;
  o.max_model_len = 1024;
  auto made = Engine::create(std::move(backend).value(), std::move(Tokenizer::load(dir)).value(), o);
  ASSERT_TRUE(made.has_value()) << made.status().to_string();
  Engine& engine = **made;

  const std::string schema =
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":20},"tags":{"type":"array",)"
      R"("items":{"enum":["a","b","c"]},"maxItems":3},"n":{"type":"integer"}},"required":["name","tags","n"]})";
  struct Case {
    ConstraintSpec spec;
    std::string regex;  // empty: JSON
  };
  const std::vector<Case> cases = {{{ConstraintSpec::Kind::kRegex, "[0-9]{3}-[a-z]{2,6}"}, "[0-9]{3}-[a-z]{2,6}"},
                                   {{ConstraintSpec::Kind::kJsonSchema, schema}, ""}};
  const std::vector<int32_t> prompt = engine.tokenizer().encode("The answer is");
  for (const Case& c : cases) {
    auto compiled = engine.compile_constraint(c.spec);
    ASSERT_TRUE(compiled.has_value()) << compiled.status().to_string();
    for (float temperature : {0.0f, 0.8f}) {
      std::vector<std::vector<int32_t>> tokens;
      std::vector<std::string> texts;
      for (bool host : {false, true}) {
        GenerationRequest r;
        r.prompt_ids = prompt;
        r.max_tokens = 120;
        r.sampling.temperature = temperature;
        r.sampling.seed = 9;
        r.sampling.logprobs = host ? 2 : -1;  // alternatives: sampled on the host from the returned rows
        r.controls.constraint = *compiled;
        EventCollector events;
        ASSERT_TRUE(engine.submit(std::move(r), events.sink()).has_value());
        ASSERT_TRUE(events.wait_finished(std::chrono::seconds(60)));
        std::string text;
        for (const GenerationEvent& e : events.events()) text += e.text;
        EXPECT_NE(events.events().back().finish, FinishReason::kError) << events.events().back().error.to_string();
        tokens.push_back(events.tokens());
        texts.push_back(text);
      }
      EXPECT_EQ(tokens[0], tokens[1]) << "device and host paths differ; T=" << temperature << "\n" << texts[0]
                                      << "\n" << texts[1];
      std::printf("[cuda constraints] %s T=%.1f: %s\n", constraint_kind_name(c.spec.kind), temperature,
                  texts[0].c_str());
      if (!c.regex.empty()) {
        EXPECT_TRUE(std::regex_match(texts[0], std::regex(c.regex))) << texts[0];
      } else if (tokens[0].size() < 120) {  // finished before max_tokens: must parse
        const auto value = nlohmann::json::parse(texts[0], nullptr, false);
        ASSERT_FALSE(value.is_discarded()) << texts[0];
        EXPECT_TRUE(value.contains("name") && value["name"].is_string()) << texts[0];
        EXPECT_TRUE(value.contains("tags") && value["tags"].is_array() && value["tags"].size() <= 3) << texts[0];
        EXPECT_TRUE(value.contains("n") && value["n"].is_number_integer()) << texts[0];
      }
    }
  }
#endif
}

}  // namespace
}  // namespace tnl
