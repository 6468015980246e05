// Regex → GrammarExpr, for the `regex` constraint and JSON Schema `pattern`.
//
// The subset (ECMAScript syntax): literals (UTF-8), escapes \d \w \s \D \W \S,
// \n \r \t \f \v \0 \xHH \uHHHH \u{H..} \cX and escaped punctuation; classes
// [a-z0-9_] with ranges, negation and class escapes; `.` (any character but
// line terminators); groups ( ), (?: ), (?<name> ); alternation |; quantifiers
// * + ? {m} {m,} {m,n} (bounds up to limits.max_repeat_bound); `^` only at the
// start and `$` only at the end of a top-level alternative. Refused with an
// error naming the offset: backreferences, lookaround, lazy or possessive
// quantifiers, word boundaries, inline flags, Unicode property escapes.
#pragma once

#include <cstdint>
#include <string_view>

#include "engine/constraints/constraint.h"
#include "engine/constraints/grammar_expr.h"
#include "engine/status.h"

namespace tnl::constraints {

// How matched characters appear in the output: as UTF-8 (a plain regex) or as
// JSON string content (a schema pattern: `"` becomes \" and so on).
struct RegexEncoding {
  GrammarExpr (*char_set)(const CodePointSet& chars);
  GrammarExpr (*single_char)(uint32_t cp);
};
RegexEncoding utf8_regex_encoding();

struct RegexOptions {
  RegexEncoding encoding = utf8_regex_encoding();
  // false: the pattern must match the whole text (anchors optional).
  // true: JSON Schema semantics, the pattern may match anywhere unless anchored.
  bool search = false;
};

Expected<GrammarExpr> parse_regex(std::string_view pattern, const ConstraintLimits& limits,
                                  const RegexOptions& options = {});

}  // namespace tnl::constraints
