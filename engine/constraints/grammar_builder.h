// build_grammar: rule expressions → the flat, analysed Grammar.
//
// Lowering keeps single-element repetition as element flags (`x?`, `x*`), turns
// `x+` into `x x*`, bounded repetition `x{m,n}` into m copies plus a chain of
// nested optional helper rules (deterministic, no blow-up), and a repeated or
// alternated group into a helper rule. Non-ASCII character classes become a
// helper rule over their UTF-8 byte patterns.
#pragma once

#include <string_view>

#include "engine/constraints/constraint.h"
#include "engine/constraints/grammar.h"
#include "engine/constraints/grammar_expr.h"
#include "engine/status.h"

namespace tnl::constraints {

// Errors start with `error_prefix` ("grammar", "regex", "json_schema"): undefined
// or duplicate rules, left recursion, rules that can never finish, size limits.
Expected<Grammar> build_grammar(const GrammarDefinition& definition, const ConstraintLimits& limits,
                                std::string_view error_prefix);

}  // namespace tnl::constraints
