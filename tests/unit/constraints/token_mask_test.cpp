// Token masks: the mask from the precomputed per-position tables equals a
// brute-force check of every token through the automaton, special and empty
// tokens are never allowed, EOS exactly when accepting, accept/rollback keep
// the state consistent, the depth limit holds, and concurrent matchers on one
// compiled constraint agree with a single-threaded run.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/constraints/constraint_test_support.h"

namespace tnl::test {
namespace {

// Every token checked directly (ConstraintMatcher::allows runs the automaton
// over the token's bytes from the current stacks, without the tables).
std::vector<uint32_t> brute_force_mask(const ConstraintMatcher& matcher, int32_t vocab_size) {
  std::vector<uint32_t> mask(matcher.mask_words(), 0);
  for (int32_t t = 0; t < vocab_size; ++t) {
    if (matcher.allows(t)) mask[t >> 5] |= 1u << (t & 31);
  }
  return mask;
}

struct Spec {
  ConstraintSpec::Kind kind;
  std::string text;
};

const std::vector<Spec> kSpecs = {
    {ConstraintSpec::Kind::kJsonObject, ""},
    {ConstraintSpec::Kind::kJsonSchema,
     R"({"type":"object","properties":{"name":{"type":"string"},"tags":{"type":"array","items":{"enum":["a","b\"c"]}},
         "n":{"type":["integer","null"]},"sub":{"type":"object","properties":{"x":{"type":"boolean"}}}},
         "required":["name"]})"},
    {ConstraintSpec::Kind::kRegex, "(ab|a)*b[0-9]{2,4}(x|yz)?"},
    {ConstraintSpec::Kind::kGrammar, "root ::= expr\nexpr ::= term ((\"+\" | \"-\") term)*\n"
                                     "term ::= [0-9]+ | \"(\" expr \")\"\n"},
    // Long repetitions: levels far from min and max share tables.
    {ConstraintSpec::Kind::kRegex, "(ab|[c-e ]|\\.){2,40}!|.{0,30}x"},
    {ConstraintSpec::Kind::kJsonSchema,
     R"({"type":"object","properties":{"s":{"type":"string","minLength":3,"maxLength":30},
         "t":{"type":"array","items":{"type":"string","pattern":"^(ab|c){0,25}$"},"minItems":1}},"required":["s","t"]})"},
};

TEST(TokenMask, TablesAgreeWithBruteForceAlongSampledPaths) {
  for (bool model : {false, true}) {
    auto trie = build_token_trie(model ? model_vocabulary() : synthetic_vocabulary());
    std::mt19937 rng(model ? 7 : 8);
    for (const Spec& spec : kSpecs) {
      auto compiled = compile_or_die(spec.kind, spec.text, trie);
      ASSERT_NE(compiled, nullptr);
      for (int run = 0; run < 3; ++run) {
        ConstraintMatcher matcher(compiled);
        std::vector<uint32_t> mask(matcher.mask_words());
        for (int step = 0; step < 25; ++step) {
          matcher.fill_allowed(mask);
          ASSERT_EQ(mask, brute_force_mask(matcher, trie->vocab_size()))
              << spec.text << " after " << step << " tokens (model vocabulary: " << model << ")";
          const auto allowed = allowed_tokens(mask, trie->vocab_size());
          ASSERT_FALSE(allowed.empty());
          int32_t t = allowed[rng() % allowed.size()];
          if (t == trie->eos_id()) break;
          ASSERT_TRUE(matcher.accept(t).is_ok());
        }
      }
    }
  }
}

TEST(TokenMask, SpecialEmptyAndEosTokens) {
  auto trie = build_token_trie(synthetic_vocabulary());
  auto compiled = compile_or_die(ConstraintSpec::Kind::kRegex, "a*", trie);
  ConstraintMatcher matcher(compiled);
  std::vector<uint32_t> mask(matcher.mask_words() + 3, 0xFFFFFFFFu);
  matcher.fill_allowed(mask);
  for (int32_t special : {0, 1, 3}) EXPECT_FALSE((mask[0] >> special) & 1) << special;
  EXPECT_TRUE((mask[0] >> 2) & 1);  // EOS: "" matches a*
  for (size_t w = matcher.mask_words(); w < mask.size(); ++w) EXPECT_EQ(mask[w], 0u);
  EXPECT_FALSE(matcher.accept(0).is_ok());
  EXPECT_FALSE(matcher.accept(3).is_ok());
  EXPECT_FALSE(matcher.accept(-1).is_ok());
  EXPECT_FALSE(matcher.accept(trie->vocab_size()).is_ok());
  EXPECT_EQ(matcher.num_accepted(), 0u);
  EXPECT_TRUE(matcher.accept(2).is_ok());
  EXPECT_TRUE(matcher.is_finished());
  matcher.fill_allowed(mask);
  for (uint32_t w : mask) EXPECT_EQ(w, 0u);
  EXPECT_FALSE(matcher.accept(4 + 'a').is_ok());
}

