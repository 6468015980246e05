// ConstraintCache: compiled constraints for one vocabulary, least recently
// used evicted first, keyed by (kind, text).
//
// Thread-safe. A miss compiles (and precomputes) outside the lock, on the
// calling thread, so two requests missing on the same key at once may both
// compile; the first to finish is kept. Errors are not cached (a bad schema
// costs its parse every time, which is cheap).
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

struct ConstraintCacheOptions {
  size_t capacity = 64;  // compiled constraints kept
  // Build the token tables on a miss, so that no later mask pays for a trie
  // walk (tens of ms for a string position at a 64k vocabulary) in the middle
  // of a generation; past max_precomputed_tables they are built on first use.
  bool precompute_tables = true;
  size_t max_precomputed_tables = 4096;
  ConstraintLimits limits;
};

class ConstraintCache {
 public:
  explicit ConstraintCache(std::shared_ptr<const TokenVocabulary> vocabulary, ConstraintCacheOptions options = {});

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
  const ConstraintCacheOptions options_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_;  // front: most recently used; guarded by mutex_
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;  // guarded by mutex_
  Stats stats_;  // guarded by mutex_
};

}  // namespace tnl
