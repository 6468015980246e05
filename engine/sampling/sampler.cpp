#include <algorithm>
#include <bit>
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
    : params_(std::move(params)), rng_(make_rng(params_.seed)) {
  // Only the repetition penalty reads the prompt, and only as a set. Kept only then.
  if (params_.repetition_penalty == 1.0f) return;
  // The set in id order through a bitmap of the ids (≤ 8 KB at a 64k vocabulary):
  // linear in the prompt, where sorting 2,048 ids cost ~0.1 ms of the step loop.
  int32_t max_id = -1;
  bool negative = false;
  for (int32_t id : prompt_ids) {
    max_id = std::max(max_id, id);
    negative |= id < 0;
  }
  if (negative) {  // never from the engine (ids are validated); sort as a fallback
    prompt_set_ = prompt_ids;
    std::sort(prompt_set_.begin(), prompt_set_.end());
    prompt_set_.erase(std::unique(prompt_set_.begin(), prompt_set_.end()), prompt_set_.end());
    return;
  }
  std::vector<uint64_t> seen(size_t(max_id + 64) / 64, 0);
  for (int32_t id : prompt_ids) seen[size_t(id) / 64] |= uint64_t(1) << (id % 64);
  for (size_t w = 0; w < seen.size(); ++w) {
    for (uint64_t bits = seen[w]; bits != 0; bits &= bits - 1) {
      prompt_set_.push_back(int32_t(w * 64 + size_t(std::countr_zero(bits))));
    }
  }
}

void Sampler::accept(int32_t token) {
  if (!has_penalties()) return;  // only the penalties read the counts (one call per token, on the step loop)
  // One token a step: find it among the output's distinct tokens, count it or
  // insert it (work that grows with the output, never with the prompt).
  auto it = std::lower_bound(output_counts_.begin(), output_counts_.end(), token,
                             [](const PenaltyEntry& e, int32_t t) { return e.token < t; });
  if (it != output_counts_.end() && it->token == token) {
    ++it->output_count;
  } else {
    output_counts_.insert(it, PenaltyEntry{token, 1, 0, 0.0f});
  }
}

bool Sampler::load_candidates(std::span<const float> logits, const RowControls& controls) {
  candidates_.resize(logits.size());
  bool finite = true;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float x = logits[i];
    finite &= x < std::numeric_limits<float>::infinity();  // false for NaN and +Inf
    // NaN would break the ordering; −0 and +0 must not differ in the tie rule.
    candidates_[i] = {std::isnan(x) ? -std::numeric_limits<float>::infinity() : x + 0.0f, int32_t(i), 0};
  }
  const auto vocab = int32_t(candidates_.size());
  if (has_penalties() || !controls.biases.empty()) {
    const RowSampling row = rules();
    for (const PenaltyEntry& e : penalty_entries(controls.biases)) {
      if (e.token < 0 || e.token >= vocab) continue;
      float& x = candidates_[size_t(e.token)].value;
      x = penalised_logit(x, row, e) + 0.0f;  // −0 → +0 after the penalties too, as the reference
    }
  }
  if (!controls.mask.empty()) {
    for (int32_t i = 0; i < vocab; ++i) {
      if (!mask_allows(controls.mask.data(), i)) candidates_[size_t(i)].value = -std::numeric_limits<float>::infinity();
    }
  }
  return finite;
}

