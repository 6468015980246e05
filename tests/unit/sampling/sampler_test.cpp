#include "engine/sampling/sampler.h"

#include <gtest/gtest.h>

#include "kernels/cpu/sampling_reference.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>

namespace tnl {
namespace {

// A reproducible logits row with values in [-scale, scale].
std::vector<float> random_logits(size_t vocab, uint64_t seed, float scale = 5.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> value(-scale, scale);
  std::vector<float> logits(vocab);
  for (float& logit : logits) logit = value(rng);
  return logits;
}

// Logits whose softmax is exactly `probabilities`.
std::vector<float> logits_of(const std::vector<double>& probabilities) {
  std::vector<float> logits;
  for (double p : probabilities) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

// Token ids ordered best first (ties: lower id), as the sampler orders them.
std::vector<int32_t> ranked(const std::vector<float>& logits) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  return ids;
}

SamplingParams seeded(uint64_t seed) {
  SamplingParams params;
  params.seed = seed;
  return params;
}

int32_t greedy_pick(const std::vector<float>& logits, SamplingParams params,
                    const std::vector<int32_t>& prompt = {}, const std::vector<int32_t>& output = {}) {
  params.temperature = 0.0f;
  Sampler sampler(params, prompt);
  for (int32_t token : output) sampler.accept(token);
  return sampler.sample(logits).token;
}

// penalty_entries() from a Sampler that keeps its list one accepted token at a
// time equals the list built from scratch (prompt set, output counts, biases):
// after every token, for every kind of penalty, with and without biases.
TEST(SamplerTest, PenaltyListKeptTokenByTokenEqualsTheListBuiltFromScratch) {
  std::mt19937_64 rng(3);
  for (int kind = 0; kind < 3; ++kind) {
    SamplingParams params;
    params.repetition_penalty = kind == 0 ? 1.3f : 1.0f;
    params.frequency_penalty = kind == 1 ? 0.5f : 0.0f;
    params.presence_penalty = kind == 2 ? 0.25f : 0.0f;
    std::vector<int32_t> prompt(300);
    for (int32_t& t : prompt) t = int32_t(rng() % 500);
    Sampler sampler(params, prompt);
    std::map<int32_t, int32_t> counts;
    for (int step = 0; step < 200; ++step) {
      const int32_t token = int32_t(rng() % 700);  // inside and outside the prompt's ids
      sampler.accept(token);
      ++counts[token];
      std::vector<PenaltyEntry> biases;
      if (step % 3 == 0) biases = {{5, 0, 0, -1.5f}, {int32_t(rng() % 700) + 10, 0, 0, 2.0f}};
      std::sort(biases.begin(), biases.end(), [](const auto& a, const auto& b) { return a.token < b.token; });
      // From scratch: every penalized token (prompt ones only for the repetition
      // penalty) and every biased token, ascending, each once.
      std::map<int32_t, PenaltyEntry> want;
      if (params.repetition_penalty != 1.0f) {
        for (int32_t t : prompt) want[t] = {t, 0, 1, 0.0f};
      }
      for (const auto& [t, n] : counts) {
        PenaltyEntry& e = want.try_emplace(t, PenaltyEntry{t, 0, 0, 0.0f}).first->second;
        e.output_count = n;
      }
      for (const PenaltyEntry& b : biases) {
        PenaltyEntry& e = want.try_emplace(b.token, PenaltyEntry{b.token, 0, 0, 0.0f}).first->second;
        e.bias = b.bias;
      }
      const std::vector<PenaltyEntry> got = sampler.penalty_entries(biases);
      ASSERT_EQ(got.size(), want.size()) << "kind " << kind << ", step " << step;
      size_t i = 0;
      for (const auto& [t, e] : want) {
        ASSERT_EQ(got[i].token, e.token) << "kind " << kind << ", step " << step << ", entry " << i;
        ASSERT_EQ(got[i].output_count, e.output_count) << "token " << t;
        ASSERT_EQ(got[i].in_prompt, e.in_prompt) << "token " << t;
        ASSERT_EQ(got[i].bias, e.bias) << "token " << t;
        ++i;
      }
    }
  }
}

TEST(SamplerTest, PromptSetIsEachPromptIdOnceInIdOrder) {
  // Ids on both sides of the 64-id words the set is built through, repeated, unordered.
  SamplingParams params;
  params.repetition_penalty = 1.2f;
  const std::vector<int32_t> prompt = {128, 5, 63, 0, 64, 5, 127, 64, 1000, 0, 63};
  const std::vector<PenaltyEntry> got = Sampler(params, prompt).penalty_entries();
  const std::vector<int32_t> want = {0, 5, 63, 64, 127, 128, 1000};
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].token, want[i]);
    EXPECT_EQ(got[i].in_prompt, 1);
    EXPECT_EQ(got[i].output_count, 0);
  }
}

