// PromptTokenCache: texts that extend, branch from or repeat texts encoded before
// get exactly Tokenizer::encode's ids while reusing the earlier ids; eviction,
// threads and a tokenizer that cannot be cut change nothing but the reuse.
#include "engine/tokenizer/prompt_token_cache.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "engine/tokenizer/word_boundary_split.h"
#include "tests/support/test_paths.h"
#include "tests/unit/tokenizer/trained_tokenizer.h"

namespace tnl {
namespace {

// Pieces of corpus and of text that BPE merges across spaces would trip on:
// runs of blanks, tabs, non-ASCII, byte-fallback characters, digits, punctuation.
std::string random_turn(std::mt19937& rng, size_t bytes) {
  static const std::string corpus = test::tokenizer_corpus() +
                                    "  runs   of\tblanks caf\xc3\xa9 na\xc3\xafve 42% x 08:45 \xe4\xbb\x8a\xe5\xa4\xa9 a "
                                    "\xf0\x9f\xa6\x84 b 1234567 c.d e,f (g) ";
  const size_t begin = rng() % (corpus.size() - bytes);
  return corpus.substr(begin, bytes);
}

// A conversation: each turn's text is the last one + a reply + a new message, the
// way a client resends its history; every text must encode as Tokenizer::encode.
enum class Reuse { kMost, kSome, kNone };

void expect_conversations_exact(const Tokenizer& tokenizer, size_t cache_bytes, Reuse expected) {
  PromptTokenCache cache(tokenizer, cache_bytes);
  std::mt19937 rng(11);
  std::vector<std::string> histories(6);
  for (int turn = 0; turn < 6; ++turn) {
    for (size_t c = 0; c < histories.size(); ++c) {
      std::string& h = histories[c];
      // Joins that land mid-word, after a space, on a newline, or glue two words.
      static const char* const joins[] = {"", " ", "\n", "  ", "x", "\xc3\xa9"};
      h += joins[rng() % 6];
      h += random_turn(rng, 200 + rng() % 1500);
      ASSERT_EQ(cache.encode(h), tokenizer.encode(h)) << "conversation " << c << " turn " << turn;
      ASSERT_EQ(cache.encode_plain(h), tokenizer.encode_plain(h)) << "a repeat, conversation " << c;
    }
  }
  // Branches: a shared beginning, then different text (as a regenerated reply).
  for (size_t c = 0; c < histories.size(); ++c) {
    const std::string& h = histories[c];
    const std::string branch = h.substr(0, h.size() * (rng() % 9 + 1) / 10) + random_turn(rng, 300);
    ASSERT_EQ(cache.encode(branch), tokenizer.encode(branch)) << "branch of conversation " << c;
  }
  const PromptTokenCache::Stats s = cache.stats();
  if (expected != Reuse::kNone) {
    EXPECT_GT(s.hits, 0u);
    if (expected == Reuse::kMost) {
      EXPECT_GT(s.reused_bytes, s.encoded_bytes) << "most of each resent history is not encoded again";
    }
  } else {
    EXPECT_EQ(s.hits, 0u);
    EXPECT_EQ(s.entries, 0u);
  }
  EXPECT_LE(s.bytes, cache_bytes);
}

class PromptTokenCacheTest : public test::TrainedTokenizerTest {};

// Tokenizer::encode_plain_with_cuts: each cut splits the ids where it says.
TEST_F(PromptTokenCacheTest, CutsSplitTheIdsWhereTheySay) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    const std::string text = random_turn(rng, 300 + rng() % 5000);
    std::vector<Tokenizer::PlainCut> cuts;
    const std::vector<int32_t> ids = tokenizer().encode_plain_with_cuts(text, &cuts);
    ASSERT_EQ(ids, tokenizer().encode_plain(text));
    ASSERT_FALSE(cuts.empty()) << "a text with safe spaces has at least its last one";
    for (const Tokenizer::PlainCut& c : cuts) {
      const std::vector<int32_t> before(ids.begin(), ids.begin() + ptrdiff_t(c.ids));
      const std::vector<int32_t> after(ids.begin() + ptrdiff_t(c.ids), ids.end());
      EXPECT_EQ(before, tokenizer().encode_plain(text.substr(0, c.space)));
      EXPECT_EQ(after, tokenizer().encode_plain(text.substr(part_start_after(c.space, tokenizer().word_split()))));
    }
  }
}

TEST_F(PromptTokenCacheTest, ConversationsEncodeExactlyAndReuseTheirHistory) {
  expect_conversations_exact(tokenizer(), size_t(64) << 20, Reuse::kMost);
}

TEST_F(PromptTokenCacheTest, EvictionUnderPressureChangesNoIds) {
  expect_conversations_exact(tokenizer(), 40000, Reuse::kSome);  // a few histories at most
}

TEST_F(PromptTokenCacheTest, ZeroBytesReusesNothing) { expect_conversations_exact(tokenizer(), 0, Reuse::kNone); }

TEST_F(PromptTokenCacheTest, ReuseStopsAtTheLastSafeSpaceBeforeADifference) {
  PromptTokenCache cache(tokenizer(), size_t(1) << 20);
  std::string base;
  while (base.size() < 3000) base += "the quick brown fox jumps over the lazy dog ";
  base += "hello";
  ASSERT_EQ(cache.encode(base), tokenizer().encode(base));
  // The last word grows: "hello" → "helloworld" (the cut before "hello" is still safe).
  std::string cut_word = base;
  cut_word.resize(base.size() - 2);  // "hel"
  cut_word += "p me";
  const std::vector<std::string> nexts = {base + "world and more", base + " world", cut_word, base + "\xc3\xa9t\xc3\xa9"};
  for (const std::string& next : nexts) {
    EXPECT_EQ(cache.encode(next), tokenizer().encode(next)) << next.substr(next.size() - 20);
  }
  EXPECT_GE(cache.stats().hits, 4u);
}

TEST_F(PromptTokenCacheTest, ThreadsShareOneCache) {
  PromptTokenCache cache(tokenizer(), size_t(8) << 20);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      std::string h;
      for (int turn = 0; turn < 8; ++turn) {
        h += ' ';
        h += random_turn(rng, 400 + rng() % 800);
        if (cache.encode(h) != tokenizer().encode(h)) ++mismatches[size_t(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
  EXPECT_GT(cache.stats().hits, 0u);
}

TEST(PromptTokenCacheDefaultModel, ShippedModelConversationsEncodeExactly) {
  auto loaded = Tokenizer::load(test::source_dir() / "models/tnl-brown-12m");
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  expect_conversations_exact(**loaded, size_t(64) << 20, Reuse::kMost);
}

TEST(PromptTokenCacheUnigram, AModelThatCannotBeCutIsEncodedWhole) {
  const auto dir = test::fresh_temp_dir("prompt-cache-unigram");
  ASSERT_TRUE(test::train_unigram_tokenizer(dir));
  auto loaded = Tokenizer::load(dir);
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  ASSERT_FALSE((*loaded)->word_separable());
  expect_conversations_exact(**loaded, size_t(64) << 20, Reuse::kNone);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tnl
