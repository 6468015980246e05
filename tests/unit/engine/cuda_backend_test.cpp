// The CUDA backend against the CPU reference backend on random models (bf16
// weights, fp32 state): prefill (Lightning path and the recurrent fallback for
// head widths without a tile), chunked prefill, decode, mixed batches, every
// logits mode. Skips without a CUDA device (CI); runs for real on the GPU machine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

#include "engine/checkpoint/checkpoint.h"
#include "engine/checkpoint/random_checkpoint.h"
#include "engine/cpu/cpu_backend.h"
#include "kernels/cpu/sampling_reference.h"
#if defined(TNL_WITH_CUDA)
#include "engine/cuda/cuda_backend.h"
#endif
#include "tests/support/random.h"

namespace tnl {
namespace {

using test::relative_error;

// model-spec §6: bf16 weights with fp32 accumulation, ~1e-2 at most on the logits.
constexpr double kBf16Tolerance = 1e-2;

struct Variant {
  std::string name;
  ModelConfig config;
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

std::vector<Variant> variants() {
  std::vector<Variant> out;
  ModelConfig a;  // e = 64, LRPE on layer 0 (e_k = 128): the Lightning tiles of the 385M/7B shapes
  a.vocab_size = 300;
  a.dim = 128;
  a.num_layers = 3;
  a.num_heads = 2;
  a.hidden_dim = 128;
  a.glu_dim = 192;
  a.lrpe_layers = {true, false, false};
  out.push_back({"e64_lrpe0", a});
  ModelConfig b = a;  // H = 6 (not a power of two), e = 32, LRPE twice, untied, bias, 1+elu, no scale
  b.num_heads = 6;
  b.hidden_dim = 192;
  b.lrpe_layers = {true, false, true};
  b.tie_word_embeddings = false;
  b.bias = true;
  b.activation = Activation::kOnePlusElu;
  b.scale_embedding = false;
  out.push_back({"h6_e32_untied_bias", b});
  ModelConfig c = a;  // e = 8: no Lightning tile, prefill by the recurrence
  c.dim = 32;
  c.num_heads = 4;
  c.hidden_dim = 32;
  c.glu_dim = 48;
  out.push_back({"e8_fallback", c});
  return out;
}

class CudaBackendTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
#if !defined(TNL_WITH_CUDA)
    GTEST_SKIP() << "built without CUDA";
#else
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    dir_ = std::filesystem::temp_directory_path() / ("tnl_cuda_backend_" + GetParam().name);
    ASSERT_TRUE(write_random_checkpoint(dir_, GetParam().config, 3, DType::kBF16).is_ok());
    auto ckpt = Checkpoint::open(dir_);
    ASSERT_TRUE(ckpt.has_value()) << ckpt.status().to_string();
    checkpoint_ = std::move(ckpt).value();
    auto cpu = make_cpu_backend(*checkpoint_, options());
    auto gpu = make_cuda_backend(*checkpoint_, options());
    ASSERT_TRUE(cpu.has_value()) << cpu.status().to_string();
    ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
    cpu_ = std::move(cpu).value();
    gpu_ = std::move(gpu).value();
#endif
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // The options both backends are built with; a test that rebuilds the GPU one
  // changes only what it is about.
  static BackendOptions options() {
    BackendOptions o;
    o.max_slots = 8;
    o.prefill_block = 64;
    o.gpu_memory_fraction = 0.2f;
    return o;
  }

  std::vector<int32_t> tokens(int64_t n, uint64_t seed) const {
    std::mt19937_64 rng(seed);
    std::vector<int32_t> t(n);
    for (auto& x : t) x = int32_t(rng() % uint64_t(checkpoint_->config().vocab_size));
    return t;
  }

