// The CPU reference of device-side sampling (kernels/cpu/sampling_reference.h)
// against the host Sampler's rules, and the Sampler's hooks for a device
// (device_row, penalty_entries). The CUDA kernel is tested against this
// reference on the GPU machine; here the reference itself is pinned down.
#include "kernels/cpu/sampling_reference.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "engine/sampling/sampler.h"

namespace tnl {
namespace {

std::vector<float> random_row(size_t V, uint64_t seed, bool ties) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> value(-6.0f, 6.0f);
  std::vector<float> row(V);
  for (float& x : row) x = ties ? std::round(value(rng)) : value(rng);
  return row;
}

RowSampling sampling(float temperature, int32_t top_k, float top_p, float min_p) {
  RowSampling p;
  p.temperature = temperature;
  p.inv_temperature = 1.0f / temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  return p;
}

// Ids by (value descending, id ascending): the order every filter uses.
std::vector<int32_t> ranked(const std::vector<float>& x) {
  std::vector<int32_t> ids(x.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
  return ids;
}

TEST(SamplingReference, TopKKeepsExactlyTheKBestEvenWithTies) {
  for (bool ties : {false, true}) {
    const auto row = random_row(500, 1, ties);
    const auto order = ranked(row);
    for (int32_t k : {1, 7, 100}) {
      auto kept = ref::sample_row(row, sampling(1.0f, k, 1.0f, 0.0f), {}, false).kept;
      std::vector<int32_t> want(order.begin(), order.begin() + k);
      std::sort(want.begin(), want.end());
      EXPECT_EQ(kept, want) << "k=" << k << " ties=" << ties;
    }
  }
}

TEST(SamplingReference, TopPKeepsTheShortestPrefixReachingP) {
  for (bool ties : {false, true}) {
    const auto row = random_row(300, 2, ties);
    const auto order = ranked(row);
    const float max = row[order[0]];
    for (float p : {0.1f, 0.5f, 0.9f}) {
      const RowSampling params = sampling(0.8f, 0, p, 0.0f);
      const auto kept = ref::sample_row(row, params, {}, false).kept;
      double total = 0.0;
      for (float x : row) total += double(ref::fixed_weight(x, max, params.inv_temperature));
      double mass = 0.0;
      for (int32_t id : kept) mass += double(ref::fixed_weight(row[id], max, params.inv_temperature));
      const double last = double(ref::fixed_weight(row[order[kept.size() - 1]], max, params.inv_temperature));
      EXPECT_GE(mass, p * total) << "p=" << p;
      EXPECT_LT(mass - last, p * total) << "p=" << p << ": one fewer would do";
      for (size_t i = 0; i < kept.size(); ++i) EXPECT_TRUE(std::binary_search(kept.begin(), kept.end(), order[i]));
    }
  }
}

TEST(SamplingReference, MinPDropsWeightsBelowTheBestTimesMinP) {
  const auto row = random_row(400, 3, false);
  const RowSampling params = sampling(1.0f, 0, 1.0f, 0.1f);
  const auto kept = ref::sample_row(row, params, {}, false).kept;
  const float max = *std::max_element(row.begin(), row.end());
  for (int32_t id = 0; id < int32_t(row.size()); ++id) {
    const bool passes = std::exp(row[id] - max) >= 0.1f;
    EXPECT_EQ(std::binary_search(kept.begin(), kept.end(), id), passes) << id;
  }
}

TEST(SamplingReference, DrawFollowsTheSoftmaxExactlyOverAGridOfUniforms) {
  const auto row = random_row(50, 4, false);
  const float T = 0.7f;
  RowSampling params = sampling(T, 0, 1.0f, 0.0f);
  const int n = 200000;
  std::vector<int> counts(row.size(), 0);
  for (int j = 0; j < n; ++j) {
    params.uniform = (j + 0.5) / n;
    ++counts[size_t(ref::sample_row(row, params, {}, false).sampled.token)];
  }
  const double max = *std::max_element(row.begin(), row.end());
  double z = 0.0;
  for (float x : row) z += std::exp((x - max) / T);
  for (size_t i = 0; i < row.size(); ++i) {
    const double p = std::exp((row[i] - max) / T) / z;
    EXPECT_NEAR(counts[i], p * n, 2.0 + 1e-5 * n) << "token " << i;  // an inverse CDF over a grid: ±1 per boundary
  }
}

TEST(SamplingReference, PenaltiesAndGreedyAgreeWithTheHostSampler) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto row = random_row(200, 10 + seed, false);
    SamplingParams sp;
    sp.temperature = 0.0f;
    sp.repetition_penalty = 1.8f;
    sp.presence_penalty = 1.5f;
    sp.frequency_penalty = 0.7f;
    const auto order = ranked(row);
    // Prompt and outputs among the best tokens, so that the penalties change the argmax.
    const std::vector<int32_t> prompt = {order[0], order[3], order[3], 150};
    Sampler host(sp, prompt);
    for (int32_t t : {order[1], order[1], order[2], order[0]}) host.accept(t);
    Sampler device_side = host;
    const RowSampling params = device_side.device_row();
    const std::vector<PenaltyEntry> entries = device_side.penalty_entries();
    EXPECT_EQ(ref::sample_row(row, params, entries, false).sampled.token, host.sample(row).token) << "seed " << seed;
  }
}

