// Truncation filters of sampling (top-k, top-p, min-p) over a candidate array.
//
// Each filter reorders the candidates in place and returns how many of the
// leading ones survive; none sorts the whole vocabulary: O(n) expected time, no
// allocation. Ties are broken by the lower token id, so results do not depend
// on the order of the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tnl {

struct Candidate {
  float value = 0.0f;  // a logit, or once weighted an unnormalised probability
  int32_t token = 0;
};

// Strict total order "a is a better candidate than b": higher value, then lower id.
inline bool better_candidate(const Candidate& a, const Candidate& b) {
  return a.value > b.value || (a.value == b.value && a.token < b.token);
}

// Keeps the k best candidates (k ≥ 1) in the first k places, unordered.
size_t keep_top_k(std::span<Candidate> candidates, size_t k);

// Candidates hold weights (unnormalised probabilities) summing to `total`.
// Keeps the smallest set of best candidates whose weight reaches top_p · total
// (at least one), found by a weight histogram and a weighted quickselect inside
// one bucket rather than by a sort. Weights must be ≥ 0 and finite.
size_t keep_top_p(std::span<Candidate> candidates, double total, float top_p);

// Keeps candidates whose weight is at least min_p times the largest weight.
size_t keep_min_p(std::span<Candidate> candidates, float min_p);

}  // namespace tnl
