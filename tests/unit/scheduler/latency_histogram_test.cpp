// LatencyHistogram: Prometheus semantics (cumulative buckets, le = "less or equal").
#include "engine/scheduler/latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace tnl {
namespace {

TEST(LatencyHistogram, BucketsAreCumulativeAndInclusive) {
  LatencyHistogram h({0.1, 0.5, 1.0});
  h.observe(0.05);
  h.observe(0.1);   // on a bound: counts in that bucket (le)
  h.observe(0.7);
  h.observe(3.0);   // only in +Inf (count)
  const auto& s = h.snapshot();
  EXPECT_EQ(s.bucket_counts, (std::vector<uint64_t>{2, 2, 3}));
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.sum, 3.85);
}

TEST(LatencyHistogram, DefaultBucketsAscend) {
  for (const auto& b : {time_to_first_token_buckets(), time_per_output_token_buckets(), e2e_latency_buckets(),
                        step_time_buckets()}) {
    EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
    EXPECT_EQ(std::adjacent_find(b.begin(), b.end()), b.end());
  }
}

}  // namespace
}  // namespace tnl
