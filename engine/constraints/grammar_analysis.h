// Static checks and precomputation over a lowered Grammar.
#pragma once

#include <string_view>

#include "engine/constraints/constraint.h"
#include "engine/constraints/grammar.h"
#include "engine/status.h"

namespace tnl::constraints {

// Fills rule_min_bytes and min_bytes_to_end, and refuses grammars the automaton
// cannot run: a rule with no finite expansion ("can never finish") and left
// recursion (a rule reaching itself before consuming a byte in a position
// that needs a return frame, which would push frames forever). Left recursion
// through tail positions only (`a ::= "x"? a` at the end) is harmless and allowed.
// Also fills bottom_only.
Status analyze_grammar(Grammar& grammar, std::string_view error_prefix);

// Fills closure_begin / closure_items / closure_pushes (grammar_closure.cpp).
// Needs analyze_grammar first. Refuses grammars whose closures exceed
// limits.max_closure_items.
Status compute_closures(Grammar& grammar, const ConstraintLimits& limits, std::string_view error_prefix);

}  // namespace tnl::constraints
