// Truncation filters by the rules of kernels/sampling_row.h: order (x desc, id
// asc), fixed-point weights, exact sums.
#include "engine/sampling/candidate_filters.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "kernels/sampling_row.h"

namespace tnl {
namespace {

// Candidates of logits `values` with their weights at temperature 1.
std::vector<Candidate> candidates_of(const std::vector<float>& values) {
  const float max = *std::max_element(values.begin(), values.end());
  std::vector<Candidate> candidates;
  for (size_t i = 0; i < values.size(); ++i) {
    candidates.push_back({values[i], static_cast<int32_t>(i), fixed_weight(values[i], max, 1.0f)});
  }
  return candidates;
}

std::set<int32_t> tokens(const std::vector<Candidate>& candidates, size_t n) {
  std::set<int32_t> ids;
  for (size_t i = 0; i < n; ++i) ids.insert(candidates[i].token);
  return ids;
}

uint64_t total(const std::vector<Candidate>& candidates) {
  uint64_t sum = 0;
  for (const Candidate& c : candidates) sum += c.weight;
  return sum;
}

// log of the probabilities, so that weights are proportional to them.
std::vector<float> logs(std::vector<float> p) {
  for (float& x : p) x = std::log(x);
  return p;
}

TEST(CandidateFiltersTest, TopKKeepsTheKBestWithTiesToLowerIds) {
  auto c = candidates_of({0.1f, 0.9f, 0.5f, 0.9f, 0.5f, 0.2f});
  const size_t n = keep_top_k(c, 3);
  ASSERT_EQ(n, 3u);
  EXPECT_EQ(tokens(c, n), (std::set<int32_t>{1, 3, 2}));  // 0.5 tie: id 2 before id 4
  auto all = candidates_of({1.0f, 2.0f});
  EXPECT_EQ(keep_top_k(all, 5), 2u);
  EXPECT_EQ(keep_top_k(all, 0), 2u) << "0 means off";
}

TEST(CandidateFiltersTest, TopPKeepsTheSmallestSetReachingTheMass) {
  auto c = candidates_of(logs({0.05f, 0.4f, 0.2f, 0.3f, 0.05f}));
  size_t n = keep_top_p(c, total(c), 0.8f);
  EXPECT_EQ(tokens(c, n), (std::set<int32_t>{1, 3, 2}));

  c = candidates_of(logs({0.05f, 0.4f, 0.2f, 0.3f, 0.05f}));
  EXPECT_EQ(keep_top_p(c, total(c), 0.01f), 1u);
  EXPECT_EQ(c[0].token, 1);
  EXPECT_EQ(keep_top_p(c, total(c), 1.0f), 5u);
}

TEST(CandidateFiltersTest, TopPWithEqualWeightsTakesLowerIds) {
  auto c = candidates_of(std::vector<float>(10, 1.0f));
  const size_t n = keep_top_p(c, total(c), 0.25f);  // 2.5 of 10: three candidates
  EXPECT_EQ(tokens(c, n), (std::set<int32_t>{0, 1, 2}));
}

TEST(CandidateFiltersTest, TopPEqualsTheSortedPrefixOnRandomRows) {
  // The exact rule (the reference's): the shortest prefix in (x desc, id asc)
  // order whose integer weight sum, as a double, reaches top_p · total. Rows hold
  // ties and values whose weights round to the same integer.
  std::mt19937_64 rng(17);
  std::normal_distribution<float> logit(0.0f, 3.0f);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<float> values(1 + rng() % 3000);
    for (float& v : values) v = trial % 3 == 0 ? std::round(logit(rng)) : logit(rng);
    const float top_p = std::uniform_real_distribution<float>(0.01f, 0.99f)(rng);
    auto c = candidates_of(values);
    const uint64_t sum = total(c);
    const size_t n = keep_top_p(c, sum, top_p);

    auto sorted = candidates_of(values);
    std::sort(sorted.begin(), sorted.end(), better_candidate);
    size_t expected = 0;
    uint64_t running = 0;
    while (expected < sorted.size()) {
      running += sorted[expected++].weight;
      if (double(running) >= double(top_p) * double(sum)) break;
    }
    ASSERT_EQ(n, expected) << "trial " << trial;
    EXPECT_EQ(tokens(c, n), tokens(sorted, expected)) << "trial " << trial;
  }
}

TEST(CandidateFiltersTest, MinPKeepsWeightsAboveTheScaledMaximum) {
  auto c = candidates_of(logs({0.3f, 0.5f, 0.1f, 0.06f, 0.04f}));
  const float max = std::log(0.5f);
  const size_t n = keep_min_p(c, max, 1.0f, 0.15f);  // keeps p ≥ 0.075
  EXPECT_EQ(tokens(c, n), (std::set<int32_t>{0, 1, 2}));
  EXPECT_EQ(keep_min_p(c, max, 1.0f, 0.0f), 5u);
  auto two = candidates_of(logs({0.5f, 0.2f}));
  EXPECT_EQ(keep_min_p(two, std::log(0.5f), 1.0f, 1.0f), 1u);
}

}  // namespace
}  // namespace tnl
