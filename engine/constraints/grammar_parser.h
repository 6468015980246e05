// GBNF (llama.cpp-style) grammar text → GrammarDefinition.
//
//   root   ::= object                      # comments run to the end of the line
//   object ::= "{" ws (pair ("," ws pair)*)? "}"
//   pair   ::= [a-z]+ ":" ws [0-9]+
//   ws     ::= [ \t\n]*
//
// Rules are `name ::= alternatives`; a rule continues over lines until the
// next `name ::=`. Terms: "literal" (escapes \n \r \t \\ \" \xHH \uHHHH
// \UHHHHHHHH), [character class] with ranges and ^ negation, `.` (any
// character), rule names, ( groups ), alternation |, postfix * + ? {m} {m,}
// {m,n}. Names are letters, digits, '-' and '_'. The start rule is `root`.
// Left recursion is refused (rewrite `a ::= a "x" | "y"` as `a ::= "y" "x"*`).
#pragma once

#include <string_view>

#include "engine/constraints/constraint.h"
#include "engine/constraints/grammar_expr.h"
#include "engine/status.h"

namespace tnl::constraints {

Expected<GrammarDefinition> parse_grammar(std::string_view text, const ConstraintLimits& limits);

}  // namespace tnl::constraints
