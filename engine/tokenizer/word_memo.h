// WordMemo: the ids of words a word-separable tokenizer has encoded before.
//
// BPE merging costs ~2 µs a word, and a conversation's new text is mostly words
// seen many times already (function words, the topic's vocabulary). A word here is
// the text between two safe spaces (word_boundary_split.h), which the model
// encodes on its own exactly as inside the text, so its ids can be reused
// wherever it appears again.
//
// Bounded: 16 shards of at most max_words / 16 words each; a full shard is
// cleared and refills with what is used now. Words longer than kMaxWordBytes are
// not kept (rare, and they would crowd the memory bound).
//
// Threads: thread-safe; each shard has its own reader/writer lock, held only to
// look up or insert one word.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tnl {

class WordMemo {
 public:
  static constexpr size_t kMaxWordBytes = 48;

  explicit WordMemo(size_t max_words);

  // Appends the ids of `word` to *out when they are known.
  bool append(std::string_view word, std::vector<int32_t>* out) const;
  void add(std::string_view word, std::span<const int32_t> ids);
  size_t size() const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> words;  // guarded by mu
  };
  static constexpr size_t kShards = 16;
  Shard& shard_of(std::string_view word) const;

  const size_t max_per_shard_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace tnl
