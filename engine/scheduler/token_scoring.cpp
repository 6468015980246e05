#include "engine/scheduler/token_scoring.h"

#include <algorithm>
#include <numeric>
#include <vector>

namespace tnl {

SampleResult score_token(std::span<const float> logits, int32_t token, int32_t top_k) {
  const std::vector<float> logp = log_softmax(logits);
  SampleResult r;
  r.token = token;
  r.logprob = logp[static_cast<size_t>(token)];
  const size_t k = std::min(static_cast<size_t>(std::max(top_k, 0)), logp.size());
  if (k == 0) return r;
  std::vector<int32_t> ids(logp.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                    [&](int32_t a, int32_t b) { return logp[a] > logp[b] || (logp[a] == logp[b] && a < b); });
  r.top.reserve(k);
  for (size_t i = 0; i < k; ++i) r.top.push_back({ids[i], logp[static_cast<size_t>(ids[i])]});
  return r;
}

}  // namespace tnl
