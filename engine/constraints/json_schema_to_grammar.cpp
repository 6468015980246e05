#include "engine/constraints/json_schema_to_grammar.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "engine/constraints/json_grammar_rules.h"
#include "engine/constraints/json_schema_compiler.h"

namespace tnl::constraints {
namespace {

// Keywords that do not constrain the output: ignored wherever they appear.
const std::set<std::string>& annotation_keywords() {
  static const std::set<std::string> k = {"title", "description", "$schema", "$id", "$comment", "default",
                                          "examples", "deprecated", "readOnly", "writeOnly", "contentEncoding",
                                          "contentMediaType"};
  return k;
}

const std::set<std::string>& supported_keywords() {
  static const std::set<std::string> k = {
      "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems",
      "enum", "const", "anyOf", "oneOf", "$ref", "$defs", "definitions", "minLength", "maxLength", "pattern",
      "format", "uniqueItems"};
  return k;
}

const std::vector<std::string> kObjectKeywords = {"properties", "required", "additionalProperties"};
const std::vector<std::string> kArrayKeywords = {"items", "prefixItems", "minItems", "maxItems", "uniqueItems"};
const std::vector<std::string> kStringKeywords = {"minLength", "maxLength", "pattern", "format"};
const std::vector<std::string> kTypeNames = {"object", "array", "string", "number", "integer", "boolean", "null"};

bool has_any(const SchemaJson& schema, const std::vector<std::string>& keys) {
  return std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return schema.contains(k); });
}

// Nesting depth of a JSON value, without recursion (nlohmann's dump recurses).
size_t value_depth(const SchemaJson& value) {
  size_t deepest = 0;
  std::vector<std::pair<const SchemaJson*, size_t>> stack = {{&value, 1}};
  while (!stack.empty()) {
    auto [v, d] = stack.back();
    stack.pop_back();
    deepest = std::max(deepest, d);
    if (v->is_structured()) {
      for (const auto& child : *v) stack.push_back({&child, d + 1});
    }
  }
  return deepest;
}

bool value_has_type(const SchemaJson& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    if (v.is_number_integer()) return true;
    if (!v.is_number_float()) return false;
    const double d = v.get<double>();
    return std::isfinite(d) && std::floor(d) == d;
  }
  if (type == "boolean") return v.is_boolean();
  return v.is_null();
}

// Resolves a JSON pointer ("" or "/a/b") in `root`; nullptr if it does not.
const SchemaJson* resolve_pointer(const SchemaJson& root, const std::string& pointer) {
  const SchemaJson* node = &root;
  size_t pos = 0;
  while (pos < pointer.size()) {
    if (pointer[pos] != '/') return nullptr;
    const size_t end = std::min(pointer.find('/', pos + 1), pointer.size());
    std::string segment;
    for (size_t i = pos + 1; i < end; ++i) {
      if (pointer[i] == '~' && i + 1 < end && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
        segment.push_back(pointer[i + 1] == '0' ? '~' : '/');
        ++i;
      } else {
        segment.push_back(pointer[i]);
      }
    }
    if (node->is_object()) {
      auto it = node->find(segment);
      if (it == node->end()) return nullptr;
      node = &*it;
    } else if (node->is_array()) {
      if (segment.empty() || segment.size() > 9 || (segment.size() > 1 && segment[0] == '0') ||
          !std::all_of(segment.begin(), segment.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return nullptr;
      }
      const size_t index = std::stoul(segment);
      if (index >= node->size()) return nullptr;
      node = &(*node)[index];
    } else {
      return nullptr;
    }
    pos = end;
  }
  return node;
}

// Captures nlohmann's parse error message without exceptions.
struct ParseErrorCapture : nlohmann::json_sax<SchemaJson> {
  std::string message;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    message = ex.what();
    const size_t bracket = message.find("] ");
    if (message.starts_with("[json.exception") && bracket != std::string::npos) message = message.substr(bracket + 2);
    return false;
  }
};

}  // namespace

std::string json_pointer_segment(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string JsonSchemaCompiler::add_rule(const std::string& hint, GrammarExpr body) {
  std::string name = hint + "#" + std::to_string(++rule_counter_);
  definition_.rules.push_back({name, std::move(body), 0});
  return name;
}

GrammarExpr JsonSchemaCompiler::as_rule(const std::string& hint, GrammarExpr value) {
  if (value.kind == GrammarExpr::Kind::kRuleRef) return value;
  return expr_ref(add_rule(hint, std::move(value)));
}

std::string JsonSchemaCompiler::first_other_keyword(const SchemaJson& schema, const std::vector<std::string>& allowed) {
  for (const auto& [key, value] : schema.items()) {
    if (annotation_keywords().count(key) || key == "$defs" || key == "definitions") continue;
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) return key;
  }
  return "";
}

