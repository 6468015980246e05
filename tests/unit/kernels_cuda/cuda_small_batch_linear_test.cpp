// The small-batch linear layer (kernels/cuda/small_batch_linear.cu) in the four
// forms a decode layer uses, against CPU references built from ref::srms_norm and
// ref::linear: the transformed input a is rounded to T (as the kernel feeds the
// tensor cores), the product and the epilogue are in fp32/double. n ∈ {1, 3, 8, 11, 16}
// (11 and 16 fill A's rows 8–15 too),
// weights [4096 × 1024], [1024 × 2816], an odd [37 × 100] (the element-wise paths)
// and a tall [40000 × 64] (more tiles than 16 per SM: several passes), bias on and off. T outputs are poisoned (NaN) first; the fp32
// residual is checked to be added into, and its rows around the n rows untouched.
// Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/reference.h"
#include "kernels/cuda/small_batch_linear.h"
#include "tests/support/random.h"
#include "tests/unit/kernels_cuda/device_test_support.h"

namespace tnl {
namespace {

using cuda::LinearInput;
using cuda::LinearOutput;
using test::DeviceVector;
using test::relative_error;

// T outputs: the inputs and the result are rounded to T (bf16 half-ulp 2⁻⁹ ≈ 2e-3
// per element), model-spec §6 allows 1e-2.
constexpr double kRoundedTolerance = 1e-2;
// What a fp32 residual gains: the inputs are exact T values, so only the fp32
// accumulation (and a rare input rounded the other way) differ from the reference.
constexpr double kResidualTolerance = 1e-3;

struct Shape {
  int64_t in, out;
};
constexpr Shape kShapes[] = {{1024, 4096}, {2816, 1024}, {100, 37}, {64, 40000}};
constexpr int64_t kRowCounts[] = {1, 3, 8, 11, 16};

std::string label(const Shape& s, int64_t n, bool bias) {
  return "in=" + std::to_string(s.in) + " out=" + std::to_string(s.out) + " n=" + std::to_string(n) +
         (bias ? " bias" : " no bias");
}

// The n input rows of a mode on the host, and a: what the kernel multiplies by Wᵀ.
template <typename T>
struct InputRows {
  std::vector<float> x_f32;  // kNormF32: the fp32 residual rows
  std::vector<float> x;      // kNormGateT: o; kPlainT: the rows themselves (T values)
  std::vector<float> qkvu;   // kNormGateT: u is columns [3·in, 4·in) of these rows (T values)
  std::vector<float> a;      // [n, in], rounded to T
};

template <typename T>
InputRows<T> make_input_rows(LinearInput mode, int64_t n, int64_t in, uint64_t seed) {
  InputRows<T> r;
  r.a.resize(n * in);
  switch (mode) {
    case LinearInput::kNormF32:
      r.x_f32 = test::random_vector(n * in, seed, -3.0f, 3.0f);
      ref::srms_norm(r.x_f32.data(), r.a.data(), n, in);
      break;
    case LinearInput::kNormGateT:
      r.x = test::rounded<T>(test::random_vector(n * in, seed, -2.0f, 2.0f));
      r.qkvu = test::rounded<T>(test::random_vector(n * 4 * in, seed + 1));
      ref::srms_norm(r.x.data(), r.a.data(), n, in);
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t i = 0; i < in; ++i) r.a[t * in + i] *= r.qkvu[t * 4 * in + 3 * in + i];
      }
      break;
    case LinearInput::kPlainT:
      r.x = test::rounded<T>(test::random_vector(n * in, seed, -2.0f, 2.0f));
      r.a = r.x;
      break;
  }
  r.a = test::rounded<T>(r.a);
  return r;
}

// Device copies of the inputs, and the launch arguments that point at them.
template <typename T>
struct DeviceInputs {
  DeviceVector<float> x_f32;
  DeviceVector<T> x, qkvu;
  explicit DeviceInputs(const InputRows<T>& r) : x_f32(r.x_f32), x(r.x), qkvu(r.qkvu) {}
  void point(LinearInput mode, int64_t in, cuda::SmallBatchLinearArgs<T>& args) const {
    args.input = mode;
    args.x_f32 = x_f32.get();
    args.x = x.get();
    if (mode == LinearInput::kNormGateT) {
      args.gate = qkvu.get() + 3 * in;
      args.gate_stride = 4 * in;
    }
  }
};

