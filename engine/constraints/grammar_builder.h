// build_grammar: rule expressions → the flat, analysed Grammar.
//
// Lowering is continuation-passing: a part that needs a helper rule (an
// alternation, a repeated group, a non-ASCII character class) gets a helper
// whose every alternative ends by tail-calling what follows the part. So a
// rule only ends where the user's rule ends, and the token tables of positions
// inside groups see the text that follows them instead of "end of rule"
// (grammar.h, token_mask_table.h). Repetition of one element stays a flag
// (`x?`, `x*`); other repetition becomes a chain of levels, level j meaning
// "j repetitions done", each tail-calling the next (one level loops for an
// unbounded maximum). Levels copy the repeated part; past a size budget the
// part becomes one helper rule called from each level instead.
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
