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
  std::vector<int32_t> accepted;  // some path reads all the token's bytes
  // Nodes where a path popped kUnknownFrame right after the node's last byte
  // (only when the start stacks sit on kUnknownFrame), in preorder.
  std::vector<uint32_t> escape_nodes;
  // The stacks outgrew max_live_stacks (a too ambiguous grammar); the walk
  // stopped and the rest of the result is incomplete.
  bool overflowed = false;
};

class TrieWalker {
 public:
  // Walks the tokens below trie node `root` (0: the whole vocabulary), reading
  // their bytes after root's prefix from the stacks `start` (on frames of
  // `arena`, which is restored to its size on return). Appends to `result`.
  void walk(const ByteAutomaton& automaton, const TokenTrie& trie, uint32_t root, std::span<const StackRef> start,
            FrameArena& arena, TrieWalkResult& result);

 private:
  std::vector<std::vector<StackRef>> levels_;  // levels_[d]: the stacks after d bytes below root
  std::vector<size_t> arena_marks_;
};

}  // namespace tnl::constraints
