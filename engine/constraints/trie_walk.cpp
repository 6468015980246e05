#include "engine/constraints/trie_walk.h"

#include <algorithm>

namespace tnl::constraints {

void TrieWalker::walk(const ByteAutomaton& automaton, const TokenTrie& trie, std::span<const StackRef> start,
                      FrameArena& arena, TrieWalkResult& result) {
  const uint32_t levels = trie.max_depth() + 1;
  if (levels_.size() < levels) levels_.resize(levels);
  arena_marks_.assign(levels, 0);
  escaped_.assign(levels, false);
  levels_[0].assign(start.begin(), start.end());
  arena_marks_[0] = arena.size();
  const std::span<const int32_t> tokens = trie.tokens();

  for (uint32_t node = 1; node < trie.num_nodes();) {
    const uint32_t d = trie.depth(node);
    arena.truncate(arena_marks_[d - 1]);  // frames built for the previous sibling's subtree
    std::vector<StackRef>& here = levels_[d];
    here.clear();
    const bool popped_here = automaton.advance(levels_[d - 1], trie.byte(node), arena, here);
    const bool escaped = popped_here || escaped_[d - 1];
    const uint32_t own_begin = trie.token_begin(node);
    const uint32_t own_end = trie.token_begin(node + 1);
    if (here.empty()) {
      // Nothing in the frame reads this byte: the subtree is rejected, or
      // (after an escape) depends on the frames below the start.
      if (escaped) {
        const uint32_t subtree_tokens_end = trie.token_begin(trie.subtree_end(node));
        result.uncertain.insert(result.uncertain.end(), tokens.begin() + own_begin,
                                tokens.begin() + subtree_tokens_end);
        if (popped_here) {
          result.ends_with_pop.insert(result.ends_with_pop.end(), tokens.begin() + own_begin,
                                      tokens.begin() + own_end);
        }
      }
      node = trie.subtree_end(node);
      continue;
    }
    for (const StackRef& s : here) result.max_frame_depth = std::max(result.max_frame_depth, arena.depth(s.frame));
    result.accepted.insert(result.accepted.end(), tokens.begin() + own_begin, tokens.begin() + own_end);
    escaped_[d] = escaped;
    arena_marks_[d] = arena.size();
    ++node;
  }
  arena.truncate(arena_marks_[0]);
}

}  // namespace tnl::constraints