TEST(SamplerTest, GreedyIsArgmaxWithTiesToTheLowestId) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto logits = random_logits(1000, seed);
    EXPECT_EQ(greedy_pick(logits, seeded(seed)), ranked(logits).front());
  }
  EXPECT_EQ(greedy_pick({1.0f, 5.0f, 5.0f, 2.0f}, {}), 1);
  EXPECT_EQ(greedy_pick({-1.0f, -1.0f}, {}), 0);
  EXPECT_EQ(greedy_pick({std::nanf(""), 1.0f, 2.0f, std::nanf("")}, {}), 2);
}

TEST(SamplerTest, TopKNeverLeavesTheKBest) {
  const auto logits = random_logits(1000, 7, 2.0f);
  const auto order = ranked(logits);
  const std::set<int32_t> best(order.begin(), order.begin() + 10);
  std::set<int32_t> seen;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    SamplingParams params = seeded(seed);
    params.top_k = 10;
    params.temperature = 2.0f;  // flatten: tokens outside the top 10 would be likely
    Sampler sampler(params, {});
    for (int draw = 0; draw < 5; ++draw) {
      const int32_t token = sampler.sample(logits).token;
      EXPECT_TRUE(best.count(token)) << "seed " << seed << " token " << token;
      seen.insert(token);
    }
  }
  EXPECT_EQ(seen.size(), 10u) << "every one of the k best should come up";
}

TEST(SamplerTest, TopKOfOneIsGreedy) {
  const auto logits = random_logits(500, 3);
  for (uint64_t seed = 0; seed < 50; ++seed) {
    SamplingParams params = seeded(seed);
    params.top_k = 1;
    EXPECT_EQ(Sampler(params, {}).sample(logits).token, ranked(logits).front());
  }
}

TEST(SamplerTest, TopPNeverLeavesTheNucleus) {
  // 0.4 + 0.3 < 0.8 ≤ 0.4 + 0.3 + 0.2: the nucleus is {0, 1, 2}.
  const auto logits = logits_of({0.4, 0.3, 0.2, 0.05, 0.03, 0.02});
  std::map<int32_t, int> counts;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    SamplingParams params = seeded(seed);
    params.top_p = 0.8f;
    ++counts[Sampler(params, {}).sample(logits).token];
  }
  EXPECT_EQ(counts.size(), 3u);
  for (const auto& [token, count] : counts) EXPECT_LE(token, 2) << "outside the nucleus";
  // Renormalised over the nucleus: 0.4/0.9, 0.3/0.9, 0.2/0.9.
  EXPECT_NEAR(counts[0] / 2000.0, 0.444, 0.04);
  EXPECT_NEAR(counts[2] / 2000.0, 0.222, 0.04);
}

TEST(SamplerTest, TopPOnARandomRowStaysInTheNucleus) {
  const auto logits = random_logits(4000, 11, 4.0f);
  const auto order = ranked(logits);
  const auto log_probs = log_softmax(logits);
  const float top_p = 0.6f;
  // Nucleus: the best tokens until their mass reaches top_p. Tokens whose
  // preceding mass is within rounding of top_p are allowed either way.
  std::set<int32_t> nucleus;
  double mass = 0.0;
  for (int32_t token : order) {
    if (mass >= top_p + 1e-6) break;
    nucleus.insert(token);
    mass += std::exp(static_cast<double>(log_probs[token]));
  }
  ASSERT_GT(nucleus.size(), 50u);
  for (uint64_t seed = 0; seed < 500; ++seed) {
    SamplingParams params = seeded(seed);
    params.top_p = top_p;
    const int32_t token = Sampler(params, {}).sample(logits).token;
    EXPECT_TRUE(nucleus.count(token)) << "seed " << seed << " token " << token;
  }
}