template <typename T>
class SmallBatchLinearTest : public ::testing::Test {
 protected:
  void SetUp() override { TNL_SKIP_WITHOUT_CUDA(); }

  // T outputs: y = a·Wᵀ + b (kStoreT) or its GLU product (kGluProductT), out columns.
  void check_t_output(LinearInput input, LinearOutput output) {
    const bool glu = output == LinearOutput::kGluProductT;
    uint64_t seed = 100;
    for (const Shape& s : kShapes) {
      const int64_t rows = glu ? 2 * s.out : s.out;
      const std::vector<float> w = test::rounded<T>(test::random_vector(rows * s.in, ++seed));
      const std::vector<float> b = test::rounded<T>(test::random_vector(rows, ++seed));
      DeviceVector<T> dw(w), db(b);
      for (int64_t n : kRowCounts) {
        for (bool bias : {false, true}) {
          const InputRows<T> in_rows = make_input_rows<T>(input, n, s.in, ++seed);
          std::vector<float> h(n * rows), want(n * s.out);
          ref::linear(in_rows.a.data(), w.data(), bias ? b.data() : nullptr, n, s.in, rows, h.data());
          for (int64_t t = 0; t < n; ++t) {
            for (int64_t j = 0; j < s.out; ++j) {
              want[t * s.out + j] = glu ? h[t * rows + j] * h[t * rows + s.out + j] : h[t * rows + j];
            }
          }
          DeviceInputs<T> d(in_rows);
          DeviceVector<T> dy(size_t(n * s.out));
          dy.poison();
          cuda::SmallBatchLinearArgs<T> args;
          args.n = n;
          args.in = s.in;
          args.out = s.out;
          d.point(input, s.in, args);
          args.output = output;
          args.weight = dw.get();
          args.bias = bias ? db.get() : nullptr;
          args.y = dy.get();
          TNL_EXPECT_CUDA_OK(cuda::small_batch_linear<T>(args, nullptr));
          EXPECT_LT(relative_error(dy.to_host(), want), kRoundedTolerance) << label(s, n, bias);
        }
      }
    }
  }

  // fp32 residual: rows 1…n of an (n + 2)-row buffer gain a·Wᵀ + b; rows 0 and n+1 stay.
  void check_residual_add(LinearInput input) {
    uint64_t seed = 200;
    for (const Shape& s : kShapes) {
      const std::vector<float> w = test::rounded<T>(test::random_vector(s.out * s.in, ++seed));
      const std::vector<float> b = test::rounded<T>(test::random_vector(s.out, ++seed));
      DeviceVector<T> dw(w), db(b);
      for (int64_t n : kRowCounts) {
        for (bool bias : {false, true}) {
          const InputRows<T> in_rows = make_input_rows<T>(input, n, s.in, ++seed);
          std::vector<float> gain(n * s.out);
          ref::linear(in_rows.a.data(), w.data(), bias ? b.data() : nullptr, n, s.in, s.out, gain.data());
          const std::vector<float> residual = test::random_vector((n + 2) * s.out, ++seed, -4.0f, 4.0f);
          DeviceInputs<T> d(in_rows);
          DeviceVector<float> dres(residual);
          cuda::SmallBatchLinearArgs<T> args;
          args.n = n;
          args.in = s.in;
          args.out = s.out;
          d.point(input, s.in, args);
          args.output = LinearOutput::kAddF32;
          args.weight = dw.get();
          args.bias = bias ? db.get() : nullptr;
          args.residual = dres.get() + s.out;
          TNL_EXPECT_CUDA_OK(cuda::small_batch_linear<T>(args, nullptr));

          const std::vector<float> got = dres.to_host();
          std::vector<float> got_gain(n * s.out);
          for (int64_t i = 0; i < n * s.out; ++i) got_gain[i] = got[s.out + i] - residual[s.out + i];
          EXPECT_LT(relative_error(got_gain, gain), kResidualTolerance) << label(s, n, bias);
          for (int64_t j = 0; j < s.out; ++j) {
            ASSERT_EQ(got[j], residual[j]) << "row before the batch, column " << j << ", " << label(s, n, bias);
            ASSERT_EQ(got[(n + 1) * s.out + j], residual[(n + 1) * s.out + j])
                << "row after the batch, column " << j << ", " << label(s, n, bias);
          }
        }
      }
    }
  }
};
using ElementTypes = ::testing::Types<__nv_bfloat16, __half>;
TYPED_TEST_SUITE(SmallBatchLinearTest, ElementTypes);