// Token controls (logit_bias, bans, an allowed-token mask) on top of the
// penalties: the host Sampler and the reference take the same token, greedy and
// sampled, and never one outside the mask or banned.
TEST(SamplingReference, BiasesAndMasksAgreeWithTheHostSampler) {
  for (uint64_t seed = 0; seed < 40; ++seed) {
    const auto row = random_row(300, 100 + seed, false);
    SamplingParams sp;
    sp.temperature = seed % 2 == 0 ? 0.0f : 0.9f;
    sp.top_p = 0.95f;
    sp.presence_penalty = seed % 3 == 0 ? 0.8f : 0.0f;
    sp.seed = seed;
    const auto order = ranked(row);
    Sampler host(sp, {order[0]});
    for (int32_t t : {order[0], order[2]}) host.accept(t);
    Sampler device_side = host;
    std::vector<uint32_t> mask((300 + 31) / 32, 0u);
    std::mt19937_64 rng(seed);
    for (int32_t id = 0; id < 300; ++id) {
      if (rng() % 3 == 0) mask[size_t(id) >> 5] |= 1u << (id & 31);
    }
    // Biases (sorted, unique): the best token banned, others pushed up and down.
    std::vector<PenaltyEntry> biases;
    for (int32_t id : {order[0], order[1], order[4], order[7], 250}) biases.push_back({id, 0, 0, 0.0f});
    std::sort(biases.begin(), biases.end(), [](const auto& a, const auto& b) { return a.token < b.token; });
    for (PenaltyEntry& e : biases) e.bias = e.token == order[0] ? -INFINITY : e.token == order[4] ? 7.5f : -3.0f;
    const RowSampling params = device_side.device_row();
    const std::vector<PenaltyEntry> entries = device_side.penalty_entries(biases);
    const int32_t want = ref::sample_row(row, params, entries, false, mask).sampled.token;
    const int32_t got = host.sample(row, {biases, mask}).token;
    EXPECT_EQ(got, want) << "seed " << seed;
    EXPECT_TRUE(mask_allows(mask.data(), got)) << "seed " << seed;
    EXPECT_NE(got, order[0]) << "banned, seed " << seed;
  }
}

TEST(SamplerDeviceHooks, PenaltyEntriesMergePromptAndOutputs) {
  SamplingParams sp;
  sp.repetition_penalty = 1.2f;
  sp.frequency_penalty = 0.5f;
  Sampler s(sp, {5, 3, 5, 9});
  for (int32_t t : {9, 4, 4, 11}) s.accept(t);
  const auto entries = s.penalty_entries();
  ASSERT_EQ(entries.size(), 5u);  // 3, 4, 5, 9, 11
  const std::vector<std::tuple<int32_t, int32_t, int32_t>> want = {{3, 0, 1}, {4, 2, 0}, {5, 0, 1}, {9, 1, 1}, {11, 1, 0}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(entries[i].token, std::get<0>(want[i]));
    EXPECT_EQ(entries[i].output_count, std::get<1>(want[i]));
    EXPECT_EQ(entries[i].in_prompt, std::get<2>(want[i]));
  }
  SamplingParams presence_only;
  presence_only.presence_penalty = 0.5f;
  Sampler p(presence_only, {5, 3});
  p.accept(7);
  ASSERT_EQ(p.penalty_entries().size(), 1u) << "prompt tokens matter only to the repetition penalty";
  EXPECT_TRUE(Sampler(SamplingParams{}, {1, 2}).penalty_entries().empty());
}

TEST(SamplerDeviceHooks, DeviceRowDrawsFromTheSeededRng) {
  SamplingParams sp;
  sp.temperature = 0.9f;
  sp.top_k = 20;
  sp.seed = 42;
  Sampler a(sp, {}), b(sp, {});
  const RowSampling ra = a.device_row(), rb = b.device_row();
  EXPECT_EQ(ra.uniform, rb.uniform);
  EXPECT_NE(a.device_row().uniform, ra.uniform) << "each token draws afresh";
  EXPECT_GE(ra.uniform, 0.0);
  EXPECT_LT(ra.uniform, 1.0);
  EXPECT_FLOAT_EQ(ra.inv_temperature, 1.0f / 0.9f);
  EXPECT_EQ(ra.top_k, 20);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  EXPECT_EQ(Sampler(greedy, {}).device_row().uniform, 0.0) << "greedy draws nothing";
}

}  // namespace
}  // namespace tnl
