// The CPU backend against model-spec §4–5 on random tiny models:
// (a) logits equal an independent quadratic-form forward pass;
// (b) prefill in one piece equals any split into chunks;
// (c) prefill n equals prefill n−1 then decode one;
// batched steps are bit-identical to each sequence alone; state size is constant.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "engine/checkpoint/checkpoint.h"
#include "engine/checkpoint/random_checkpoint.h"
#include "engine/cpu/cpu_backend.h"
#include "tests/support/random.h"
#include "tests/support/reference_model.h"

namespace tnl {
namespace {

using test::relative_error;

ModelConfig base_config() {
  ModelConfig c;
  c.vocab_size = 97;
  c.dim = 24;
  c.num_layers = 3;
  c.num_heads = 4;
  c.hidden_dim = 32;
  c.glu_dim = 40;
  c.lrpe_layers = {true, false, false};
  return c;
}

struct Variant {
  std::string name;
  ModelConfig config;
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

std::vector<Variant> variants() {
  std::vector<Variant> v;
  v.push_back({"base_lrpe_layer0", base_config()});
  {
    ModelConfig c = base_config();  // H = 6: not a power of two; 1+elu; no LRPE
    c.num_heads = 6;
    c.hidden_dim = 36;
    c.activation = Activation::kOnePlusElu;
    c.lrpe_layers = {false, false, false};
    v.push_back({"h6_elu_no_lrpe", c});
  }
  {
    ModelConfig c = base_config();  // LRPE on two layers, untied, bias, no embedding scale
    c.lrpe_layers = {true, false, true};
    c.tie_word_embeddings = false;
    c.bias = true;
    c.scale_embedding = false;
    v.push_back({"lrpe2_untied_bias_noscale", c});
  }
  return v;
}

class CpuBackendTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tnl_cpu_backend_" + GetParam().name + "_" + std::to_string(::getpid()));
    ASSERT_TRUE(write_random_checkpoint(dir_, GetParam().config, 7, DType::kF32).is_ok());
    auto ckpt = Checkpoint::open(dir_);
    ASSERT_TRUE(ckpt.has_value()) << ckpt.status().to_string();
    checkpoint_ = std::move(ckpt).value();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Backend> backend(int64_t block = 8, int32_t slots = 4, int32_t threads = 0) {
    BackendOptions o;
    o.max_slots = slots;
    o.prefill_block = block;
    o.cpu_threads = threads;
    auto b = make_cpu_backend(*checkpoint_, o);
    EXPECT_TRUE(b.has_value()) << b.status().to_string();
    return std::move(b).value();
  }

  std::vector<int32_t> tokens(int64_t n, uint64_t seed) const {
    std::mt19937_64 rng(seed);
    std::vector<int32_t> t(n);
    for (auto& x : t) x = int32_t(rng() % uint64_t(checkpoint_->config().vocab_size));
    return t;
  }

