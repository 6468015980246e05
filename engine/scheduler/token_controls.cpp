#include "engine/scheduler/token_controls.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace tnl {
namespace {

constexpr float kBanned = -std::numeric_limits<float>::infinity();

}  // namespace

Status validate_token_controls(const TokenControls& c, int32_t vocab_size, int32_t max_tokens) {
  auto in_vocab = [&](int32_t id) { return id >= 0 && id < vocab_size; };
  for (const auto& [token, bias] : c.logit_bias) {
    if (!in_vocab(token)) {
      return invalid_argument("logit_bias: token " + std::to_string(token) + " is outside the vocabulary [0, " +
                              std::to_string(vocab_size) + ")");
    }
    if (!(bias >= -100.0f && bias <= 100.0f)) {
      return invalid_argument("logit_bias: the bias of token " + std::to_string(token) + " must be in [-100, 100]");
    }
  }
  for (int32_t id : c.allowed_token_ids) {
    if (!in_vocab(id)) {
      return invalid_argument("allowed_token_ids: token " + std::to_string(id) + " is outside the vocabulary [0, " +
                              std::to_string(vocab_size) + ")");
    }
  }
  if (c.min_tokens < 0) return invalid_argument("min_tokens must be ≥ 0");
  if (c.min_tokens > max_tokens) {
    return invalid_argument("min_tokens (" + std::to_string(c.min_tokens) + ") must not exceed max_tokens (" +
                            std::to_string(max_tokens) + ")");
  }
  for (const auto& word : c.bad_words) {
    if (word.empty()) return invalid_argument("bad_words: a banned sequence must hold at least one token");
    for (int32_t id : word) {
      if (!in_vocab(id)) return invalid_argument("bad_words: token " + std::to_string(id) + " is outside the vocabulary");
    }
  }
  return Status::ok();
}

TokenControlState::TokenControlState(const TokenControls& controls, int32_t vocab_size, std::vector<int32_t> end_tokens)
    : controls_(controls), vocab_size_(vocab_size), end_tokens_(std::move(end_tokens)) {
  std::sort(end_tokens_.begin(), end_tokens_.end());
  end_tokens_.erase(std::unique(end_tokens_.begin(), end_tokens_.end()), end_tokens_.end());
  if (controls_.constraint) matcher_.emplace(controls_.constraint);
  if (!controls_.allowed_token_ids.empty()) {
    allowed_ids_mask_.assign(size_t(vocab_size_ + 31) / 32, 0u);
    for (int32_t id : controls_.allowed_token_ids) allowed_ids_mask_[size_t(id) >> 5] |= 1u << (id & 31);
  }
}

std::vector<PenaltyEntry> TokenControlState::biases() const {
  std::map<int32_t, float> by_token;  // small: a handful of entries per request
  for (const auto& [token, bias] : controls_.logit_bias) by_token[token] += bias;
  if (int32_t(output_.size()) < controls_.min_tokens) {
    for (int32_t id : end_tokens_) by_token[id] = kBanned;
  }
  // A banned sequence w: its last token is banned when the output ends with the
  // rest of it (a one-token w is always banned).
  for (const std::vector<int32_t>& w : controls_.bad_words) {
    const size_t prefix = w.size() - 1;
    if (prefix > output_.size()) continue;
    if (std::equal(w.begin(), w.begin() + std::ptrdiff_t(prefix), output_.end() - std::ptrdiff_t(prefix))) {
      by_token[w.back()] = kBanned;
    }
  }
  std::vector<PenaltyEntry> out;
  out.reserve(by_token.size());
  for (const auto& [token, bias] : by_token) {
    if (token >= 0 && token < vocab_size_) out.push_back({token, 0, 0, bias});
  }
  return out;
}

Status TokenControlState::fill_mask(std::vector<uint32_t>* mask) const {
  const size_t words = size_t(vocab_size_ + 31) / 32;
  if (matcher_) {
    // The constraint's vocabulary spans the model's ids and the tokenizer's
    // (constraint_vocabulary): its mask may be longer than a logits row.
    mask->assign(std::max(words, matcher_->mask_words()), 0u);
    matcher_->fill_allowed(*mask);
    mask->resize(words);
    if (matcher_->failed()) return matcher_->error();
  } else {
    mask->assign(words, ~0u);
  }
  for (size_t i = 0; i < allowed_ids_mask_.size(); ++i) (*mask)[i] &= allowed_ids_mask_[i];
  if (vocab_size_ % 32 != 0) mask->back() &= (1u << (vocab_size_ % 32)) - 1u;
  return Status::ok();
}

Status TokenControlState::check(int32_t token, std::span<const uint32_t> mask,
                                std::span<const PenaltyEntry> biases) const {
  const bool masked = !mask.empty() && (token < 0 || token >= vocab_size_ || !mask_allows(mask.data(), token));
  const auto banned = std::find_if(biases.begin(), biases.end(), [&](const PenaltyEntry& e) {
    return e.token == token && e.bias == kBanned;
  });
  if (!masked && banned == biases.end()) return Status::ok();
  return invalid_argument(
      "no token may come next: the request's constraints (response_format/regex/grammar, allowed_token_ids, "
      "bad_words, min_tokens) together exclude every token");
}

Status TokenControlState::accept(int32_t token) {
  output_.push_back(token);
  if (matcher_) return matcher_->accept(token);
  return Status::ok();
}

}  // namespace tnl
