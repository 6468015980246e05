// Random inputs and error measures for numerical tests (never zeros: they hide
// unwritten outputs and wrong indexing).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace tnl::test {

inline std::vector<float> random_vector(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// ‖out − ref‖ / ‖ref‖ in double (model-spec §6). NaN anywhere → +inf.
inline double relative_error(const std::vector<float>& out, const std::vector<float>& ref) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isnan(out[i]) || std::isnan(ref[i])) return INFINITY;
    const double diff = double(out[i]) - double(ref[i]);
    num += diff * diff;
    den += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(num) / std::sqrt(den);
}

}  // namespace tnl::test
