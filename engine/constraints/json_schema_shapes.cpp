// Objects, arrays and strings of the schema compiler (json_schema_compiler.h).
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "engine/constraints/json_grammar_rules.h"
#include "engine/constraints/json_schema_compiler.h"
#include "engine/constraints/regex_parser.h"

namespace tnl::constraints {
namespace {

// Bytes allowed in an additionalProperties key: printable ASCII but `"` and `\`.
ByteSet plain_key_bytes() {
  ByteSet s = ByteSet::range(0x20, 0x7E);
  s.remove('"');
  s.remove('\\');
  return s;
}

bool is_plain_key(const std::string& key) {
  const ByteSet plain = plain_key_bytes();
  return std::all_of(key.begin(), key.end(), [&](char c) { return plain.contains(static_cast<uint8_t>(c)); });
}

constexpr const char* kKeyTailRule = "json-plain-key-tail";

struct StringFormat {
  const char* name;
  const char* regex;
};
// RFC 3339 date / time / date-time, RFC 4122 uuid, dotted-quad ipv4.
constexpr StringFormat kFormats[] = {
    {"date", "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"},
    {"time", "([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"},
    {"date-time",
     "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)"
     "(\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"},
    {"uuid", "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"},
    {"ipv4", "((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"},
};

GrammarExpr comma_then(GrammarExpr item) { return expr_sequence({expr_literal(","), json_space(), std::move(item)}); }

}  // namespace

Expected<uint32_t> JsonSchemaCompiler::count_keyword(const SchemaJson& schema, const char* keyword,
                                                     const std::string& path) const {
  const SchemaJson& v = schema[keyword];
  if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0)) {
    return error("\"" + std::string(keyword) + "\" at " + where(path) + " must be a non-negative integer");
  }
  const uint64_t n = v.get<uint64_t>();
  if (n > limits_.max_repeat_bound) {
    return error("\"" + std::string(keyword) + "\" " + std::to_string(n) + " at " + where(path) +
                 " exceeds the supported limit " + std::to_string(limits_.max_repeat_bound));
  }
  return static_cast<uint32_t>(n);
}

// Properties come in schema order; a required one must appear, an optional
// one may be skipped. first_i: properties i.. with none written yet (no
// leading comma); rest_i: the same after at least one (each gets ", ").
Expected<GrammarExpr> JsonSchemaCompiler::object_value(const SchemaJson& schema, const std::string& path, int depth) {
  static const SchemaJson kEmpty = SchemaJson::object();
  const SchemaJson& properties = schema.contains("properties") ? schema["properties"] : kEmpty;
  if (!properties.is_object()) return error("\"properties\" at " + where(path) + " must be an object");
  std::vector<std::string> required;
  if (schema.contains("required")) {
    const SchemaJson& r = schema["required"];
    if (!r.is_array()) return error("\"required\" at " + where(path) + " must be an array of strings");
    for (const auto& name : r) {
      if (!name.is_string()) return error("\"required\" at " + where(path) + " must be an array of strings");
      if (!properties.contains(name.get<std::string>())) {
        return error("required property \"" + name.get<std::string>() + "\" at " + where(path) +
                     " is not listed in \"properties\"");
      }
      required.push_back(name.get<std::string>());
    }
  }
  // Absent additionalProperties: none when properties are listed (OpenAI
  // strict style), any when the schema is a bare {"type": "object"}.
  const bool has_additional = schema.contains("additionalProperties");
  const SchemaJson& additional = has_additional ? schema["additionalProperties"] : kEmpty;
  bool extras = !has_additional ? !schema.contains("properties") : !(additional.is_boolean() && !additional.get<bool>());
  if (has_additional && !additional.is_boolean() && !additional.is_object()) {
    return error("\"additionalProperties\" at " + where(path) + " must be a boolean or a schema");
  }

  const std::string hint = path.empty() ? "/" : path;
  struct Member {
    GrammarExpr key_value;
    bool required;
  };
  std::vector<Member> members;
  std::vector<std::string> declared;
  for (const auto& [key, sub] : properties.items()) {
    const std::string sub_path = path + "/properties/" + json_pointer_segment(key);
    TNL_ASSIGN_OR_RETURN(GrammarExpr value, schema_value(sub, sub_path, depth + 1));
    GrammarExpr kv = expr_sequence({expr_literal(SchemaJson(key).dump() + ":"), json_space(),
                                    as_rule(sub_path, std::move(value))});
    members.push_back({std::move(kv), std::find(required.begin(), required.end(), key) != required.end()});
    declared.push_back(key);
  }
  GrammarExpr extra_kv;
  if (extras) {
    GrammarExpr extra_value = expr_ref(kJsonValueRule);
    if (additional.is_object()) {
      TNL_ASSIGN_OR_RETURN(extra_value, schema_value(additional, path + "/additionalProperties", depth + 1));
    }
    extra_kv = expr_ref(add_rule(hint + "/additionalProperties",
                                 expr_sequence({extra_key(declared), expr_literal(":"), json_space(),
                                                as_rule(path + "/additionalProperties", std::move(extra_value))})));
  }

  const size_t n = members.size();
  std::vector<std::string> rest(n + 1), first(n + 1);
  rest[n] = add_rule(hint + "/rest", extras ? expr_star(comma_then(extra_kv)) : expr_empty());
  if (extras) first[n] = add_rule(hint + "/first", expr_sequence({extra_kv, expr_ref(rest[n])}));
  for (size_t i = n; i-- > 0;) {
    std::vector<GrammarExpr> rest_options = {
        expr_sequence({comma_then(members[i].key_value), expr_ref(rest[i + 1])})};
    std::vector<GrammarExpr> first_options = {expr_sequence({members[i].key_value, expr_ref(rest[i + 1])})};
    if (!members[i].required) {
      rest_options.push_back(expr_ref(rest[i + 1]));
      if (!first[i + 1].empty()) first_options.push_back(expr_ref(first[i + 1]));
    }
    rest[i] = add_rule(hint + "/rest", expr_alternation(std::move(rest_options)));
    first[i] = add_rule(hint + "/first", expr_alternation(std::move(first_options)));
  }
  const bool any_required = std::any_of(members.begin(), members.end(), [](const Member& m) { return m.required; });
  std::vector<GrammarExpr> parts = {expr_literal("{"), json_space()};
  if (!first[0].empty()) {
    GrammarExpr body = expr_sequence({expr_ref(first[0]), json_space()});
    parts.push_back(any_required ? std::move(body) : expr_optional(std::move(body)));
  }
  parts.push_back(expr_literal("}"));
  return expr_sequence(std::move(parts));
}

