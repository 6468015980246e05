#include "engine/constraints/token_mask_table.h"

#include <algorithm>

namespace tnl::constraints {

TokenMaskTable TokenMaskTable::from_walk(const TrieWalkResult& walk, const TokenTrie& trie, uint32_t max_frame_depth) {
  TokenMaskTable table;
  const size_t mask_words = trie.mask_words();
  std::vector<uint32_t> accepted(mask_words, 0);
  for (int32_t t : walk.accepted) set_token_bit(accepted, t);
  // A sorted id list costs 4 bytes an id, the bitset 4 bytes a word: use
  // whichever is smaller (dense beyond one accepted token in 32).
  if (walk.accepted.size() > mask_words) {
    table.accepted_words = accepted;
  } else {
    table.accepted_ids = walk.accepted;
  }
  table.max_frame_depth = max_frame_depth;
  table.overflowed = walk.overflowed;
  const std::span<const int32_t> tokens = trie.tokens();
  for (uint32_t node : walk.escape_nodes) {
    for (uint32_t i = trie.token_begin(node); i < trie.token_begin(node + 1); ++i) {
      if (!token_bit(accepted, tokens[i])) table.ends_at_escape.push_back(tokens[i]);
    }
    if (trie.subtree_end(node) > node + 1) table.escape_subtrees.push_back(node);
  }
  table.accepted_ids.shrink_to_fit();
  table.ends_at_escape.shrink_to_fit();
  table.escape_subtrees.shrink_to_fit();
  return table;
}

void TokenMaskTable::add_accepted(std::span<uint32_t> mask) const {
  if (!accepted_words.empty()) {
    const size_t n = std::min(accepted_words.size(), mask.size());
    const uint32_t* src = accepted_words.data();
    uint32_t* dst = mask.data();
    for (size_t i = 0; i < n; ++i) dst[i] |= src[i];
    return;
  }
  for (int32_t t : accepted_ids) set_token_bit(mask, t);
}

size_t TokenMaskTable::memory_bytes() const {
  return sizeof(*this) + 4 * (accepted_words.capacity() + accepted_ids.capacity() + ends_at_escape.capacity() +
                              escape_subtrees.capacity());
}

}  // namespace tnl::constraints
