// TokenHashChain: the prefix state cache's key of every prefix of a token
// sequence — key(n) names tokens[0, n). A serial hash costs a few ns a token, so
// hashing a 4,500-token conversation at its admission, again at its snapshots and
// at its finish took ~50–80 µs of the step loop per request (a burst of five
// cached turns: 0.4 ms before the step could start). Instead the keys are computed
// once where a request is submitted (the front end's thread) and extended by one
// token per decode step.
//
// Threads: a value type; no shared state.
#pragma once

#include <cassert>
#include <cstdint>
#include <span>
#include <vector>

namespace tnl {

class TokenHashChain {
 public:
  TokenHashChain() = default;  // no keys: the cache is off, or not computed yet
  explicit TokenHashChain(std::span<const int32_t> tokens);

  // splitmix64 of (key of the prefix, next token): each prefix gets its own key.
  static uint64_t next(uint64_t key, int32_t token);
  static uint64_t of(std::span<const int32_t> tokens);

  void append(int32_t token) { keys_.push_back(next(keys_.back(), token)); }
  // The key of the first `length` tokens, length ≤ tokens().
  uint64_t key(size_t length) const {
    assert(length < keys_.size());
    return keys_[length];
  }
  // Whether the chain holds the keys of exactly n tokens (an empty chain covers nothing).
  bool covers(size_t n) const { return !keys_.empty() && keys_.size() == n + 1; }

 private:
  std::vector<uint64_t> keys_;  // keys_[n] = key(n); keys_[0] = 0 (the empty prefix)
};

}  // namespace tnl
