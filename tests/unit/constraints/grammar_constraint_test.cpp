// GBNF grammar constraints: sampled outputs are checked by independent
// matchers written here (a recursive-descent parser for arithmetic, a counter
// for balanced brackets, std::wregex for grammars equivalent to regexes);
// malformed grammars are INVALID_ARGUMENT with the line of the problem.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "tests/unit/constraints/constraint_test_support.h"

namespace tnl::test {
namespace {

// expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ;
// factor := [0-9]+ | '(' expr ')' | '-' factor
class ArithmeticChecker {
 public:
  explicit ArithmeticChecker(const std::string& s) : s_(s) {}
  bool valid() { return expr() && pos_ == s_.size(); }

 private:
  bool expr() {
    if (!term()) return false;
    while (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) {
      ++pos_;
      if (!term()) return false;
    }
    return true;
  }
  bool term() {
    if (!factor()) return false;
    while (pos_ < s_.size() && (s_[pos_] == '*' || s_[pos_] == '/')) {
      ++pos_;
      if (!factor()) return false;
    }
    return true;
  }
  bool factor() {
    if (pos_ < s_.size() && s_[pos_] == '-') {
      ++pos_;
      return factor();
    }
    if (pos_ < s_.size() && s_[pos_] == '(') {
      ++pos_;
      if (!expr() || pos_ >= s_.size() || s_[pos_] != ')') return false;
      ++pos_;
      return true;
    }
    const size_t begin = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > begin;
  }
  const std::string& s_;
  size_t pos_ = 0;
};

bool balanced(const std::string& s) {
  std::string stack;
  for (char c : s) {
    if (c == '(' || c == '[') {
      stack.push_back(c);
    } else if (c == ')' || c == ']') {
      if (stack.empty() || stack.back() != (c == ')' ? '(' : '[')) return false;
      stack.pop_back();
    } else {
      return false;
    }
  }
  return stack.empty();
}

std::function<bool(const std::string&)> regex_checker(const std::string& pattern) {
  return [pattern](const std::string& text) {
    std::wstring p, t;
    if (!utf8_to_wide(pattern, &p) || !utf8_to_wide(text, &t)) return false;
    return std::regex_match(t, std::wregex(p, std::regex::ECMAScript));
  };
}

struct GrammarCase {
  std::string name;
  std::string grammar;
  std::function<bool(const std::string&)> valid;
};

std::vector<GrammarCase> grammar_cases() {
  return {
      {"arithmetic",
       "# arithmetic with precedence, recursion through parentheses\n"
       "root   ::= expr\n"
       "expr   ::= term ((\"+\" | \"-\") term)*\n"
       "term   ::= factor ((\"*\" | \"/\") factor)*\n"
       "factor ::= [0-9]+ | \"(\" expr \")\" | \"-\" factor\n",
       [](const std::string& s) { return ArithmeticChecker(s).valid(); }},
      {"brackets", "root ::= group*\ngroup ::= \"(\" group* \")\" | \"[\" group* \"]\"\n", balanced},
      {"list", "root ::= item (\",\" item){0,3}\nitem ::= [a-z]+\n", regex_checker("[a-z]+(,[a-z]+){0,3}")},
      {"multiline",
       "root ::=\n  \"key=\" value   # a comment\n  | \"flag\"\nvalue ::= [0-9]{2,3}\n  | \"'\" [^'\\n]* \"'\"\n",
       regex_checker("key=([0-9]{2,3}|'[^'\\n]*')|flag")},
      {"unicode", "root ::= \"日本\" [α-ω]+ .?\n", regex_checker("日本[α-ω]+[\\s\\S]?")},
      {"tail-loop", "root ::= \"a\" root | \"b\"\n", regex_checker("a*b")},
      {"nullable-loop", "root ::= (\"a\"?)* \"b\" x*\nx ::= \"y\"?\n", regex_checker("a*by*")},
      {"escapes", "root ::= \"\\x41\\u00e9\\t\" [\\x30-\\x32\\]]+ \"\\\"\"\n", regex_checker("Aé\\t[0-2\\]]+\"")},
  };
}

TEST(GrammarConstraint, EverySampledOutputIsValid) {
  for (bool model : {false, true}) {
    auto trie = build_token_trie(model ? model_vocabulary() : synthetic_vocabulary());
    std::mt19937 rng(model ? 11 : 12);
    for (const GrammarCase& c : grammar_cases()) {
      auto compiled = compile_or_die(ConstraintSpec::Kind::kGrammar, c.grammar, trie);
      ASSERT_NE(compiled, nullptr) << c.name;
      int finished = 0;
      for (int i = 0; i < 15; ++i) {
        SampleOptions options;
        options.eos_bias_after = 6;
        options.finish_after = 40;
        const Sample s = sample_output(compiled, rng, options);
        if (!s.finished) continue;
        ++finished;
        if (std::getenv("TNL_PRINT_SAMPLES")) std::printf("%s => \"%s\"\n", c.name.c_str(), s.text.c_str());
        EXPECT_TRUE(c.valid(s.text)) << c.name << ": \"" << s.text << "\"";
      }
      EXPECT_GE(finished, 12) << c.name;
    }
  }
}

TEST(GrammarConstraint, KnownValidTextIsAcceptedAndInvalidIsNot) {
  auto trie = build_token_trie(synthetic_vocabulary());
  auto cases = grammar_cases();
  auto find = [&](const std::string& name) {
    for (const auto& c : cases) {
      if (c.name == name) return compile_or_die(ConstraintSpec::Kind::kGrammar, c.grammar, trie);
    }
    return std::shared_ptr<const CompiledConstraint>();
  };
  auto arithmetic = find("arithmetic");
  EXPECT_TRUE(accepts_text(arithmetic, "1+(2*-3)/(4-(5))"));
  EXPECT_TRUE(accepts_text(arithmetic, "((((7))))"));
  EXPECT_FALSE(accepts_text(arithmetic, "1+"));
  EXPECT_FALSE(accepts_text(arithmetic, "(1"));
  auto brackets = find("brackets");
  EXPECT_TRUE(accepts_text(brackets, ""));
  EXPECT_TRUE(accepts_text(brackets, "([]())[[]]"));
  EXPECT_FALSE(accepts_text(brackets, "([)]"));
  auto multiline = find("multiline");
  EXPECT_TRUE(accepts_text(multiline, "key=123"));
  EXPECT_TRUE(accepts_text(multiline, "key='日本 x'"));
  EXPECT_TRUE(accepts_text(multiline, "flag"));
  EXPECT_FALSE(accepts_text(multiline, "key=1"));
  auto nullable = find("nullable-loop");
  EXPECT_TRUE(accepts_text(nullable, "aaabyy"));
  EXPECT_TRUE(accepts_text(nullable, "b"));
  EXPECT_FALSE(accepts_text(nullable, "ab a"));
}

TEST(GrammarConstraint, MalformedGrammarsNameTheProblem) {
  auto trie = build_token_trie(synthetic_vocabulary());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"root ::= object\nobject ::= \"{\" members \"}\"\nmembers ::= value*\n",
       "grammar: undefined rule \"value\" (line 3)"},
      {"start ::= \"a\"\n", "no \"root\" rule"},
      {"root ::= \"a\"\nroot ::= \"b\"\n", "rule \"root\" is defined twice (lines 1 and 2)"},
      {"root ::= root \"a\" | \"b\"\n", "rule \"root\" is left-recursive"},
      {"root ::= a\na ::= b \"x\"\nb ::= root \"y\" | \"z\"\n", "is left-recursive"},
      {"root ::= \"x\"? root \"y\" | \"z\"\n", "rule \"root\" is left-recursive"},
      {"root ::= \"a\" root\n", "rule \"root\" can never finish"},
      {"root ::= \"abc\n", "unterminated string literal (line 1"},
      {"root = \"a\"\n", "expected \"::=\" after rule name \"root\" (line 1, column 6)"},
      {"root ::= ( \"a\"\n", "unbalanced '('"},
      {"root ::= \"a\" )\n", "unbalanced ')'"},
      {"root ::= [b-a]\n", "invalid class range"},
      {"root ::= \"\\q\"\n", "unknown escape \\q"},
      {"root ::= \"a\"{5,2}\n", "has max < min"},
      {"root ::= \"a\"{99999}\n", "exceeds the limit"},
      {"", "no rules"},
      {"# only a comment\n", "no rules"},
      {"root ::= []\n", "empty character class"},
      {"root ::= \"a\" ::= \"b\"\n", "\"::=\" without a rule name"},
      {"root ::= " + std::string(300, '(') + "\"a\"" + std::string(300, ')'), "nested deeper than 200"},
      {"root ::= \"a\" @\n", "unexpected '@' (line 1, column 14)"},
  };
  for (const auto& [text, message] : cases) {
    auto compiled = compile_constraint({ConstraintSpec::Kind::kGrammar, text}, trie);
    ASSERT_FALSE(compiled.has_value()) << text;
    EXPECT_EQ(compiled.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(compiled.status().message().find(message), std::string::npos)
        << text << "\ngave: " << compiled.status().message();
    EXPECT_EQ(compiled.status().message().rfind("grammar: ", 0), 0u) << compiled.status().message();
  }
}

TEST(GrammarConstraint, SizeLimitsAreErrors) {
  auto trie = build_token_trie(synthetic_vocabulary());
  ConstraintLimits limits;
  limits.max_grammar_elements = 1000;
  auto big = compile_constraint({ConstraintSpec::Kind::kGrammar, "root ::= \"" + std::string(2000, 'a') + "\""}, trie,
                                limits);
  ASSERT_FALSE(big.has_value());
  EXPECT_NE(big.status().message().find("too large"), std::string::npos) << big.status().message();
  limits = {};
  limits.max_spec_bytes = 10;
  auto long_text = compile_constraint({ConstraintSpec::Kind::kGrammar, "root ::= \"aaaaaaaa\""}, trie, limits);
  ASSERT_FALSE(long_text.has_value());
  EXPECT_NE(long_text.status().message().find("more than the limit of 10"), std::string::npos);
}

TEST(GrammarConstraint, AmbiguousGrammarStaysBounded) {
  // Exponentially many parses of "aaaa..." collapse into few distinct stacks.
  auto trie = build_token_trie(synthetic_vocabulary());
  auto compiled = compile_or_die(ConstraintSpec::Kind::kGrammar,
                                 "root ::= x*\nx ::= \"a\" | \"aa\" | \"a\" \"a\"? | y\ny ::= \"a\"+\n", trie);
  ASSERT_NE(compiled, nullptr);
  EXPECT_TRUE(accepts_text(compiled, std::string(300, 'a')));
}

}  // namespace
}  // namespace tnl::test
