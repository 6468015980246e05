// Device-side sampling (kernels/cuda/sample_rows.cu) against its CPU reference
// (kernels/cpu/sampling_reference.cpp) on random rows: greedy, temperature,
// top-k, top-p, min-p, penalties and their combinations, rows full of ties, rows
// with −inf and NaN, peaked rows, top-p alone (the estimated and the exact
// compacted paths, rows that mislead the estimate, and a set too large for
// either), a real vocabulary size. The sampled token must lie in the
// reference's kept set on every row and equal the reference's token (the two
// can part only where expf's last bit moves a draw boundary); logprobs agree;
// two runs give the same tokens. Skips without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "kernels/cpu/sampling_reference.h"
#include "kernels/cuda/launchers.h"
#include "tests/support/random.h"
#include "tests/unit/kernels_cuda/device_test_support.h"

namespace tnl {
namespace {

using test::DeviceVector;

struct Row {
  std::vector<float> logits;
  RowSampling params;
  std::vector<PenaltyEntry> penalties;
  std::vector<uint32_t> mask;  // allowed tokens; empty: none
  bool want_logprob = false;
};

RowSampling params(float temperature, int32_t top_k, float top_p, float min_p) {
  RowSampling p;
  p.temperature = temperature;
  p.inv_temperature = temperature > 0.0f ? 1.0f / temperature : 0.0f;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  return p;
}

std::vector<Row> make_rows(int64_t V, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const std::vector<RowSampling> settings = {
      params(0.0f, 0, 1.0f, 0.0f),   params(1.0f, 0, 1.0f, 0.0f),  params(0.7f, 1, 1.0f, 0.0f),
      params(0.7f, 5, 1.0f, 0.0f),   params(1.3f, 50, 1.0f, 0.0f), params(1.0f, 0, 0.9f, 0.0f),
      params(0.5f, 0, 0.5f, 0.0f),   params(1.0f, 0, 1.0f, 0.05f), params(0.8f, 40, 0.95f, 0.02f),
      params(2.0f, 0, 0.3f, 0.0f),   params(0.1f, 0, 1.0f, 0.0f),  params(1.0f, int32_t(V) - 1, 0.99f, 0.0f),
      // Top-p alone goes through the compacted row; at V = 64000 this one keeps
      // more candidates than the compaction holds and takes the full passes.
      params(2.0f, 0, 0.99f, 0.0f),  params(0.7f, 0, 0.8f, 0.1f),
      // Flat enough that kind 6's misled threshold keeps more than the compaction holds.
      params(10.0f, 0, 0.9f, 0.0f)};
  std::vector<Row> rows;
  for (size_t i = 0; i < 8 * settings.size(); ++i) {
    Row r;
    r.params = settings[i % settings.size()];
    r.params.uniform = unit(rng);
    r.logits = test::random_vector(V, seed * 1000 + i, -8.0f, 8.0f);
    const size_t kind = i / settings.size();
    if (kind == 1) {
      for (float& x : r.logits) x = std::round(x);  // ~17 distinct values: ties everywhere
    } else if (kind == 2) {
      for (int64_t j = 0; j < V; j += 3) r.logits[j] = -INFINITY;
      r.logits[size_t(V / 2)] = NAN;
    } else if (kind == 3) {
      r.params.repetition_penalty = 1.3f;
      r.params.presence_penalty = 0.5f;
      r.params.frequency_penalty = 0.25f;
      std::vector<int32_t> ids(V);
      for (int64_t j = 0; j < V; ++j) ids[j] = int32_t(j);
      std::shuffle(ids.begin(), ids.end(), rng);
      for (int j = 0; j < 60; ++j) r.penalties.push_back({ids[j], int32_t(j % 4), int32_t(j % 3 == 0)});
    } else if (kind == 4) {
      // Structured output and token controls: an allowed-token mask of ~1/5 of
      // the vocabulary, biases (logit_bias, −inf bans) on some tokens, some
      // of them outside the mask (they must stay out).
      r.mask.assign(size_t((V + 31) / 32), 0u);
      for (int64_t j = 0; j < V; ++j) {
        if (rng() % 5 == 0) r.mask[size_t(j >> 5)] |= 1u << (j & 31);
      }
      r.params.presence_penalty = 0.3f;
      for (int j = 0; j < 40; ++j) {
        const float bias = j % 4 == 0 ? -INFINITY : float(int(rng() % 41) - 20);
        r.penalties.push_back({int32_t(j * (V / 40)), int32_t(j % 2), 0, bias});
      }
    } else if (kind == 5) {
      for (float& x : r.logits) x *= 6.0f;  // peaked: most of the row weighs nothing in fixed point
    } else if (kind == 6 || kind == 7) {
      // Rows that mislead top-p's sample (the ids it reads: launchers.h). Kind 6:
      // the sampled ids weigh nothing, so the sample says the maximum alone
      // reaches top_p, and what its threshold keeps weighs too little (or, flat,
      // is more than the compaction holds). Kind 7: the sampled ids crowd just
      // below the maximum, so the sample says the top-p set cannot fit.
      const int64_t group = cuda::kSampleEstimateGroup, every = cuda::kSampleEstimateEvery;
      for (int64_t j = 0; j < V; ++j) {
        if ((j / group) % every != 0) continue;
        r.logits[size_t(j)] = kind == 6 ? -30.0f : 7.0f + float(unit(rng));
      }
    }
    r.want_logprob = i % 2 == 0;
    rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<SampledToken> run_on_device(const std::vector<Row>& rows, int64_t V) {
  std::vector<float> logits;
  std::vector<cuda::SampleRowArgs> args;
  std::vector<PenaltyEntry> entries;
  std::vector<uint32_t> masks;
  for (size_t i = 0; i < rows.size(); ++i) {
    logits.insert(logits.end(), rows[i].logits.begin(), rows[i].logits.end());
    cuda::SampleRowArgs a;
    a.params = rows[i].params;
    a.row = int32_t(i);
    a.penalty_begin = int32_t(entries.size());
    a.penalty_count = int32_t(rows[i].penalties.size());
    a.want_logprob = rows[i].want_logprob;
    a.mask_begin = rows[i].mask.empty() ? -1 : int32_t(masks.size());
    masks.insert(masks.end(), rows[i].mask.begin(), rows[i].mask.end());
    entries.insert(entries.end(), rows[i].penalties.begin(), rows[i].penalties.end());
    args.push_back(a);
  }
  DeviceVector<float> dlogits(logits), dwork(logits.size());
  DeviceVector<int32_t> dmasks_storage(masks.size() + 1);  // uint32 words, copied bit for bit below
  uint32_t* dmasks = reinterpret_cast<uint32_t*>(dmasks_storage.get());
  if (!masks.empty()) cudaMemcpy(dmasks, masks.data(), masks.size() * sizeof(uint32_t), cudaMemcpyHostToDevice);
  cuda::SampleRowArgs* dargs = nullptr;
  PenaltyEntry* dentries = nullptr;
  SampledToken* dout = nullptr;
  cudaMalloc(&dargs, args.size() * sizeof(args[0]));
  cudaMalloc(&dentries, entries.size() * sizeof(entries[0]));
  cudaMalloc(&dout, rows.size() * sizeof(SampledToken));
  cudaMemcpy(dargs, args.data(), args.size() * sizeof(args[0]), cudaMemcpyHostToDevice);
  cudaMemcpy(dentries, entries.data(), entries.size() * sizeof(entries[0]), cudaMemcpyHostToDevice);
  cudaMemset(dout, 0xFF, rows.size() * sizeof(SampledToken));
  std::vector<SampledToken> out(rows.size());
  EXPECT_EQ(cuda::sample_rows(dlogits.get(), V, dargs, int64_t(rows.size()), dentries, dmasks, dwork.get(), dout,
                              nullptr),
            cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaMemcpy(out.data(), dout, rows.size() * sizeof(SampledToken), cudaMemcpyDeviceToHost);
  cudaFree(dargs);
  cudaFree(dentries);
  cudaFree(dout);
  return out;
}

class SampleRowsTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { TNL_SKIP_WITHOUT_CUDA(); }
};

TEST_P(SampleRowsTest, MatchesReferenceOnEveryRow) {
  const int64_t V = GetParam();
  for (uint64_t seed : {1, 2, 3}) {
    const std::vector<Row> rows = make_rows(V, seed);
    const std::vector<SampledToken> got = run_on_device(rows, V);
    int exact = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      const ref::SampleTrace want =
          ref::sample_row(rows[i].logits, rows[i].params, rows[i].penalties, rows[i].want_logprob, rows[i].mask);
      const int32_t token = got[i].token;
      ASSERT_GE(token, 0) << "row " << i;
      ASSERT_LT(token, V) << "row " << i;
      if (!rows[i].mask.empty()) EXPECT_TRUE(mask_allows(rows[i].mask.data(), token)) << "row " << i;
      EXPECT_TRUE(std::binary_search(want.kept.begin(), want.kept.end(), token))
          << "row " << i << ": token " << token << " is outside the kept set of " << want.kept.size();
      exact += token == want.sampled.token;
      if (rows[i].want_logprob) {  // log-softmax of the raw row at the GPU's token (NaN entries ignored)
        double m = -INFINITY, sum = 0.0;
        for (float x : rows[i].logits) m = std::isnan(x) ? m : std::max(m, double(x));
        for (float x : rows[i].logits) sum += std::isnan(x) ? 0.0 : std::exp(double(x) - m);
        const double expected = double(rows[i].logits[token]) - (m + std::log(sum));
        EXPECT_NEAR(got[i].logprob, expected, 1e-4) << "row " << i;
      }
      if (rows[i].params.temperature == 0.0f || rows[i].params.top_k == 1) {
        EXPECT_EQ(token, want.sampled.token) << "greedy or top-k 1, row " << i;
      }
    }
    std::printf("[sample_rows V=%ld seed=%lu] %d/%zu rows equal to the reference\n", long(V), (unsigned long)seed, exact,
                rows.size());
    EXPECT_GE(exact, int(rows.size()) - 1) << "more than one draw differs from the reference";
  }
}

TEST_P(SampleRowsTest, SameInputsGiveSameTokens) {
  const int64_t V = GetParam();
  const std::vector<Row> rows = make_rows(V, 9);
  const std::vector<SampledToken> a = run_on_device(rows, V), b = run_on_device(rows, V);
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(a[i].token, b[i].token) << "row " << i;
}

INSTANTIATE_TEST_SUITE_P(Vocab, SampleRowsTest, ::testing::Values(int64_t{1000}, int64_t{64000}),
                         [](const auto& info) { return "V" + std::to_string(info.param); });

}  // namespace
}  // namespace tnl
