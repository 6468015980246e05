// Factoring common literal prefixes out of an alternation.
//
// `"apple" x | "apricot" | "banana"` becomes `"ap" ("ple" x | "ricot") |
// "banana"`: a trie over the options' leading literals. The automaton keeps
// one parse stack per live alternative, so an enum of thousands of values
// would otherwise carry thousands of stacks past its opening quote; factored,
// the live stacks are bounded by the branching at each byte.
#pragma once

#include "engine/constraints/grammar_expr.h"

namespace tnl::constraints {

// An alternation equivalent to `alternation` (a kAlternation) whose options
// starting with a literal share their common prefixes.
GrammarExpr factor_literal_prefixes(const GrammarExpr& alternation);

}  // namespace tnl::constraints