Status JsonSchemaCompiler::check_keywords(const SchemaJson& schema, const std::string& path) const {
  for (const auto& [key, value] : schema.items()) {
    if (annotation_keywords().count(key)) continue;
    if (!supported_keywords().count(key)) {
      return error("unsupported keyword \"" + key + "\" at " + where(path));
    }
    if (key == "uniqueItems" && !(value.is_boolean() && !value.get<bool>())) {
      return error("unsupported keyword \"uniqueItems\" (only false is supported) at " + where(path));
    }
  }
  return Status::ok();
}

Expected<std::vector<std::string>> JsonSchemaCompiler::schema_types(const SchemaJson& schema,
                                                                    const std::string& path) const {
  std::vector<std::string> types;
  if (schema.contains("type")) {
    const SchemaJson& t = schema["type"];
    std::vector<const SchemaJson*> names;
    if (t.is_string()) {
      names.push_back(&t);
    } else if (t.is_array() && !t.empty()) {
      for (const auto& n : t) names.push_back(&n);
    } else {
      return error("\"type\" at " + where(path) + " must be a type name or a non-empty array of them");
    }
    for (const SchemaJson* n : names) {
      if (!n->is_string() || std::find(kTypeNames.begin(), kTypeNames.end(), n->get<std::string>()) == kTypeNames.end()) {
        return error("unknown type " + n->dump() + " at " + where(path) +
                     " (expected object, array, string, number, integer, boolean or null)");
      }
      if (std::find(types.begin(), types.end(), n->get<std::string>()) == types.end()) {
        types.push_back(n->get<std::string>());
      }
    }
    return types;
  }
  // No "type": take it from the keywords present.
  if (has_any(schema, kObjectKeywords)) types.push_back("object");
  if (has_any(schema, kArrayKeywords)) types.push_back("array");
  if (has_any(schema, kStringKeywords)) types.push_back("string");
  if (types.size() > 1) {
    return error("cannot tell the type at " + where(path) + " (keywords of several types); add \"type\"");
  }
  return types;  // empty: any JSON value
}

Expected<GrammarExpr> JsonSchemaCompiler::schema_value(const SchemaJson& schema, const std::string& path, int depth) {
  if (depth > limits_.max_schema_depth) {
    return error("schema nested deeper than " + std::to_string(limits_.max_schema_depth) + " levels at " + where(path));
  }
  if (schema.is_boolean()) {
    if (schema.get<bool>()) return expr_ref(kJsonValueRule);
    return error("schema false at " + where(path) + " can never be satisfied");
  }
  if (!schema.is_object()) return error("schema at " + where(path) + " must be an object or a boolean");
  TNL_RETURN_IF_ERROR(check_keywords(schema, path));

  if (schema.contains("$ref")) {
    const std::string other = first_other_keyword(schema, {"$ref"});
    if (!other.empty()) {
      return error("\"$ref\" together with \"" + other + "\" is not supported at " + where(path));
    }
    return ref_value(schema, path);
  }
  for (const char* combinator : {"anyOf", "oneOf"}) {
    if (!schema.contains(combinator)) continue;
    const std::string other = first_other_keyword(schema, {combinator});
    if (!other.empty()) {
      return error("\"" + std::string(combinator) + "\" together with \"" + other + "\" is not supported at " +
                   where(path) + " (move it into each alternative)");
    }
    const SchemaJson& options = schema[combinator];
    if (!options.is_array() || options.empty()) {
      return error("\"" + std::string(combinator) + "\" at " + where(path) + " must be a non-empty array");
    }
    std::vector<GrammarExpr> alternatives;
    for (size_t i = 0; i < options.size(); ++i) {
      TNL_ASSIGN_OR_RETURN(GrammarExpr option, schema_value(options[i], path + "/" + combinator + "/" +
                                                                            std::to_string(i), depth + 1));
      alternatives.push_back(std::move(option));
    }
    return expr_alternation(std::move(alternatives));
  }
  if (schema.contains("enum") || schema.contains("const")) return enum_value(schema, path);

  TNL_ASSIGN_OR_RETURN(std::vector<std::string> types, schema_types(schema, path));
  if (types.empty()) return expr_ref(kJsonValueRule);
  std::vector<GrammarExpr> alternatives;
  for (const std::string& type : types) {
    TNL_ASSIGN_OR_RETURN(GrammarExpr value, typed_value(schema, type, path, depth));
    alternatives.push_back(std::move(value));
  }
  return expr_alternation(std::move(alternatives));
}