  // Both backends again, with options `o` (a test about more slots or another path).
  void rebuild_both(const BackendOptions& o) {
#if defined(TNL_WITH_CUDA)
    auto cpu = make_cpu_backend(*checkpoint_, o);
    auto gpu = make_cuda_backend(*checkpoint_, o);
    ASSERT_TRUE(cpu.has_value()) << cpu.status().to_string();
    ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
    cpu_ = std::move(cpu).value();
    gpu_ = std::move(gpu).value();
#else
    (void)o;
#endif
  }

  // Runs the same plan on both backends and compares every logits row.
  void expect_same(const StepPlan& plan, const std::string& what) {
    StepOutput c, g;
    ASSERT_TRUE(cpu_->run_step(plan, &c).is_ok()) << what;
    g.logits.assign(c.logits.size(), NAN);  // poisoned: every value must be written
    const Status s = gpu_->run_step(plan, &g);
    ASSERT_TRUE(s.is_ok()) << what << ": " << s.to_string();
    ASSERT_EQ(g.row_begin, c.row_begin) << what;
    ASSERT_EQ(g.logits.size(), c.logits.size()) << what;
    const double err = relative_error(g.logits, c.logits);
    std::printf("[%s] %-40s rel err %.3e\n", GetParam().name.c_str(), what.c_str(), err);
    EXPECT_LT(err, kBf16Tolerance) << what;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<Backend> cpu_, gpu_;
};

TEST_P(CudaBackendTest, PrefillMatchesCpu) {
  for (int64_t n : {1, 37, 64, 200, 600}) {  // n = 1, not a multiple of B, one block, several, several segments
    expect_same({{{0, 0, tokens(n, n), LogitsMode::kAll}}}, "prefill n=" + std::to_string(n));
  }
}

TEST_P(CudaBackendTest, ChunkedPrefillThenDecodeMatchesCpu) {
  const auto t = tokens(150, 9);
  expect_same({{{1, 0, {t.begin(), t.begin() + 70}, LogitsMode::kLast}}}, "chunk 0-70");
  expect_same({{{1, 70, {t.begin() + 70, t.begin() + 149}, LogitsMode::kAll}}}, "chunk 70-149 continuing");
  expect_same({{{1, 149, {t[149]}, LogitsMode::kLast}}}, "decode at 149");
  for (int64_t p = 150; p < 160; ++p) expect_same({{{1, p, {int32_t(p % 7)}, LogitsMode::kLast}}}, "decode " + std::to_string(p));
}

// The same steps of a few rows with the fused small-batch layers turned off
// (BackendOptions::small_batch_max_rows = 0): the cuBLASLt layer at 1-4 rows.
TEST_P(CudaBackendTest, SmallStepsWithoutTheFusedLayersMatchCpu) {
#if defined(TNL_WITH_CUDA)
  BackendOptions o = options();
  o.small_batch_max_rows = 0;
  auto gpu = make_cuda_backend(*checkpoint_, o);
  ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
  gpu_ = std::move(gpu).value();
  const auto t = tokens(40, 5);
  expect_same({{{1, 0, t, LogitsMode::kAll}}}, "unfused prefill n=40");
  expect_same({{{1, 40, {3}, LogitsMode::kLast}}}, "unfused decode at 40");
  expect_same({{{2, 0, {t.begin(), t.begin() + 9}, LogitsMode::kLast}}}, "unfused prefill n=9");
  for (int step = 0; step < 3; ++step) {
    expect_same({{{1, 41 + step, {int32_t(step)}, LogitsMode::kLast}, {2, 9 + step, {int32_t(step + 1)}, LogitsMode::kLast}}},
                "unfused batched decode " + std::to_string(step));
  }
#endif
}

// Every step past the small-batch layers through the fused [W1; W2] GEMM + SGLU
// product (BackendOptions::fused_sglu_min_rows = 17; where the device has it,
// sm_90a): prefills of one and several sequences, and a decode batch of 20 rows.
TEST_P(CudaBackendTest, StepsThroughTheFusedSgluGemmMatchCpu) {
#if defined(TNL_WITH_CUDA)
  BackendOptions o = options();
  o.max_slots = 24;
  o.fused_sglu_min_rows = 17;
  ASSERT_NO_FATAL_FAILURE(rebuild_both(o));
  expect_same({{{0, 0, tokens(300, 4), LogitsMode::kAll}}}, "fused-SGLU prefill n=300");
  StepPlan prompts, decode;
  for (int32_t slot = 0; slot < 20; ++slot) {
    prompts.chunks.push_back({slot, 0, tokens(5 + slot, 100 + uint64_t(slot)), LogitsMode::kLast});
    decode.chunks.push_back({slot, 5 + slot, {int32_t(slot)}, LogitsMode::kLast});
  }
  expect_same(prompts, "fused-SGLU prefill of 20 prompts");
  expect_same(decode, "fused-SGLU decode of 20 rows");
#endif
}

// Steps past the fused small-batch layers: 33 prompts in one step, then decode
// steps of 33 rows replayed from the batch-64 graph, whose GEMMs enter as
// dependent launches where the start-up probe allowed it (engine/cuda/gemm.h).
TEST_P(CudaBackendTest, DecodeBatchesPastTheFusedLayersMatchCpu) {
#if defined(TNL_WITH_CUDA)
  BackendOptions o = options();
  o.max_slots = 40;
  ASSERT_NO_FATAL_FAILURE(rebuild_both(o));
  constexpr int32_t kRows = 33;
  StepPlan prompts;
  for (int32_t slot = 0; slot < kRows; ++slot) prompts.chunks.push_back({slot, 0, tokens(5, 100 + slot), LogitsMode::kLast});
  expect_same(prompts, "33 prompts of 5 tokens");
  for (int step = 0; step < 3; ++step) {
    StepPlan decode;
    for (int32_t slot = 0; slot < kRows; ++slot) {
      decode.chunks.push_back({slot, 5 + step, {int32_t((slot + step) % 11)}, LogitsMode::kLast});
    }
    expect_same(decode, "decode of 33 rows " + std::to_string(step));
  }
#endif
}

TEST_P(CudaBackendTest, MixedBatchMatchesCpu) {
  // Warm three slots, then one step with decodes, a continuing chunk and a fresh prompt.
  const auto a = tokens(40, 1), b = tokens(90, 2), c = tokens(5, 3);
  expect_same({{{2, 0, a, LogitsMode::kLast}, {3, 0, {b.begin(), b.begin() + 45}, LogitsMode::kNone},
                {4, 0, c, LogitsMode::kAll}}},
              "three prefills");
  expect_same({{{3, 45, {b.begin() + 45, b.end()}, LogitsMode::kAll}, {2, 40, {7}, LogitsMode::kLast},
                {5, 0, tokens(66, 4), LogitsMode::kLast}, {4, 5, {11}, LogitsMode::kLast}}},
              "decodes + continuing + fresh");
  for (int step = 0; step < 4; ++step) {
    expect_same({{{2, 41 + step, {int32_t(step)}, LogitsMode::kLast}, {3, 90 + step, {int32_t(step + 1)}, LogitsMode::kLast},
                  {4, 6 + step, {int32_t(step + 2)}, LogitsMode::kLast}, {5, 66 + step, {int32_t(step + 3)}, LogitsMode::kLast}}},
                "batched decode " + std::to_string(step));
  }
}

// Sampling on the GPU: each sampled chunk's token is what the CPU reference of
// the kernel draws from the very row the GPU computed (returned alongside), in a
// mixed step (generic path) and in decode-only steps (CUDA-graph path, rows
// left on the GPU).
TEST_P(CudaBackendTest, DeviceSamplingDrawsFromTheRightRows) {
  ASSERT_TRUE(gpu_->samples_on_device());
  auto sampled = [](float temperature, int32_t top_k, float top_p, double u) {
    DeviceSampling d;
    d.params.temperature = temperature;
    d.params.inv_temperature = temperature > 0 ? 1.0f / temperature : 0.0f;
    d.params.top_k = top_k;
    d.params.top_p = top_p;
    d.params.uniform = u;
    d.params.repetition_penalty = 1.2f;
    d.penalties = {{5, 1, 1}, {7, 2, 0}};
    d.want_logprob = true;
    return d;
  };
  const auto a = tokens(50, 21), b = tokens(3, 22);
  StepPlan plan{{{0, 0, a, LogitsMode::kLast}, {1, 0, b, LogitsMode::kAll}, {2, 0, {9}, LogitsMode::kLast}}};
  plan.chunks[0].sample = sampled(0.0f, 0, 1.0f, 0.0);
  plan.chunks[1].sample = sampled(0.9f, 20, 0.9f, 0.37);
  plan.chunks[2].sample = sampled(1.3f, 0, 1.0f, 0.81);
  StepOutput out;
  ASSERT_TRUE(gpu_->run_step(plan, &out).is_ok());
  ASSERT_EQ(out.sampled.size(), 3u);
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const int64_t last = out.row_begin[i] + (plan.chunks[i].logits == LogitsMode::kAll ? int64_t(plan.chunks[i].tokens.size()) - 1 : 0);
    const auto row = out.row(last);
    const DeviceSampling& d = *plan.chunks[i].sample;
    const ref::SampleTrace want = ref::sample_row(row, d.params, d.penalties, true);
    EXPECT_EQ(out.sampled[i].token, want.sampled.token) << "chunk " << i;
    EXPECT_NEAR(out.sampled[i].logprob, want.sampled.logprob, 1e-4) << "chunk " << i;
  }

