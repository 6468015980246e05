#include "engine/constraints/trie_walk.h"

namespace tnl::constraints {

void TrieWalker::walk(const ByteAutomaton& automaton, const TokenTrie& trie, uint32_t root,
                      std::span<const StackRef> start, FrameArena& arena, TrieWalkResult& result) {
  const uint32_t base = trie.depth(root);
  const uint32_t levels = trie.max_depth() - base + 1;
  if (levels_.size() < levels) levels_.resize(levels);
  if (arena_marks_.size() < levels) arena_marks_.resize(levels);
  levels_[0].assign(start.begin(), start.end());
  arena_marks_[0] = arena.size();
  const std::span<const int32_t> tokens = trie.tokens();

  for (uint32_t node = root + 1, end = trie.subtree_end(root); node < end;) {
    const uint32_t d = trie.depth(node) - base;
    arena.truncate(arena_marks_[d - 1]);  // frames built for the previous sibling's subtree
    std::vector<StackRef>& here = levels_[d];
    here.clear();
    const uint32_t flags = automaton.advance(levels_[d - 1], trie.byte(node), arena, here);
    if (flags & kOverflow) {
      result.overflowed = true;
      break;
    }
    if (flags & kEscaped) result.escape_nodes.push_back(node);
    if (here.empty()) {
      node = trie.subtree_end(node);
      continue;
    }
    result.accepted.insert(result.accepted.end(), tokens.begin() + trie.token_begin(node),
                           tokens.begin() + trie.token_begin(node + 1));
    arena_marks_[d] = arena.size();
    ++node;
  }
  arena.truncate(arena_marks_[0]);
}

}  // namespace tnl::constraints
