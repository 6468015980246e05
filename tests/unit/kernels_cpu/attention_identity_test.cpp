// model-spec §5 identities on the reference kernels, random inputs:
// (a) quadratic = recurrent = blocked for any block size and length;
// (b) one piece = any split into pieces continuing the state;
// (d) LRPE makes the score depend only on t − j.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

#include "kernels/cpu/reference.h"
#include "tests/support/random.h"

namespace tnl {
namespace {

using test::random_vector;
using test::relative_error;

struct Inputs {
  std::vector<float> q, k, v;
};

Inputs make_inputs(int64_t n, int64_t ek, int64_t e, uint64_t seed) {
  // φ(q), φ(k) are mostly positive in the model (silu); mixed signs make the test harder.
  return {random_vector(n * ek, seed, -1.0f, 1.0f), random_vector(n * ek, seed + 1, -1.0f, 1.0f),
          random_vector(n * e, seed + 2, -1.0f, 1.0f)};
}

std::vector<float> blocked(const Inputs& in, int64_t n, int64_t ek, int64_t e, float rate, int64_t block,
                           std::vector<float>* state) {
  std::vector<float> o(n * e, NAN);
  std::vector<float> scratch(ref::blocked_attention_scratch_floats(block, ek, e));
  ref::attention_blocked(in.q.data(), in.k.data(), in.v.data(), n, ek, e, rate, block, state->data(), o.data(),
                         scratch.data());
  return o;
}

// (n, block, ek multiplier (2 = LRPE layer), rate)
class ThreeFormsTest : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t, float>> {};

TEST_P(ThreeFormsTest, QuadraticRecurrentBlockedAgree) {
  const auto [n, block, ek_mult, rate] = GetParam();
  const int64_t e = 16, ek = e * ek_mult;
  const Inputs in = make_inputs(n, ek, e, 1000 + n * 7 + block);

  std::vector<float> quad(n * e, NAN);
  ref::attention_quadratic(in.q.data(), in.k.data(), in.v.data(), n, ek, e, rate, quad.data());

  std::vector<float> rec_state(ek * e, 0.0f), rec(n * e, NAN);
  ref::attention_recurrent(in.q.data(), in.k.data(), in.v.data(), n, ek, e, rate, rec_state.data(), rec.data());

  std::vector<float> blk_state(ek * e, 0.0f);
  const std::vector<float> blk = blocked(in, n, ek, e, rate, block, &blk_state);

  EXPECT_LT(relative_error(rec, quad), 1e-5);
  EXPECT_LT(relative_error(blk, quad), 1e-5);
  // The outgoing states are the same decode state.
  EXPECT_LT(relative_error(blk_state, rec_state), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ThreeFormsTest,
    ::testing::Values(std::make_tuple(1, 16, 1, 0.5f),      // n = 1
                      std::make_tuple(7, 16, 1, 0.1f),      // n < block
                      std::make_tuple(16, 16, 1, 0.05f),    // n = block
                      std::make_tuple(37, 8, 1, 0.02f),     // n not a multiple of the block
                      std::make_tuple(64, 16, 2, 0.01f),    // several blocks, LRPE width
                      std::make_tuple(50, 1, 1, 0.3f),      // block of one token
                      std::make_tuple(129, 32, 2, 1e-5f),   // λ ≈ 1 (the last layer)
                      std::make_tuple(100, 64, 1, 2.0f)));  // strong decay

TEST(BlockedAttention, SplitIntoPiecesEqualsOnePiece) {
  const int64_t n = 83, e = 8, ek = 16;
  const float rate = 0.07f;
  const Inputs in = make_inputs(n, ek, e, 42);
  std::vector<float> whole_state(ek * e, 0.0f);
  const std::vector<float> whole = blocked(in, n, ek, e, rate, 16, &whole_state);

  for (int64_t split : {1, 5, 16, 40, 82}) {
    std::vector<float> state(ek * e, 0.0f), out(n * e, NAN);
    std::vector<float> scratch(ref::blocked_attention_scratch_floats(16, ek, e));
    for (int64_t p = 0; p < n; p += split) {
      const int64_t m = std::min(split, n - p);
      ref::attention_blocked(in.q.data() + p * ek, in.k.data() + p * ek, in.v.data() + p * e, m, ek, e, rate,
                             std::min<int64_t>(16, m), state.data(), out.data() + p * e, scratch.data());
    }
    EXPECT_LT(relative_error(out, whole), 1e-5) << "split " << split;
    EXPECT_LT(relative_error(state, whole_state), 1e-5) << "split " << split;
  }
}

TEST(Lrpe, ScoreDependsOnlyOnDistance) {
  const int64_t e = 12;
  const std::vector<float> q = random_vector(e, 1), k = random_vector(e, 2);
  std::vector<float> theta(e);
  for (int64_t i = 0; i < e; ++i) theta[i] = float(std::pow(10000.0, -2.0 * double(i) / double(e)));
  auto score = [&](int64_t t, int64_t j) {
    std::vector<float> qt(2 * e), kj(2 * e);
    ref::lrpe(q.data(), e, theta.data(), 1, e, t, qt.data());
    ref::lrpe(k.data(), e, theta.data(), 1, e, j, kj.data());
    double s = 0.0;
    for (int64_t i = 0; i < 2 * e; ++i) s += double(qt[i]) * double(kj[i]);
    return s;
  };
  for (int64_t shift : {1, 17, 1000}) {
    EXPECT_NEAR(score(5, 2), score(5 + shift, 2 + shift), 1e-4) << shift;
    EXPECT_NEAR(score(9, 9), score(9 + shift, 9 + shift), 1e-4) << shift;
  }
  // And it does depend on the distance (the test can fail).
  EXPECT_GT(std::abs(score(5, 2) - score(5, 4)), 1e-3);
}

TEST(SrmsNorm, UnitRootMeanSquare) {
  const int64_t rows = 3, width = 33;
  std::vector<float> x = random_vector(rows * width, 9, -3.0f, 3.0f), y(rows * width, NAN);
  ref::srms_norm(x.data(), y.data(), rows, width);
  for (int64_t r = 0; r < rows; ++r) {
    double ms = 0.0;
    for (int64_t c = 0; c < width; ++c) ms += double(y[r * width + c]) * y[r * width + c];
    EXPECT_NEAR(ms / width, 1.0, 1e-4);
  }
}

TEST(Activation, MatchesDefinitions) {
  EXPECT_NEAR(apply_activation(Activation::kSilu, 1.5f), 1.5 / (1.0 + std::exp(-1.5)), 1e-6);
  EXPECT_NEAR(apply_activation(Activation::kOnePlusElu, -0.5f), std::exp(-0.5), 1e-6);
  EXPECT_NEAR(apply_activation(Activation::kOnePlusElu, 0.5f), 1.5, 1e-6);
  EXPECT_EQ(apply_activation(Activation::kRelu, -2.0f), 0.0f);
  EXPECT_NEAR(apply_activation(Activation::kElu, -1.0f), std::exp(-1.0) - 1.0, 1e-6);
  EXPECT_NEAR(apply_activation(Activation::kSigmoid, 0.3f), 1.0 / (1.0 + std::exp(-0.3)), 1e-6);
  EXPECT_EQ(apply_activation(Activation::kIdentity, -0.7f), -0.7f);
}

}  // namespace
}  // namespace tnl
