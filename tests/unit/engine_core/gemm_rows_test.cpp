// The CUDA backend's GEMM row buckets (engine/cuda/gemm_rows.h): every count
// maps to a bucket at least as large, wasting under 1/16 of the rows past 64;
// buckets map to themselves; there are few enough to call each at start-up.
#include "engine/cuda/gemm_rows.h"

#include <gtest/gtest.h>

namespace tnl {
namespace {

TEST(GemmRows, BucketsCoverEveryCountWithLittlePadding) {
  for (int64_t n = 1; n <= 70000; ++n) {
    const int64_t b = gemm_row_bucket(n);
    ASSERT_GE(b, n);
    ASSERT_EQ(gemm_row_bucket(b), b) << "a bucket is its own bucket, n=" << n;
    if (n > 64) {
      ASSERT_LT(16 * (b - n), n) << "padding under 1/16 of the rows, n=" << n;
    } else {
      ASSERT_EQ(b & (b - 1), 0) << "powers of two up to 64, n=" << n;
    }
  }
  EXPECT_EQ(gemm_row_bucket(0), 0);
  for (int64_t p = 1; p <= 65536; p *= 2) EXPECT_EQ(gemm_row_bucket(p), p) << "decode graph buckets unchanged";
  EXPECT_EQ(gemm_row_bucket(765), 768);
  EXPECT_EQ(gemm_row_bucket(2049), 2176);
}

TEST(GemmRows, FewBucketsUpToAStep) {
  int64_t count = 0, last = 0;
  for (int64_t b = 1; b <= gemm_row_bucket(8192); b = next_gemm_row_bucket(b)) {
    EXPECT_GT(b, last);
    last = b;
    ++count;
  }
  EXPECT_EQ(last, 8192);
  EXPECT_EQ(count, 7 + 7 * 16) << "1..64, then 16 per doubling up to 8192";
}

}  // namespace
}  // namespace tnl
