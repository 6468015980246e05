#include "engine/constraints/json_grammar_rules.h"

#include <string>
#include <utility>
#include <vector>

namespace tnl::constraints {
namespace {

ByteSet plain_string_bytes() {
  ByteSet s = ByteSet::range(0x20, 0x7F);
  s.remove('"');
  s.remove('\\');
  return s;
}

ByteSet hex_bytes() {
  ByteSet s = ByteSet::range('0', '9');
  s.add_range('a', 'f');
  s.add_range('A', 'F');
  return s;
}

// The escapes of one character: \" \\ \/ \b \f \n \r \t and \uXXXX, where a
// \uXXXX is a non-surrogate or a high+low surrogate pair (a lone surrogate
// would make the string invalid).
std::vector<std::vector<GrammarExpr>> escape_sequences() {
  ByteSet simple;
  for (char c : std::string("\"\\/bfnrt")) simple.add(static_cast<uint8_t>(c));
  ByteSet non_surrogate_lead = ByteSet::range('0', '9');
  non_surrogate_lead.add_range('a', 'c');
  non_surrogate_lead.add_range('A', 'C');
  non_surrogate_lead.add_range('e', 'f');
  non_surrogate_lead.add_range('E', 'F');
  ByteSet d;
  d.add('d');
  d.add('D');
  ByteSet high_second = ByteSet::range('8', '9');
  high_second.add_range('a', 'b');
  high_second.add_range('A', 'B');
  ByteSet low_second = ByteSet::range('c', 'f');
  low_second.add_range('C', 'F');
  const GrammarExpr hex = expr_bytes(hex_bytes());
  return {
      {expr_literal("\\"), expr_bytes(simple)},
      {expr_literal("\\u"), expr_bytes(non_surrogate_lead), hex, hex, hex},
      {expr_literal("\\u"), expr_bytes(d), expr_bytes(ByteSet::range('0', '7')), hex, hex},
      {expr_literal("\\u"), expr_bytes(d), expr_bytes(high_second), hex, hex, expr_literal("\\u"), expr_bytes(d),
       expr_bytes(low_second), hex, hex},
  };
}

// The UTF-8 encodings of U+0080..U+10FFFF as byte-class sequences.
std::vector<std::vector<GrammarExpr>> non_ascii_sequences() {
  std::vector<std::vector<GrammarExpr>> out;
  for (const Utf8Sequence& seq : CodePointSet::range(0x80, kMaxCodePoint).utf8_sequences()) {
    std::vector<GrammarExpr> parts;
    for (const auto& [lo, hi] : seq) parts.push_back(expr_bytes(ByteSet::range(lo, hi)));
    out.push_back(std::move(parts));
  }
  return out;
}

std::string escaped(uint32_t cp) {
  switch (cp) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: break;
  }
  static const char* kHex = "0123456789abcdef";
  return std::string("\\u00") + kHex[cp >> 4] + kHex[cp & 15];
}

CodePointSet needs_escape() {
  CodePointSet s = CodePointSet::range(0, 0x1F);
  s.add('"');
  s.add('\\');
  return s;
}

GrammarExpr digits(uint32_t min, uint32_t max) { return expr_repeat(expr_bytes(ByteSet::range('0', '9')), min, max); }

}  // namespace

GrammarExpr json_char() {
  std::vector<GrammarExpr> options;
  options.push_back(expr_bytes(plain_string_bytes()));
  for (auto seq : escape_sequences()) options.push_back(expr_sequence(std::move(seq)));
  for (auto seq : non_ascii_sequences()) options.push_back(expr_sequence(std::move(seq)));
  return expr_alternation(std::move(options));
}

GrammarExpr json_space() { return expr_optional(expr_literal(" ")); }

GrammarExpr json_string_char(uint32_t cp) {
  if (needs_escape().contains(cp)) return expr_literal(escaped(cp));
  std::string bytes;
  append_utf8(bytes, cp);
  return expr_literal(std::move(bytes));
}

