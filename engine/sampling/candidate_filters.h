// Truncation filters of sampling (top-k, top-p, min-p) over a candidate array,
// by the rules of kernels/sampling_row.h: candidates ordered by (x descending,
// id ascending), weights in fixed point.
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
  float value = 0.0f;   // x: the penalised logit
  int32_t token = 0;
  uint64_t weight = 0;  // fixed-point weight (kernels/sampling_row.h), once computed
};

// Strict total order "a is a better candidate than b": higher value, then lower id.
inline bool better_candidate(const Candidate& a, const Candidate& b) {
  return a.value > b.value || (a.value == b.value && a.token < b.token);
}

// Keeps the k best candidates (k ≥ 1) in the first k places, unordered.
size_t keep_top_k(std::span<Candidate> candidates, size_t k);

// Keeps the shortest prefix of the candidates in (x descending, id ascending)
// order whose weight reaches top_p · total, `total` being the sum of all their
// weights (at least one survives). A weighted quickselect, not a sort.
size_t keep_top_p(std::span<Candidate> candidates, uint64_t total, float top_p);

// Keeps candidates whose float weight exp((x − max)·(1/T)) is at least min_p.
size_t keep_min_p(std::span<Candidate> candidates, float max, float inv_temperature, float min_p);

}  // namespace tnl
