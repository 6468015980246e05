// ConstraintCache: hits share one compiled constraint, least recently used
// entries are evicted, errors are returned (not cached), and concurrent
// get_or_compile calls are safe.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "engine/constraints/constraint_cache.h"
#include "tests/unit/constraints/constraint_test_support.h"

namespace tnl::test {
namespace {

TEST(ConstraintCache, HitsMissesAndEviction) {
  ConstraintCacheOptions options;
  options.capacity = 2;
  ConstraintCache cache(synthetic_vocabulary(), options);
  const ConstraintSpec a{ConstraintSpec::Kind::kRegex, "a+"};
  const ConstraintSpec b{ConstraintSpec::Kind::kRegex, "b+"};
  const ConstraintSpec c{ConstraintSpec::Kind::kGrammar, "root ::= \"c\""};
  auto a1 = cache.get_or_compile(a);
  ASSERT_TRUE(a1.has_value());
  auto a2 = cache.get_or_compile(a);
  ASSERT_TRUE(a2.has_value());
  EXPECT_EQ(a1->get(), a2->get());
  // Same text, other kind: another entry.
  auto as_grammar = cache.get_or_compile({ConstraintSpec::Kind::kGrammar, "a+"});
  EXPECT_FALSE(as_grammar.has_value());
  ASSERT_TRUE(cache.get_or_compile(b).has_value());
  ASSERT_TRUE(cache.get_or_compile(a).has_value());  // a is now most recent
  ASSERT_TRUE(cache.get_or_compile(c).has_value());  // evicts b
  const auto stats = cache.stats();
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.misses, 4u);
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_EQ(stats.entries, 2u);
  ASSERT_TRUE(cache.get_or_compile(a).has_value());
  EXPECT_EQ(cache.stats().hits, 3u);
  ASSERT_TRUE(cache.get_or_compile(b).has_value());
  EXPECT_EQ(cache.stats().misses, 5u);
}

TEST(ConstraintCache, PrecomputesTablesOnAMiss) {
  ConstraintCache cache(synthetic_vocabulary());
  auto compiled = cache.get_or_compile({ConstraintSpec::Kind::kJsonObject, ""});
  ASSERT_TRUE(compiled.has_value());
  EXPECT_GT((*compiled)->stats().tables_built, 10u);
}

TEST(ConstraintCache, ErrorsAreReturnedEachTime) {
  ConstraintCache cache(synthetic_vocabulary());
  for (int i = 0; i < 2; ++i) {
    auto bad = cache.get_or_compile({ConstraintSpec::Kind::kJsonSchema, R"({"type":"strin"})"});
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(cache.stats().entries, 0u);
}

TEST(ConstraintCache, ConcurrentRequestsShareEntries) {
  ConstraintCacheOptions options;
  options.capacity = 8;
  options.precompute_tables = false;  // tables then fill lazily, concurrently
  ConstraintCache cache(model_vocabulary(), options);
  std::vector<std::thread> threads;
  std::vector<const CompiledConstraint*> seen(8, nullptr);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 20; ++round) {
        auto compiled = cache.get_or_compile({ConstraintSpec::Kind::kJsonSchema,
                                              R"({"type":"object","properties":{"k":{"type":"integer"}}})"});
        ASSERT_TRUE(compiled.has_value());
        ConstraintMatcher matcher(*compiled);
        std::vector<uint32_t> mask(matcher.mask_words());
        matcher.fill_allowed(mask);
        if (round == 19) seen[i] = compiled->get();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 1; i < 8; ++i) EXPECT_EQ(seen[i], seen[0]);
  EXPECT_EQ(cache.stats().entries, 1u);
  EXPECT_EQ(cache.stats().hits + cache.stats().misses, 160u);
}

}  // namespace
}  // namespace tnl::test
