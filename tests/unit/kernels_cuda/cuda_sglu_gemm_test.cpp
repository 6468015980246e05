// The fused [W1; W2] GEMM + SGLU product (kernels/cuda/sglu_gemm.cu) against the
// CPU: both products in double from the same 16-bit inputs, each rounded to T as
// the unfused path stores them, then multiplied. Runs where the kernel exists
// (sm_90a build, compute capability 9.0 device); skips elsewhere.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cuda/launchers.h"
#include "tests/support/random.h"
#include "tests/unit/kernels_cuda/device_test_support.h"

namespace tnl {
namespace {

using test::DeviceVector;

// Outputs rounded to a 16-bit type (half an ulp of bf16 is 2⁻⁹); fp32 sums in
// another order than the reference's move a factor by an ulp at most now and then.
constexpr double kRoundedTolerance = 5e-3;

template <typename T>
class SgluGemmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TNL_SKIP_WITHOUT_CUDA();
    if (!cuda::sglu_gemm_available()) GTEST_SKIP() << "no warpgroup-MMA kernel for this device or build";
  }
};
using ElementTypes = ::testing::Types<__nv_bfloat16, __half>;
TYPED_TEST_SUITE(SgluGemmTest, ElementTypes);

template <typename T>
std::vector<float> reference(const std::vector<float>& a, const std::vector<float>& w12, int64_t rows, int64_t k,
                             int64_t glu) {
  std::vector<float> p(rows * glu);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < glu; ++c) {
      double h1 = 0.0, h2 = 0.0;
      for (int64_t i = 0; i < k; ++i) {
        h1 += double(a[r * k + i]) * w12[c * k + i];
        h2 += double(a[r * k + i]) * w12[(glu + c) * k + i];
      }
      p[r * glu + c] = test::to_float(test::from_float<T>(float(h1))) * test::to_float(test::from_float<T>(float(h2)));
    }
  }
  return p;
}

TYPED_TEST(SgluGemmTest, EqualsBothProductsRoundedThenMultiplied) {
  using T = TypeParam;
  struct Shape {
    int64_t rows, k, glu;
  };
  // One row; a row tail, a k tail (k not a multiple of the 64-wide slice) and a
  // half column tile (glu an odd multiple of 64); more k slices than pipeline
  // stages; more tiles than SMs (each CTA walks several, its stage ring running on
  // from one tile into the next).
  for (const Shape sh : {Shape{1, 64, 64}, Shape{130, 200, 192}, Shape{300, 1024, 128}, Shape{64, 8, 64},
                         Shape{4096, 200, 640}}) {
    const std::vector<float> a = test::rounded<T>(test::random_vector(sh.rows * sh.k, 1 + sh.k, -2.0f, 2.0f));
    const std::vector<float> w12 = test::rounded<T>(test::random_vector(2 * sh.glu * sh.k, 2 + sh.glu));
    const std::vector<float> ref = reference<T>(a, w12, sh.rows, sh.k, sh.glu);
    constexpr int64_t kSpareRows = 3;  // must stay untouched
    DeviceVector<T> da(a), dw(w12), dp(size_t((sh.rows + kSpareRows) * sh.glu));
    dp.poison();
    TNL_EXPECT_CUDA_OK(cuda::sglu_gemm<T>(da.get(), sh.rows, sh.k, dw.get(), sh.glu, dp.get(), nullptr));
    std::vector<float> out = dp.to_host();
    int64_t written_past = 0;
    for (size_t i = size_t(sh.rows * sh.glu); i < out.size(); ++i) written_past += !std::isnan(out[i]);
    out.resize(size_t(sh.rows * sh.glu));
    EXPECT_LT(test::relative_error(out, ref), kRoundedTolerance)
        << "rows " << sh.rows << ", k " << sh.k << ", glu " << sh.glu;
    EXPECT_EQ(written_past, 0) << "rows " << sh.rows;
  }
}

TYPED_TEST(SgluGemmTest, RefusesShapesItCannotTile) {
  using T = TypeParam;
  DeviceVector<T> buf(size_t(4096));
  EXPECT_EQ(cuda::sglu_gemm<T>(buf.get(), 4, 64, buf.get(), 96, buf.get(), nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::sglu_gemm<T>(buf.get(), 4, 12, buf.get(), 64, buf.get(), nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::sglu_gemm<T>(buf.get() + 1, 4, 64, buf.get(), 64, buf.get(), nullptr), cudaErrorInvalidValue);
}

TEST(SgluGemmShapes, TilesWholeColumnBlocksOfAlignedRows) {
  EXPECT_TRUE(cuda::sglu_gemm_fits(1024, 2816));
  EXPECT_TRUE(cuda::sglu_gemm_fits(8, 64));
  EXPECT_FALSE(cuda::sglu_gemm_fits(1024, 2800));  // W1's last tile would run into W2
  EXPECT_FALSE(cuda::sglu_gemm_fits(1020, 2816));  // TMA: rows a multiple of 16 bytes
  EXPECT_FALSE(cuda::sglu_gemm_fits(0, 64));
}

}  // namespace
}  // namespace tnl
