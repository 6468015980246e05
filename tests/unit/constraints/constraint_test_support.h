// Shared helpers for the constraint tests: vocabularies (a synthetic one and
// the shipped tnl-brown-12m tokenizer's), mask sampling with a seeded RNG, and
// greedy tokenisation of known-valid text.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/constraints/compiled_constraint.h"
#include "engine/constraints/constraint.h"
#include "engine/constraints/constraint_matcher.h"
#include "engine/constraints/token_trie.h"
#include "engine/scheduler/constraint_vocabulary.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/support/test_paths.h"

namespace tnl::test {

// Ids 0..2 are <pad>, <s>, </s> (special, EOS = 2), 3 is an empty non-special
// token (must never be allowed), 4..259 are the 256 single bytes, then
// multi-byte pieces shaped like a real tokenizer's: JSON punctuation, words
// with a leading space, digits, escapes, UTF-8 characters.
inline std::shared_ptr<TokenVocabulary> synthetic_vocabulary() {
  auto v = std::make_shared<TokenVocabulary>();
  v->bytes = {"<pad>", "<s>", "</s>", ""};
  v->special = {true, true, true, false};
  v->eos_id = 2;
  for (int b = 0; b < 256; ++b) v->bytes.push_back(std::string(1, static_cast<char>(b)));
  const char* pieces[] = {
      "{\"", "\":", "\": ", "\", \"", "\",\"", "\"}", "\"},", "},", "}]", "[{", "[\"", "\"]", "\": [", "\": {",
      ", ", " \"", "\":\"", "\": \"", "{}", "[]", "true", "false", "null", " true", " null", "tr", "ue", "nu", "ll",
      "fal", "se", "12", "34", "567", "0.", ".5", "e+", "E-", "-1", "00", "99", "2024", "-0", " 1", "1,", "3]",
      "7}", "\\n", "\\\"", "\\\\", "\\u00", "\\u", "e9", "d83d", "\\ud83d", "\\ude00", "a\"", "s\",", "é", "日本",
      "€", "😀", "\xc3", "\xa9", "\xe6\x97", " the", " of", "name", " name", "age", "tags", "id", "type", "value",
      "items", "hello", " world", "abc", "ing", "tion", " a", "A", "Z", "ZZ", "-", "--", "@", ".com", "http",
      "://", "www", "_", "__", "x", "yz", "\t", "\n", "\n\n", "  ", "   ", " ", "\"", "\"\"", "\"\"\"", "{{", "}}",
      "((", "))", "()", "+", "*", "/", "1+", "2*", "(1", "2)", "a1", "b2", "c3", "ab", "ba", "aa", "bb", "abab"};
  for (const char* p : pieces) v->bytes.push_back(p);
  v->special.resize(v->bytes.size(), false);
  return v;
}

// The shipped tokenizer's pieces as bytes ("▁" → " ", "<0xAB>" → byte 0xAB);
// special tokens are those that decode to nothing.
inline std::shared_ptr<TokenVocabulary> model_vocabulary() {
  auto loaded = Tokenizer::load(source_dir() / "models/tnl-brown-12m");
  EXPECT_TRUE(loaded.has_value()) << loaded.status().to_string();
  if (!loaded.has_value()) return nullptr;
  return constraint_vocabulary(**loaded, (*loaded)->vocab_size());
}

inline std::shared_ptr<const CompiledConstraint> compile_or_die(ConstraintSpec::Kind kind, const std::string& text,
                                                                std::shared_ptr<const TokenTrie> trie) {
  auto compiled = compile_constraint({kind, text}, std::move(trie));
  EXPECT_TRUE(compiled.has_value()) << text << "\n" << compiled.status().to_string();
  return compiled.has_value() ? *compiled : nullptr;
}

inline std::vector<int32_t> allowed_tokens(const std::vector<uint32_t>& mask, int32_t vocab_size) {
  std::vector<int32_t> out;
  for (int32_t t = 0; t < vocab_size; ++t) {
    if ((mask[t >> 5] >> (t & 31)) & 1) out.push_back(t);
  }
  return out;
}

struct SampleOptions {
  int max_steps = 600;
  int eos_bias_after = 30;   // from here on EOS is taken (when allowed) 3 times in 4
  int finish_after = 100;    // from here on tokens that bring the end closest are preferred
  int cross_checks = 8;      // per step: allowed tokens re-checked with allows(), and as many refused ones
};

struct Sample {
  std::string text;
  std::vector<int32_t> tokens;
  bool finished = false;  // ended with EOS
};

// Walks the masks: every step's mask must be non-empty, every sampled token
// must be accepted, and a few allowed/refused tokens are cross-checked with
// allows() (the direct automaton run, not the token tables).
inline Sample sample_output(const std::shared_ptr<const CompiledConstraint>& compiled, std::mt19937& rng,
                            const SampleOptions& options = {}) {
  Sample sample;
  ConstraintMatcher matcher(compiled);
  const TokenVocabulary& vocab = compiled->trie().vocabulary();
  const int32_t eos = vocab.eos_id;
  std::vector<uint32_t> mask(matcher.mask_words());
  for (int step = 0; step < options.max_steps; ++step) {
    matcher.fill_allowed(mask);
    if (matcher.failed()) {
      ADD_FAILURE() << matcher.error().to_string() << " after \"" << sample.text << "\"";
      return sample;
    }
    const std::vector<int32_t> allowed = allowed_tokens(mask, vocab.size());
    if (allowed.empty()) {
      ADD_FAILURE() << "no token allowed after \"" << sample.text << "\"";
      return sample;
    }
    const bool eos_allowed = std::binary_search(allowed.begin(), allowed.end(), eos);
    EXPECT_EQ(eos_allowed, matcher.is_accepting()) << sample.text;
    for (int i = 0; i < options.cross_checks; ++i) {
      const int32_t yes = allowed[rng() % allowed.size()];
      EXPECT_TRUE(matcher.allows(yes)) << "masked-in token " << yes << " refused after \"" << sample.text << "\"";
      const int32_t any = static_cast<int32_t>(rng() % vocab.size());
      EXPECT_EQ(matcher.allows(any), std::binary_search(allowed.begin(), allowed.end(), any))
          << "mask and allows() disagree on token " << any << " (\"" << vocab.bytes[any] << "\") after \""
          << sample.text << "\"";
    }
    int32_t choice = allowed[rng() % allowed.size()];
    if (eos_allowed && step >= options.eos_bias_after && rng() % 4 != 0) {
      choice = eos;
    } else if (step >= options.finish_after) {
      // Prefer the token after which the fewest bytes complete the text.
      uint32_t best = UINT32_MAX;
      std::vector<int32_t> candidates;
      for (int32_t t : allowed) {
        if (allowed.size() > 400 && vocab.bytes[t].size() > 1 && rng() % 8 != 0) continue;
        EXPECT_TRUE(matcher.accept(t).is_ok());
        const uint32_t cost = t == eos ? 0 : matcher.min_bytes_to_accept();
        EXPECT_TRUE(matcher.rollback(1).is_ok());
        if (cost < best) candidates.clear();
        if (cost <= best) {
          best = cost;
          candidates.push_back(t);
        }
      }
      if (!candidates.empty()) choice = candidates[rng() % candidates.size()];
    }
    const Status status = matcher.accept(choice);
    EXPECT_TRUE(status.is_ok()) << status.to_string();
    if (!status.is_ok()) return sample;
    sample.tokens.push_back(choice);
    if (choice == eos) {
      sample.finished = true;
      EXPECT_TRUE(matcher.is_finished());
      return sample;
    }
    sample.text += vocab.bytes[choice];
  }
  return sample;
}

// Greedy longest-match tokenisation with the vocabulary's emittable tokens.
inline std::vector<int32_t> greedy_tokenize(const TokenTrie& trie, const std::string& text) {
  const TokenVocabulary& v = trie.vocabulary();
  std::vector<int32_t> out;
  size_t pos = 0;
  while (pos < text.size()) {
    int32_t best = -1;
    size_t best_len = 0;
    for (int32_t t = 0; t < v.size(); ++t) {
      if (!trie.in_trie(t)) continue;
      const std::string& b = v.bytes[t];
      if (b.size() > best_len && text.compare(pos, b.size(), b) == 0) {
        best = t;
        best_len = b.size();
      }
    }
    if (best < 0) return {};
    out.push_back(best);
    pos += best_len;
  }
  return out;
}

// Accepts `text` token by token (greedy tokenisation), checking each token was
// in the mask; returns whether EOS is allowed at the end.
inline bool accepts_text(const std::shared_ptr<const CompiledConstraint>& compiled, const std::string& text) {
  ConstraintMatcher matcher(compiled);
  std::vector<uint32_t> mask(matcher.mask_words());
  for (int32_t t : greedy_tokenize(compiled->trie(), text)) {
    matcher.fill_allowed(mask);
    const bool in_mask = (mask[t >> 5] >> (t & 31)) & 1;
    const bool ok = matcher.accept(t).is_ok();
    EXPECT_EQ(in_mask, ok) << "mask and accept disagree inside \"" << text << "\"";
    if (!ok) return false;
  }
  matcher.fill_allowed(mask);
  const int32_t eos = compiled->trie().eos_id();
  return ((mask[eos >> 5] >> (eos & 31)) & 1) && matcher.is_accepting();
}

// UTF-8 → one wchar_t per code point (for std::wregex checks); nullopt-like
// empty + false on invalid input.
inline bool utf8_to_wide(const std::string& s, std::wstring* out) {
  out->clear();
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<uint8_t>(s[i]);
    int len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? b : b & (0xFF >> (len + 1));
    for (int k = 1; k < len; ++k) {
      const auto c = static_cast<uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    out->push_back(static_cast<wchar_t>(cp));
    i += len;
  }
  return true;
}

}  // namespace tnl::test
