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
#include <map>
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
  int32_t penalty_slot = -1;  // with a mode other than kNone: the slot's penalty row
  PenaltyRowMode penalty_mode = PenaltyRowMode::kNone;
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

std::vector<SampledToken> run_on_device(const std::vector<Row>& rows, int64_t V, cuda::PenaltyRows penalty_rows = {}) {
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
    a.penalty_slot = rows[i].penalty_slot;
    a.penalty_mode = rows[i].penalty_mode;
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
  cudaMalloc(&dentries, std::max<size_t>(1, entries.size()) * sizeof(PenaltyEntry));
  cudaMalloc(&dout, rows.size() * sizeof(SampledToken));
  cudaMemcpy(dargs, args.data(), args.size() * sizeof(args[0]), cudaMemcpyHostToDevice);
  cudaMemcpy(dentries, entries.data(), entries.size() * sizeof(entries[0]), cudaMemcpyHostToDevice);
  cudaMemset(dout, 0xFF, rows.size() * sizeof(SampledToken));
  std::vector<SampledToken> out(rows.size());
  EXPECT_EQ(cuda::sample_rows(dlogits.get(), V, dargs, int64_t(rows.size()), dentries, dmasks, penalty_rows,
                              dwork.get(), dout, nullptr),
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

// The device's per-slot penalty rows (PenaltyRowMode): one launch rebuilds each
// sequence's row from its full list, later launches keep it and send only the
// biases. Every launch must draw what the same rows draw with the full list
// sent (the CPU-reference-tested path), and the rows must end holding each
// sequence's prompt flags and every drawn token counted.
TEST_P(SampleRowsTest, PenaltyRowsKeptOnTheDeviceDrawAsTheFullList) {
  const int64_t V = GetParam();
  const int32_t num_slots = 6;
  const int64_t words = (V + 31) / 32;
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  struct Sequence {
    int32_t slot;
    RowSampling params;
    std::vector<int32_t> prompt;     // sorted, unique
    std::map<int32_t, int32_t> out;  // drawn token → times
    std::vector<PenaltyEntry> biases;
    std::vector<PenaltyEntry> full() const {  // the host's list, biases merged
      std::map<int32_t, PenaltyEntry> m;
      for (int32_t t : prompt) m[t] = {t, 0, 1, 0.0f};
      for (const auto& [t, n] : out) {
        m.try_emplace(t, PenaltyEntry{t, 0, 0, 0.0f});
        m[t].output_count = n;
      }
      for (const PenaltyEntry& b : biases) {
        m.try_emplace(b.token, PenaltyEntry{b.token, 0, 0, 0.0f});
        m[b.token].bias = b.bias;
      }
      std::vector<PenaltyEntry> list;
      for (const auto& [t, e] : m) list.push_back(e);
      return list;
    }
  };
  std::vector<Sequence> seqs;
  const std::vector<RowSampling> settings = {params(0.0f, 0, 1.0f, 0.0f), params(0.8f, 0, 0.95f, 0.0f),
                                             params(1.0f, 40, 1.0f, 0.0f), params(1.2f, 0, 1.0f, 0.02f)};
  for (int32_t i = 0; i < 4; ++i) {
    Sequence q;
    q.slot = std::vector<int32_t>{4, 1, 3, 0}[size_t(i)];
    q.params = settings[size_t(i)];
    q.params.repetition_penalty = 1.25f + 0.1f * float(i);
    q.params.frequency_penalty = 0.3f;
    q.params.presence_penalty = i % 2 == 0 ? 0.25f : -0.1f;
    for (int j = 0; j < 200; ++j) q.prompt.push_back(int32_t(rng() % uint64_t(V)));
    std::sort(q.prompt.begin(), q.prompt.end());
    q.prompt.erase(std::unique(q.prompt.begin(), q.prompt.end()), q.prompt.end());
    if (i == 2) q.biases = {{q.prompt[3], 0, 0, 1.5f}, {int32_t(V - 1), 0, 0, -INFINITY}};
    seqs.push_back(std::move(q));
  }
  DeviceVector<int32_t> counts(size_t(num_slots * V)), bits(size_t(num_slots * words));
  counts.poison();  // a rebuild must write the whole row
  bits.poison();
  const cuda::PenaltyRows rows_state{counts.get(), reinterpret_cast<uint32_t*>(bits.get())};
  int differing_from_unpenalised = 0;
  for (int step = 0; step < 6; ++step) {
    std::vector<Row> with_list, with_slot_rows;
    for (size_t i = 0; i < seqs.size(); ++i) {
      Row r;
      r.params = seqs[i].params;
      r.params.uniform = unit(rng);
      // Sequence 0 (greedy) sees the same row every step: without its penalties it
      // would draw one token forever. The prompt's tokens lead every row.
      r.logits = test::random_vector(V, 7000 + (i == 0 ? 0 : step * 10) + i, -3.0f, 3.0f);
      for (int32_t t : seqs[i].prompt) r.logits[size_t(t)] += 6.0f;
      r.want_logprob = i % 2 == 0;
      r.penalties = seqs[i].full();
      with_list.push_back(r);
      r.penalty_slot = seqs[i].slot;
      r.penalty_mode = step == 0 ? PenaltyRowMode::kRebuild : PenaltyRowMode::kKept;
      if (step > 0) r.penalties = seqs[i].biases;
      with_slot_rows.push_back(std::move(r));
    }
    const std::vector<SampledToken> want = run_on_device(with_list, V);
    const std::vector<SampledToken> got = run_on_device(with_slot_rows, V, rows_state);
    for (size_t i = 0; i < seqs.size(); ++i) {
      EXPECT_EQ(got[i].token, want[i].token) << "step " << step << ", sequence " << i;
      EXPECT_EQ(got[i].logprob, want[i].logprob) << "step " << step << ", sequence " << i;
      if (i == 0) {
        const ref::SampleTrace unpenalised = ref::sample_row(with_list[i].logits, RowSampling{}, {}, false);
        differing_from_unpenalised += unpenalised.sampled.token != want[i].token;
      }
      ++seqs[i].out[want[i].token];
    }
  }
  EXPECT_GE(differing_from_unpenalised, 3) << "the greedy sequence must repeat itself less than its raw row says";
  const std::vector<float> c = counts.to_host();
  std::vector<uint32_t> b(size_t(num_slots * words));
  cudaMemcpy(b.data(), bits.get(), b.size() * sizeof(uint32_t), cudaMemcpyDeviceToHost);
  for (const Sequence& q : seqs) {
    int64_t wrong_counts = 0, wrong_bits = 0;
    for (int64_t t = 0; t < V; ++t) {
      const auto it = q.out.find(int32_t(t));
      const int32_t want_count = it == q.out.end() ? 0 : it->second;
      wrong_counts += int32_t(c[size_t(q.slot * V + t)]) != want_count;
      const bool want_bit = std::binary_search(q.prompt.begin(), q.prompt.end(), int32_t(t));
      wrong_bits += (((b[size_t(q.slot * words + t / 32)] >> (t % 32)) & 1u) != 0) != want_bit;
    }
    EXPECT_EQ(wrong_counts, 0) << "slot " << q.slot;
    EXPECT_EQ(wrong_bits, 0) << "slot " << q.slot;
  }
}

INSTANTIATE_TEST_SUITE_P(Vocab, SampleRowsTest, ::testing::Values(int64_t{1000}, int64_t{64000}),
                         [](const auto& info) { return "V" + std::to_string(info.param); });

}  // namespace
}  // namespace tnl
