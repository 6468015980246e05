// Regex constraints: every sampled output matches (checked with std::wregex,
// ECMAScript, on the output's code points), known matches are accepted token
// by token, non-matches are not, and malformed patterns are INVALID_ARGUMENT
// naming the problem.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "tests/unit/constraints/constraint_test_support.h"

namespace tnl::test {
namespace {

bool wregex_matches(const std::string& pattern, const std::string& text) {
  std::wstring wide_pattern, wide_text;
  EXPECT_TRUE(utf8_to_wide(pattern, &wide_pattern));
  if (!utf8_to_wide(text, &wide_text)) return false;  // output must be valid UTF-8
  return std::regex_match(wide_text, std::wregex(wide_pattern, std::regex::ECMAScript));
}

// Patterns whose meaning std::wregex shares with ours on any code point.
const std::vector<std::string> kPatterns = {
    "[0-9]{3}-[0-9]{4}",
    "(ab|cd)+e?",
    "[a-z]+@[a-z]+\\.(com|org)",
    "\\d{1,3}(\\.\\d{1,3}){3}",
    "(0|[1-9][0-9]*)(\\.[0-9]+)?",
    "a{2,5}b*",
    "(?:x|y|z){3}",
    "[A-Z][a-z]*( [A-Z][a-z]*){0,3}",
    "(a|b)*abb",
    "\\$[0-9]+(\\.[0-9][0-9])?",
    "[-+]?[0-9]+",
    "(\\(|\\))+",
    "^(yes|no|maybe)$",
    "[^\"\\\\]{0,12}",
    ".{1,8}",
    "[\\u00e0-\\u00ff]+z",
    "\\w+,\\w*",
    "(é|日本|x)+",
    "[^a-z]*q",
    "(ab|[c-e ]){2,40}!",
    ".{0,30}x",
    "",
};

class RegexSampling : public ::testing::TestWithParam<bool> {
 protected:
  static void SetUpTestSuite() {
    synthetic_ = new std::shared_ptr<const TokenTrie>(build_token_trie(synthetic_vocabulary()));
    model_ = new std::shared_ptr<const TokenTrie>(build_token_trie(model_vocabulary()));
  }
  std::shared_ptr<const TokenTrie> trie() const { return GetParam() ? *model_ : *synthetic_; }
  static std::shared_ptr<const TokenTrie>* synthetic_;
  static std::shared_ptr<const TokenTrie>* model_;
};
std::shared_ptr<const TokenTrie>* RegexSampling::synthetic_ = nullptr;
std::shared_ptr<const TokenTrie>* RegexSampling::model_ = nullptr;

TEST_P(RegexSampling, EverySampledOutputMatches) {
  std::mt19937 rng(GetParam() ? 1234 : 4321);
  for (const std::string& pattern : kPatterns) {
    auto compiled = compile_or_die(ConstraintSpec::Kind::kRegex, pattern, trie());
    ASSERT_NE(compiled, nullptr);
    int finished = 0;
    for (int i = 0; i < 12; ++i) {
      SampleOptions options;
      options.eos_bias_after = 4;
      options.finish_after = 24;
      const Sample s = sample_output(compiled, rng, options);
      if (!s.finished) continue;
      ++finished;
      if (std::getenv("TNL_PRINT_SAMPLES")) std::printf("%s => \"%s\"\n", pattern.c_str(), s.text.c_str());
      EXPECT_TRUE(wregex_matches(pattern, s.text)) << "pattern " << pattern << " output \"" << s.text << "\"";
    }
    EXPECT_GE(finished, 10) << pattern;
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, RegexSampling, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "model" : "synthetic"; });

TEST(RegexConstraint, KnownMatchesAreAcceptedAndOthersAreNot) {
  auto trie = build_token_trie(synthetic_vocabulary());
  struct Case {
    std::string pattern, text;
    bool matches;
  };
  const std::vector<Case> cases = {
      {"[0-9]{3}-[0-9]{4}", "555-1234", true},   {"[0-9]{3}-[0-9]{4}", "555-123", false},
      {"(ab|cd)+e?", "abcdabe", true},           {"(ab|cd)+e?", "abc", false},
      {"a{2,5}b*", "aaaaabbb", true},            {"a{2,5}b*", "aaaaaab", false},
      {"^(yes|no|maybe)$", "maybe", true},       {"^(yes|no|maybe)$", "yesno", false},
      {".{1,8}", "日本😀é", true},                {".{1,8}", "a\nb", false},
      {"[^a-z]*q", "ÀB9 q", true},               {"[^a-z]*q", "abq", false},
      {"\\s", "\xe2\x80\xa8", true},             {"\\S+", "a\xc2\xa0", false},
      {"(a?)*b", "aab", true},                   {"(a|)+c{0,2}", "c", true},
      {"[\\d\\-x]+", "1-x9", true},              {"\\u{1F600}\\x41\\cJ", "😀A\n", true},
      {"[^]", "\n", true},                       {"", "", true},
      {"", "a", false},                          {"a|b|", "", true},
  };
  for (const Case& c : cases) {
    auto compiled = compile_or_die(ConstraintSpec::Kind::kRegex, c.pattern, trie);
    ASSERT_NE(compiled, nullptr);
    EXPECT_EQ(accepts_text(compiled, c.text), c.matches) << c.pattern << " on \"" << c.text << "\"";
  }
}

TEST(RegexConstraint, EmptyPatternMustEndAtOnce) {
  auto compiled = compile_or_die(ConstraintSpec::Kind::kRegex, "", build_token_trie(synthetic_vocabulary()));
  ConstraintMatcher matcher(compiled);
  EXPECT_TRUE(matcher.is_accepting());
  EXPECT_TRUE(matcher.must_end());
  std::vector<uint32_t> mask(matcher.mask_words());
  matcher.fill_allowed(mask);
  EXPECT_EQ(allowed_tokens(mask, compiled->trie().vocab_size()), std::vector<int32_t>{2});
}

TEST(RegexConstraint, MalformedPatternsAreInvalidArgumentsNamingTheProblem) {
  auto trie = build_token_trie(synthetic_vocabulary());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ab)", "regex: unbalanced ')' at offset 2"},
      {"(ab", "regex: unbalanced '(' at offset 0"},
      {"a(?=b)", "lookaround is not supported at offset 1"},
      {"a(?<!b)", "lookaround is not supported"},
      {"(a)\\1", "backreferences are not supported at offset 3"},
      {"a*?", "lazy quantifiers are not supported at offset 2"},
      {"a**", "nothing to repeat"},
      {"*a", "nothing to repeat at offset 0"},
      {"[a-", "unterminated character class at offset 0"},
      {"[z-a]", "invalid class range"},
      {"a{3,1}", "has max < min"},
      {"a{100000}", "exceeds the limit"},
      {"\\bfoo", "word boundary assertions (\\b) are not supported"},
      {"a^b", "'^' is only supported at the start"},
      {"a$b", "'$' is only supported at the end"},
      {"(?i)abc", "inline flags"},
      {"\\p{L}", "Unicode property escapes are not supported"},
      {"\\q", "unknown escape \\q"},
      {"[]", "empty character class"},
      {"a{", "'{' must start a repetition"},
      {"\xff", "invalid UTF-8 at offset 0"},
      {"\\ud800", "not a Unicode scalar value"},
      {std::string(300, '(') + std::string(300, ')'), "groups nested deeper than 200"},
  };
  for (const auto& [pattern, message] : cases) {
    auto compiled = compile_constraint({ConstraintSpec::Kind::kRegex, pattern}, trie);
    ASSERT_FALSE(compiled.has_value()) << pattern;
    EXPECT_EQ(compiled.status().code(), StatusCode::kInvalidArgument) << pattern;
    EXPECT_NE(compiled.status().message().find(message), std::string::npos)
        << pattern << " gave: " << compiled.status().message();
    EXPECT_EQ(compiled.status().message().rfind("regex: ", 0), 0u) << compiled.status().message();
  }
}

TEST(RegexConstraint, LargeBoundedRepetitionsStayCheap) {
  // Nested bounded repetition is a chain of rules, never a product of copies.
  auto compiled = compile_or_die(ConstraintSpec::Kind::kRegex, "((a{1000}){1000}){1000}b",
                                 build_token_trie(synthetic_vocabulary()));
  ASSERT_NE(compiled, nullptr);
  EXPECT_LT(compiled->grammar().num_positions(), 20000u);
}

}  // namespace
}  // namespace tnl::test
