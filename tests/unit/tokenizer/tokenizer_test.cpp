#include "engine/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>

#include "engine/tokenizer/tokenizer_config.h"
#include "tests/unit/tokenizer/trained_tokenizer.h"

namespace tnl {
namespace {

using test::TrainedTokenizerTest;

// Texts that must survive encode → decode unchanged. Some characters are in the
// training corpus, others (🦄, 𝄞, ẞ, Devanagari, Thai) are not and can only be
// spelled by byte-fallback pieces.
const char* const kRoundTripTexts[] = {
    "The lighthouse keeper woke before dawn.",
    "  leading spaces,   inner runs\tand a tab\nand a newline",
    "café naïve résumé Straße jalapeño Ångström",
    "今天天气很好，我们去公园散步吧。",
    "東京の駅はいつも人が多いです。",
    "Great job 👍 see you tomorrow 😊🎉",
    "🦄 𝄞 ẞ नमस्ते สวัสดี",
    "price: $19.99, 42%, 08:45",
    "",
};

class TokenizerTest : public TrainedTokenizerTest {
 protected:
  // A second model directory that shares the trained model but has its own config.
  static std::filesystem::path dir_with_config(const std::string& name, const std::string& json) {
    const auto dir = model_dir() / name;
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(model_dir() / "tokenizer.model", dir / "tokenizer.model",
                               std::filesystem::copy_options::overwrite_existing);
    std::ofstream(dir / "tokenizer_config.json") << json;
    return dir;
  }
};

TEST_F(TokenizerTest, ReportsVocabularyAndSpecialIds) {
  EXPECT_EQ(tokenizer().vocab_size(), 800);
  EXPECT_EQ(tokenizer().bos_id(), 1);
  EXPECT_EQ(tokenizer().eos_id(), 2);
  EXPECT_EQ(tokenizer().piece(1), "<s>");
  EXPECT_EQ(tokenizer().piece(2), "</s>");
  // Without tokenizer_config.json: the defaults.
  EXPECT_TRUE(tokenizer().add_bos());
  EXPECT_FALSE(tokenizer().add_eos());
}

TEST_F(TokenizerTest, EncodeAddsBosByDefaultAndEncodePlainDoesNot) {
  const auto plain = tokenizer().encode_plain("hello world");
  const auto with_bos = tokenizer().encode("hello world");
  ASSERT_FALSE(plain.empty());
  ASSERT_EQ(with_bos.size(), plain.size() + 1);
  EXPECT_EQ(with_bos.front(), tokenizer().bos_id());
  EXPECT_TRUE(std::equal(plain.begin(), plain.end(), with_bos.begin() + 1));
  EXPECT_NE(plain.front(), tokenizer().bos_id());
}

TEST_F(TokenizerTest, RoundTripsTextIncludingNonAscii) {
  for (const char* text : kRoundTripTexts) {
    EXPECT_EQ(tokenizer().decode(tokenizer().encode_plain(text)), text);
    // BOS is a control token: decode drops it.
    EXPECT_EQ(tokenizer().decode(tokenizer().encode(text)), text);
  }
}

TEST_F(TokenizerTest, RoundTripsTheWholeCorpus) {
  std::ifstream in(test::source_dir() / "tests/data/tokenizer_corpus.txt");
  const std::string corpus((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(corpus.size(), 10000u);
  EXPECT_EQ(tokenizer().decode(tokenizer().encode_plain(corpus)), corpus);
}

TEST_F(TokenizerTest, CharactersOutsideTheVocabularyUseByteFallback) {
  // U+1F984 🦄 is F0 9F A6 84 in UTF-8 and absent from the training corpus.
  const auto ids = tokenizer().encode_plain("🦄");
  std::vector<uint8_t> bytes;
  for (int32_t id : ids) {
    if (auto byte = tokenizer().byte_value(id)) bytes.push_back(*byte);
  }
  EXPECT_EQ(bytes, (std::vector<uint8_t>{0xF0, 0x9F, 0xA6, 0x84}));
  EXPECT_EQ(tokenizer().piece(ids.back()), "<0x84>");
}

TEST_F(TokenizerTest, ByteValueIsOnlyForBytePieces) {
  const auto ids = tokenizer().encode_plain("the");
  for (int32_t id : ids) EXPECT_FALSE(tokenizer().byte_value(id).has_value()) << tokenizer().piece(id);
  EXPECT_FALSE(tokenizer().byte_value(-1).has_value());
  EXPECT_FALSE(tokenizer().byte_value(tokenizer().vocab_size()).has_value());
}

TEST_F(TokenizerTest, DecodeDropsIdsOutsideTheVocabulary) {
  auto ids = tokenizer().encode_plain("hello world");
  const std::string expected = tokenizer().decode(ids);
  ids.insert(ids.begin() + 1, tokenizer().vocab_size() + 7);  // e.g. a padded embedding row
  ids.push_back(-1);
  EXPECT_EQ(tokenizer().decode(ids), expected);
  EXPECT_EQ(tokenizer().piece(-1), "");
}

TEST_F(TokenizerTest, ConfigCanTurnBosOffAndEosOn) {
  const auto dir = dir_with_config("no-bos", R"({"add_bos_token": false, "add_eos_token": true})");
  auto loaded = Tokenizer::load(dir);
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  const Tokenizer& custom = **loaded;
  EXPECT_FALSE(custom.add_bos());
  EXPECT_TRUE(custom.add_eos());
  const auto ids = custom.encode("hello");
  ASSERT_FALSE(ids.empty());
  EXPECT_NE(ids.front(), custom.bos_id());
  EXPECT_EQ(ids.back(), custom.eos_id());
  EXPECT_EQ(custom.decode(ids), "hello");
}

TEST_F(TokenizerTest, ConfigWithoutTheFlagsKeepsDefaults) {
  const auto dir = dir_with_config("other-keys", R"({"model_max_length": 2048, "add_bos_token": null})");
  auto loaded = Tokenizer::load(dir);
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  EXPECT_TRUE((*loaded)->add_bos());
  EXPECT_FALSE((*loaded)->add_eos());
}

TEST_F(TokenizerTest, BadConfigIsAnErrorNamingTheFile) {
  const auto broken = dir_with_config("broken-json", "{\"add_bos_token\": tru");
  auto loaded = Tokenizer::load(broken);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find("tokenizer_config.json"), std::string::npos)
      << loaded.status().message();

  const auto wrong_type = dir_with_config("wrong-type", R"({"add_bos_token": "yes"})");
  loaded = Tokenizer::load(wrong_type);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_NE(loaded.status().message().find("tokenizer_config.json"), std::string::npos);
  EXPECT_NE(loaded.status().message().find("add_bos_token"), std::string::npos)
      << loaded.status().message();

  const auto not_object = dir_with_config("array", "[true]");
  EXPECT_FALSE(Tokenizer::load(not_object).has_value());
}

TEST_F(TokenizerTest, MissingModelIsNotFoundNamingTheFile) {
  const auto empty = model_dir() / "empty";
  std::filesystem::create_directories(empty);
  auto loaded = Tokenizer::load(empty);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.status().code(), StatusCode::kNotFound);
  EXPECT_NE(loaded.status().message().find((empty / "tokenizer.model").string()), std::string::npos)
      << loaded.status().message();
}

TEST_F(TokenizerTest, CorruptModelIsAnErrorNamingTheFile) {
  const auto dir = model_dir() / "corrupt";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.model") << "this is not a protobuf";
  auto loaded = Tokenizer::load(dir);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_NE(loaded.status().message().find("tokenizer.model"), std::string::npos)
      << loaded.status().message();
}

TEST(TokenizerConfigTest, MissingFileGivesDefaults) {
  auto config = load_tokenizer_config("/nonexistent/tokenizer_config.json");
  ASSERT_TRUE(config.has_value());
  EXPECT_TRUE(config->add_bos_token);
  EXPECT_FALSE(config->add_eos_token);
}

}  // namespace
}  // namespace tnl
