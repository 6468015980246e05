#include "engine/scheduler/prefix_cache.h"

#include <algorithm>
#include <cassert>

namespace tnl {

PrefixCache::PrefixCache(int32_t cache_slots, int32_t host_slots)
    : cache_slots_total_(std::max(0, cache_slots)), host_slots_total_(cache_slots > 0 ? std::max(0, host_slots) : 0) {
  // Lowest slot first: pop_back of a descending list.
  for (int32_t i = cache_slots_total_ - 1; i >= 0; --i) free_cache_.push_back(i);
  for (int32_t i = host_slots_total_ - 1; i >= 0; --i) free_host_.push_back(i);
}

std::optional<PrefixEntryId> PrefixCache::match(uint64_t hash, std::span<const int32_t> tokens) const {
  auto [begin, end] = by_hash_.equal_range(hash);
  for (auto it = begin; it != end; ++it) {
    const Entry& e = entries_.at(it->second);
    if (e.tokens.size() == tokens.size() && std::equal(e.tokens.begin(), e.tokens.end(), tokens.begin())) {
      return it->second;
    }
  }
  return std::nullopt;
}

void PrefixCache::touch(Entry& e) {
  std::list<PrefixEntryId>& lru = lru_of(e.slot.tier);
  lru.splice(lru.begin(), lru, e.lru);
}

std::optional<PrefixHit> PrefixCache::lookup(std::span<const int32_t> tokens, const TokenHashChain& keys) const {
  if (!enabled()) return std::nullopt;
  assert(keys.covers(tokens.size()));
  for (const auto& [length, count] : lengths_) {
    if (length > int64_t(tokens.size()) || length == 0) continue;
    const std::optional<PrefixEntryId> id = match(keys.key(size_t(length)), tokens.first(size_t(length)));
    if (!id) continue;
    const Entry& e = entries_.at(*id);
    if (!e.ready) continue;  // written by the step being planned: not there yet for a restore
    // A whole-prompt snapshot is usable only with its logits row: the first token
    // is sampled from it (there is nothing left to compute).
    if (length == int64_t(tokens.size()) && !e.last_logits) continue;
    return PrefixHit{*id, length, e.slot, length == int64_t(tokens.size()) ? e.last_logits : nullptr};
  }
  return std::nullopt;
}

void PrefixCache::record(const std::optional<PrefixHit>& hit) {
  if (!enabled()) return;
  ++stats_.queries;
  if (!hit) return;
  auto it = entries_.find(hit->id);
  if (it != entries_.end()) touch(it->second);
  ++stats_.hits;
  stats_.hit_tokens += uint64_t(hit->length);
  if (hit->slot.tier == StateTier::kHost) ++stats_.host_restores;
}

std::optional<PrefixHit> PrefixCache::find_exact(std::span<const int32_t> tokens) {
  const std::optional<PrefixEntryId> id = exact_id(tokens);
  if (!id) return std::nullopt;
  Entry& e = entries_.at(*id);
  if (!e.ready) return std::nullopt;
  touch(e);
  return PrefixHit{*id, int64_t(tokens.size()), e.slot, e.last_logits};
}

std::optional<PrefixEntryId> PrefixCache::exact_id(std::span<const int32_t> tokens, uint64_t key) const {
  if (!enabled()) return std::nullopt;
  return match(key, tokens);
}

void PrefixCache::drop(PrefixEntryId id) {
  auto it = entries_.find(id);
  Entry& e = it->second;
  lru_of(e.slot.tier).erase(e.lru);
  (e.slot.tier == StateTier::kCache ? free_cache_ : free_host_).push_back(e.slot.index);
  auto [begin, end] = by_hash_.equal_range(e.hash);
  for (auto h = begin; h != end; ++h) {
    if (h->second == id) {
      by_hash_.erase(h);
      break;
    }
  }
  auto len = lengths_.find(int64_t(e.tokens.size()));
  if (--len->second == 0) lengths_.erase(len);
  entries_.erase(it);
}

std::optional<StateRef> PrefixCache::free_slot(StateTier tier, std::vector<StateCopy>* copies) {
  std::vector<int32_t>& free = tier == StateTier::kCache ? free_cache_ : free_host_;
  if (free.empty()) {
    std::list<PrefixEntryId>& lru = lru_of(tier);
    if (lru.empty()) return std::nullopt;
    const PrefixEntryId victim = lru.back();
    Entry& e = entries_.at(victim);
    std::optional<StateRef> host;
    if (tier == StateTier::kCache && host_slots_total_ > 0) host = free_slot(StateTier::kHost, copies);
    if (host) {
      // Demote: the snapshot moves to the host tier before its slot is reused.
      copies->push_back({e.slot, *host});
      free_cache_.push_back(e.slot.index);
      cache_lru_.erase(e.lru);
      e.slot = *host;
      host_lru_.push_front(victim);
      e.lru = host_lru_.begin();
      ++stats_.demotions;
    } else {
      drop(victim);
      ++stats_.evictions;
    }
  }
  const int32_t index = free.back();
  free.pop_back();
  return StateRef{tier, index};
}

void PrefixCache::mark_ready(PrefixEntryId id) {
  auto it = entries_.find(id);
  if (it != entries_.end()) it->second.ready = true;
}

std::optional<PrefixCache::Reservation> PrefixCache::reserve(std::span<const int32_t> tokens, uint64_t key,
                                                            std::vector<StateCopy>* copies, bool ready) {
  if (!enabled() || tokens.empty()) return std::nullopt;
  if (std::optional<PrefixEntryId> existing = match(key, tokens)) {
    touch(entries_.at(*existing));
    return std::nullopt;
  }
  const std::optional<StateRef> slot = free_slot(StateTier::kCache, copies);
  if (!slot) return std::nullopt;
  const PrefixEntryId id = next_id_++;
  Entry e;
  e.tokens.assign(tokens.begin(), tokens.end());
  e.hash = key;
  e.slot = *slot;
  e.ready = ready;
  cache_lru_.push_front(id);
  e.lru = cache_lru_.begin();
  entries_.emplace(id, std::move(e));
  by_hash_.emplace(key, id);
  ++lengths_[int64_t(tokens.size())];
  ++stats_.snapshots;
  return Reservation{id, *slot};
}

void PrefixCache::discard(StateRef slot) {
  for (const auto& [id, e] : entries_) {
    if (e.slot == slot) return drop(id);
  }
}

void PrefixCache::set_last_logits(PrefixEntryId id, std::vector<float> row) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;  // evicted meanwhile
  it->second.last_logits = std::make_shared<const std::vector<float>>(std::move(row));
}

PrefixCacheStats PrefixCache::stats() const {
  PrefixCacheStats s = stats_;
  s.cache_slots_total = cache_slots_total_;
  s.host_slots_total = host_slots_total_;
  s.cache_slots_used = int32_t(cache_lru_.size());
  s.host_slots_used = int32_t(host_lru_.size());
  return s;
}

}  // namespace tnl
