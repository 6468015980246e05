#include "engine/constraints/regex_parser.h"

#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "engine/constraints/utf8_text.h"

namespace tnl::constraints {
namespace {

GrammarExpr utf8_char_set(const CodePointSet& chars) { return expr_chars(chars); }
GrammarExpr utf8_single_char(uint32_t cp) {
  std::string bytes;
  append_utf8(bytes, cp);
  return expr_literal(std::move(bytes));
}

CodePointSet digit_chars() { return CodePointSet::range('0', '9'); }
CodePointSet word_chars() {
  CodePointSet s = CodePointSet::range('a', 'z');
  s.add_range('A', 'Z');
  s.add_range('0', '9');
  s.add('_');
  return s;
}
// ECMAScript WhiteSpace and LineTerminator.
CodePointSet space_chars() {
  CodePointSet s = CodePointSet::range('\t', '\r');
  for (uint32_t cp : {0x20u, 0xA0u, 0x1680u, 0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u, 0xFEFFu}) s.add(cp);
  s.add_range(0x2000, 0x200A);
  return s;
}
CodePointSet dot_chars() {
  CodePointSet line_terminators;
  for (uint32_t cp : {0x0Au, 0x0Du, 0x2028u, 0x2029u}) line_terminators.add(cp);
  return CodePointSet::all().minus(line_terminators);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_quantifier_start(char c) { return c == '*' || c == '+' || c == '?' || c == '{'; }

class RegexParser {
 public:
  RegexParser(std::string_view text, const ConstraintLimits& limits, const RegexOptions& options)
      : text_(text), limits_(limits), options_(options) {}

  Expected<GrammarExpr> parse() {
    std::vector<GrammarExpr> branches;
    for (;;) {
      TNL_ASSIGN_OR_RETURN(GrammarExpr branch, top_level_branch());
      branches.push_back(std::move(branch));
      if (pos_ >= text_.size()) break;
      if (text_[pos_] == ')') return error("unbalanced ')'", pos_);
      ++pos_;  // '|'
    }
    return expr_alternation(std::move(branches));
  }

 private:
  Status error(const std::string& what, size_t offset) const {
    return invalid_argument("regex: " + what + " at offset " + std::to_string(offset));
  }

  GrammarExpr any_text() const { return expr_star(options_.encoding.char_set(CodePointSet::all())); }

  // A top-level alternative: its own `^` / `$` anchors; in search mode an
  // unanchored end may be surrounded by any text.
  Expected<GrammarExpr> top_level_branch() {
    bool anchored_start = false;
    if (pos_ < text_.size() && text_[pos_] == '^') {
      anchored_start = true;
      ++pos_;
    }
    bool anchored_end = false;
    TNL_ASSIGN_OR_RETURN(GrammarExpr body, sequence(0, &anchored_end));
    if (!options_.search) return body;
    std::vector<GrammarExpr> parts;
    if (!anchored_start) parts.push_back(any_text());
    parts.push_back(std::move(body));
    if (!anchored_end) parts.push_back(any_text());
    return expr_sequence(std::move(parts));
  }

  Expected<GrammarExpr> alternation(int depth) {
    std::vector<GrammarExpr> options;
    for (;;) {
      TNL_ASSIGN_OR_RETURN(GrammarExpr option, sequence(depth, nullptr));
      options.push_back(std::move(option));
      if (pos_ < text_.size() && text_[pos_] == '|') {
        ++pos_;
        continue;
      }
      return expr_alternation(std::move(options));
    }
  }

  // Items up to '|', ')' or the end. `anchored_end` is non-null only at the top
  // level, where a final '$' is allowed.
  Expected<GrammarExpr> sequence(int depth, bool* anchored_end) {
    std::vector<GrammarExpr> items;
    while (pos_ < text_.size() && text_[pos_] != '|' && text_[pos_] != ')') {
      const size_t start = pos_;
      const char c = text_[pos_];
      if (c == '^') return error("'^' is only supported at the start of the pattern", start);
      if (c == '$') {
        const bool at_end = pos_ + 1 == text_.size() || text_[pos_ + 1] == '|';
        if (anchored_end == nullptr || !at_end) {
          return error("'$' is only supported at the end of the pattern", start);
        }
        *anchored_end = true;
        ++pos_;
        continue;
      }
      if (is_quantifier_start(c) && (c != '{' || looks_like_bound())) return error("nothing to repeat", start);
      TNL_ASSIGN_OR_RETURN(GrammarExpr item, atom(depth));
      TNL_ASSIGN_OR_RETURN(item, quantified(std::move(item)));
      if (item.kind == GrammarExpr::Kind::kLiteral && !items.empty() &&
          items.back().kind == GrammarExpr::Kind::kLiteral) {
        items.back().text += item.text;
      } else {
        items.push_back(std::move(item));
      }
    }
    return expr_sequence(std::move(items));
  }

  bool looks_like_bound() const {
    size_t p = pos_ + 1;
    return p < text_.size() && text_[p] >= '0' && text_[p] <= '9';
  }

  Expected<uint32_t> number(size_t offset) {
    uint64_t value = 0;
    const size_t begin = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value = value * 10 + (text_[pos_] - '0');
      if (value > limits_.max_repeat_bound) {
        return error("repetition bound exceeds the limit " + std::to_string(limits_.max_repeat_bound), offset);
      }
      ++pos_;
    }
    if (pos_ == begin) return error("'{' must start a repetition like {2} or {2,5} (escape a literal '{' as \\{)", offset);
    return static_cast<uint32_t>(value);
  }

  Expected<GrammarExpr> quantified(GrammarExpr item) {
    if (pos_ >= text_.size() || !is_quantifier_start(text_[pos_])) return item;
    const size_t start = pos_;
    uint32_t min = 0, max = kUnbounded;
    switch (text_[pos_++]) {
      case '*': break;
      case '+': min = 1; break;
      case '?': max = 1; break;
      default: {  // '{'
        TNL_ASSIGN_OR_RETURN(min, number(start));
        max = min;
        if (pos_ < text_.size() && text_[pos_] == ',') {
          ++pos_;
          if (pos_ < text_.size() && text_[pos_] == '}') {
            max = kUnbounded;
          } else {
            TNL_ASSIGN_OR_RETURN(max, number(start));
          }
        }
        if (pos_ >= text_.size() || text_[pos_] != '}') {
          return error("'{' must start a repetition like {2} or {2,5} (escape a literal '{' as \\{)", start);
        }
        ++pos_;
        if (max < min) return error("repetition {" + std::to_string(min) + "," + std::to_string(max) + "} has max < min", start);
      }
    }
    if (pos_ < text_.size() && text_[pos_] == '?') return error("lazy quantifiers are not supported", pos_);
    if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '*' || (text_[pos_] == '{' && looks_like_bound()))) {
      return error("nothing to repeat (a quantifier cannot follow a quantifier)", pos_);
    }
    return expr_repeat(std::move(item), min, max);
  }

