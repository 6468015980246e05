#include "engine/constraints/grammar_parser.h"

#include <string>
#include <utility>
#include <vector>

#include "engine/constraints/utf8_text.h"

namespace tnl::constraints {
namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class GbnfParser {
 public:
  GbnfParser(std::string_view text, const ConstraintLimits& limits) : text_(text), limits_(limits) {}

  Expected<GrammarDefinition> parse() {
    GrammarDefinition definition;
    skip_space();
    while (pos_ < text_.size()) {
      TNL_ASSIGN_OR_RETURN(RuleDefinition rule, parse_rule());
      definition.rules.push_back(std::move(rule));
      skip_space();
    }
    if (definition.rules.empty()) return invalid_argument("grammar: no rules (expected `root ::= ...`)");
    return definition;
  }

 private:
  Status error(const std::string& what) const {
    return invalid_argument("grammar: " + what + " (line " + std::to_string(line_) + ", column " +
                            std::to_string(pos_ - line_start_ + 1) + ")");
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool at_end() const { return pos_ >= text_.size(); }

  // Spaces, tabs, newlines and # comments.
  void skip_space() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else if (c == '\n') {
        ++pos_;
        ++line_;
        line_start_ = pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else {
        return;
      }
    }
  }

  std::string parse_name() {
    const size_t begin = pos_;
    while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
    return std::string(text_.substr(begin, pos_ - begin));
  }

  // Whether `name ::=` starts here (the current rule ends before it).
  bool at_rule_start() {
    const size_t save_pos = pos_, save_line = line_, save_line_start = line_start_;
    const bool named = !parse_name().empty();
    skip_space();
    const bool result = named && text_.substr(pos_).starts_with("::=");
    pos_ = save_pos;
    line_ = save_line;
    line_start_ = save_line_start;
    return result;
  }

  Expected<RuleDefinition> parse_rule() {
    RuleDefinition rule;
    rule.line = line_;
    rule.name = parse_name();
    if (rule.name.empty()) return error(std::string("expected a rule name, found '") + peek() + "'");
    skip_space();
    if (!text_.substr(pos_).starts_with("::=")) return error("expected \"::=\" after rule name \"" + rule.name + "\"");
    pos_ += 3;
    TNL_ASSIGN_OR_RETURN(rule.body, alternatives(0));
    if (peek() == ')') return error("unbalanced ')'");
    return rule;
  }

  Expected<GrammarExpr> alternatives(int depth) {
    std::vector<GrammarExpr> options;
    for (;;) {
      TNL_ASSIGN_OR_RETURN(GrammarExpr option, sequence(depth));
      options.push_back(std::move(option));
      skip_space();
      if (peek() != '|') return expr_alternation(std::move(options));
      ++pos_;
    }
  }

  Expected<GrammarExpr> sequence(int depth) {
    std::vector<GrammarExpr> items;
    for (;;) {
      skip_space();
      if (at_end() || peek() == '|' || peek() == ')') break;
      if (is_name_char(peek()) && at_rule_start()) break;
      TNL_ASSIGN_OR_RETURN(GrammarExpr item, primary(depth));
      for (;;) {
        // Postfix operators bind to the term right before them (no space needed).
        const char c = peek();
        if (c == '*') {
          ++pos_;
          item = expr_star(std::move(item));
        } else if (c == '+') {
          ++pos_;
          item = expr_plus(std::move(item));
        } else if (c == '?') {
          ++pos_;
          item = expr_optional(std::move(item));
        } else if (c == '{') {
          TNL_ASSIGN_OR_RETURN(item, bounded_repeat(std::move(item)));
        } else {
          break;
        }
      }
      items.push_back(std::move(item));
    }
    return expr_sequence(std::move(items));
  }

  void skip_inline_space() {
    while (peek() == ' ' || peek() == '\t') ++pos_;
  }

  Expected<uint32_t> bound() {
    skip_inline_space();
    if (peek() < '0' || peek() > '9') return error("expected a number in {m,n}");
    uint64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      value = value * 10 + (peek() - '0');
      if (value > limits_.max_repeat_bound) {
        return error("repetition bound exceeds the limit " + std::to_string(limits_.max_repeat_bound));
      }
      ++pos_;
    }
    skip_inline_space();
    return static_cast<uint32_t>(value);
  }