  // Decode-only steps with the rows left on the GPU: greedy tokens equal the CPU backend's argmax.
  StepPlan cpu_plan = plan;  // the CPU backend's slots take the same prompts first
  for (auto& c : cpu_plan.chunks) c.sample.reset();
  StepOutput ignored;
  ASSERT_TRUE(cpu_->run_step(cpu_plan, &ignored).is_ok());
  for (int step = 0; step < 3; ++step) {
    StepPlan decode{{{0, 50 + step, {int32_t(3 + step)}, LogitsMode::kNone}, {2, 1 + step, {int32_t(4 + step)}, LogitsMode::kNone}}};
    for (auto& c : decode.chunks) c.sample = sampled(0.0f, 0, 1.0f, 0.0);
    StepPlan with_rows = decode;
    for (auto& c : with_rows.chunks) {
      c.logits = LogitsMode::kLast;
      c.sample.reset();
    }
    StepOutput g, c;
    ASSERT_TRUE(gpu_->run_step(decode, &g).is_ok());
    ASSERT_TRUE(cpu_->run_step(with_rows, &c).is_ok());
    EXPECT_TRUE(g.logits.empty()) << "no row travels when every chunk samples on the GPU";
    for (size_t i = 0; i < decode.chunks.size(); ++i) {
      const auto row = c.row(c.row_begin[i]);
      std::vector<float> sorted(row.begin(), row.end());
      std::sort(sorted.rbegin(), sorted.rend());
      if (sorted[0] - sorted[1] < 0.05f * std::fabs(sorted[0])) continue;  // a near tie: bf16 may flip it
      const ref::SampleTrace want = ref::sample_row(row, decode.chunks[i].sample->params, decode.chunks[i].sample->penalties, false);
      EXPECT_EQ(g.sampled[i].token, want.sampled.token) << "decode step " << step << " chunk " << i;
    }
  }
}

TEST_P(CudaBackendTest, StateSizeAndSlots) {
  EXPECT_EQ(gpu_->state_bytes_per_slot(), GetParam().config.state_bytes_per_sequence());
  EXPECT_GE(gpu_->num_slots(), 1);
  EXPECT_LE(gpu_->num_slots(), 8);
  StepOutput out;
  EXPECT_EQ(gpu_->run_step({{{99, 0, {1}, LogitsMode::kLast}}}, &out).code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Configs, CudaBackendTest, ::testing::ValuesIn(variants()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace tnl