TEST(TokenMask, RefusedTokensLeaveTheStateUnchangedAndRollbackRestores) {
  auto trie = build_token_trie(synthetic_vocabulary());
  auto compiled = compile_or_die(ConstraintSpec::Kind::kRegex, "abc|abd", trie);
  ConstraintMatcher matcher(compiled);
  const int32_t a = 4 + 'a', b = 4 + 'b', c = 4 + 'c', z = 4 + 'z';
  ASSERT_TRUE(matcher.accept(a).is_ok());
  const Status refused = matcher.accept(z);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("not allowed"), std::string::npos);
  ASSERT_TRUE(matcher.accept(b).is_ok());
  EXPECT_FALSE(matcher.is_accepting());
  EXPECT_EQ(matcher.min_bytes_to_accept(), 1u);
  ASSERT_TRUE(matcher.accept(c).is_ok());
  EXPECT_TRUE(matcher.is_accepting());
  EXPECT_TRUE(matcher.must_end());
  EXPECT_EQ(matcher.min_bytes_to_accept(), 0u);
  ASSERT_TRUE(matcher.rollback(2).is_ok());
  EXPECT_EQ(matcher.num_accepted(), 1u);
  EXPECT_TRUE(matcher.allows(b));
  EXPECT_FALSE(matcher.allows(c));
  EXPECT_FALSE(matcher.rollback(5).is_ok());
  EXPECT_FALSE(matcher.accept(trie->eos_id()).is_ok());  // "a" is not complete
}

TEST(TokenMask, StackDepthLimitSteersTowardsClosing) {
  auto trie = build_token_trie(synthetic_vocabulary());
  ConstraintLimits limits;
  limits.max_stack_depth = 12;
  auto compiled = compile_constraint({ConstraintSpec::Kind::kGrammar, "root ::= \"[\" root \"]\" | \"x\""}, trie, limits);
  ASSERT_TRUE(compiled.has_value()) << compiled.status().to_string();
  ConstraintMatcher matcher(*compiled);
  const int32_t open = 4 + '[', close = 4 + ']', x = 4 + 'x';
  int opened = 0;
  std::vector<uint32_t> mask(matcher.mask_words());
  while (matcher.allows(open)) {
    matcher.fill_allowed(mask);
    ASSERT_EQ(mask, brute_force_mask(matcher, trie->vocab_size())) << "depth " << opened;
    ASSERT_TRUE(matcher.accept(open).is_ok());
    ASSERT_LT(++opened, 100);
  }
  EXPECT_GE(opened, 5);
  EXPECT_LE(opened, 12);
  matcher.fill_allowed(mask);
  EXPECT_EQ(mask, brute_force_mask(matcher, trie->vocab_size()));
  ASSERT_TRUE(matcher.accept(x).is_ok());
  for (int i = 0; i < opened; ++i) ASSERT_TRUE(matcher.accept(close).is_ok());
  EXPECT_TRUE(matcher.must_end());
}

