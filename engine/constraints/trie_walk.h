// TrieWalker: the depth-first walk of the token trie with the byte automaton.
//
// Each trie node's stack set is computed from its parent's by one byte, so
// tokens sharing a prefix share that work, and a subtree is skipped at the
// first byte no stack accepts.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/constraints/byte_automaton.h"
#include "engine/constraints/token_trie.h"

namespace tnl::constraints {

struct TrieWalkResult {
  std::vector<int32_t> accepted;   // some path reads all the token's bytes
  std::vector<int32_t> uncertain;  // not accepted, but a path popped kUnknownFrame on the way
  std::vector<int32_t> ends_with_pop;  // the uncertain tokens where that pop came right after the last byte
  uint32_t max_frame_depth = 0;    // deepest frame on any stack the walk kept
};

class TrieWalker {
 public:
  // Walks every token from `start` (stacks on frames of `arena`, which is
  // restored to its size on return). Results are appended to `result`.
  void walk(const ByteAutomaton& automaton, const TokenTrie& trie, std::span<const StackRef> start,
            FrameArena& arena, TrieWalkResult& result);

 private:
  std::vector<std::vector<StackRef>> levels_;  // levels_[d]: the stacks after d bytes of the current prefix
  std::vector<size_t> arena_marks_;
  std::vector<bool> escaped_;
};

}  // namespace tnl::constraints