TEST(SamplerTest, MinPDropsTokensBelowTheScaledMaximum) {
  // min_p 0.15 · 0.5 = 0.075: tokens 0, 1 and 2 stay.
  const auto logits = logits_of({0.5, 0.3, 0.1, 0.06, 0.04});
  std::set<int32_t> seen;
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    SamplingParams params = seeded(seed);
    params.min_p = 0.15f;
    seen.insert(Sampler(params, {}).sample(logits).token);
  }
  EXPECT_EQ(seen, (std::set<int32_t>{0, 1, 2}));
}

TEST(SamplerTest, FrequenciesFollowTheSoftmax) {
  const auto logits = logits_of({0.5, 0.3, 0.2});
  SamplingParams params;
  std::vector<int> counts(3);
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) {
    // A fresh sampler per draw keeps the penalty-free state; vary the seed.
    params.seed = static_cast<uint64_t>(i);
    ++counts[static_cast<size_t>(Sampler(params, {}).sample(logits).token)];
  }
  EXPECT_NEAR(counts[0] / double(draws), 0.5, 0.02);
  EXPECT_NEAR(counts[1] / double(draws), 0.3, 0.02);
  EXPECT_NEAR(counts[2] / double(draws), 0.2, 0.02);
}

TEST(SamplerTest, LowTemperatureConcentratesOnTheBest) {
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f};
  int best = 0;
  for (uint64_t seed = 0; seed < 500; ++seed) {
    SamplingParams params = seeded(seed);
    params.temperature = 0.05f;  // weight of token 1: exp(-10) ≈ 4.5e-5
    best += Sampler(params, {}).sample(logits).token == 0;
  }
  EXPECT_GE(best, 498);
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedsDiffer) {
  const auto logits = random_logits(1000, 5, 1.0f);
  const auto run = [&](uint64_t seed) {
    SamplingParams params = seeded(seed);
    params.top_p = 0.95f;
    Sampler sampler(params, {});
    std::vector<int32_t> tokens;
    for (int i = 0; i < 50; ++i) tokens.push_back(sampler.sample(logits).token);
    return tokens;
  };
  EXPECT_EQ(run(1234), run(1234));
  EXPECT_NE(run(1234), run(1235));
  // Unseeded samplers draw their seed from the system: two should differ.
  SamplingParams unseeded;
  Sampler a(unseeded, {}), b(unseeded, {});
  std::vector<int32_t> from_a, from_b;
  for (int i = 0; i < 50; ++i) {
    from_a.push_back(a.sample(logits).token);
    from_b.push_back(b.sample(logits).token);
  }
  EXPECT_NE(from_a, from_b);
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingParams params;
  params.repetition_penalty = 2.0f;
  // Token 0 at 2.0 becomes 1.0: it loses to 1.01 and beats 0.99.
  EXPECT_EQ(greedy_pick({2.0f, 1.01f}, params, {0}), 1);
  EXPECT_EQ(greedy_pick({2.0f, 0.99f}, params, {0}), 0);
  // Token 0 at -1.0 becomes -2.0: it loses to -1.99 and beats -2.01.
  EXPECT_EQ(greedy_pick({-1.0f, -1.99f}, params, {0}), 1);
  EXPECT_EQ(greedy_pick({-1.0f, -2.01f}, params, {0}), 0);
  // Once per token, however often it occurs; generated tokens count too.
  EXPECT_EQ(greedy_pick({2.0f, 0.99f}, params, {0, 0, 0}, {0, 0}), 0);
  EXPECT_EQ(greedy_pick({2.0f, 1.01f}, params, {}, {0}), 1);
  // Tokens never seen are untouched.
  EXPECT_EQ(greedy_pick({2.0f, 1.99f, 0.0f}, params, {2}), 0);
}

