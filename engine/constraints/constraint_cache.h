// ConstraintCache: compiled constraints for one vocabulary, least recently
// used evicted first, keyed by (kind, text).
//
// Thread-safe. A miss compiles outside the lock, so two requests missing on the
// same key at once may both compile; the first to finish is kept. Errors are
// not cached (a bad schema costs its parse every time, which is cheap).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "engine/constraints/constraint.h"
#include "engine/status.h"

namespace tnl {

class ConstraintCache {
 public:
  ConstraintCache(std::shared_ptr<const TokenVocabulary> vocabulary, size_t capacity = 64,
                  ConstraintLimits limits = {});

  Expected<std::shared_ptr<const CompiledConstraint>> get_or_compile(const ConstraintSpec& spec);

  const std::shared_ptr<const TokenTrie>& trie() const { return trie_; }

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    size_t entries = 0;
  };
  Stats stats() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const CompiledConstraint>>;

  const std::shared_ptr<const TokenTrie> trie_;
  const size_t capacity_;
  const ConstraintLimits limits_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_;  // front: most recently used; guarded by mutex_
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;  // guarded by mutex_
  Stats stats_;  // guarded by mutex_
};

}  // namespace tnl
