// GrammarExpr: the expression tree produced by the regex parser, the GBNF
// parser and the JSON-schema compiler; grammar_lowering turns it into the flat
// Grammar the automaton runs on.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "engine/constraints/byte_set.h"
#include "engine/constraints/code_point_set.h"

namespace tnl::constraints {

inline constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();

struct GrammarExpr {
  enum class Kind {
    kEmpty,        // matches the empty string
    kLiteral,      // `text`: these bytes exactly
    kChars,        // one code point of `chars`, UTF-8 encoded
    kBytes,        // one byte of `bytes` (raw byte classes, e.g. UTF-8 pieces)
    kRuleRef,      // the rule named `text`
    kSequence,     // children one after another
    kAlternation,  // one of children
    kRepeat,       // children[0] between min and max times (max may be kUnbounded)
  };
  Kind kind = Kind::kEmpty;
  std::string text;
  CodePointSet chars;
  ByteSet bytes;
  std::vector<GrammarExpr> children;
  uint32_t min = 0;
  uint32_t max = 0;
  int line = 0;  // kRuleRef: source line of the reference, for error messages (0: none)
};

struct RuleDefinition {
  std::string name;
  GrammarExpr body;
  int line = 0;  // 0 when the rule was generated, not written by a user
};

// Rules plus the name of the start rule. Rule order does not matter.
struct GrammarDefinition {
  std::vector<RuleDefinition> rules;
  std::string root = "root";
};

inline GrammarExpr expr_empty() { return {}; }
inline GrammarExpr expr_literal(std::string bytes) {
  GrammarExpr e;
  e.kind = bytes.empty() ? GrammarExpr::Kind::kEmpty : GrammarExpr::Kind::kLiteral;
  e.text = std::move(bytes);
  return e;
}
inline GrammarExpr expr_chars(CodePointSet chars) {
  GrammarExpr e;
  e.kind = GrammarExpr::Kind::kChars;
  e.chars = std::move(chars);
  return e;
}
inline GrammarExpr expr_bytes(ByteSet bytes) {
  GrammarExpr e;
  e.kind = GrammarExpr::Kind::kBytes;
  e.bytes = bytes;
  return e;
}
inline GrammarExpr expr_ref(std::string rule, int line = 0) {
  GrammarExpr e;
  e.kind = GrammarExpr::Kind::kRuleRef;
  e.text = std::move(rule);
  e.line = line;
  return e;
}
inline GrammarExpr expr_sequence(std::vector<GrammarExpr> parts) {
  if (parts.size() == 1) return std::move(parts[0]);
  GrammarExpr e;
  e.kind = parts.empty() ? GrammarExpr::Kind::kEmpty : GrammarExpr::Kind::kSequence;
  e.children = std::move(parts);
  return e;
}
inline GrammarExpr expr_alternation(std::vector<GrammarExpr> options) {
  if (options.size() == 1) return std::move(options[0]);
  GrammarExpr e;
  e.kind = GrammarExpr::Kind::kAlternation;
  e.children = std::move(options);
  return e;
}
inline GrammarExpr expr_repeat(GrammarExpr body, uint32_t min, uint32_t max) {
  GrammarExpr e;
  e.kind = GrammarExpr::Kind::kRepeat;
  e.children.push_back(std::move(body));
  e.min = min;
  e.max = max;
  return e;
}
inline GrammarExpr expr_optional(GrammarExpr body) { return expr_repeat(std::move(body), 0, 1); }
inline GrammarExpr expr_star(GrammarExpr body) { return expr_repeat(std::move(body), 0, kUnbounded); }
inline GrammarExpr expr_plus(GrammarExpr body) { return expr_repeat(std::move(body), 1, kUnbounded); }

}  // namespace tnl::constraints
