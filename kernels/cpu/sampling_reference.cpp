#include "kernels/cpu/sampling_reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace tnl::ref {

std::vector<float> penalised_logits(std::span<const float> logits, const RowSampling& p,
                                    std::span<const PenaltyEntry> penalties, std::span<const uint32_t> mask) {
  std::vector<float> x(logits.begin(), logits.end());
  const auto vocab = int64_t(x.size());
  for (const PenaltyEntry& e : penalties) {
    if (e.token < 0 || e.token >= vocab) continue;
    float& v = x[size_t(e.token)];
    v = penalised_logit(v, p, e);
  }
  if (!mask.empty()) {
    for (int64_t i = 0; i < vocab; ++i) {
      if (!mask_allows(mask.data(), i)) x[size_t(i)] = -std::numeric_limits<float>::infinity();
    }
  }
  for (float& v : x) v = std::isnan(v) ? -std::numeric_limits<float>::infinity() : v + 0.0f;
  return x;
}

SampleTrace sample_row(std::span<const float> logits, const RowSampling& p, std::span<const PenaltyEntry> penalties,
                       bool want_logprob, std::span<const uint32_t> mask) {
  const std::vector<float> x = penalised_logits(logits, p, penalties, mask);
  std::vector<int32_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });

  SampleTrace trace;
  const int32_t best = order.front();
  const float max = x[size_t(best)];
  int32_t token = best;
  if (p.temperature != 0.0f && max != -std::numeric_limits<float>::infinity()) {
    size_t kept = order.size();
    if (p.top_k > 0 && size_t(p.top_k) < kept) kept = size_t(p.top_k);
    if (p.top_p < 1.0f) {
      uint64_t total = 0;
      for (size_t i = 0; i < kept; ++i) total += fixed_weight(x[order[i]], max, p.inv_temperature);
      const double target = double(p.top_p) * double(total);
      uint64_t running = 0;
      for (size_t i = 0; i < kept; ++i) {
        running += fixed_weight(x[order[i]], max, p.inv_temperature);
        if (double(running) >= target) {
          kept = i + 1;
          break;
        }
      }
    }
    for (size_t i = 0; i < kept; ++i) {
      const int32_t id = order[i];
      if (p.min_p > 0.0f && !passes_min_p(x[id], max, p.inv_temperature, p.min_p)) continue;
      trace.kept.push_back(id);
    }
    std::sort(trace.kept.begin(), trace.kept.end());
    uint64_t total = 0;
    for (int32_t id : trace.kept) total += fixed_weight(x[id], max, p.inv_temperature);
    const auto target = uint64_t(p.uniform * double(total));
    uint64_t running = 0;
    token = trace.kept.back();
    for (int32_t id : trace.kept) {
      running += fixed_weight(x[id], max, p.inv_temperature);
      if (running > target) {
        token = id;
        break;
      }
    }
  } else {
    trace.kept = {best};
  }
  trace.sampled.token = token;
  if (want_logprob) {
    double m = -std::numeric_limits<double>::infinity();
    for (float v : logits) m = std::isnan(v) ? m : std::max(m, double(v));  // NaN ignored, as on the GPU
    double sum = 0.0;
    for (float v : logits) sum += std::isnan(v) ? 0.0 : std::exp(double(v) - m);
    trace.sampled.logprob = float(double(logits[size_t(token)]) - (m + std::log(sum)));
  }
  return trace;
}

PenaltyRowsReference::PenaltyRowsReference(int32_t num_slots, int64_t vocab)
    : vocab_(vocab),
      built_(size_t(num_slots), 0),
      counts_(size_t(num_slots), std::vector<int32_t>(size_t(vocab), 0)),
      in_prompt_(size_t(num_slots), std::vector<uint8_t>(size_t(vocab), 0)) {}

std::vector<PenaltyEntry> PenaltyRowsReference::entries(int32_t slot, PenaltyRowMode mode,
                                                        std::span<const PenaltyEntry> sent) {
  if (mode == PenaltyRowMode::kNone) return {sent.begin(), sent.end()};
  std::vector<int32_t>& counts = counts_.at(size_t(slot));
  std::vector<uint8_t>& in_prompt = in_prompt_.at(size_t(slot));
  if (mode == PenaltyRowMode::kRebuild) {
    built_.at(size_t(slot)) = 1;
    std::fill(counts.begin(), counts.end(), 0);
    std::fill(in_prompt.begin(), in_prompt.end(), 0);
    for (const PenaltyEntry& e : sent) {
      if (e.token < 0 || e.token >= vocab_) continue;
      counts[size_t(e.token)] = e.output_count;
      in_prompt[size_t(e.token)] = e.in_prompt != 0;
    }
  }
  std::vector<float> bias(size_t(vocab_), 0.0f);
  std::vector<uint8_t> biased(size_t(vocab_), 0);
  for (const PenaltyEntry& e : sent) {
    if (e.token < 0 || e.token >= vocab_) continue;
    bias[size_t(e.token)] = e.bias;
    biased[size_t(e.token)] = 1;
  }
  std::vector<PenaltyEntry> out;
  for (int64_t t = 0; t < vocab_; ++t) {
    const auto i = size_t(t);
    if (counts[i] > 0 || in_prompt[i] || biased[i]) out.push_back({int32_t(t), counts[i], in_prompt[i], bias[i]});
  }
  return out;
}

void PenaltyRowsReference::count(int32_t slot, int32_t token) {
  if (token >= 0 && token < vocab_) ++counts_.at(size_t(slot))[size_t(token)];
}

}  // namespace tnl::ref
