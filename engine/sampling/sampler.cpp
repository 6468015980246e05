#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include "engine/sampling/sampler.h"

namespace tnl {
namespace {

std::mt19937_64 make_rng(const std::optional<uint64_t>& seed) {
  if (seed) return std::mt19937_64(*seed);
  std::random_device device;
  const uint64_t high = device();
  return std::mt19937_64((high << 32) ^ device());
}

// Order of the `top` list: higher logprob first, then lower id.
bool better_logprob(const TokenLogprob& a, const TokenLogprob& b) {
  return a.logprob > b.logprob || (a.logprob == b.logprob && a.token < b.token);
}

}  // namespace

Sampler::Sampler(SamplingParams params, const std::vector<int32_t>& prompt_ids)
    : params_(std::move(params)), rng_(make_rng(params_.seed)), prompt_ids_(prompt_ids) {
  // The repetition penalty only needs the set of prompt tokens.
  std::sort(prompt_ids_.begin(), prompt_ids_.end());
  prompt_ids_.erase(std::unique(prompt_ids_.begin(), prompt_ids_.end()), prompt_ids_.end());
}

void Sampler::accept(int32_t token) {
  auto it = std::lower_bound(output_counts_.begin(), output_counts_.end(), token,
                             [](const auto& entry, int32_t t) { return entry.first < t; });
  if (it != output_counts_.end() && it->first == token) {
    ++it->second;
  } else {
    output_counts_.insert(it, {token, 1});
  }
}

void Sampler::apply_penalties(std::span<Candidate> by_token) const {
  const auto vocab = static_cast<int32_t>(by_token.size());
  const float repetition = params_.repetition_penalty;
  // HF style: a seen token's positive logit is divided, a negative one
  // multiplied, so the penalty always makes it less likely; once per token.
  const auto penalise = [&](int32_t token) {
    if (token < 0 || token >= vocab) return;
    float& logit = by_token[static_cast<size_t>(token)].value;
    logit = logit > 0.0f ? logit / repetition : logit * repetition;
  };
  if (repetition != 1.0f) {
    for (int32_t token : prompt_ids_) penalise(token);
    for (const auto& [token, count] : output_counts_) {
      if (!std::binary_search(prompt_ids_.begin(), prompt_ids_.end(), token)) penalise(token);
    }
  }
  // OpenAI style, over generated tokens only: subtract count · frequency, and
  // presence once for any token that appeared.
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    for (const auto& [token, count] : output_counts_) {
      if (token < 0 || token >= vocab) continue;
      by_token[static_cast<size_t>(token)].value -=
          static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
    }
  }
}

int32_t Sampler::draw(std::span<Candidate> candidates) {
  // Temperature, top-k, weights, top-p, min-p, then an inverse-CDF draw.
  size_t n = candidates.size();
  if (params_.top_k > 0) n = keep_top_k(candidates.first(n), static_cast<size_t>(params_.top_k));
  const std::span<Candidate> kept = candidates.first(n);

  const Candidate best = *std::min_element(kept.begin(), kept.end(), better_candidate);
  if (!std::isfinite(best.value)) return best.token;  // nothing has finite weight
  const float inv_temperature = 1.0f / params_.temperature;
  double total = 0.0;
  for (Candidate& c : kept) {
    // Weight relative to the best (≤ 1), so exp cannot overflow.
    c.value = std::exp((c.value - best.value) * inv_temperature);
    total += c.value;
  }

  n = keep_top_p(kept, total, params_.top_p);
  n = keep_min_p(kept.first(n), params_.min_p);
  const std::span<Candidate> survivors = kept.first(n);
  if (n < kept.size()) {
    total = 0.0;
    for (const Candidate& c : survivors) total += c.value;
  }

  double u = std::uniform_real_distribution<double>(0.0, total)(rng_);
  for (const Candidate& c : survivors) {
    u -= c.value;
    if (u < 0.0) return c.token;
  }
  return survivors.back().token;  // u landed on total through rounding
}