Expected<GrammarExpr> JsonSchemaCompiler::typed_value(const SchemaJson& schema, const std::string& type,
                                                      const std::string& path, int depth) {
  if (type == "object") return object_value(schema, path, depth);
  if (type == "array") return array_value(schema, path, depth);
  if (type == "string") return string_value(schema, path);
  if (type == "number") return expr_ref(kJsonNumberRule);
  if (type == "integer") return expr_ref(kJsonIntegerRule);
  if (type == "boolean") return expr_alternation({expr_literal("true"), expr_literal("false")});
  return expr_literal("null");
}

Expected<GrammarExpr> JsonSchemaCompiler::ref_value(const SchemaJson& schema, const std::string& path) {
  const SchemaJson& ref = schema["$ref"];
  if (!ref.is_string()) return error("\"$ref\" at " + where(path) + " must be a string");
  const std::string target = ref.get<std::string>();
  if (!target.starts_with("#")) {
    return error("only local \"$ref\" (\"#/$defs/...\") is supported, got \"" + target + "\" at " + where(path));
  }
  const std::string pointer = target.substr(1);
  auto known = ref_rules_.find(pointer);
  if (known != ref_rules_.end()) return expr_ref(known->second);
  if (resolve_pointer(root_, pointer) == nullptr) {
    return error("\"$ref\" \"" + target + "\" at " + where(path) + " does not resolve");
  }
  const std::string rule = "#" + pointer;  // never clashes: generated rules contain "#<n>" at the end
  ref_rules_.emplace(pointer, rule);
  pending_refs_.push_back({pointer, rule});
  return expr_ref(rule);
}

Expected<GrammarExpr> JsonSchemaCompiler::enum_value(const SchemaJson& schema, const std::string& path) {
  if (schema.contains("enum") && schema.contains("const")) {
    return error("\"enum\" together with \"const\" is not supported at " + where(path));
  }
  const std::string other = first_other_keyword(schema, {"enum", "const", "type"});
  if (!other.empty()) {
    return error("\"" + std::string(schema.contains("enum") ? "enum" : "const") + "\" together with \"" + other +
                 "\" is not supported at " + where(path));
  }
  std::vector<const SchemaJson*> values;
  if (schema.contains("const")) {
    values.push_back(&schema["const"]);
  } else {
    const SchemaJson& list = schema["enum"];
    if (!list.is_array() || list.empty()) return error("\"enum\" at " + where(path) + " must be a non-empty array");
    for (const auto& v : list) values.push_back(&v);
  }
  std::vector<std::string> types;
  if (schema.contains("type")) {
    TNL_ASSIGN_OR_RETURN(types, schema_types(schema, path));
  }
  std::set<std::string> seen;
  std::vector<GrammarExpr> options;
  for (const SchemaJson* v : values) {
    if (value_depth(*v) > static_cast<size_t>(limits_.max_schema_depth)) {
      return error("enum/const value nested deeper than " + std::to_string(limits_.max_schema_depth) + " at " + where(path));
    }
    const std::string text = v->dump();
    if (!types.empty() && std::none_of(types.begin(), types.end(), [&](const std::string& t) { return value_has_type(*v, t); })) {
      return error("enum/const value " + text.substr(0, 80) + " at " + where(path) + " does not match \"type\"");
    }
    if (seen.insert(text).second) options.push_back(expr_literal(text));
  }
  return expr_alternation(std::move(options));
}

Expected<GrammarDefinition> JsonSchemaCompiler::compile() {
  add_json_rules(definition_);
  TNL_ASSIGN_OR_RETURN(GrammarExpr root_value, schema_value(root_, "", 0));
  definition_.rules.push_back({"root", expr_sequence({json_space(), std::move(root_value)}), 0});
  // $ref targets compile after the root, each once: recursion through refs is
  // just rules referring to each other.
  while (!pending_refs_.empty()) {
    const auto [pointer, rule] = pending_refs_.back();
    pending_refs_.pop_back();
    TNL_ASSIGN_OR_RETURN(GrammarExpr body, schema_value(*resolve_pointer(root_, pointer), pointer, 0));
    definition_.rules.push_back({rule, std::move(body), 0});
  }
  return std::move(definition_);
}

Expected<GrammarDefinition> json_schema_to_grammar(std::string_view schema_text, const ConstraintLimits& limits) {
  SchemaJson schema = SchemaJson::parse(schema_text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) {
    ParseErrorCapture capture;
    SchemaJson::sax_parse(schema_text, &capture);
    return invalid_argument("json_schema: the schema is not valid JSON: " + capture.message);
  }
  // nlohmann throws only on misuse (wrong type access); the compiler checks
  // types first, and this keeps a missed check from escaping the module.
  try {
    return JsonSchemaCompiler(schema, limits).compile();
  } catch (const nlohmann::json::exception& e) {
    return invalid_argument(std::string("json_schema: unsupported schema (") + e.what() + ")");
  }
}

}  // namespace tnl::constraints
