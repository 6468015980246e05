#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/sampling/sampler.h"

namespace tnl {

double log_sum_exp(std::span<const float> logits) {
  constexpr double kNegInf = -std::numeric_limits<double>::infinity();
  if (logits.empty()) return kNegInf;
  const float max = *std::max_element(logits.begin(), logits.end());
  if (std::isinf(max)) return max;  // all -inf (nothing possible) or a +inf logit
  // Terms in float (expf is several times faster than exp), each exact to
  // ~1e-7 relative; summed in double: 64000 float additions would lose digits.
  double sum = 0.0;
  for (float logit : logits) sum += std::exp(logit - max);
  return static_cast<double>(max) + std::log(sum);
}

std::vector<float> log_softmax(std::span<const float> logits) {
  const double log_z = log_sum_exp(logits);
  std::vector<float> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<float>(logits[i] - log_z);
  return out;
}

}  // namespace tnl
