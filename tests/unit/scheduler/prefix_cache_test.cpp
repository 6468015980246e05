// PrefixCache bookkeeping: longest-prefix lookup, whole prompts only with a
// logits row, LRU eviction, demotion to the host tier (a copy planned before the
// slot is reused), exact lookups, discards.
#include "engine/scheduler/prefix_cache.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <vector>

namespace tnl {
namespace {

std::vector<int32_t> seq(int32_t n, int32_t first = 10) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}

std::span<const int32_t> first(const std::vector<int32_t>& v, size_t n) { return {v.data(), n}; }

TEST(TokenHashChain, HoldsTheKeyOfEveryPrefixAndExtends) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> token(0, 64000);
  std::vector<int32_t> tokens(300);
  for (int32_t& t : tokens) t = token(rng);
  TokenHashChain chain(first(tokens, 200));
  EXPECT_TRUE(chain.covers(200));
  EXPECT_FALSE(chain.covers(199));
  for (size_t i = 200; i < tokens.size(); ++i) chain.append(tokens[i]);
  ASSERT_TRUE(chain.covers(tokens.size()));
  EXPECT_EQ(chain.key(0), TokenHashChain::of({}));
  for (size_t n = 0; n <= tokens.size(); ++n) ASSERT_EQ(chain.key(n), TokenHashChain::of(first(tokens, n))) << n;
  // Prefixes of different lengths and sequences differing in one token get different keys.
  std::vector<int32_t> other = tokens;
  other[150] ^= 1;
  EXPECT_NE(TokenHashChain(other).key(300), chain.key(300));
  EXPECT_EQ(TokenHashChain(other).key(150), chain.key(150));
  EXPECT_NE(chain.key(299), chain.key(300));
  EXPECT_FALSE(TokenHashChain().covers(0)) << "an empty chain covers nothing, not even no tokens";
}

TEST(PrefixCache, KeyedCallsAgreeWithTheTokenOnes) {
  PrefixCache cache(8, 0);
  const std::vector<int32_t> tokens = seq(64);
  const TokenHashChain keys(tokens);
  std::vector<StateCopy> copies;
  const auto at16 = cache.reserve(first(tokens, 16), keys.key(16), &copies, true);
  const auto at40 = cache.reserve(first(tokens, 40), &copies, true);
  ASSERT_TRUE(at16 && at40);
  EXPECT_FALSE(cache.reserve(first(tokens, 40), keys.key(40), &copies, true)) << "the same entry again";
  EXPECT_EQ(cache.exact_id(first(tokens, 16)), at16->id);
  EXPECT_EQ(cache.exact_id(first(tokens, 40), keys.key(40)), at40->id);
  EXPECT_EQ(cache.lookup(tokens, keys)->length, 40);
  EXPECT_EQ(cache.lookup(tokens)->length, 40);
  EXPECT_EQ(cache.lookup(first(tokens, 30), TokenHashChain(first(tokens, 30)))->length, 16);
  // The stored tokens are compared, whatever the key says.
  EXPECT_FALSE(cache.exact_id(first(seq(16, 11), 16), keys.key(16)));
}

TEST(PrefixCache, FindsTheLongestCachedPrefix) {
  PrefixCache cache(8, 0);
  const std::vector<int32_t> tokens = seq(40);
  std::vector<StateCopy> copies;
  const auto at16 = cache.reserve(first(tokens, 16), &copies, true);
  const auto at32 = cache.reserve(first(tokens, 32), &copies, true);
  ASSERT_TRUE(at16 && at32);
  EXPECT_TRUE(copies.empty()) << "free slots need no demotion";
  auto hit = cache.lookup(tokens);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->length, 32);
  EXPECT_EQ(hit->slot, at32->slot);
  hit = cache.lookup(first(tokens, 20));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->length, 16);
  // Another sequence sharing only 15 tokens: no hit.
  std::vector<int32_t> other = tokens;
  other[15] = 9999;
  EXPECT_FALSE(cache.lookup(other));
  // lookup() changes nothing; record() counts.
  EXPECT_EQ(cache.stats().queries, 0u);
  cache.record(hit);
  cache.record(std::nullopt);
  EXPECT_EQ(cache.stats().queries, 2u);
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().hit_tokens, 16u);
}

TEST(PrefixCache, AWholePromptHitsOnlyWithItsLogitsRow) {
  PrefixCache cache(4, 0);
  const std::vector<int32_t> tokens = seq(32);
  std::vector<StateCopy> copies;
  const auto at16 = cache.reserve(first(tokens, 16), &copies, true);
  const auto at32 = cache.reserve(tokens, &copies, true);
  EXPECT_EQ(cache.lookup(tokens)->length, 16) << "no row yet: the whole prompt must still compute its end";
  cache.set_last_logits(at32->id, std::vector<float>(5, 1.0f));
  const auto hit = cache.lookup(tokens);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->length, 32);
  ASSERT_TRUE(hit->last_logits);
  EXPECT_EQ(hit->last_logits->size(), 5u);
  EXPECT_FALSE(cache.lookup(first(tokens, 16))) << "the 16-token snapshot has no row";
  (void)at16;
}