  Expected<GrammarExpr> atom(int depth) {
    const size_t start = pos_;
    const char c = text_[pos_];
    if (c == '(') return group(depth);
    if (c == '[') {
      TNL_ASSIGN_OR_RETURN(CodePointSet set, char_class());
      return options_.encoding.char_set(set);
    }
    if (c == '.') {
      ++pos_;
      return options_.encoding.char_set(dot_chars());
    }
    if (c == '\\') {
      CodePointSet set;
      TNL_ASSIGN_OR_RETURN(bool is_set, escape(false, &set));
      if (is_set) return options_.encoding.char_set(set);
      return options_.encoding.single_char(set.ranges()[0].first);
    }
    if (c == '{') return error("'{' must start a repetition like {2} or {2,5} (escape a literal '{' as \\{)", start);
    const auto cp = decode_utf8(text_, &pos_);
    if (!cp) return error("invalid UTF-8", start);
    return options_.encoding.single_char(*cp);
  }

  Expected<GrammarExpr> group(int depth) {
    const size_t start = pos_;
    if (depth + 1 > limits_.max_syntax_nesting) {
      return error("groups nested deeper than " + std::to_string(limits_.max_syntax_nesting), start);
    }
    ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '?') {
      const std::string_view rest = text_.substr(pos_);
      if (rest.starts_with("?:")) {
        pos_ += 2;
      } else if (rest.starts_with("?=") || rest.starts_with("?!") || rest.starts_with("?<=") ||
                 rest.starts_with("?<!")) {
        return error("lookaround is not supported", start);
      } else if (rest.starts_with("?<")) {
        const size_t close = text_.find('>', pos_);
        if (close == std::string_view::npos) return error("unterminated group name", start);
        pos_ = close + 1;
      } else {
        return error("inline flags and other (? groups are not supported", start);
      }
    }
    TNL_ASSIGN_OR_RETURN(GrammarExpr inner, alternation(depth + 1));
    if (pos_ >= text_.size() || text_[pos_] != ')') return error("unbalanced '('", start);
    ++pos_;
    return inner;
  }

  Expected<CodePointSet> char_class() {
    const size_t start = pos_;
    ++pos_;
    bool negate = false;
    if (pos_ < text_.size() && text_[pos_] == '^') {
      negate = true;
      ++pos_;
    }
    CodePointSet set;
    for (;;) {
      if (pos_ >= text_.size()) return error("unterminated character class", start);
      if (text_[pos_] == ']') {
        ++pos_;
        break;
      }
      const size_t item_start = pos_;
      CodePointSet lo_set;
      TNL_ASSIGN_OR_RETURN(bool lo_is_set, class_atom(&lo_set));
      const bool range = pos_ + 1 < text_.size() && text_[pos_] == '-' && text_[pos_ + 1] != ']';
      if (!range) {
        set.add_set(lo_set);
        continue;
      }
      ++pos_;  // '-'
      CodePointSet hi_set;
      TNL_ASSIGN_OR_RETURN(bool hi_is_set, class_atom(&hi_set));
      if (lo_is_set || hi_is_set) return error("a class escape cannot bound a range", item_start);
      const uint32_t lo = lo_set.ranges()[0].first;
      const uint32_t hi = hi_set.ranges()[0].first;
      if (lo > hi) return error("invalid class range (start after end)", item_start);
      set.add_range(lo, hi);
    }
    if (negate) return set.complement();  // [^] matches any character
    if (set.empty()) return error("empty character class matches nothing", start);
    return set;
  }

  // One class member: a character (returns false, *out = {cp}) or a class escape (true).
  Expected<bool> class_atom(CodePointSet* out) {
    const size_t start = pos_;
    if (text_[pos_] == '\\') return escape(true, out);
    const auto cp = decode_utf8(text_, &pos_);
    if (!cp) return error("invalid UTF-8", start);
    *out = CodePointSet::single(*cp);
    return false;
  }

  Expected<uint32_t> hex_digits(size_t count, size_t offset) {
    if (pos_ + count > text_.size()) return error("incomplete hex escape", offset);
    uint32_t value = 0;
    for (size_t i = 0; i < count; ++i) {
      const int h = hex_value(text_[pos_ + i]);
      if (h < 0) return error("invalid hex escape", offset);
      value = value * 16 + h;
    }
    pos_ += count;
    return value;
  }

  // After '\': a character class escape (returns true) or one character.
  Expected<bool> escape(bool in_class, CodePointSet* out) {
    const size_t start = pos_;
    ++pos_;
    if (pos_ >= text_.size()) return error("pattern ends with '\\'", start);
    const char c = text_[pos_++];
    auto single = [&](uint32_t cp) {
      *out = CodePointSet::single(cp);
      return false;
    };
    switch (c) {
      case 'd': *out = digit_chars(); return true;
      case 'D': *out = digit_chars().complement(); return true;
      case 'w': *out = word_chars(); return true;
      case 'W': *out = word_chars().complement(); return true;
      case 's': *out = space_chars(); return true;
      case 'S': *out = space_chars().complement(); return true;
      case 'n': return single('\n');
      case 'r': return single('\r');
      case 't': return single('\t');
      case 'f': return single('\f');
      case 'v': return single('\v');
      case 'b':
        if (in_class) return single('\b');
        return error("word boundary assertions (\\b) are not supported", start);
      case 'B': return error("word boundary assertions (\\B) are not supported", start);
      case '0':
        if (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
          return error("octal escapes are not supported", start);
        }
        return single(0);
      case 'c': {
        if (pos_ >= text_.size() || !std::isalpha(static_cast<unsigned char>(text_[pos_]))) {
          return error("\\c must be followed by a letter", start);
        }
        return single(static_cast<uint32_t>(text_[pos_++]) % 32);
      }
      case 'x': {
        TNL_ASSIGN_OR_RETURN(uint32_t v, hex_digits(2, start));
        return single(v);
      }
      case 'u': return unicode_escape(start, out);
      case 'k': return error("backreferences are not supported", start);
      case 'p':
      case 'P': return error("Unicode property escapes are not supported", start);
      default: break;
    }
    if (c >= '1' && c <= '9') return error("backreferences are not supported", start);
    if (std::isalnum(static_cast<unsigned char>(c))) {
      return error(std::string("unknown escape \\") + c, start);
    }
    if (static_cast<unsigned char>(c) >= 0x80) {
      --pos_;
      const auto cp = decode_utf8(text_, &pos_);
      if (!cp) return error("invalid UTF-8", start);
      return single(*cp);
    }
    return single(static_cast<uint8_t>(c));  // escaped punctuation or space
  }

  Expected<bool> unicode_escape(size_t start, CodePointSet* out) {
    uint32_t cp;
    if (pos_ < text_.size() && text_[pos_] == '{') {
      const size_t close = text_.find('}', pos_);
      if (close == std::string_view::npos || close == pos_ + 1 || close - pos_ - 1 > 6) {
        return error("invalid \\u{...} escape", start);
      }
      ++pos_;
      TNL_ASSIGN_OR_RETURN(cp, hex_digits(close - pos_, start));
      ++pos_;  // '}'
    } else {
      TNL_ASSIGN_OR_RETURN(cp, hex_digits(4, start));
      if (cp >= 0xD800 && cp <= 0xDBFF && text_.substr(pos_).starts_with("\\u")) {
        const size_t save = pos_;
        pos_ += 2;
        auto low = hex_digits(4, start);
        if (low.has_value() && *low >= 0xDC00 && *low <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (*low - 0xDC00);
        } else {
          pos_ = save;
        }
      }
    }
    if (cp > kMaxCodePoint || (cp >= kSurrogateFirst && cp <= kSurrogateLast)) {
      return error("escape is not a Unicode scalar value (lone surrogate or too large)", start);
    }
    *out = CodePointSet::single(cp);
    return false;
  }

  std::string_view text_;
  size_t pos_ = 0;
  const ConstraintLimits& limits_;
  const RegexOptions& options_;
};

}  // namespace

RegexEncoding utf8_regex_encoding() { return {&utf8_char_set, &utf8_single_char}; }

Expected<GrammarExpr> parse_regex(std::string_view pattern, const ConstraintLimits& limits,
                                  const RegexOptions& options) {
  return RegexParser(pattern, limits, options).parse();
}

}  // namespace tnl::constraints
