// JsonSchemaCompiler: walks a schema document and emits one grammar rule per
// object/array shape, $ref target and property value. Split over
// json_schema_to_grammar.cpp (dispatch, refs, enums, keyword checks) and
// json_schema_shapes.cpp (objects, arrays, strings).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/constraints/constraint.h"
#include "engine/constraints/grammar_expr.h"
#include "engine/status.h"

namespace tnl::constraints {

using SchemaJson = nlohmann::ordered_json;  // ordered: properties are emitted in schema order

class JsonSchemaCompiler {
 public:
  JsonSchemaCompiler(const SchemaJson& root, const ConstraintLimits& limits) : root_(root), limits_(limits) {}
  Expected<GrammarDefinition> compile();

 private:
  // json_schema_to_grammar.cpp
  Expected<GrammarExpr> schema_value(const SchemaJson& schema, const std::string& path, int depth);
  Expected<GrammarExpr> typed_value(const SchemaJson& schema, const std::string& type, const std::string& path,
                                    int depth);
  Expected<GrammarExpr> ref_value(const SchemaJson& schema, const std::string& path);
  Expected<GrammarExpr> enum_value(const SchemaJson& schema, const std::string& path);
  Expected<std::vector<std::string>> schema_types(const SchemaJson& schema, const std::string& path) const;
  Status check_keywords(const SchemaJson& schema, const std::string& path) const;
  // The first keyword of `schema` that is neither an annotation nor in `allowed`; empty if none.
  static std::string first_other_keyword(const SchemaJson& schema, const std::vector<std::string>& allowed);

  // json_schema_shapes.cpp
  Expected<GrammarExpr> object_value(const SchemaJson& schema, const std::string& path, int depth);
  Expected<GrammarExpr> array_value(const SchemaJson& schema, const std::string& path, int depth);
  Expected<GrammarExpr> string_value(const SchemaJson& schema, const std::string& path);
  // A key for additionalProperties: printable ASCII without escapes, never
  // one of `declared`.
  GrammarExpr extra_key(const std::vector<std::string>& declared);
  Expected<uint32_t> count_keyword(const SchemaJson& schema, const char* keyword, const std::string& path) const;

  // Adds `name ::= body` under a fresh name starting with `hint`; returns the name.
  std::string add_rule(const std::string& hint, GrammarExpr body);
  // A rule reference for `value`, adding a rule unless it already is one.
  GrammarExpr as_rule(const std::string& hint, GrammarExpr value);
  static Status error(const std::string& message) { return invalid_argument("json_schema: " + message); }
  static std::string where(const std::string& path) { return path.empty() ? "/" : path; }

  const SchemaJson& root_;
  const ConstraintLimits& limits_;
  GrammarDefinition definition_;
  std::map<std::string, std::string> ref_rules_;                 // JSON pointer → rule name
  std::vector<std::pair<std::string, std::string>> pending_refs_;  // (pointer, rule) still to compile
  int rule_counter_ = 0;
  bool has_key_tail_rule_ = false;
};

// "/" and "~" escaped for a JSON pointer segment.
std::string json_pointer_segment(const std::string& key);

}  // namespace tnl::constraints
