// TokenTrie: the vocabulary's token bytes as a trie laid out in depth-first
// preorder, so a walk is a forward scan that skips a rejected subtree with one
// jump (node i's subtree is [i, subtree_end(i))).
//
// Node 0 is the root (the empty prefix). Node i > 0 is reached by byte(i) from
// its parent, at depth(i) bytes. The tokens whose bytes are exactly node i's
// prefix are tokens()[token_begin(i), token_begin(i + 1)); the tokens of the
// whole subtree are tokens()[token_begin(i), token_begin(subtree_end(i))).
// Special tokens, EOS and tokens with no bytes are not in the trie.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/constraints/constraint.h"

namespace tnl {

class TokenTrie {
 public:
  // Tokens longer than this many bytes are left out (never allowed).
  static constexpr size_t kMaxTokenBytes = 1024;

  explicit TokenTrie(std::shared_ptr<const TokenVocabulary> vocabulary);

  const TokenVocabulary& vocabulary() const { return *vocabulary_; }
  int32_t vocab_size() const { return vocabulary_->size(); }
  int32_t eos_id() const { return vocabulary_->eos_id; }
  // uint32 words of a token mask: ceil(vocab_size / 32).
  size_t mask_words() const { return (static_cast<size_t>(vocab_size()) + 31) / 32; }

  uint32_t num_nodes() const { return static_cast<uint32_t>(byte_.size()); }
  uint8_t byte(uint32_t node) const { return byte_[node]; }
  uint32_t depth(uint32_t node) const { return depth_[node]; }
  uint32_t subtree_end(uint32_t node) const { return subtree_end_[node]; }
  uint32_t token_begin(uint32_t node) const { return token_begin_[node]; }
  std::span<const int32_t> tokens() const { return tokens_; }
  uint32_t max_depth() const { return max_depth_; }
  // Whether the token is in the trie (emittable bytes).
  bool in_trie(int32_t token) const { return token >= 0 && token < vocab_size() && in_trie_[token]; }

 private:
  std::shared_ptr<const TokenVocabulary> vocabulary_;
  std::vector<uint8_t> byte_;
  std::vector<uint32_t> depth_;
  std::vector<uint32_t> subtree_end_;
  std::vector<uint32_t> token_begin_;  // size num_nodes() + 1
  std::vector<int32_t> tokens_;
  std::vector<bool> in_trie_;
  uint32_t max_depth_ = 0;
};

}  // namespace tnl
