// TokenMaskTable: what one terminal position allows, independent of the frames
// below its rule (computed by a trie walk from that position on kUnknownFrame).
//
// For a stack (position, frame) the allowed tokens are
//   accepted ∪ { t in uncertain : the full stack reads t }            (frame above the bottom)
//   accepted ∪ ends_with_pop                                          (frame == kBottomFrame)
// because at the bottom, popping the frame means the root finished, so a token
// is fine there exactly when it ends with that pop. The uncertain lists are
// short (tokens that cross the end of their rule, like `",` after a string),
// so a mask is a few bitset ORs plus a few short automaton runs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/constraints/trie_walk.h"

namespace tnl::constraints {

struct TokenMaskTable {
  std::vector<uint32_t> accepted_words;  // dense form (mask words), or empty when accepted_ids is used
  std::vector<int32_t> accepted_ids;     // sparse form
  std::vector<int32_t> uncertain;
  std::vector<int32_t> ends_with_pop;
  uint32_t max_frame_depth = 0;          // deepest frame above kUnknownFrame on any kept path

  static TokenMaskTable from_walk(TrieWalkResult&& walk, size_t mask_words);
  // mask |= accepted
  void add_accepted(std::span<uint32_t> mask) const;
  size_t memory_bytes() const;
};

inline void set_token_bit(std::span<uint32_t> mask, int32_t token) {
  mask[static_cast<uint32_t>(token) >> 5] |= 1u << (static_cast<uint32_t>(token) & 31);
}
inline bool token_bit(std::span<const uint32_t> mask, int32_t token) {
  return (mask[static_cast<uint32_t>(token) >> 5] >> (static_cast<uint32_t>(token) & 31)) & 1;
}

}  // namespace tnl::constraints