GrammarExpr json_string_chars(const CodePointSet& chars) {
  std::vector<GrammarExpr> options;
  const CodePointSet raw = chars.minus(needs_escape());
  if (!raw.empty()) options.push_back(expr_chars(raw));
  for (const auto& [lo, hi] : chars.ranges()) {
    for (uint32_t cp = lo; cp <= hi && cp <= 0x5C; ++cp) {
      if (needs_escape().contains(cp)) options.push_back(expr_literal(escaped(cp)));
    }
  }
  return expr_alternation(std::move(options));
}

RegexEncoding json_string_regex_encoding() { return {&json_string_chars, &json_string_char}; }

void add_json_rules(GrammarDefinition& def) {
  // json-string ::= "\"" body ;  body ::= plain* ( "\"" | escape body | utf8 body )
  // The body loops by tail calls, so a long string never grows the stack.
  {
    std::vector<GrammarExpr> next;
    next.push_back(expr_literal("\""));
    for (auto seq : escape_sequences()) {
      seq.push_back(expr_ref("json-string-body"));
      next.push_back(expr_sequence(std::move(seq)));
    }
    for (auto seq : non_ascii_sequences()) {
      seq.push_back(expr_ref("json-string-body"));
      next.push_back(expr_sequence(std::move(seq)));
    }
    def.rules.push_back({"json-string-body",
                         expr_sequence({expr_star(expr_bytes(plain_string_bytes())), expr_alternation(std::move(next))})});
    def.rules.push_back({kJsonStringRule, expr_sequence({expr_literal("\""), expr_ref("json-string-body")})});
  }
  // Numbers: -?(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?([eE][+-]?[0-9]{1,2})?
  // Bounded so that every number fits an int64 or a finite double (parsers
  // like nlohmann::json reject 1e999 and turn 20-digit integers into floats),
  // and so that a model cannot emit digits forever.
  {
    ByteSet sign;
    sign.add('+');
    sign.add('-');
    ByteSet e;
    e.add('e');
    e.add('E');
    def.rules.push_back({"json-int-part", expr_alternation({expr_literal("0"),
                                                            expr_sequence({expr_bytes(ByteSet::range('1', '9')),
                                                                           digits(0, 17)})})});
    def.rules.push_back({kJsonIntegerRule, expr_sequence({expr_optional(expr_literal("-")), expr_ref("json-int-part")})});
    def.rules.push_back(
        {kJsonNumberRule,
         expr_sequence({expr_optional(expr_literal("-")), expr_ref("json-int-part"),
                        expr_optional(expr_sequence({expr_literal("."), digits(1, 18)})),
                        expr_optional(expr_sequence({expr_bytes(e), expr_optional(expr_bytes(sign)), digits(1, 2)}))})});
  }
  // Any value, object, array.
  def.rules.push_back({kJsonValueRule, expr_alternation({expr_ref(kJsonObjectRule), expr_ref("json-array"),
                                                         expr_ref(kJsonStringRule), expr_ref(kJsonNumberRule),
                                                         expr_literal("true"), expr_literal("false"),
                                                         expr_literal("null")})});
  def.rules.push_back({"json-member", expr_sequence({expr_ref(kJsonStringRule), expr_literal(":"), json_space(),
                                                     expr_ref(kJsonValueRule)})});
  auto list_of = [](const char* item) {
    return expr_sequence({expr_ref(item), expr_star(expr_sequence({expr_literal(","), json_space(), expr_ref(item)})),
                          json_space()});
  };
  def.rules.push_back({kJsonObjectRule, expr_sequence({expr_literal("{"), json_space(),
                                                       expr_optional(list_of("json-member")), expr_literal("}")})});
  def.rules.push_back({"json-array", expr_sequence({expr_literal("["), json_space(),
                                                    expr_optional(list_of(kJsonValueRule)), expr_literal("]")})});
}

GrammarDefinition json_object_grammar() {
  GrammarDefinition def;
  add_json_rules(def);
  def.rules.push_back({"root", expr_sequence({json_space(), expr_ref(kJsonObjectRule)})});
  return def;
}

}  // namespace tnl::constraints
