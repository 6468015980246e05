// TokenMaskTable: what one terminal position allows, independent of the frames
// below its rule (computed by a trie walk from that position on kUnknownFrame).
//
// For a stack (position, frame F) a token is allowed iff it is in `accepted`
// (read entirely inside the rule), or a path leaves the rule after some prefix
// of it and the rest can be read from where F returns to. The walk records the
// trie nodes where paths leave (escape nodes); at run time the tokens ending
// exactly there (`ends_at_escape`) are allowed whenever F returns anywhere, and
// the subtrees below the other escape nodes are walked from F's return state.
// Those are few and pruned at their first byte (after a string's closing quote
// only `,`, ` ` or `}` can follow), so a mask costs a bitset OR plus a little.
// At the bottom of the stack F's return is "the root finished", so only the
// tokens ending at an escape are allowed there.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/constraints/token_trie.h"
#include "engine/constraints/trie_walk.h"

namespace tnl::constraints {

struct TokenMaskTable {
  std::vector<uint32_t> accepted_words;  // dense form (mask words), or empty when accepted_ids is used
  std::vector<int32_t> accepted_ids;     // sparse form
  std::vector<int32_t> ends_at_escape;   // not accepted, but their bytes end where a path leaves the rule
  std::vector<uint32_t> escape_subtrees; // escape nodes with children, whose subtrees continue after F
  uint32_t max_frame_depth = 0;          // deepest frame above kUnknownFrame on any kept path
  bool overflowed = false;               // the walk outgrew max_live_stacks: the table is unusable

  static TokenMaskTable from_walk(const TrieWalkResult& walk, const TokenTrie& trie, uint32_t max_frame_depth);
  bool escapes() const { return !ends_at_escape.empty() || !escape_subtrees.empty(); }
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