  // Runs the whole sequence through `b` in chunks of `split`; returns all logits rows.
  static std::vector<float> run_chunked(Backend& b, const std::vector<int32_t>& t, int64_t split, int32_t slot = 0) {
    std::vector<float> all;
    for (int64_t p = 0; p < int64_t(t.size()); p += split) {
      const int64_t m = std::min<int64_t>(split, int64_t(t.size()) - p);
      StepPlan plan;
      plan.chunks.push_back({slot, p, {t.begin() + p, t.begin() + p + m}, LogitsMode::kAll});
      StepOutput out;
      EXPECT_TRUE(b.run_step(plan, &out).is_ok());
      all.insert(all.end(), out.logits.begin(), out.logits.end());
    }
    return all;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Checkpoint> checkpoint_;
};

TEST_P(CpuBackendTest, MatchesQuadraticReferenceForward) {
  for (int64_t n : {1, 5, 8, 21, 40}) {  // n = 1, n < B, n = B, not a multiple of B, several blocks
    const auto t = tokens(n, 100 + n);
    const std::vector<float> ref = test::reference_logits(*checkpoint_, t);
    auto b = backend(/*block=*/8);
    const std::vector<float> got = run_chunked(*b, t, n);
    ASSERT_EQ(got.size(), ref.size());
    EXPECT_LT(relative_error(got, ref), 1e-5) << "n = " << n;
  }
}

TEST_P(CpuBackendTest, ChunkedPrefillEqualsOnePiece) {
  const auto t = tokens(37, 5);
  auto b = backend(8);
  const std::vector<float> whole = run_chunked(*b, t, 37);
  for (int64_t split : {1, 3, 8, 16, 36}) {
    EXPECT_LT(relative_error(run_chunked(*b, t, split), whole), 1e-5) << "split " << split;
  }
  for (int64_t block : {1, 5, 64}) {  // any block size
    auto other = backend(block);
    EXPECT_LT(relative_error(run_chunked(*other, t, 37), whole), 1e-5) << "block " << block;
  }
}

TEST_P(CpuBackendTest, PrefillThenDecodeEqualsPrefill) {
  const int64_t n = 19;
  const auto t = tokens(n, 11);
  auto b = backend(8);
  StepOutput full, last;
  StepPlan plan;
  plan.chunks.push_back({0, 0, t, LogitsMode::kLast});
  ASSERT_TRUE(b->run_step(plan, &full).is_ok());

  StepPlan prefill;
  prefill.chunks.push_back({1, 0, {t.begin(), t.end() - 1}, LogitsMode::kNone});
  ASSERT_TRUE(b->run_step(prefill, &last).is_ok());
  EXPECT_EQ(last.num_rows(), 0);
  StepPlan decode;
  decode.chunks.push_back({1, n - 1, {t.back()}, LogitsMode::kLast});
  ASSERT_TRUE(b->run_step(decode, &last).is_ok());
  EXPECT_LT(relative_error(last.logits, full.logits), 1e-5);
}

TEST_P(CpuBackendTest, BatchedStepIsBitIdenticalToAlone) {
  // Alone: each sequence in its own steps. Batched: the same chunks mixed in one
  // step (one prefilling, others decoding), with a different thread count.
  const auto a = tokens(13, 1), c = tokens(6, 2), d = tokens(9, 3);
  auto solo = backend(8, 4, 1);
  auto batch = backend(8, 4, 3);
  auto run = [](Backend& b, StepPlan plan) {
    StepOutput out;
    EXPECT_TRUE(b.run_step(plan, &out).is_ok());
    return out;
  };
  // Warm the decode sequences' states identically in both backends.
  for (Backend* b : {solo.get(), batch.get()}) {
    run(*b, {{{1, 0, {c.begin(), c.end() - 1}, LogitsMode::kNone}}});
    run(*b, {{{2, 0, {d.begin(), d.end() - 1}, LogitsMode::kNone}}});
  }
  const StepOutput sa = run(*solo, {{{0, 0, a, LogitsMode::kAll}}});
  const StepOutput sc = run(*solo, {{{1, 5, {c.back()}, LogitsMode::kLast}}});
  const StepOutput sd = run(*solo, {{{2, 8, {d.back()}, LogitsMode::kLast}}});
  const StepOutput mixed = run(*batch, {{{2, 8, {d.back()}, LogitsMode::kLast},
                                         {0, 0, a, LogitsMode::kAll},
                                         {1, 5, {c.back()}, LogitsMode::kLast}}});
  const int64_t V = mixed.vocab_size;
  ASSERT_EQ(mixed.num_rows(), 13 + 1 + 1);
  auto same = [&](const StepOutput& alone, int32_t begin) {
    return std::memcmp(alone.logits.data(), mixed.logits.data() + int64_t(begin) * V,
                       alone.logits.size() * sizeof(float)) == 0;
  };
  EXPECT_TRUE(same(sd, mixed.row_begin[0]));
  EXPECT_TRUE(same(sa, mixed.row_begin[1]));
  EXPECT_TRUE(same(sc, mixed.row_begin[2]));
}

TEST_P(CpuBackendTest, StateSizeIsConstantAndReported) {
  auto b = backend();
  EXPECT_EQ(b->state_bytes_per_slot(), GetParam().config.state_bytes_per_sequence());
  int64_t expected = 0;
  const ModelConfig& c = GetParam().config;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    expected += c.num_heads * (c.lrpe_layers[l] ? 2 : 1) * c.head_dim() * c.head_dim() * 4;
  }
  EXPECT_EQ(b->state_bytes_per_slot(), expected);
}

TEST_P(CpuBackendTest, RejectsBadPlans) {
  auto b = backend(8, 2);
  StepOutput out;
  EXPECT_EQ(b->run_step({{{5, 0, {1}, LogitsMode::kLast}}}, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b->run_step({{{0, 0, {}, LogitsMode::kLast}}}, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b->run_step({{{0, 0, {100000}, LogitsMode::kLast}}}, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b->run_step({{{0, 0, {1}, LogitsMode::kLast}, {0, 0, {2}, LogitsMode::kLast}}}, &out).code(),
            StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Configs, CpuBackendTest, ::testing::ValuesIn(variants()),
                         [](const auto& info) { return info.param.name; });

TEST(ModelConfigTest, StateBytesOf385mShape) {
  ModelConfig c;
  c.num_layers = 24;
  c.num_heads = 8;
  c.hidden_dim = 1024;
  c.lrpe_layers.assign(24, false);
  c.lrpe_layers[0] = true;
  EXPECT_NEAR(double(c.state_bytes_per_sequence()) / 1e6, 13.1, 0.05);  // model-spec §5.2
}

}  // namespace
}  // namespace tnl
