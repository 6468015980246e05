// Randomized-mutation fuzzing of the pure request parsers (bounded: a fixed number
// of iterations from a fixed seed, so failures reproduce). Invariants: no exception
// escapes, every rejection is a 4xx with a message and a body that is valid JSON,
// every acceptance passes validation again.
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/api/openai_request.h"

namespace tnl::server {
namespace {

const std::vector<std::string> kSeeds = {
    R"({"prompt": "hello", "max_tokens": 4, "temperature": 0})",
    R"({"prompt": ["a", "b"], "n": 2, "stop": ["x", "y"], "logprobs": 2, "echo": true})",
    R"({"prompt": [1, 2, 3], "stream": true, "stream_options": {"include_usage": true}})",
    R"({"prompt": [[1, 2], [3]], "top_p": 0.9, "top_k": 5, "min_p": 0.05, "seed": 7})",
    R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 3})",
    R"({"messages": [{"role": "system", "content": [{"type": "text", "text": "s"}]}], "max_completion_tokens": 3})",
};

const std::vector<std::string> kFragments = {
    "{", "}", "[", "]", ",", ":", "\"", "null", "true", "false", "-1", "1e308", "0.5", "\\u0000",
    "\"prompt\"", "\"messages\"", "\"n\"", "\"max_tokens\"", "\"stop\"", "\xff", "\xc3", "9999999999999999999",
    "{\"role\":1}", "[[[", "\"stream_options\":{}", "-0", "NaN",
};

std::string mutate(std::string s, std::mt19937_64& rng) {
  const int edits = 1 + int(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 5) {
      case 0:  // flip a byte
        if (!s.empty()) s[at % s.size()] = char(rng());
        break;
      case 1:  // delete a span
        if (!s.empty()) s.erase(at % s.size(), 1 + rng() % 8);
        break;
      case 2:  // insert a JSON-ish fragment
        s.insert(at, kFragments[rng() % kFragments.size()]);
        break;
      case 3:  // splice with another seed
      {
        const std::string& other = kSeeds[rng() % kSeeds.size()];
        s = s.substr(0, at) + other.substr(rng() % (other.size() + 1));
        break;
      }
      default:  // duplicate a span
        if (!s.empty()) s.insert(at, s.substr(at % s.size(), 1 + rng() % 16));
    }
  }
  return s;
}

// Replaces one top-level value by a random JSON value of a random type.
std::string retype(const std::string& seed, std::mt19937_64& rng) {
  nlohmann::json doc = nlohmann::json::parse(seed);
  std::vector<std::string> keys;
  for (auto& [k, v] : doc.items()) keys.push_back(k);
  const std::vector<nlohmann::json> values = {nullptr, true, -5, 0, 3, 2.5, -1e9, "", "text",
                                              nlohmann::json::array(), nlohmann::json::array({1, "a"}),
                                              nlohmann::json::object(), nlohmann::json::array({nlohmann::json::array()})};
  doc[keys[rng() % keys.size()]] = values[rng() % values.size()];
  return doc.dump();
}

void check(const std::string& body, bool chat, const SpecLimits& limits) {
  ApiResult<CompletionSpec> r =
      chat ? parse_chat_request(body, limits) : parse_completion_request(body, limits);
  if (r.ok()) {
    EXPECT_FALSE(validate_completion_spec(r.value(), limits).has_value()) << body;
    return;
  }
  const ApiError& e = r.error();
  EXPECT_GE(e.http_status, 400) << body;
  EXPECT_LT(e.http_status, 500) << body;
  EXPECT_FALSE(e.message.empty()) << body;
  EXPECT_FALSE(nlohmann::json::parse(e.to_json(), nullptr, false).is_discarded()) << body;
}

TEST(RequestParserFuzz, RandomMutationsNeverCrashOrAnswer5xx) {
  SpecLimits limits;
  limits.served_model = "tiny";
  limits.vocab_size = 100;
  std::mt19937_64 rng(20240611);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int iterations = 0;
  for (; iterations < 200000 && std::chrono::steady_clock::now() < deadline; ++iterations) {
    const std::string& seed = kSeeds[rng() % kSeeds.size()];
    const std::string body = (rng() % 3 == 0) ? retype(seed, rng) : mutate(seed, rng);
    check(body, /*chat=*/rng() % 2 == 0, limits);
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(iterations, 1000);
  // Pathological nesting is refused before parsing.
  check(std::string(1 << 20, '['), false, limits);
  check("{\"prompt\":" + std::string(5000, '[') + "1" + std::string(5000, ']') + "}", false, limits);
}

}  // namespace
}  // namespace tnl::server
