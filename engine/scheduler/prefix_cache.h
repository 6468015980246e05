// PrefixCache: the index of the prefix state cache — which token sequences have a
// snapshot of their decode state, where it lives (a backend cache slot, or a host
// slot behind it), and which to evict. Pure bookkeeping: the Scheduler asks it
// where to restore from and where to snapshot to, and turns the answers into the
// StateCopy operations of a StepPlan; the backend does the copies.
//
// Why this is cheap here: a sequence's whole past is one fixed-size state, so a
// prefix of any length costs one slot (a copy), not memory that grows with it.
//
// Keys are token sequences (one cache per engine, so per model). A hash chain over
// the tokens (token_hash_chain.h; callers that hold a sequence's chain pass its
// keys, the others have them computed) finds candidates; the stored tokens are
// compared before a hit is reported, so hash collisions never give a wrong state. Eviction is LRU among
// entries of a tier: a cache-slot entry that must make room moves to the host tier
// when there is one (a copy planned before the slot is overwritten), else it is
// dropped; a host entry that must make room is dropped.
//
// Ordering contract with the Scheduler (why no reference counts are needed across
// steps): restores (cache/host → live) run in a step's copies_before, snapshots
// and demotions (live → cache, cache → host) in its copies_after or in the next
// step's copies_before, and the backend runs copies in plan order — so an entry
// chosen for a restore is read before anything planned in the same step can
// overwrite its slot. Logits rows are handed out as shared pointers for the same
// reason.
//
// Threads: owned by the Scheduler (the engine's step loop); not thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/backend.h"
#include "engine/scheduler/token_hash_chain.h"

namespace tnl {

using PrefixEntryId = uint64_t;

struct PrefixHit {
  PrefixEntryId id = 0;
  int64_t length = 0;   // tokens the snapshot covers
  StateRef slot;        // where to restore from
  // Set when the snapshot covers a whole prompt and kept that prompt's last logits
  // row: a request with exactly that prompt needs no prefill at all.
  std::shared_ptr<const std::vector<float>> last_logits;
};

struct PrefixCacheStats {
  uint64_t queries = 0;        // admissions that looked for a prefix
  uint64_t hits = 0;           // ... and found one
  uint64_t hit_tokens = 0;     // prompt tokens not prefilled thanks to hits
  uint64_t snapshots = 0;      // snapshots written (cache tier)
  uint64_t evictions = 0;      // entries dropped to make room
  uint64_t demotions = 0;      // entries moved cache → host
  uint64_t host_restores = 0;  // restores straight from the host tier
  int32_t cache_slots_used = 0, cache_slots_total = 0;
  int32_t host_slots_used = 0, host_slots_total = 0;
};

class PrefixCache {
 public:
  PrefixCache(int32_t cache_slots, int32_t host_slots);

  bool enabled() const { return cache_slots_total_ > 0; }

  // The longest cached prefix of `tokens` a sequence can start from: its length is
  // below tokens.size(), or equal when the entry kept its last logits row. Changes
  // nothing: record() the outcome once the sequence is really admitted.
  std::optional<PrefixHit> lookup(std::span<const int32_t> tokens, const TokenHashChain& keys) const;
  std::optional<PrefixHit> lookup(std::span<const int32_t> tokens) const { return lookup(tokens, TokenHashChain(tokens)); }
  // Counts a query (and a hit with its tokens) and refreshes the entry's LRU place.
  void record(const std::optional<PrefixHit>& hit);
  // An entry whose tokens are exactly `tokens` (exports); no statistics.
  std::optional<PrefixHit> find_exact(std::span<const int32_t> tokens);

  // A cache slot to snapshot `tokens` into, or nullopt when an identical entry
  // exists already (it is refreshed) or the cache is off. Demotions needed to free
  // the slot are appended to `copies` (they must run before the snapshot).
  struct Reservation {
    PrefixEntryId id = 0;
    StateRef slot;
  };
  // `ready`: the snapshot copy runs before any restore planned from now on (a
  // finish snapshot, first in the next step); otherwise (a snapshot in this step's
  // copies_after) the entry is invisible to lookups until mark_ready().
  // `key`: TokenHashChain's key of `tokens`.
  std::optional<Reservation> reserve(std::span<const int32_t> tokens, uint64_t key, std::vector<StateCopy>* copies,
                                     bool ready = false);
  std::optional<Reservation> reserve(std::span<const int32_t> tokens, std::vector<StateCopy>* copies,
                                     bool ready = false) {
    return reserve(tokens, TokenHashChain::of(tokens), copies, ready);
  }
  void mark_ready(PrefixEntryId id);
  // Forgets the entry stored in `slot` (its copy failed or will not run).
  void discard(StateRef slot);
  // Keeps the logits row that followed the entry's last token (a prompt's end).
  void set_last_logits(PrefixEntryId id, std::vector<float> row);
  // The entry whose tokens are exactly `tokens`, if any (used to attach logits to a
  // snapshot that already existed).
  std::optional<PrefixEntryId> exact_id(std::span<const int32_t> tokens, uint64_t key) const;
  std::optional<PrefixEntryId> exact_id(std::span<const int32_t> tokens) const {
    return exact_id(tokens, TokenHashChain::of(tokens));
  }

  PrefixCacheStats stats() const;

 private:
  struct Entry {
    std::vector<int32_t> tokens;
    uint64_t hash = 0;
    StateRef slot;
    std::shared_ptr<const std::vector<float>> last_logits;
    std::list<PrefixEntryId>::iterator lru;  // in the LRU list of slot.tier
    bool ready = false;                       // its snapshot copy has been planned before any new restore
  };

  std::optional<PrefixEntryId> match(uint64_t hash, std::span<const int32_t> tokens) const;
  std::list<PrefixEntryId>& lru_of(StateTier tier) { return tier == StateTier::kCache ? cache_lru_ : host_lru_; }
  void touch(Entry& e);
  void drop(PrefixEntryId id);
  // A free slot of `tier`, evicting (cache: demoting when possible) the LRU entry.
  std::optional<StateRef> free_slot(StateTier tier, std::vector<StateCopy>* copies);

  int32_t cache_slots_total_;
  int32_t host_slots_total_;
  std::vector<int32_t> free_cache_, free_host_;
  std::unordered_map<PrefixEntryId, Entry> entries_;
  std::unordered_multimap<uint64_t, PrefixEntryId> by_hash_;
  std::map<int64_t, int32_t, std::greater<>> lengths_;  // entry length → how many, longest first
  std::list<PrefixEntryId> cache_lru_, host_lru_;        // most recently used first
  PrefixEntryId next_id_ = 1;
  PrefixCacheStats stats_;
};

}  // namespace tnl