TEST(PrefixCache, IdenticalSnapshotsAreNotStoredTwice) {
  PrefixCache cache(4, 0);
  const std::vector<int32_t> tokens = seq(10);
  std::vector<StateCopy> copies;
  ASSERT_TRUE(cache.reserve(tokens, &copies, true));
  EXPECT_FALSE(cache.reserve(tokens, &copies, true));
  EXPECT_EQ(cache.stats().cache_slots_used, 1);
  EXPECT_TRUE(cache.exact_id(tokens));
  EXPECT_FALSE(cache.exact_id(first(tokens, 9)));
}

TEST(PrefixCache, EvictsTheLeastRecentlyUsedWithoutAHostTier) {
  PrefixCache cache(2, 0);
  std::vector<StateCopy> copies;
  const std::vector<int32_t> a = seq(8, 100), b = seq(8, 200), c = seq(8, 300);
  ASSERT_TRUE(cache.reserve(a, &copies, true));
  ASSERT_TRUE(cache.reserve(b, &copies, true));
  cache.record(cache.lookup(seq(9, 100)));  // a is used again: b is now the oldest
  ASSERT_TRUE(cache.reserve(c, &copies, true));
  EXPECT_TRUE(copies.empty());
  EXPECT_TRUE(cache.lookup(seq(9, 100)));
  EXPECT_FALSE(cache.lookup(seq(9, 200)));
  EXPECT_TRUE(cache.lookup(seq(9, 300)));
  EXPECT_EQ(cache.stats().evictions, 1u);
}

TEST(PrefixCache, DemotesToTheHostTierBeforeReusingTheSlot) {
  PrefixCache cache(1, 1);
  std::vector<StateCopy> copies;
  const std::vector<int32_t> a = seq(8, 100), b = seq(8, 200), c = seq(8, 300);
  const auto ra = cache.reserve(a, &copies, true);
  ASSERT_TRUE(ra);
  const auto rb = cache.reserve(b, &copies, true);
  ASSERT_TRUE(rb);
  // a moved to the host: a copy cache → host planned before b's snapshot reuses the slot.
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].from, (StateRef{StateTier::kCache, ra->slot.index}));
  EXPECT_EQ(copies[0].to.tier, StateTier::kHost);
  EXPECT_EQ(rb->slot, ra->slot);
  const auto hit_a = cache.lookup(seq(9, 100));
  ASSERT_TRUE(hit_a);
  EXPECT_EQ(hit_a->slot.tier, StateTier::kHost);
  // c: b demotes, a (the oldest host entry) is dropped.
  copies.clear();
  ASSERT_TRUE(cache.reserve(c, &copies, true));
  EXPECT_FALSE(cache.lookup(seq(9, 100)));
  EXPECT_EQ(cache.lookup(seq(9, 200))->slot.tier, StateTier::kHost);
  const PrefixCacheStats s = cache.stats();
  EXPECT_EQ(s.demotions, 2u);
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.cache_slots_used, 1);
  EXPECT_EQ(s.host_slots_used, 1);
}

TEST(PrefixCache, ASnapshotOfTheStepBeingPlannedIsNoHitUntilReady) {
  // Its copy runs after the step's chunks, so a restore in the same step (before
  // them) would read a stale slot.
  PrefixCache cache(4, 0);
  std::vector<StateCopy> copies;
  const auto r = cache.reserve(seq(16), &copies, /*ready=*/false);
  ASSERT_TRUE(r);
  EXPECT_FALSE(cache.lookup(seq(20)));
  EXPECT_FALSE(cache.find_exact(seq(16)));
  cache.mark_ready(r->id);
  EXPECT_EQ(cache.lookup(seq(20))->length, 16);
}

TEST(PrefixCache, DiscardForgetsAnEntryAndOffMeansNothing) {
  PrefixCache cache(2, 0);
  std::vector<StateCopy> copies;
  const auto r = cache.reserve(seq(8), &copies, true);
  ASSERT_TRUE(r);
  cache.discard(r->slot);
  EXPECT_FALSE(cache.lookup(seq(9)));
  EXPECT_EQ(cache.stats().cache_slots_used, 0);
  PrefixCache off(0, 4);
  EXPECT_FALSE(off.enabled());
  EXPECT_FALSE(off.reserve(seq(8), &copies));
  EXPECT_FALSE(off.lookup(seq(8)));
  EXPECT_EQ(off.stats().host_slots_total, 0) << "no host tier without a cache tier";
}

}  // namespace
}  // namespace tnl
