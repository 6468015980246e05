#include "engine/constraints/token_trie.h"

#include <algorithm>
#include <string_view>

namespace tnl {

TokenTrie::TokenTrie(std::shared_ptr<const TokenVocabulary> vocabulary) : vocabulary_(std::move(vocabulary)) {
  const TokenVocabulary& v = *vocabulary_;
  in_trie_.assign(v.bytes.size(), false);
  for (int32_t id = 0; id < v.size(); ++id) {
    const bool special = id < static_cast<int32_t>(v.special.size()) && v.special[id];
    const size_t length = v.bytes[id].size();
    in_trie_[id] = !special && id != v.eos_id && length > 0 && length <= kMaxTokenBytes;
  }
  // Sorted byte strings list the trie's nodes in preorder: each token adds the
  // nodes past its common prefix with the previous token.
  std::vector<int32_t> order;
  for (int32_t id = 0; id < v.size(); ++id) {
    if (in_trie_[id]) order.push_back(id);
  }
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return v.bytes[a] < v.bytes[b]; });

  byte_.push_back(0);
  depth_.push_back(0);
  subtree_end_.push_back(0);
  token_begin_.push_back(0);
  std::vector<uint32_t> path = {0};  // node ids along the current prefix; path[d] at depth d
  std::string_view previous;
  for (int32_t id : order) {
    const std::string_view bytes = v.bytes[id];
    size_t common = 0;
    while (common < previous.size() && common < bytes.size() && previous[common] == bytes[common]) ++common;
    // Close the nodes deeper than the common prefix.
    while (path.size() > common + 1) {
      subtree_end_[path.back()] = static_cast<uint32_t>(byte_.size());
      path.pop_back();
    }
    for (size_t d = common; d < bytes.size(); ++d) {
      path.push_back(static_cast<uint32_t>(byte_.size()));
      byte_.push_back(static_cast<uint8_t>(bytes[d]));
      depth_.push_back(static_cast<uint32_t>(d + 1));
      subtree_end_.push_back(0);
      token_begin_.push_back(static_cast<uint32_t>(tokens_.size()));
    }
    tokens_.push_back(id);
    max_depth_ = std::max<uint32_t>(max_depth_, static_cast<uint32_t>(bytes.size()));
    previous = bytes;
  }
  while (!path.empty()) {
    subtree_end_[path.back()] = static_cast<uint32_t>(byte_.size());
    path.pop_back();
  }
  token_begin_.push_back(static_cast<uint32_t>(tokens_.size()));
}

}  // namespace tnl