  Expected<GrammarExpr> bounded_repeat(GrammarExpr item) {
    ++pos_;  // '{'
    TNL_ASSIGN_OR_RETURN(uint32_t min, bound());
    uint32_t max = min;
    if (peek() == ',') {
      ++pos_;
      skip_inline_space();
      if (peek() == '}') {
        max = kUnbounded;
      } else {
        TNL_ASSIGN_OR_RETURN(max, bound());
      }
    }
    if (peek() != '}') return error("expected '}' to close {m,n}");
    ++pos_;
    if (max < min) return error("repetition {" + std::to_string(min) + "," + std::to_string(max) + "} has max < min");
    return expr_repeat(std::move(item), min, max);
  }

  Expected<GrammarExpr> primary(int depth) {
    const char c = peek();
    if (c == '"') return literal();
    if (c == '[') return char_class();
    if (c == '.') {
      ++pos_;
      return expr_chars(CodePointSet::all());
    }
    if (c == '(') {
      if (depth + 1 > limits_.max_syntax_nesting) {
        return error("parentheses nested deeper than " + std::to_string(limits_.max_syntax_nesting));
      }
      ++pos_;
      TNL_ASSIGN_OR_RETURN(GrammarExpr inner, alternatives(depth + 1));
      if (peek() != ')') return error("unbalanced '('");
      ++pos_;
      return inner;
    }
    if (is_name_char(c)) {
      const int line = line_;
      return expr_ref(parse_name(), line);
    }
    if (c == ':' && text_.substr(pos_).starts_with("::=")) return error("\"::=\" without a rule name before it");
    return error(std::string("unexpected '") + c + "'");
  }

  // One character of a literal or class: an escape or a UTF-8 character.
  Expected<uint32_t> character(char terminator) {
    if (peek() == '\n' || at_end()) {
      return error(terminator == '"' ? "unterminated string literal" : "unterminated character class");
    }
    if (peek() != '\\') {
      const auto cp = decode_utf8(text_, &pos_);
      if (!cp) return error("invalid UTF-8");
      return *cp;
    }
    ++pos_;
    const char c = peek();
    ++pos_;
    auto hex = [&](int digits) -> Expected<uint32_t> {
      uint32_t value = 0;
      for (int i = 0; i < digits; ++i) {
        const int h = hex_value(peek());
        if (h < 0) return error("invalid hex escape");
        value = value * 16 + h;
        ++pos_;
      }
      if (value > kMaxCodePoint || (value >= kSurrogateFirst && value <= kSurrogateLast)) {
        return error("escape is not a Unicode scalar value");
      }
      return value;
    };
    switch (c) {
      case 'n': return uint32_t{'\n'};
      case 'r': return uint32_t{'\r'};
      case 't': return uint32_t{'\t'};
      case '0': return uint32_t{0};
      case 'x': return hex(2);
      case 'u': return hex(4);
      case 'U': return hex(8);
      case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/':
        return static_cast<uint32_t>(c);
      default: break;
    }
    --pos_;
    return error(std::string("unknown escape \\") + (c == '\0' ? std::string("") : std::string(1, c)));
  }

  Expected<GrammarExpr> literal() {
    ++pos_;  // '"'
    std::string bytes;
    while (peek() != '"' || at_end()) {
      TNL_ASSIGN_OR_RETURN(uint32_t cp, character('"'));
      append_utf8(bytes, cp);
    }
    ++pos_;
    return expr_literal(std::move(bytes));
  }

  Expected<GrammarExpr> char_class() {
    ++pos_;  // '['
    bool negate = false;
    if (peek() == '^') {
      negate = true;
      ++pos_;
    }
    CodePointSet set;
    while (peek() != ']' || at_end()) {
      TNL_ASSIGN_OR_RETURN(uint32_t lo, character(']'));
      uint32_t hi = lo;
      if (peek() == '-' && pos_ + 1 < text_.size() && text_[pos_ + 1] != ']') {
        ++pos_;
        TNL_ASSIGN_OR_RETURN(hi, character(']'));
        if (hi < lo) return error("invalid class range (start after end)");
      }
      set.add_range(lo, hi);
    }
    ++pos_;
    if (negate) set = set.complement();
    if (set.empty()) return error("empty character class matches nothing");
    return expr_chars(std::move(set));
  }

  std::string_view text_;
  const ConstraintLimits& limits_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;
};

}  // namespace

Expected<GrammarDefinition> parse_grammar(std::string_view text, const ConstraintLimits& limits) {
  return GbnfParser(text, limits).parse();
}

}  // namespace tnl::constraints
