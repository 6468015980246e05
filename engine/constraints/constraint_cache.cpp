#include "engine/constraints/constraint_cache.h"

#include <algorithm>

#include "engine/constraints/compiled_constraint.h"

namespace tnl {

ConstraintCache::ConstraintCache(std::shared_ptr<const TokenVocabulary> vocabulary, ConstraintCacheOptions options)
    : trie_(build_token_trie(std::move(vocabulary))), options_(options) {}

Expected<std::shared_ptr<const CompiledConstraint>> ConstraintCache::get_or_compile(const ConstraintSpec& spec) {
  std::string key;
  key.reserve(spec.text.size() + 1);
  key.push_back(static_cast<char>('0' + static_cast<int>(spec.kind)));
  key += spec.text;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++stats_.hits;
      return it->second->second;
    }
    ++stats_.misses;
  }
  TNL_ASSIGN_OR_RETURN(std::shared_ptr<const CompiledConstraint> compiled,
                       compile_constraint(spec, trie_, options_.limits));
  if (options_.precompute_tables) compiled->precompute_tables(options_.max_precomputed_tables);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second->second;  // another thread compiled it meanwhile
  lru_.emplace_front(key, compiled);
  index_.emplace(std::move(key), lru_.begin());
  while (lru_.size() > std::max<size_t>(options_.capacity, 1)) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
    ++stats_.evictions;
  }
  stats_.entries = lru_.size();
  return compiled;
}

ConstraintCache::Stats ConstraintCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace tnl
