// The JSON building blocks shared by `json_object` and the schema compiler.
//
// Whitespace policy (docs/constraints.md): at most one optional space after
// `{`, `[`, `,`, `:` and before `}`, `]`, plus one optional leading space
// before the top-level value; no newlines or tabs. That keeps the output
// compact and means a model can never loop on whitespace.
//
// Strings are valid UTF-8 with JSON escapes (\uXXXX without lone surrogates);
// raw control characters are never produced.
#pragma once

#include <cstdint>

#include "engine/constraints/code_point_set.h"
#include "engine/constraints/grammar_expr.h"
#include "engine/constraints/regex_parser.h"

namespace tnl::constraints {

// Rule names the building blocks define.
inline constexpr const char* kJsonValueRule = "json-value";      // any JSON value
inline constexpr const char* kJsonObjectRule = "json-object";    // any JSON object
inline constexpr const char* kJsonStringRule = "json-string";    // any JSON string, quotes included
inline constexpr const char* kJsonNumberRule = "json-number";
inline constexpr const char* kJsonIntegerRule = "json-integer";

// Adds the json-* rules above (and their helpers) to `definition`.
void add_json_rules(GrammarDefinition& definition);
// One character of string content (plain, escaped or UTF-8), as an expression
// so that a bounded repetition of it copies it into each level.
GrammarExpr json_char();
// The optional single space of the whitespace policy.
GrammarExpr json_space();
// One character of `chars` as it appears inside a JSON string: escaped when it
// must be (`"`, `\`, control characters), raw UTF-8 otherwise.
GrammarExpr json_string_chars(const CodePointSet& chars);
GrammarExpr json_string_char(uint32_t cp);
// Regex encoding for schema `pattern`s: characters as JSON string content.
RegexEncoding json_string_regex_encoding();
// The `json_object` constraint: root ::= " "? json-object.
GrammarDefinition json_object_grammar();

}  // namespace tnl::constraints