int32_t Sampler::draw(const RowSampling& row) {
  std::span<Candidate> all(candidates_);
  const Candidate best = *std::min_element(all.begin(), all.end(), better_candidate);
  if (best.value == -std::numeric_limits<float>::infinity()) return best.token;  // nothing has weight
  size_t n = all.size();
  if (row.top_k > 0) n = keep_top_k(all, size_t(row.top_k));
  std::span<Candidate> kept = all.first(n);
  uint64_t total = 0;
  for (Candidate& c : kept) {
    c.weight = fixed_weight(c.value, best.value, row.inv_temperature);
    total += c.weight;
  }
  n = keep_top_p(kept, total, row.top_p);
  n = keep_min_p(kept.first(n), best.value, row.inv_temperature, row.min_p);
  const std::span<Candidate> survivors = kept.first(n);

  // The draw walks the survivors in id order: mark them by id, then scan.
  survives_.assign(candidates_.size(), 0);
  std::vector<uint64_t>& weight_by_id = weight_by_id_;
  weight_by_id.resize(candidates_.size());
  total = 0;
  for (const Candidate& c : survivors) {
    survives_[size_t(c.token)] = 1;
    weight_by_id[size_t(c.token)] = c.weight;
    total += c.weight;
  }
  const auto target = uint64_t(row.uniform * double(total));
  uint64_t running = 0;
  int32_t last = best.token;
  for (size_t id = 0; id < survives_.size(); ++id) {
    if (!survives_[id]) continue;
    running += weight_by_id[id];
    last = int32_t(id);
    if (running > target) return int32_t(id);
  }
  return last;  // uniform·total rounded up to total
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

RowSampling Sampler::rules() const {
  RowSampling row;
  row.temperature = params_.temperature;
  row.inv_temperature = params_.temperature > 0.0f ? 1.0f / params_.temperature : 0.0f;
  row.top_k = params_.top_k;
  row.top_p = params_.top_p;
  row.min_p = params_.min_p;
  row.repetition_penalty = params_.repetition_penalty;
  row.presence_penalty = params_.presence_penalty;
  row.frequency_penalty = params_.frequency_penalty;
  return row;
}

RowSampling Sampler::device_row() {
  RowSampling row = rules();
  if (params_.temperature > 0.0f) row.uniform = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  return row;
}

std::vector<PenaltyEntry> Sampler::penalty_entries(std::span<const PenaltyEntry> biases) const {
  if (!has_penalties()) return bias_entries(biases);
  // Three lists sorted by token (the prompt's set, the output's counts, the
  // biases): one merge, each token once.
  std::vector<PenaltyEntry> merged;
  merged.reserve(prompt_set_.size() + output_counts_.size() + biases.size());
  size_t p = 0, o = 0, b = 0;
  constexpr int32_t kEnd = std::numeric_limits<int32_t>::max();
  while (p < prompt_set_.size() || o < output_counts_.size() || b < biases.size()) {
    const int32_t tp = p < prompt_set_.size() ? prompt_set_[p] : kEnd;
    const int32_t to = o < output_counts_.size() ? output_counts_[o].token : kEnd;
    const int32_t tb = b < biases.size() ? biases[b].token : kEnd;
    PenaltyEntry e{std::min({tp, to, tb}), 0, 0, 0.0f};
    if (tp == e.token) {
      e.in_prompt = 1;
      ++p;
    }
    if (to == e.token) e.output_count = output_counts_[o++].output_count;
    if (tb == e.token) e.bias = biases[b++].bias;
    merged.push_back(e);
  }
  return merged;
}

std::vector<PenaltyEntry> Sampler::bias_entries(std::span<const PenaltyEntry> biases) {
  std::vector<PenaltyEntry> entries(biases.begin(), biases.end());
  for (PenaltyEntry& e : entries) e.output_count = e.in_prompt = 0;  // a bias entry carries only its bias
  return entries;
}

bool Sampler::has_penalties() const {
  return params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
         params_.frequency_penalty != 0.0f;
}

SampleResult Sampler::sample(std::span<const float> logits, RowControls controls) {
  assert(!logits.empty() && "sampling needs a logits row");
  SampleResult result;
  // One uniform per sampled token, drawn first, exactly as device_row() does: the
  // request's RNG stream is the same whichever path samples it.
  const RowSampling row = device_row();
  if (params_.temperature == 0.0f && !has_penalties() && controls.biases.empty() && controls.mask.empty()) {
    // Greedy on the raw row needs no scratch copy. NaN never wins a comparison
    // and ties keep the lowest id.
    size_t best = 0;
    float best_logit = -std::numeric_limits<float>::infinity();
    bool finite = true;
    for (size_t i = 0; i < logits.size(); ++i) {
      finite &= logits[i] < std::numeric_limits<float>::infinity();
      if (logits[i] > best_logit) {
        best_logit = logits[i];
        best = i;
      }
    }
    result.token = static_cast<int32_t>(best);
    result.non_finite = !finite;
  } else {
    result.non_finite = !load_candidates(logits, controls);
    if (params_.temperature == 0.0f) {
      result.token = std::min_element(candidates_.begin(), candidates_.end(), better_candidate)->token;
    } else {
      result.token = draw(row);
    }
  }
  if (params_.logprobs >= 0) fill_logprobs(logits, &result);
  accept(result.token);
  return result;
}

}  // namespace tnl
