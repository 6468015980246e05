// Cutting encode_plain at word boundaries: the parts' ids joined are exactly the
// ids of one SentencePiece call, for the trained test model, the shipped default
// model and any cut; models where that cannot be promised are never cut.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/word_boundary_split.h"
#include "tests/support/test_paths.h"
#include "tests/unit/tokenizer/trained_tokenizer.h"

namespace tnl {
namespace {

// The corpus plus text with runs of blanks, tabs, non-ASCII and byte-fallback characters.
std::string mixed_text() {
  std::string text = test::tokenizer_corpus();
  text += "  leading spaces,   inner runs\tand a tab\nand a newline caf\xc3\xa9 na\xc3\xafve 42% x 08:45 ";
  text += "\xe4\xbb\x8a\xe5\xa4\xa9 a \xf0\x9f\xa6\x84 b \xf0\x9d\x84\x9e c \xe0\xa4\xa8\xe0\xa4\xae d. End";
  return text;
}

TEST(WordBoundarySplit, CutsOnlyAtSafeSpacesAndKeepsEveryByte) {
  const std::string text = "A  b c\td e,f 9 x \xc3\xa9 z.q last";
  for (WordSplit mode : {WordSplit::kDropSpace, WordSplit::kKeepSpace}) {
    const std::vector<std::string_view> parts = split_at_word_boundaries(text, mode, text.size());
    std::string joined;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) {
        // Each cut is at "<visible ASCII> <ASCII letter or digit>".
        const size_t at = size_t(parts[i].data() - text.data()) - (mode == WordSplit::kDropSpace ? 1 : 0);
        EXPECT_EQ(text[at], ' ');
        EXPECT_NE(text[at - 1], ' ');
        EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(text[at + 1])));
        if (mode == WordSplit::kDropSpace) joined += ' ';
      }
      joined += parts[i];
    }
    EXPECT_EQ(joined, text);
    // Five safe spaces: "b c", "d e", "f 9", "9 x", "q last" ("A  b", "c\td", "x é" are not).
    EXPECT_EQ(parts.size(), 6u);
  }
  EXPECT_EQ(split_at_word_boundaries(text, WordSplit::kNone, 8).size(), 1u);
  EXPECT_EQ(split_at_word_boundaries(text, WordSplit::kDropSpace, 1).size(), 1u);
  EXPECT_EQ(split_at_word_boundaries("nospaceshere", WordSplit::kDropSpace, 4).size(), 1u);
}

void expect_cuts_change_nothing(const Tokenizer& tokenizer) {
  ASSERT_TRUE(tokenizer.word_separable());
  const std::string text = mixed_text();
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    const size_t begin = rng() % text.size();
    const size_t length = 1 + rng() % std::min<size_t>(3000, text.size() - begin);
    const std::string_view slice = std::string_view(text).substr(begin, length);
    const std::vector<int32_t> whole = tokenizer.encode_plain_uncut(slice);
    for (size_t parts : {size_t(1), size_t(2), size_t(7), size_t(64), slice.size()}) {
      ASSERT_EQ(tokenizer.encode_plain_in_parts(slice, parts), whole) << "parts " << parts << ": " << slice;
    }
  }
  // A text long enough for encode_plain to cut it by itself.
  std::string long_text;
  while (long_text.size() < 6 * Tokenizer::kMinPartBytes) long_text += text;
  EXPECT_EQ(tokenizer.encode_plain(long_text), tokenizer.encode_plain_uncut(long_text));
}

class WordSplitTest : public test::TrainedTokenizerTest {};

TEST_F(WordSplitTest, TrainedBpeModelEncodesTheSameInParts) { expect_cuts_change_nothing(tokenizer()); }

TEST(WordSplitDefaultModel, ShippedModelEncodesTheSameInParts) {
  auto loaded = Tokenizer::load(test::source_dir() / "models/tnl-brown-12m");
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  expect_cuts_change_nothing(**loaded);
}

// Callers on several threads share the tokenizer's part pool: each still gets
// exactly its own text's ids (parts are never mixed up between callers).
TEST(WordSplitDefaultModel, ConcurrentCallersShareThePartPool) {
  auto loaded = Tokenizer::load(test::source_dir() / "models/tnl-brown-12m");
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  const Tokenizer& tokenizer = **loaded;
  const std::string text = mixed_text();
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> expected;
  for (size_t k = 0; k < 6; ++k) {
    std::string t;
    while (t.size() < (4 + k) * Tokenizer::kMinPartBytes) t += text.substr(k * 7 % text.size()) + " ";
    expected.push_back(tokenizer.encode_plain_uncut(t));
    texts.push_back(std::move(t));
  }
  std::vector<std::vector<std::vector<int32_t>>> got(texts.size());
  std::vector<std::thread> callers;
  for (size_t k = 0; k < texts.size(); ++k) {
    callers.emplace_back([&, k] {
      for (int rep = 0; rep < 20; ++rep) got[k].push_back(tokenizer.encode_plain_in_parts(texts[k], 3 + k * 5));
    });
  }
  for (std::thread& t : callers) t.join();
  for (size_t k = 0; k < texts.size(); ++k) {
    for (const std::vector<int32_t>& ids : got[k]) ASSERT_EQ(ids, expected[k]) << "caller " << k;
  }
}

TEST(WordSplitUnigram, UnigramModelIsNeverCut) {
  const auto dir = test::fresh_temp_dir("word-split-unigram");
  ASSERT_TRUE(test::train_unigram_tokenizer(dir));
  auto loaded = Tokenizer::load(dir);
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  EXPECT_FALSE((*loaded)->word_separable());
  const std::string text = mixed_text();
  EXPECT_EQ((*loaded)->encode_plain_in_parts(text, 16), (*loaded)->encode_plain_uncut(text));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tnl
