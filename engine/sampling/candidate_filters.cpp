#include "engine/sampling/candidate_filters.h"

#include <algorithm>

#include "kernels/sampling_row.h"

namespace tnl {

size_t keep_top_k(std::span<Candidate> candidates, size_t k) {
  if (k == 0 || k >= candidates.size()) return candidates.size();
  std::nth_element(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(k - 1),
                   candidates.end(), better_candidate);
  return k;
}

size_t keep_top_p(std::span<Candidate> candidates, uint64_t total, float top_p) {
  if (top_p >= 1.0f || candidates.size() <= 1) return candidates.size();
  // The reference compares the running sum, as a double, against this target.
  const double target = double(top_p) * double(total);
  // Weighted quickselect for the smallest n whose n best weigh ≥ target.
  // Invariant: candidates[0, lo) are the lo best, all inside, weighing `taken`;
  // the answer n satisfies lo < n ≤ hi. Each round halves [lo, hi): O(n) expected.
  size_t lo = 0;
  size_t hi = candidates.size();
  uint64_t taken = 0;
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    const auto begin = candidates.begin();
    std::nth_element(begin + std::ptrdiff_t(lo), begin + std::ptrdiff_t(mid), begin + std::ptrdiff_t(hi),
                     better_candidate);
    uint64_t better = 0;  // candidates[lo, mid), all better than candidates[mid]
    for (size_t i = lo; i < mid; ++i) better += candidates[i].weight;
    if (double(taken + better) >= target) {
      hi = mid;
      continue;
    }
    taken += better + candidates[mid].weight;
    if (double(taken) >= target) return mid + 1;
    lo = mid + 1;
  }
  // hi − lo == 1: candidates[lo] is already the best of [lo, size) (everything at
  // or past hi was split off as worse), so the first hi are the n best.
  return hi;
}

size_t keep_min_p(std::span<Candidate> candidates, float max, float inv_temperature, float min_p) {
  if (min_p <= 0.0f || candidates.empty()) return candidates.size();
  // The best candidate has weight 1 ≥ min_p, so at least one survives.
  const auto end = std::partition(candidates.begin(), candidates.end(), [&](const Candidate& c) {
    return passes_min_p(c.value, max, inv_temperature, min_p);
  });
  return static_cast<size_t>(end - candidates.begin());
}

}  // namespace tnl
