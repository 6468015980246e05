#include "engine/sampling/candidate_filters.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace tnl {
namespace {

std::vector<Candidate> candidates_of(const std::vector<float>& values) {
  std::vector<Candidate> candidates;
  for (size_t i = 0; i < values.size(); ++i) candidates.push_back({values[i], static_cast<int32_t>(i)});
  return candidates;
}

std::set<int32_t> tokens(const std::vector<Candidate>& candidates, size_t n) {
  std::set<int32_t> ids;
  for (size_t i = 0; i < n; ++i) ids.insert(candidates[i].token);
  return ids;
}

double total(const std::vector<Candidate>& candidates) {
  double sum = 0.0;
  for (const Candidate& c : candidates) sum += c.value;
  return sum;
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
  auto c = candidates_of({0.05f, 0.4f, 0.2f, 0.3f, 0.05f});
  size_t n = keep_top_p(c, total(c), 0.8f);
  EXPECT_EQ(tokens(c, n), (std::set<int32_t>{1, 3, 2}));

  c = candidates_of({0.05f, 0.4f, 0.2f, 0.3f, 0.05f});
  n = keep_top_p(c, total(c), 0.7f);  // exactly reached by 0.4 + 0.3 (up to rounding)
  EXPECT_GE(n, 2u);
  EXPECT_LE(n, 3u);

  c = candidates_of({0.05f, 0.4f, 0.2f, 0.3f, 0.05f});
  EXPECT_EQ(keep_top_p(c, total(c), 0.01f), 1u);
  EXPECT_EQ(c[0].token, 1);
  EXPECT_EQ(keep_top_p(c, total(c), 1.0f), 5u);
}

TEST(CandidateFiltersTest, TopPWithEqualWeightsTakesLowerIds) {
  auto c = candidates_of(std::vector<float>(10, 1.0f));
  const size_t n = keep_top_p(c, 10.0, 0.25f);  // 2.5 of 10: three candidates
  EXPECT_EQ(tokens(c, n), (std::set<int32_t>{0, 1, 2}));
}

TEST(CandidateFiltersTest, TopPMatchesASortOnRandomRows) {
  std::mt19937_64 rng(17);
  std::exponential_distribution<float> weight(1.0f);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> values(1 + rng() % 3000);
    for (float& v : values) v = weight(rng) * weight(rng);
    const float top_p = std::uniform_real_distribution<float>(0.05f, 0.99f)(rng);
    auto c = candidates_of(values);
    const double sum = total(c);
    const size_t n = keep_top_p(c, sum, top_p);

    auto sorted = candidates_of(values);
    std::sort(sorted.begin(), sorted.end(), better_candidate);
    size_t expected = 0;
    double mass = 0.0;
    while (expected < sorted.size() && mass < top_p * sum) mass += sorted[expected++].value;
    ASSERT_NEAR(static_cast<double>(n), static_cast<double>(expected), 1.0) << "trial " << trial;
    if (n == expected) {
      EXPECT_EQ(tokens(c, n), tokens(sorted, expected)) << "trial " << trial;
    }
  }
}

TEST(CandidateFiltersTest, MinPKeepsWeightsAboveTheScaledMaximum) {
  auto c = candidates_of({0.3f, 0.5f, 0.1f, 0.06f, 0.04f});
  const size_t n = keep_min_p(c, 0.15f);
  EXPECT_EQ(tokens(c, n), (std::set<int32_t>{0, 1, 2}));
  EXPECT_EQ(keep_min_p(c, 0.0f), 5u);
  auto one = candidates_of({0.5f, 0.2f});
  EXPECT_EQ(keep_min_p(one, 1.0f), 1u);
}

}  // namespace
}  // namespace tnl