TEST(SamplerTest, PresenceAndFrequencyPenaltiesCountGeneratedTokensOnly) {
  SamplingParams presence;
  presence.presence_penalty = 0.5f;
  // 1.0 - 0.5 = 0.5, once, however many times token 0 came out.
  EXPECT_EQ(greedy_pick({1.0f, 0.51f}, presence, {}, {0, 0, 0}), 1);
  EXPECT_EQ(greedy_pick({1.0f, 0.49f}, presence, {}, {0, 0, 0}), 0);
  EXPECT_EQ(greedy_pick({1.0f, 0.51f}, presence, {0}), 0) << "prompt tokens are not penalised";

  SamplingParams frequency;
  frequency.frequency_penalty = 0.4f;
  // 1.0 - 3 · 0.4 = -0.2.
  EXPECT_EQ(greedy_pick({1.0f, -0.19f}, frequency, {}, {0, 0, 0}), 1);
  EXPECT_EQ(greedy_pick({1.0f, -0.21f}, frequency, {}, {0, 0, 0}), 0);

  // A negative penalty encourages repetition.
  SamplingParams encourage;
  encourage.presence_penalty = -1.0f;
  EXPECT_EQ(greedy_pick({0.0f, 0.9f}, encourage, {}, {0}), 0);
}

TEST(SamplerTest, SampleRecordsItsTokenForThePenalties) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.presence_penalty = 2.0f;
  Sampler sampler(params, {});
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f};
  EXPECT_EQ(sampler.sample(logits).token, 0);
  EXPECT_EQ(sampler.sample(logits).token, 1);
  EXPECT_EQ(sampler.sample(logits).token, 2);
}

TEST(SamplerTest, LogprobsComeFromTheRawLogits) {
  const auto logits = random_logits(300, 9);
  const auto expected = log_softmax(logits);
  const auto order = ranked(logits);
  SamplingParams params = seeded(3);
  params.logprobs = 5;
  params.temperature = 0.7f;          // neither temperature
  params.repetition_penalty = 1.5f;   // nor penalties change the reported logprobs
  Sampler sampler(params, {order[0], order[1]});
  for (int i = 0; i < 20; ++i) {
    const SampleResult result = sampler.sample(logits);
    EXPECT_NEAR(result.logprob, expected[result.token], 1e-5);
    ASSERT_EQ(result.top.size(), 5u);
    for (size_t r = 0; r < 5; ++r) {
      EXPECT_EQ(result.top[r].token, order[r]);
      EXPECT_NEAR(result.top[r].logprob, expected[order[r]], 1e-5);
    }
  }
}

TEST(SamplerTest, LogprobsOffOrZero) {
  const auto logits = random_logits(100, 1);
  SamplingParams params = seeded(1);
  EXPECT_TRUE(Sampler(params, {}).sample(logits).top.empty());
  params.logprobs = 0;
  const SampleResult result = Sampler(params, {}).sample(logits);
  EXPECT_TRUE(result.top.empty());
  EXPECT_NEAR(result.logprob, log_softmax(logits)[result.token], 1e-5);
}

TEST(SamplerTest, MaskedAndNanLogitsAreNeverChosen) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> logits = {-inf, 0.0f, std::nanf(""), 0.5f, -inf};
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const int32_t token = Sampler(seeded(seed), {}).sample(logits).token;
    EXPECT_TRUE(token == 1 || token == 3) << token;
  }
}

TEST(SamplerTest, NonFiniteRowsAreFlagged) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> masked = {0.0f, 1.0f, -inf}, nan_row = {0.0f, std::nanf(""), 1.0f},
                           inf_row = {0.0f, inf, 1.0f};
  EXPECT_FALSE(Sampler(seeded(1), {}).sample(masked).non_finite) << "-inf is a masked token, not an error";
  SamplingParams greedy = seeded(1);
  greedy.temperature = 0.0f;
  for (const SamplingParams& params : {seeded(1), greedy}) {
    EXPECT_TRUE(Sampler(params, {}).sample(nan_row).non_finite);
    EXPECT_TRUE(Sampler(params, {}).sample(inf_row).non_finite);
  }
}