GrammarExpr JsonSchemaCompiler::extra_key(const std::vector<std::string>& declared) {
  if (!has_key_tail_rule_) {
    definition_.rules.push_back({kKeyTailRule, expr_sequence({expr_star(expr_bytes(plain_key_bytes())),
                                                             expr_literal("\"")}), 0});
    has_key_tail_rule_ = true;
  }
  // A trie of the declared names that an extra key could spell; each node's
  // rule continues along the trie or leaves it (then anything may follow),
  // and may close the key only where no declared name ends.
  struct Node {
    std::map<uint8_t, size_t> children;
    bool terminal = false;
  };
  std::vector<Node> trie(1);
  for (const std::string& name : declared) {
    if (!is_plain_key(name)) continue;  // an extra key can never spell it
    size_t node = 0;
    for (char c : name) {
      auto it = trie[node].children.find(static_cast<uint8_t>(c));
      if (it == trie[node].children.end()) {
        trie.push_back({});
        it = trie[node].children.emplace(static_cast<uint8_t>(c), trie.size() - 1).first;
      }
      node = it->second;
    }
    trie[node].terminal = true;
  }
  const std::string base = add_rule("key", expr_empty());  // reserves a unique prefix
  auto node_rule = [&](size_t node) { return base + "/" + std::to_string(node); };
  for (size_t node = 0; node < trie.size(); ++node) {
    std::vector<GrammarExpr> options;
    ByteSet leave = plain_key_bytes();
    for (const auto& [byte, child] : trie[node].children) {
      leave.remove(byte);
      options.push_back(expr_sequence({expr_literal(std::string(1, static_cast<char>(byte))), expr_ref(node_rule(child))}));
    }
    if (!leave.empty()) options.push_back(expr_sequence({expr_bytes(leave), expr_ref(kKeyTailRule)}));
    if (!trie[node].terminal) options.push_back(expr_literal("\""));
    definition_.rules.push_back({node_rule(node), expr_alternation(std::move(options)), 0});
  }
  return expr_sequence({expr_literal("\""), expr_ref(node_rule(0))});
}

