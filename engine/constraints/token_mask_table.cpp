#include "engine/constraints/token_mask_table.h"

namespace tnl::constraints {

TokenMaskTable TokenMaskTable::from_walk(TrieWalkResult&& walk, size_t mask_words) {
  TokenMaskTable table;
  // A sorted id list costs 4 bytes an id, the bitset 4 bytes a word: use
  // whichever is smaller (dense beyond one accepted token in 32).
  if (walk.accepted.size() > mask_words) {
    table.accepted_words.assign(mask_words, 0);
    for (int32_t t : walk.accepted) set_token_bit(table.accepted_words, t);
  } else {
    table.accepted_ids = std::move(walk.accepted);
    table.accepted_ids.shrink_to_fit();
  }
  table.uncertain = std::move(walk.uncertain);
  table.uncertain.shrink_to_fit();
  table.ends_with_pop = std::move(walk.ends_with_pop);
  table.ends_with_pop.shrink_to_fit();
  table.max_frame_depth = walk.max_frame_depth;
  return table;
}

void TokenMaskTable::add_accepted(std::span<uint32_t> mask) const {
  if (!accepted_words.empty()) {
    const size_t n = accepted_words.size() < mask.size() ? accepted_words.size() : mask.size();
    const uint32_t* src = accepted_words.data();
    uint32_t* dst = mask.data();
    for (size_t i = 0; i < n; ++i) dst[i] |= src[i];
    return;
  }
  for (int32_t t : accepted_ids) set_token_bit(mask, t);
}

size_t TokenMaskTable::memory_bytes() const {
  return sizeof(*this) + 4 * (accepted_words.capacity() + accepted_ids.capacity() + uncertain.capacity() +
                              ends_with_pop.capacity());
}

}  // namespace tnl::constraints
