// A tiny SentencePiece model for tokenizer tests, trained at test time on the
// shipped corpus with Debian's spm_train (BPE with byte fallback, LLaMA-style
// identity normalisation so that text round-trips exactly).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "engine/tokenizer/tokenizer.h"
#include "tests/support/test_paths.h"

namespace tnl::test {

// A fresh directory under the system temp dir, unique to this process and `tag`.
inline std::filesystem::path fresh_temp_dir(const std::string& tag) {
  auto dir = std::filesystem::temp_directory_path() /
             ("tnl-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Trains dir/tokenizer.model; returns false (with the command in a gtest
// failure) when spm_train fails.
inline bool train_tokenizer(const std::filesystem::path& dir) {
  const auto corpus = source_dir() / "tests/data/tokenizer_corpus.txt";
  const std::string command =
      "spm_train --input='" + corpus.string() + "' --model_prefix='" + (dir / "tokenizer").string() +
      "' --vocab_size=800 --model_type=bpe --byte_fallback=true"
      " --pad_id=0 --bos_id=1 --eos_id=2 --unk_id=3 --character_coverage=0.9995"
      " --normalization_rule_name=identity --remove_extra_whitespaces=false"
      " --minloglevel=2 > '" + (dir / "spm_train.log").string() + "' 2>&1";
  const int rc = std::system(command.c_str());
  EXPECT_EQ(rc, 0) << command;
  return rc == 0 && std::filesystem::exists(dir / "tokenizer.model");
}

// Trains a small unigram model into dir/tokenizer.model: a model that is not
// word-separable (its encodings must never be cut).
inline bool train_unigram_tokenizer(const std::filesystem::path& dir) {
  const std::string command = "spm_train --input='" + (source_dir() / "tests/data/tokenizer_corpus.txt").string() +
                              "' --model_prefix='" + (dir / "tokenizer").string() +
                              "' --vocab_size=400 --model_type=unigram --minloglevel=2 > '" +
                              (dir / "spm_train.log").string() + "' 2>&1";
  const int rc = std::system(command.c_str());
  EXPECT_EQ(rc, 0) << command;
  return rc == 0 && std::filesystem::exists(dir / "tokenizer.model");
}

// The shipped tokenizer corpus: text for tests that cut and join encodings.
inline std::string tokenizer_corpus() {
  std::ifstream in(source_dir() / "tests/data/tokenizer_corpus.txt", std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Fixture: one trained model per test binary, in model_dir(), loaded as tokenizer().
class TrainedTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new std::filesystem::path(fresh_temp_dir("tokenizer-test"));
    ASSERT_TRUE(train_tokenizer(*model_dir_));
    auto loaded = Tokenizer::load(*model_dir_);
    ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
    tokenizer_ = std::move(loaded).value().release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
    std::filesystem::remove_all(*model_dir_);
    delete model_dir_;
    model_dir_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(tokenizer_, nullptr) << "training the test tokenizer failed"; }

  static const Tokenizer& tokenizer() { return *tokenizer_; }
  static const std::filesystem::path& model_dir() { return *model_dir_; }

 private:
  static inline std::filesystem::path* model_dir_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
};

// Structural UTF-8 check (RFC 3629: no overlongs, no surrogates, ≤ U+10FFFF).
inline bool is_valid_utf8(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    uint32_t code = 0;
    if (lead < 0x80) { length = 1; code = lead; }
    else if ((lead & 0xE0) == 0xC0) { length = 2; code = lead & 0x1F; }
    else if ((lead & 0xF0) == 0xE0) { length = 3; code = lead & 0x0F; }
    else if ((lead & 0xF8) == 0xF0) { length = 4; code = lead & 0x07; }
    else return false;
    if (i + length > text.size()) return false;
    for (size_t j = 1; j < length; ++j) {
      const auto byte = static_cast<unsigned char>(text[i + j]);
      if ((byte & 0xC0) != 0x80) return false;
      code = (code << 6) | (byte & 0x3F);
    }
    static constexpr uint32_t kMinCode[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kMinCode[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

}  // namespace tnl::test