// Items 0..k-1 follow prefixItems, later ones `items`. tail_j is the rest of
// the array after j items: it may stop once j >= minItems and must stop at
// maxItems. Past the prefix it is one bounded or unbounded repetition.
Expected<GrammarExpr> JsonSchemaCompiler::array_value(const SchemaJson& schema, const std::string& path, int depth) {
  const std::string hint = path.empty() ? "/" : path;
  std::vector<GrammarExpr> prefix;
  if (schema.contains("prefixItems")) {
    const SchemaJson& p = schema["prefixItems"];
    if (!p.is_array()) return error("\"prefixItems\" at " + where(path) + " must be an array of schemas");
    for (size_t i = 0; i < p.size(); ++i) {
      const std::string item_path = path + "/prefixItems/" + std::to_string(i);
      TNL_ASSIGN_OR_RETURN(GrammarExpr item, schema_value(p[i], item_path, depth + 1));
      prefix.push_back(as_rule(item_path, std::move(item)));
    }
  }
  bool has_items = true;
  GrammarExpr items = expr_ref(kJsonValueRule);
  if (schema.contains("items")) {
    const SchemaJson& it = schema["items"];
    if (it.is_array()) {
      return error("\"items\" as an array at " + where(path) + " is not supported (use \"prefixItems\")");
    }
    if (it.is_boolean() && !it.get<bool>()) {
      has_items = false;
    } else {
      TNL_ASSIGN_OR_RETURN(items, schema_value(it, path + "/items", depth + 1));
      items = as_rule(path + "/items", std::move(items));
    }
  } else if (!prefix.empty()) {
    has_items = false;  // a tuple: exactly the prefix items (docs/constraints.md)
  }
  uint32_t min = 0, max = kUnbounded;
  if (schema.contains("minItems")) {
    TNL_ASSIGN_OR_RETURN(min, count_keyword(schema, "minItems", path));
  }
  if (schema.contains("maxItems")) {
    TNL_ASSIGN_OR_RETURN(max, count_keyword(schema, "maxItems", path));
  }
  const uint32_t k = static_cast<uint32_t>(prefix.size());
  if (!has_items) max = std::min(max, k);
  if (min > max) {
    return error("\"minItems\" " + std::to_string(min) + " at " + where(path) + " cannot be met (at most " +
                 std::to_string(max) + " items allowed)");
  }
  if (max == 0) return expr_sequence({expr_literal("["), json_space(), expr_literal("]")});
  auto item_at = [&](uint32_t j) { return j < k ? prefix[j] : items; };

  // tail(j) for j >= 1, built from the end of the prefix backwards.
  const uint32_t loop_from = std::max<uint32_t>(k, 1);
  GrammarExpr tail;
  if (has_items) {
    const uint32_t more_min = min > loop_from ? min - loop_from : 0;
    const uint32_t more_max = max == kUnbounded ? kUnbounded : max - std::min(max, loop_from);
    tail = expr_repeat(comma_then(items), more_min, more_max);
  }
  for (uint32_t j = loop_from; j-- > 1;) {  // prefix positions 1..k-1
    GrammarExpr next = expr_ref(add_rule(hint + "/tail", std::move(tail)));
    if (j >= max) {
      tail = expr_empty();
      continue;
    }
    GrammarExpr more = expr_sequence({comma_then(item_at(j)), std::move(next)});
    tail = j >= min ? expr_alternation({expr_empty(), std::move(more)}) : std::move(more);
  }
  GrammarExpr body = expr_sequence({item_at(0), expr_ref(add_rule(hint + "/tail", std::move(tail))), json_space()});
  return expr_sequence({expr_literal("["), json_space(), min == 0 ? expr_optional(std::move(body)) : std::move(body),
                        expr_literal("]")});
}

Expected<GrammarExpr> JsonSchemaCompiler::string_value(const SchemaJson& schema, const std::string& path) {
  const bool has_length = schema.contains("minLength") || schema.contains("maxLength");
  const std::string other_with = schema.contains("format") ? "format" : schema.contains("pattern") ? "pattern" : "";
  if (!other_with.empty() && (has_length || (schema.contains("format") && schema.contains("pattern")))) {
    return error("\"" + other_with + "\" together with " +
                 (has_length ? std::string("minLength/maxLength") : std::string("\"pattern\"")) +
                 " is not supported at " + where(path));
  }
  std::string regex;
  bool search = false;
  if (schema.contains("format")) {
    const SchemaJson& f = schema["format"];
    if (!f.is_string()) return error("\"format\" at " + where(path) + " must be a string");
    for (const StringFormat& format : kFormats) {
      if (f.get<std::string>() == format.name) regex = format.regex;
    }
    if (regex.empty()) {
      return error("unsupported format \"" + f.get<std::string>() + "\" at " + where(path) +
                   " (supported: date, time, date-time, uuid, ipv4)");
    }
  } else if (schema.contains("pattern")) {
    const SchemaJson& p = schema["pattern"];
    if (!p.is_string()) return error("\"pattern\" at " + where(path) + " must be a string");
    regex = p.get<std::string>();
    search = true;  // JSON Schema patterns are not anchored
  }
  if (!regex.empty() || schema.contains("pattern")) {
    RegexOptions options;
    options.encoding = json_string_regex_encoding();
    options.search = search;
    auto body = parse_regex(regex, limits_, options);
    if (!body.has_value()) return error("invalid pattern at " + where(path) + ": " + body.status().message());
    return expr_sequence({expr_literal("\""), std::move(body).value(), expr_literal("\"")});
  }
  if (has_length) {
    uint32_t min = 0, max = kUnbounded;
    if (schema.contains("minLength")) {
      TNL_ASSIGN_OR_RETURN(min, count_keyword(schema, "minLength", path));
    }
    if (schema.contains("maxLength")) {
      TNL_ASSIGN_OR_RETURN(max, count_keyword(schema, "maxLength", path));
    }
    if (min > max) return error("\"minLength\" is greater than \"maxLength\" at " + where(path));
    return expr_sequence({expr_literal("\""), expr_repeat(json_char(), min, max), expr_literal("\"")});
  }
  return expr_ref(kJsonStringRule);
}

}  // namespace tnl::constraints
