#include "engine/scheduler/token_hash_chain.h"

namespace tnl {

TokenHashChain::TokenHashChain(std::span<const int32_t> tokens) {
  keys_.reserve(tokens.size() + 1);
  keys_.push_back(0);
  for (const int32_t t : tokens) keys_.push_back(next(keys_.back(), t));
}

uint64_t TokenHashChain::next(uint64_t key, int32_t token) {
  uint64_t z = key ^ (uint64_t(uint32_t(token)) + 0x9E3779B97F4A7C15ull + (key << 6) + (key >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t TokenHashChain::of(std::span<const int32_t> tokens) {
  uint64_t key = 0;
  for (const int32_t t : tokens) key = next(key, t);
  return key;
}

}  // namespace tnl
