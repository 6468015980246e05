#include "engine/sampling/candidate_filters.h"

#include <algorithm>
#include <array>
#include <bit>

namespace tnl {

size_t keep_top_k(std::span<Candidate> candidates, size_t k) {
  if (k == 0 || k >= candidates.size()) return candidates.size();
  std::nth_element(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(k - 1),
                   candidates.end(), better_candidate);
  return k;
}

namespace {

// Weighted quickselect: the smallest n such that the n best candidates weigh at
// least `target`. Invariant: candidates[0, lo) are the lo best, all inside,
// with weight `taken`; n satisfies lo < n ≤ hi. Each round selects the middle
// of [lo, hi) and halves the range: O(size) expected.
size_t weighted_select(std::span<Candidate> candidates, double target) {
  size_t lo = 0;
  size_t hi = candidates.size();
  double taken = 0.0;
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    const auto begin = candidates.begin();
    std::nth_element(begin + static_cast<std::ptrdiff_t>(lo), begin + static_cast<std::ptrdiff_t>(mid),
                     begin + static_cast<std::ptrdiff_t>(hi), better_candidate);
    double better_weight = 0.0;  // of candidates[lo, mid), all better than candidates[mid]
    for (size_t i = lo; i < mid; ++i) better_weight += candidates[i].value;
    if (taken + better_weight >= target) {
      hi = mid;
      continue;
    }
    taken += better_weight + candidates[mid].value;
    if (taken >= target) return mid + 1;
    lo = mid + 1;
  }
  return hi;
}

// Non-negative floats order like their bit patterns, so the top bits (exponent
// and 3 mantissa bits) are a monotone bucket: 8 buckets per power of two.
constexpr size_t kWeightBuckets = 2048;
size_t weight_bucket(float weight) { return std::bit_cast<uint32_t>(weight) >> 20; }

}  // namespace

size_t keep_top_p(std::span<Candidate> candidates, double total, float top_p) {
  if (top_p >= 1.0f || candidates.size() <= 1) return candidates.size();
  const double target = static_cast<double>(top_p) * total;

  // A histogram of weight by bucket finds the bucket where the nucleus ends in
  // one pass; only that bucket needs the (slower) exact selection.
  std::array<double, kWeightBuckets> bucket_weight{};
  for (const Candidate& c : candidates) bucket_weight[weight_bucket(c.value)] += c.value;
  double above = 0.0;  // weight of the buckets better than `boundary`
  size_t boundary = kWeightBuckets;
  for (size_t b = kWeightBuckets; b-- > 0;) {
    if (above + bucket_weight[b] >= target) {
      boundary = b;
      break;
    }
    above += bucket_weight[b];
  }
  if (boundary == kWeightBuckets) return candidates.size();  // target missed by rounding

  const auto inside = std::partition(candidates.begin(), candidates.end(),
                                     [&](const Candidate& c) { return weight_bucket(c.value) > boundary; });
  const auto bucket_end = std::partition(inside, candidates.end(), [&](const Candidate& c) {
    return weight_bucket(c.value) == boundary;
  });
  const auto already = static_cast<size_t>(inside - candidates.begin());
  const std::span<Candidate> bucket(inside, bucket_end);
  return already + weighted_select(bucket, target - above);
}

size_t keep_min_p(std::span<Candidate> candidates, float min_p) {
  if (min_p <= 0.0f || candidates.empty()) return candidates.size();
  float max_weight = 0.0f;
  for (const Candidate& c : candidates) max_weight = std::max(max_weight, c.value);
  const float threshold = min_p * max_weight;
  // The best candidate always passes (min_p ≤ 1), so at least one survives.
  const auto end = std::partition(candidates.begin(), candidates.end(),
                                  [threshold](const Candidate& c) { return c.value >= threshold; });
  return static_cast<size_t>(end - candidates.begin());
}

}  // namespace tnl