void Sampler::fill_logprobs(std::span<const float> logits, SampleResult* result) const {
  const double log_z = log_sum_exp(logits);
  result->logprob = static_cast<float>(logits[static_cast<size_t>(result->token)] - log_z);

  // The best `logprobs` tokens by raw logit: a min-heap of that size, O(V log k).
  const auto k = static_cast<size_t>(params_.logprobs);
  auto& top = result->top;
  top.clear();
  if (k == 0) return;
  top.reserve(k);
  // Heap order puts the worst kept entry at the front.
  for (size_t i = 0; i < logits.size(); ++i) {
    const TokenLogprob entry{static_cast<int32_t>(i), logits[i]};
    if (top.size() < k) {
      top.push_back(entry);
      std::push_heap(top.begin(), top.end(), better_logprob);
    } else if (better_logprob(entry, top.front())) {
      std::pop_heap(top.begin(), top.end(), better_logprob);
      top.back() = entry;
      std::push_heap(top.begin(), top.end(), better_logprob);
    }
  }
  std::sort_heap(top.begin(), top.end(), better_logprob);
  for (TokenLogprob& entry : top) entry.logprob = static_cast<float>(entry.logprob - log_z);
}

RowSampling Sampler::device_row() {
  RowSampling row;
  row.temperature = params_.temperature;
  row.inv_temperature = params_.temperature > 0.0f ? 1.0f / params_.temperature : 0.0f;
  row.top_k = params_.top_k;
  row.top_p = params_.top_p;
  row.min_p = params_.min_p;
  row.repetition_penalty = params_.repetition_penalty;
  row.presence_penalty = params_.presence_penalty;
  row.frequency_penalty = params_.frequency_penalty;
  if (params_.temperature > 0.0f) row.uniform = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  return row;
}

std::vector<PenaltyEntry> Sampler::penalty_entries() const {
  std::vector<PenaltyEntry> entries;
  if (!has_penalties()) return entries;
  // Prompt tokens matter only to the repetition penalty. Both lists are sorted: merge them.
  const bool prompt = params_.repetition_penalty != 1.0f;
  size_t i = 0, j = 0;
  while ((prompt && i < prompt_ids_.size()) || j < output_counts_.size()) {
    const bool take_prompt = prompt && i < prompt_ids_.size() &&
                             (j == output_counts_.size() || prompt_ids_[i] <= output_counts_[j].first);
    const bool take_output = j < output_counts_.size() &&
                             (!take_prompt || prompt_ids_[i] == output_counts_[j].first);
    PenaltyEntry e;
    e.token = take_prompt ? prompt_ids_[i] : output_counts_[j].first;
    e.in_prompt = take_prompt ? 1 : 0;
    e.output_count = take_output ? output_counts_[j].second : 0;
    if (take_prompt) ++i;
    if (take_output) ++j;
    entries.push_back(e);
  }
  return entries;
}

bool Sampler::has_penalties() const {
  return params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
         params_.frequency_penalty != 0.0f;
}

SampleResult Sampler::sample(std::span<const float> logits) {
  assert(!logits.empty() && "sampling needs a logits row");
  SampleResult result;
  if (params_.temperature == 0.0f && !has_penalties()) {
    // Greedy on the raw row needs no scratch copy. NaN never wins a comparison
    // and ties keep the lowest id.
    size_t best = 0;
    float best_logit = -std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < logits.size(); ++i) {
      if (logits[i] > best_logit) {
        best_logit = logits[i];
        best = i;
      }
    }
    result.token = static_cast<int32_t>(best);
    if (params_.logprobs >= 0) fill_logprobs(logits, &result);
    accept(result.token);
    return result;
  }

  candidates_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    // NaN would break the ordering that selection relies on.
    const float logit = std::isnan(logits[i]) ? -std::numeric_limits<float>::infinity() : logits[i];
    candidates_[i] = {logit, static_cast<int32_t>(i)};
  }
  apply_penalties(candidates_);

  if (params_.temperature == 0.0f) {
    // Greedy: argmax, ties to the lowest id (better_candidate's order).
    result.token = std::min_element(candidates_.begin(), candidates_.end(), better_candidate)->token;
  } else {
    result.token = draw(candidates_);
  }
  if (params_.logprobs >= 0) fill_logprobs(logits, &result);
  accept(result.token);
  return result;
}

}  // namespace tnl
