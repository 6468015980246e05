#include "engine/tokenizer/word_memo.h"

#include <algorithm>
#include <mutex>

namespace tnl {

WordMemo::WordMemo(size_t max_words) : max_per_shard_(std::max<size_t>(1, max_words / kShards)) {}

WordMemo::Shard& WordMemo::shard_of(std::string_view word) const {
  // The map hashes the same bytes again; shard by other bits of the hash than the
  // map's buckets use.
  return shards_[(Hash{}(word) >> 48) % kShards];
}

bool WordMemo::append(std::string_view word, std::vector<int32_t>* out) const {
  if (word.size() > kMaxWordBytes) return false;
  const Shard& s = shard_of(word);
  std::shared_lock lock(s.mu);
  const auto it = s.words.find(word);
  if (it == s.words.end()) return false;
  out->insert(out->end(), it->second.begin(), it->second.end());
  return true;
}

void WordMemo::add(std::string_view word, std::span<const int32_t> ids) {
  if (word.size() > kMaxWordBytes) return;
  Shard& s = shard_of(word);
  std::unique_lock lock(s.mu);
  if (s.words.size() >= max_per_shard_) s.words.clear();
  s.words.try_emplace(std::string(word), ids.begin(), ids.end());
}

size_t WordMemo::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::shared_lock lock(s.mu);
    n += s.words.size();
  }
  return n;
}

}  // namespace tnl