TEST(TokenMask, TooAmbiguousGrammarsFailClosed) {
  // Exponentially many parses of "aaaa…": past max_live_stacks the matcher
  // fails instead of keeping an arbitrary subset (which could make the mask
  // allow a token accept() then refuses).
  auto trie = build_token_trie(synthetic_vocabulary());
  ConstraintLimits limits;
  limits.max_live_stacks = 32;
  auto compiled = compile_constraint(
      {ConstraintSpec::Kind::kGrammar, "root ::= item item root?{5}\nitem ::= \"a\"{1,4}"}, trie, limits);
  ASSERT_TRUE(compiled.has_value()) << compiled.status().to_string();
  ConstraintMatcher matcher(*compiled);
  std::vector<uint32_t> mask(matcher.mask_words());
  const int32_t a = 4 + 'a';
  int steps = 0;
  for (; steps < 40; ++steps) {
    matcher.fill_allowed(mask);
    if (matcher.failed()) break;
    const std::vector<uint32_t> brute = brute_force_mask(matcher, trie->vocab_size());
    if (matcher.failed()) break;  // a longer token outgrew the bound in the direct run
    ASSERT_EQ(mask, brute);
    ASSERT_TRUE(matcher.accept(a).is_ok());
  }
  ASSERT_TRUE(matcher.failed());
  EXPECT_EQ(matcher.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(matcher.error().message().find("too ambiguous"), std::string::npos) << matcher.error().message();
  matcher.fill_allowed(mask);
  for (uint32_t w : mask) EXPECT_EQ(w, 0u);
  EXPECT_FALSE(matcher.accept(a).is_ok());
  ASSERT_GT(steps, 0);
  ASSERT_TRUE(matcher.rollback(1).is_ok());
  EXPECT_FALSE(matcher.failed());
}

TEST(TokenMask, ConcurrentMatchersShareOneCompiledConstraint) {
  auto trie = build_token_trie(model_vocabulary());
  // Tables are filled lazily, so concurrent first uses race on call_once.
  auto compiled = compile_or_die(ConstraintSpec::Kind::kJsonObject, "", trie);
  auto run = [&](uint32_t seed) {
    std::mt19937 rng(seed);
    ConstraintMatcher matcher(compiled);
    std::vector<uint32_t> mask(matcher.mask_words());
    std::vector<std::vector<uint32_t>> masks;
    for (int step = 0; step < 40; ++step) {
      matcher.fill_allowed(mask);
      masks.push_back(mask);
      const auto allowed = allowed_tokens(mask, trie->vocab_size());
      const int32_t t = allowed[rng() % allowed.size()];
      if (t == trie->eos_id() || !matcher.accept(t).is_ok()) break;
    }
    return masks;
  };
  std::vector<std::vector<std::vector<uint32_t>>> results(4);
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < 4; ++i) threads.emplace_back([&, i] { results[i] = run(100 + i); });
  for (auto& t : threads) t.join();
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(results[i], run(100 + i)) << "thread " << i;
}

TEST(TokenMask, PrecomputedTablesGiveTheSameMasks) {
  auto trie = build_token_trie(synthetic_vocabulary());
  for (const Spec& spec : kSpecs) {
    auto lazy = compile_or_die(spec.kind, spec.text, trie);
    auto eager = compile_or_die(spec.kind, spec.text, trie);
    eager->precompute_tables();
    EXPECT_GT(eager->stats().tables_built, 0u);  // the positions of rules reachable from the root
    EXPECT_LE(eager->stats().tables_built, eager->stats().terminal_positions);
    std::mt19937 rng(3);
    ConstraintMatcher a(lazy), b(eager);
    std::vector<uint32_t> ma(a.mask_words()), mb(b.mask_words());
    for (int step = 0; step < 30; ++step) {
      a.fill_allowed(ma);
      b.fill_allowed(mb);
      ASSERT_EQ(ma, mb);
      const auto allowed = allowed_tokens(ma, trie->vocab_size());
      const int32_t t = allowed[rng() % allowed.size()];
      if (t == trie->eos_id()) break;
      ASSERT_TRUE(a.accept(t).is_ok());
      ASSERT_TRUE(b.accept(t).is_ok());
    }
  }
}

TEST(TokenTrie, PreorderLayoutListsEveryEmittableTokenOnce) {
  auto vocab = synthetic_vocabulary();
  auto trie = build_token_trie(vocab);
  std::vector<int> seen(vocab->size(), 0);
  for (int32_t t : trie->tokens()) ++seen[t];
  for (int32_t t = 0; t < vocab->size(); ++t) {
    const bool emittable = t > 3;  // <pad> <s> </s> and the empty token are not
    EXPECT_EQ(seen[t], emittable ? 1 : 0) << t;
    EXPECT_EQ(trie->in_trie(t), emittable) << t;
  }
  // Each node's prefix spells its tokens' bytes.
  std::vector<std::string> prefix(trie->num_nodes());
  std::vector<uint32_t> parent_at_depth(trie->max_depth() + 1, 0);
  for (uint32_t node = 1; node < trie->num_nodes(); ++node) {
    const uint32_t d = trie->depth(node);
    prefix[node] = prefix[parent_at_depth[d - 1]] + static_cast<char>(trie->byte(node));
    parent_at_depth[d] = node;
    for (uint32_t i = trie->token_begin(node); i < trie->token_begin(node + 1); ++i) {
      EXPECT_EQ(vocab->bytes[trie->tokens()[i]], prefix[node]);
    }
    EXPECT_GT(trie->subtree_end(node), node);
  }
}

}  // namespace
}  // namespace tnl::test