// 1. qkvu = SRMSNorm(x) · Wqkvuᵀ
TYPED_TEST(SmallBatchLinearTest, NormOfResidualStoredAsT) {
  this->check_t_output(LinearInput::kNormF32, LinearOutput::kStoreT);
}

// 2. x += (SRMSNorm(o) ⊙ u) · Woutᵀ, u read with the qkvu row stride.
TYPED_TEST(SmallBatchLinearTest, NormGateAddedIntoResidual) {
  this->check_residual_add(LinearInput::kNormGateT);
}

// 3. p = (SRMSNorm(x)·W1ᵀ) ⊙ (SRMSNorm(x)·W2ᵀ), W = [W1; W2], bias [b1; b2].
TYPED_TEST(SmallBatchLinearTest, NormOfResidualGluProduct) {
  this->check_t_output(LinearInput::kNormF32, LinearOutput::kGluProductT);
}

// 4. x += p · W3ᵀ
TYPED_TEST(SmallBatchLinearTest, PlainInputAddedIntoResidual) {
  this->check_residual_add(LinearInput::kPlainT);
}

TYPED_TEST(SmallBatchLinearTest, RejectsTooManyRowsOversizeInputsAndMissingPointers) {
  using T = TypeParam;
  const int64_t in = 64, out = 16;
  DeviceVector<T> dx(size_t(9 * in)), dw(size_t(out * in)), dy(size_t(9 * out));
  cuda::SmallBatchLinearArgs<T> args;
  args.n = 1;
  args.in = in;
  args.out = out;
  args.x = dx.get();
  args.weight = dw.get();
  args.y = dy.get();
  EXPECT_EQ(cuda::small_batch_linear<T>(args, nullptr), cudaSuccess);

  args.n = cuda::kSmallBatchMaxRows + 1;
  EXPECT_EQ(cuda::small_batch_linear<T>(args, nullptr), cudaErrorInvalidValue);
  args.n = 0;
  EXPECT_EQ(cuda::small_batch_linear<T>(args, nullptr), cudaSuccess) << "no rows: nothing to do";

  // 8 rows of 2¹⁵ 16-bit values are 512 KB of shared memory: more than any GPU has.
  EXPECT_TRUE(cuda::small_batch_linear_fits(8, 2816, sizeof(T)));
  EXPECT_TRUE(cuda::small_batch_linear_fits(16, 2816, sizeof(T)));
  EXPECT_TRUE(cuda::small_batch_linear_fits(8, 11008, sizeof(T)));    // the 7B shape's glu_dim: 8 rows fit,
  EXPECT_FALSE(cuda::small_batch_linear_fits(16, 11008, sizeof(T)));  // 16 do not (the backend takes 8 then)
  EXPECT_FALSE(cuda::small_batch_linear_fits(8, 1 << 15, sizeof(T)));
  EXPECT_FALSE(cuda::small_batch_linear_fits(cuda::kSmallBatchMaxRows + 1, 64, sizeof(T)));
  args.n = 8;
  args.in = 1 << 15;  // rejected before anything is launched
  EXPECT_EQ(cuda::small_batch_linear<T>(args, nullptr), cudaErrorInvalidValue);

  args.in = in;
  args.input = LinearInput::kNormF32;  // x_f32 missing
  EXPECT_EQ(cuda::small_batch_linear<T>(args, nullptr), cudaErrorInvalidValue);
  args.input = LinearInput::kPlainT;
  args.output = LinearOutput::kAddF32;  // residual missing
  EXPECT_EQ(cuda::small_batch_linear<T>(args, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace tnl
