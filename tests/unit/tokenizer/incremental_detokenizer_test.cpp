#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "engine/tokenizer/tokenizer.h"
#include "tests/unit/tokenizer/trained_tokenizer.h"

namespace tnl {
namespace {

using test::is_valid_utf8;

class IncrementalDetokenizerTest : public test::TrainedTokenizerTest {
 protected:
  // Streams `output` one id at a time after `prompt`; returns the pieces,
  // flush last, and checks that each one is valid UTF-8 on its own.
  static std::vector<std::string> stream(const std::vector<int32_t>& prompt,
                                         const std::vector<int32_t>& output) {
    IncrementalDetokenizer detokenizer(tokenizer(), prompt);
    std::vector<std::string> pieces;
    for (int32_t id : output) {
      pieces.push_back(detokenizer.push(id));
      EXPECT_TRUE(is_valid_utf8(pieces.back())) << "piece after id " << id << " ("
                                                << tokenizer().piece(id) << ")";
    }
    pieces.push_back(detokenizer.flush());
    EXPECT_TRUE(is_valid_utf8(pieces.back()));
    return pieces;
  }
  static std::string join(const std::vector<std::string>& pieces) {
    std::string text;
    for (const auto& piece : pieces) text += piece;
    return text;
  }
};

TEST_F(IncrementalDetokenizerTest, ConcatenationEqualsDecodeOfAll) {
  const char* texts[] = {
      "The river rises in the hills above the town.",
      "café naïve résumé, Zürich and Ångström",
      "今天天气很好，我们去公园散步吧。东京の駅",
      "Emoji 😊🎉 and unseen ones 🦄🦒 𝄞 ẞ नमस्ते",
      "  spaces   everywhere  ",
  };
  for (const char* text : texts) {
    const auto ids = tokenizer().encode_plain(text);
    const auto pieces = stream({}, ids);
    EXPECT_EQ(join(pieces), tokenizer().decode(ids)) << text;
    EXPECT_EQ(join(pieces), text);
    EXPECT_EQ(pieces.back(), "") << "nothing should be left for flush: " << text;
  }
}

TEST_F(IncrementalDetokenizerTest, EmojiSplitOverBytePiecesComesOutWhole) {
  // "a🦄b": the unicorn is four byte-fallback pieces.
  const auto ids = tokenizer().encode_plain("a🦄b");
  const auto pieces = stream({}, ids);
  size_t byte_pieces = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto byte = tokenizer().byte_value(ids[i]);
    if (!byte) continue;
    ++byte_pieces;
    // The first three bytes emit nothing; the fourth emits the whole character.
    if (byte_pieces < 4) {
      EXPECT_EQ(pieces[i], "") << "byte " << byte_pieces;
    } else {
      EXPECT_NE(pieces[i].find("🦄"), std::string::npos) << pieces[i];
    }
  }
  EXPECT_EQ(byte_pieces, 4u);
  EXPECT_EQ(join(pieces), "a🦄b");
}

TEST_F(IncrementalDetokenizerTest, FirstGeneratedWordKeepsItsSpace) {
  const auto all = tokenizer().encode("The keeper climbed the stairs");
  // Split before the last word-initial piece ("▁stairs" or similar).
  size_t split = all.size() - 1;
  while (split > 2 && tokenizer().piece(all[split]).rfind("▁", 0) != 0) --split;
  ASSERT_GT(split, 2u);
  const std::vector<int32_t> prompt(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(split));
  const std::vector<int32_t> output(all.begin() + static_cast<std::ptrdiff_t>(split), all.end());

  const auto pieces = stream(prompt, output);
  ASSERT_FALSE(pieces.front().empty());
  EXPECT_EQ(pieces.front().front(), ' ');
  const std::string full = tokenizer().decode(all);
  const std::string prompt_text = tokenizer().decode(prompt);
  EXPECT_EQ(prompt_text + join(pieces), full);
}

TEST_F(IncrementalDetokenizerTest, PromptEndingInsideByteFallbackCharacters) {
  // The prompt's last ids are byte-fallback pieces of characters outside the
  // vocabulary; the context window must not start inside one of them.
  const auto prompt = tokenizer().encode("Hello 𝄞𝄞");
  // "▁world ..." as a model would generate it: the "▁" is a space after the prompt.
  const auto output = tokenizer().encode_plain("world 🦄");
  const auto pieces = stream(prompt, output);
  EXPECT_EQ(join(pieces), " world 🦄");
}

TEST_F(IncrementalDetokenizerTest, StreamsTheWholeCorpus) {
  // Thousands of ids: also crosses the point where old ids are compacted away.
  std::ifstream in(test::source_dir() / "tests/data/tokenizer_corpus.txt");
  const std::string corpus((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto ids = tokenizer().encode_plain(corpus);
  ASSERT_GT(ids.size(), 2048u);
  EXPECT_EQ(join(stream({tokenizer().bos_id()}, ids)), corpus);
}

TEST_F(IncrementalDetokenizerTest, ControlTokensEmitNothing) {
  auto ids = tokenizer().encode_plain("done");
  ids.push_back(tokenizer().eos_id());
  const auto pieces = stream({tokenizer().bos_id()}, ids);
  EXPECT_EQ(pieces[pieces.size() - 2], "");  // the EOS
  EXPECT_EQ(join(pieces), "done");
}

TEST_F(IncrementalDetokenizerTest, FlushReleasesAnIncompleteTailAsReplacementCharacters) {
  auto ids = tokenizer().encode_plain("ok 🦄");
  ids.pop_back();  // drop the last byte of the unicorn
  IncrementalDetokenizer detokenizer(tokenizer(), {});
  std::string streamed;
  for (int32_t id : ids) streamed += detokenizer.push(id);
  EXPECT_EQ(streamed.find('\xF0'), std::string::npos) << "no partial character may be emitted";
  const std::string tail = detokenizer.flush();
  EXPECT_FALSE(tail.empty());
  EXPECT_TRUE(is_valid_utf8(tail));
  EXPECT_NE(tail.find("\xEF\xBF\xBD"), std::string::npos) << "U+FFFD expected";
  EXPECT_EQ(detokenizer.flush(), "");
}

TEST_F(IncrementalDetokenizerTest, InvalidBytesAreNotHeldForever) {
  // Lone continuation bytes never complete a character: after at most four
  // held ids they come out as U+FFFD, and later text still streams.
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < tokenizer().vocab_size() && ids.size() < 5; ++id) {
    if (tokenizer().byte_value(id) == 0x80) ids.assign(5, id);
  }
  ASSERT_EQ(ids.size(), 5u);
  const auto word = tokenizer().encode_plain(" river");
  ids.insert(ids.end(), word.begin(), word.end());
  const auto pieces = stream({}, ids);
  EXPECT_EQ(join(pieces), tokenizer().decode(ids));
  EXPECT_FALSE(pieces[4].empty() && pieces[5].empty()) << "bytes held past the longest character";
}

// The window technique with SentencePiece decoding every step, as the detokenizer
// did before it appended ordinary pieces' text directly: both must stream the
// same pieces, id for id.
class WindowDecodeReference {
 public:
  WindowDecodeReference(const Tokenizer& tokenizer, std::vector<int32_t> context)
      : tokenizer_(tokenizer), ids_(std::move(context)), read_(ids_.size()) {}
  std::string push(int32_t id) {
    ids_.push_back(id);
    const std::string before = decode(prefix_, read_), after = decode(prefix_, ids_.size());
    const bool incomplete = after.ends_with("\xEF\xBF\xBD") && ids_.size() - read_ < 4;
    if (after.size() <= before.size() || incomplete) return {};
    prefix_ = read_;
    read_ = ids_.size();
    return after.substr(before.size());
  }

 private:
  std::string decode(size_t begin, size_t end) const {
    return tokenizer_.decode(std::vector<int32_t>(ids_.begin() + long(begin), ids_.begin() + long(end)));
  }
  const Tokenizer& tokenizer_;
  std::vector<int32_t> ids_;
  size_t prefix_ = 0, read_ = 0;
};

TEST_F(IncrementalDetokenizerTest, OrdinaryPiecesAppendTheirTextAsSentencePieceDecodes) {
  const int32_t the = tokenizer().encode_plain("the")[0];  // "▁the" or a prefix of it
  ASSERT_NE(tokenizer().following_text(the), nullptr);
  EXPECT_EQ(*tokenizer().following_text(the), tokenizer().decode({the, the}).substr(tokenizer().decode({the}).size()));
  EXPECT_EQ(tokenizer().following_text(tokenizer().bos_id()), nullptr);
  EXPECT_EQ(tokenizer().following_text(tokenizer().encode_plain("\xF0\x9F\xA6\x84")[1]), nullptr);  // a byte piece

  // Random ids of every kind (ordinary, byte, control, unknown), after random contexts.
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int32_t> context(rng() % 4);
    for (int32_t& id : context) id = int32_t(rng() % uint32_t(tokenizer().vocab_size()));
    IncrementalDetokenizer detokenizer(tokenizer(), context);
    WindowDecodeReference reference(tokenizer(), std::vector<int32_t>(context.begin(), context.end()));
    for (int i = 0; i < 64; ++i) {
      // Half the ids from the low range, where the test model keeps its control and byte pieces.
      const int32_t id = int32_t(rng() % 2 ? rng() % 300u : rng() % uint32_t(tokenizer().vocab_size()));
      ASSERT_EQ(detokenizer.push(id), reference.push(id)) << "trial " << trial << ", id " << i << " = " << id;
    }
  }
}

}  // namespace
}  // namespace tnl