// One rule set (kernels/sampling_row.h): the host Sampler, given a seed, picks
// exactly the token the CPU reference picks from the same row with the uniform
// and penalty entries the same request would hand to the GPU — over random rows
// with ties, -inf and NaN, and every combination of the parameters, across steps
// (so that the penalties' output counts grow).
TEST(SamplerTest, HostSamplingFollowsTheSharedRulesExactly) {
  std::mt19937_64 rng(2026);
  const float inf = std::numeric_limits<float>::infinity();
  const float temperatures[] = {0.0f, 0.3f, 1.0f, 1.7f};
  const int32_t top_ks[] = {0, 1, 7, 120};
  const float top_ps[] = {1.0f, 0.95f, 0.5f, 0.02f};
  const float min_ps[] = {0.0f, 0.05f, 0.4f};
  int checked = 0, non_greedy_distinct = 0;
  for (int trial = 0; trial < 400; ++trial) {
    SamplingParams params = seeded(rng());
    params.temperature = temperatures[rng() % 4];
    params.top_k = top_ks[rng() % 4];
    params.top_p = top_ps[rng() % 4];
    params.min_p = min_ps[rng() % 3];
    if (rng() % 2) params.repetition_penalty = std::uniform_real_distribution<float>(0.5f, 2.0f)(rng);
    if (rng() % 2) params.presence_penalty = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
    if (rng() % 2) params.frequency_penalty = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
    std::vector<int32_t> prompt(1 + rng() % 40);
    const size_t vocab = 50 + rng() % 2000;
    for (int32_t& t : prompt) t = int32_t(rng() % vocab);
    Sampler host(params, prompt), device(params, prompt);
    std::set<int32_t> seen;
    for (int step = 0; step < 6; ++step) {
      std::vector<float> row = random_logits(vocab, rng(), 4.0f);
      if (trial % 5 == 0) {
        for (float& x : row) x = std::round(x);  // many exact ties
      }
      for (int i = 0; i < 3; ++i) row[rng() % vocab] = -inf;
      const SampleResult got = host.sample(row);
      const RowSampling rules = device.device_row();
      const std::vector<PenaltyEntry> entries = device.penalty_entries();
      const ref::SampleTrace want = ref::sample_row(row, rules, entries, /*want_logprob=*/false);
      ASSERT_EQ(got.token, want.sampled.token) << "trial " << trial << " step " << step;
      device.accept(want.sampled.token);
      seen.insert(got.token);
      ++checked;
    }
    non_greedy_distinct += params.temperature > 0.0f && seen.size() > 1;
  }
  EXPECT_EQ(checked, 2400);
  EXPECT_GT(non_greedy_distinct, 50) << "the draws should not all be degenerate";
}

TEST(LogSoftmaxTest, NormalisesAndIsShiftInvariant) {
  const auto logits = random_logits(1000, 2);
  const auto out = log_softmax(logits);
  double sum = 0.0;
  for (float lp : out) sum += std::exp(static_cast<double>(lp));
  EXPECT_NEAR(sum, 1.0, 1e-5);
  std::vector<float> shifted = logits;
  for (float& l : shifted) l += 1000.0f;  // exp(1000) overflows without the max shift
  const auto out_shifted = log_softmax(shifted);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], out_shifted[i], 1e-3);
  // log softmax differences equal logit differences.
  EXPECT_NEAR(out[3] - out[7], logits[3] - logits[7], 1e-5);
}

TEST(LogSoftmaxTest, MaskedEntriesStayMinusInfinity) {
  const float inf = std::numeric_limits<float>::infinity();
  const auto out = log_softmax(std::vector<float>{0.0f, -inf, 0.0f});
  EXPECT_NEAR(out[0], std::log(0.5f), 1e-6);
  EXPECT_EQ(out[1], -inf);
  EXPECT_EQ(log_sum_exp(std::vector<float>{}), -std::numeric_limits<double>::infinity());
}

}  // namespace
}  // namespace tnl
