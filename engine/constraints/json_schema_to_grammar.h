// JSON Schema (the supported subset, docs/constraints.md) → grammar rules.
#pragma once

#include <string_view>

#include "engine/constraints/constraint.h"
#include "engine/constraints/grammar_expr.h"
#include "engine/status.h"

namespace tnl::constraints {

// Errors are INVALID_ARGUMENT starting "json_schema: ", naming the keyword and
// the JSON pointer of the schema, e.g.
//   json_schema: unsupported keyword "patternProperties" at /properties/a
Expected<GrammarDefinition> json_schema_to_grammar(std::string_view schema_text, const ConstraintLimits& limits);

}  // namespace tnl::constraints
