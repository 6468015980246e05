// JSON and JSON Schema constraints. Every sampled output is parsed with
// nlohmann::json and checked against its schema by SchemaChecker, a small
// validator written here independently of the compiler; known-valid documents
// are accepted token by token; malformed or unsupported schemas are
// INVALID_ARGUMENT naming the keyword and where it is.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/unit/constraints/constraint_test_support.h"

namespace tnl::test {
namespace {

using json = nlohmann::json;

size_t code_points(const std::string& s) {
  std::wstring w;
  EXPECT_TRUE(utf8_to_wide(s, &w));
  return w.size();
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool valid_format(const std::string& format, const std::string& s) {
  auto date = [](const std::string& d) {
    if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
    if (!all_digits(d.substr(0, 4)) || !all_digits(d.substr(5, 2)) || !all_digits(d.substr(8, 2))) return false;
    const int month = std::stoi(d.substr(5, 2)), day = std::stoi(d.substr(8, 2));
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
  };
  if (format == "date") return date(s);
  if (format == "date-time") {
    static const std::regex time(R"re(([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d))re");
    return s.size() > 11 && date(s.substr(0, 10)) && (s[10] == 'T' || s[10] == 't') &&
           std::regex_match(s.substr(11), time);
  }
  if (format == "uuid") {
    if (s.size() != 36) return false;
    for (size_t i = 0; i < s.size(); ++i) {
      const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
    }
    return true;
  }
  if (format == "ipv4") {
    int parts = 0;
    size_t pos = 0;
    while (true) {
      const size_t dot = s.find('.', pos);
      const std::string part = s.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
      if (!all_digits(part) || part.size() > 3 || (part.size() > 1 && part[0] == '0') || std::stoi(part) > 255) {
        return false;
      }
      ++parts;
      if (dot == std::string::npos) break;
      pos = dot + 1;
    }
    return parts == 4;
  }
  ADD_FAILURE() << "format " << format;
  return false;
}

// The supported subset, with this module's documented choices: absent
// additionalProperties forbids extra keys when "properties" is given, and a
// prefixItems array without "items" allows no further items.
class SchemaChecker {
 public:
  explicit SchemaChecker(const json& root) : root_(root) {}

  bool check(const json& v, const json& s, std::string* why) const {
    if (s.is_boolean()) return s.get<bool>() || fail(why, "false schema");
    if (s.contains("$ref")) {
      const std::string ref = s["$ref"];
      return check(v, root_.at(json::json_pointer(ref.substr(1))), why);
    }
    if (s.contains("anyOf")) {
      for (const auto& option : s["anyOf"]) {
        if (check(v, option, nullptr)) return true;
      }
      return fail(why, "no anyOf option matches " + v.dump());
    }
    if (s.contains("oneOf")) {
      int matches = 0;
      for (const auto& option : s["oneOf"]) matches += check(v, option, nullptr);
      return matches == 1 || fail(why, std::to_string(matches) + " oneOf options match " + v.dump());
    }
    if (s.contains("const") && v != s["const"]) return fail(why, v.dump() + " != const");
    if (s.contains("enum") && std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end()) {
      return fail(why, v.dump() + " not in enum");
    }
    if (s.contains("type")) {
      const json types = s["type"].is_array() ? s["type"] : json::array({s["type"]});
      bool any = false;
      for (const auto& t : types) any = any || has_type(v, t.get<std::string>());
      if (!any) return fail(why, v.dump() + " is not of type " + s["type"].dump());
    }
    if (v.is_object()) return check_object(v, s, why);
    if (v.is_array()) return check_array(v, s, why);
    if (v.is_string()) return check_string(v.get<std::string>(), s, why);
    return true;
  }

 private:
  static bool fail(std::string* why, const std::string& what) {
    if (why) *why = what;
    return false;
  }
  static bool has_type(const json& v, const std::string& t) {
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "number") return v.is_number();
    if (t == "integer") return v.is_number_integer();
    if (t == "boolean") return v.is_boolean();
    return t == "null" && v.is_null();
  }

  bool check_object(const json& v, const json& s, std::string* why) const {
    const json props = s.value("properties", json::object());
    for (const auto& name : s.value("required", json::array())) {
      if (!v.contains(name.get<std::string>())) return fail(why, "missing required " + name.dump());
    }
    for (const auto& [key, value] : v.items()) {
      if (props.contains(key)) {
        if (!check(value, props[key], why)) return false;
        continue;
      }
      const json extra = s.contains("additionalProperties") ? s["additionalProperties"]
                                                            : json(!s.contains("properties"));
      if (!check(value, extra, why)) return fail(why, "extra key \"" + key + "\" not allowed: " + (why ? *why : ""));
    }
    return true;
  }

  bool check_array(const json& v, const json& s, std::string* why) const {
    if (v.size() < s.value("minItems", 0u)) return fail(why, "too few items");
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return fail(why, "too many items");
    const json prefix = s.value("prefixItems", json::array());
    const json items = s.contains("items") ? s["items"] : json(prefix.empty());
    for (size_t i = 0; i < v.size(); ++i) {
      if (!check(v[i], i < prefix.size() ? prefix[i] : items, why)) return false;
    }
    return true;
  }

  bool check_string(const std::string& str, const json& s, std::string* why) const {
    const size_t length = code_points(str);
    if (length < s.value("minLength", 0u)) return fail(why, "string too short");
    if (s.contains("maxLength") && length > s["maxLength"].get<size_t>()) return fail(why, "string too long");
    if (s.contains("pattern")) {
      std::wstring pattern, text;
      EXPECT_TRUE(utf8_to_wide(s["pattern"].get<std::string>(), &pattern));
      EXPECT_TRUE(utf8_to_wide(str, &text));
      if (!std::regex_search(text, std::wregex(pattern, std::regex::ECMAScript))) return fail(why, "pattern");
    }
    if (s.contains("format") && !valid_format(s["format"], str)) return fail(why, "format " + s["format"].dump());
    return true;
  }

  const json& root_;
};

const std::vector<std::string> kSchemas = {
    // Nested objects, required and optional fields, numbers, type lists.
    R"({"type":"object","properties":{
        "name":{"type":"string"},"age":{"type":"integer"},
        "address":{"type":"object","properties":{"street":{"type":"string"},
                   "zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["street"]},
        "tags":{"type":"array","items":{"type":"string","maxLength":8},"maxItems":4},
        "score":{"type":"number"},"active":{"type":"boolean"},"nickname":{"type":["string","null"]}},
      "required":["name","age","address"]})",
    // Enums and consts of every JSON type, strings needing escapes.
    R"({"type":"object","properties":{"color":{"enum":["red","green","blue \"dark\"","tab\there"]},
        "version":{"const":2},"mode":{"enum":[1,"two",null,true,{"a":[1,"é"]}]}},
      "required":["color","version","mode"]})",
    R"({"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":5})",
    R"({"type":"array","prefixItems":[{"type":"string"},{"type":"number"},{"type":"boolean"}],"minItems":2})",
    R"({"type":"array","prefixItems":[{"const":"head"}],"items":{"type":"null"},"maxItems":4})",
    // Strings with escapes, lengths in characters, a pattern with a quote.
    R"({"type":"object","properties":{"text":{"type":"string"},"short":{"type":"string","minLength":2,"maxLength":5},
        "quote":{"type":"string","pattern":"^\"[a-z]+\\\\?\"$"},"free":{"type":"string","pattern":"ab"}},
      "required":["text","short","quote","free"]})",
    // Recursion through $defs.
    R"({"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer"},
        "children":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["value"]}},
      "$ref":"#/$defs/node"})",
    R"({"type":"object","properties":{
        "shape":{"oneOf":[{"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number"}},"required":["kind","r"]},
                          {"type":"object","properties":{"kind":{"const":"square"},"side":{"type":"integer"}},"required":["kind","side"]}]},
        "id":{"anyOf":[{"type":"integer"},{"type":"string","format":"uuid"}]}},"required":["shape","id"]})",
    R"({"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],"additionalProperties":{"type":"boolean"}})",
    R"({"type":"object","properties":{"id":{"type":"integer"},"ok":{"type":"boolean"}},"additionalProperties":true})",
    R"({"type":"object"})",
    R"({"type":"object","properties":{"d":{"type":"string","format":"date"},"t":{"type":"string","format":"date-time"},
        "u":{"type":"string","format":"uuid"},"ip":{"type":"string","format":"ipv4"}},"required":["d","t","u","ip"]})",
    R"({"definitions":{"pt":{"type":"array","prefixItems":[{"type":"number"},{"type":"number"}],"minItems":2}},
      "type":"array","items":{"$ref":"#/definitions/pt"},"title":"points","description":"ignored annotations"})",
    R"({})",
    R"({"type":"string","pattern":"a|b"})",
    R"({"type":["number","boolean"]})",
    R"({"enum":["x","y"]})",
    R"({"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"object","properties":{
        "c":{"type":"array","items":{"type":"object","properties":{"d":{"type":"integer"}},"required":["d"]}}},
        "required":["c"]}},"required":["b"]}},"required":["a"]})",
};

TEST(JsonSchemaConstraint, EverySampledOutputValidates) {
  int validated = 0;
  for (bool model : {false, true}) {
    auto trie = build_token_trie(model ? model_vocabulary() : synthetic_vocabulary());
    std::mt19937 rng(model ? 21 : 22);
    for (const std::string& text : kSchemas) {
      auto compiled = compile_or_die(ConstraintSpec::Kind::kJsonSchema, text, trie);
      ASSERT_NE(compiled, nullptr) << text;
      const json schema = json::parse(text);
      SchemaChecker checker(schema);
      int finished = 0;
      for (int i = 0; i < 10; ++i) {
        SampleOptions options;
        options.finish_after = 40;
        const Sample s = sample_output(compiled, rng, options);
        if (!s.finished) continue;
        ++finished;
        if (std::getenv("TNL_PRINT_SAMPLES")) std::printf("%s\n", s.text.c_str());
        const json value = json::parse(s.text, nullptr, false);
        ASSERT_FALSE(value.is_discarded()) << "not JSON: " << s.text;
        std::string why;
        EXPECT_TRUE(checker.check(value, schema, &why)) << why << "\nschema " << text << "\noutput " << s.text;
        ++validated;
      }
      EXPECT_GE(finished, 9) << text;
    }
  }
  std::printf("validated %d sampled outputs\n", validated);
}

TEST(JsonObjectConstraint, EverySampledOutputIsAJsonObject) {
  for (bool model : {false, true}) {
    auto trie = build_token_trie(model ? model_vocabulary() : synthetic_vocabulary());
    auto compiled = compile_or_die(ConstraintSpec::Kind::kJsonObject, "", trie);
    std::mt19937 rng(model ? 31 : 32);
    for (int i = 0; i < 25; ++i) {
      SampleOptions options;
      options.finish_after = 40;
      const Sample s = sample_output(compiled, rng, options);
      ASSERT_TRUE(s.finished);
      const json value = json::parse(s.text, nullptr, false);
      ASSERT_FALSE(value.is_discarded()) << s.text;
      EXPECT_TRUE(value.is_object()) << s.text;
    }
  }
}

TEST(JsonSchemaConstraint, KnownDocumentsAndTheWhitespacePolicy) {
  auto trie = build_token_trie(synthetic_vocabulary());
  auto person = compile_or_die(ConstraintSpec::Kind::kJsonSchema, kSchemas[0], trie);
  EXPECT_TRUE(accepts_text(person, R"({"name":"Ann","age":30,"address":{"street":"Main St"}})"));
  EXPECT_TRUE(accepts_text(person, R"( {"name": "A\"n\\n\u00e9\ud83d\ude00", "age": -0, "address": {"street": "", "zip": "12345"}, "tags": ["a", "日本"], "score": 1.5e-3, "active": false, "nickname": null})"));
  EXPECT_TRUE(accepts_text(person, R"({ "name":"x","age":1,"address":{ "street":"s" } })"));
  EXPECT_FALSE(accepts_text(person, R"({"age":30,"name":"Ann","address":{"street":"M"}})"));   // schema order
  EXPECT_FALSE(accepts_text(person, R"({"name":"Ann","address":{"street":"M"}})"));            // missing required
  EXPECT_FALSE(accepts_text(person, R"({"name":"Ann","age":30,"address":{"street":"M"},"x":1})"));  // extra key
  EXPECT_FALSE(accepts_text(person, R"({"name":  "Ann","age":30,"address":{"street":"M"}})"));     // two spaces
  EXPECT_FALSE(accepts_text(person, "{\n\"name\":\"Ann\",\"age\":30,\"address\":{\"street\":\"M\"}}"));
  EXPECT_FALSE(accepts_text(person, R"({"name":"Ann","age":30,"address":{"street":"M"},})"));
  EXPECT_FALSE(accepts_text(person, "{\"name\":\"a\tb\",\"age\":1,\"address\":{\"street\":\"M\"}}"));  // raw tab
  EXPECT_FALSE(accepts_text(person, R"({"name":"\ud800","age":1,"address":{"street":"M"}})"));      // lone surrogate
  EXPECT_FALSE(accepts_text(person, "{\"name\":\"\xc3\",\"age\":1,\"address\":{\"street\":\"M\"}}"));  // bad UTF-8
  EXPECT_FALSE(accepts_text(person, R"({"name":"A","age":1.5,"address":{"street":"M"}})"));
  EXPECT_FALSE(accepts_text(person, R"({"name":"A","age":01,"address":{"street":"M"}})"));
  EXPECT_FALSE(accepts_text(person, R"({"name":"A","age":1,"address":{"street":"M","zip":"1234"}})"));
  EXPECT_FALSE(accepts_text(person, R"({"name":"A","age":1,"address":{"street":"M"},"tags":["123456789"]})"));

  auto extras = compile_or_die(ConstraintSpec::Kind::kJsonSchema, kSchemas[8], trie);
  EXPECT_TRUE(accepts_text(extras, R"({"id":1,"i":true,"idx":false,"":true})"));
  EXPECT_FALSE(accepts_text(extras, R"({"id":1,"id":true})"));  // an extra key never repeats a declared one
  EXPECT_FALSE(accepts_text(extras, R"({"id":1,"x":1})"));

  auto any_object = compile_or_die(ConstraintSpec::Kind::kJsonObject, "", trie);
  EXPECT_TRUE(accepts_text(any_object, R"({"a": [1, {"b": null}, "c"], "d": {}})"));
  EXPECT_TRUE(accepts_text(any_object, "{}"));
  EXPECT_FALSE(accepts_text(any_object, "[]"));
  EXPECT_FALSE(accepts_text(any_object, "{} "));

  auto strings = compile_or_die(ConstraintSpec::Kind::kJsonSchema, kSchemas[5], trie);
  EXPECT_TRUE(accepts_text(strings, R"({"text":"","short":"日本","quote":"\"ab\\\"","free":"xaby"})"));
  EXPECT_FALSE(accepts_text(strings, R"({"text":"","short":"a","quote":"\"ab\"","free":"ab"})"));
  EXPECT_FALSE(accepts_text(strings, R"({"text":"","short":"abcdef","quote":"\"ab\"","free":"ab"})"));
  EXPECT_FALSE(accepts_text(strings, R"({"text":"","short":"ab","quote":"ab","free":"ab"})"));
}

TEST(JsonSchemaConstraint, LargeEnumsShareTheirPrefixes) {
  // 5000 values behind one opening quote: factored into a trie, so the parse
  // stays far below the live-stack bound.
  nlohmann::json values = nlohmann::json::array();
  for (int i = 0; i < 5000; ++i) values.push_back("item-" + std::to_string(i * 7919 % 100000));
  const nlohmann::json schema = {{"type", "object"}, {"properties", {{"sku", {{"enum", values}}}}}, {"required", {"sku"}}};
  auto trie = build_token_trie(model_vocabulary());
  auto compiled = compile_or_die(ConstraintSpec::Kind::kJsonSchema, schema.dump(), trie);
  ASSERT_NE(compiled, nullptr);
  SchemaChecker checker(schema);
  std::mt19937 rng(41);
  for (int i = 0; i < 10; ++i) {
    const Sample s = sample_output(compiled, rng);
    ASSERT_TRUE(s.finished);
    std::string why;
    EXPECT_TRUE(checker.check(json::parse(s.text), schema, &why)) << why << " " << s.text;
  }
  EXPECT_TRUE(accepts_text(compiled, R"({"sku":"item-7919"})"));
  EXPECT_FALSE(accepts_text(compiled, R"({"sku":"item-7"})"));
}

TEST(JsonSchemaConstraint, UnsupportedOrMalformedSchemasNameTheProblem) {
  auto trie = build_token_trie(synthetic_vocabulary());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"type":"object","properties":{"a":{"type":"object","patternProperties":{"x":{}}}}})",
       R"(json_schema: unsupported keyword "patternProperties" at /properties/a)"},
      {R"({"type":"object","properties":{"age":{"type":"integer","minimum":0}}})",
       R"(unsupported keyword "minimum" at /properties/age)"},
      {R"({"allOf":[{"type":"string"}]})", R"(unsupported keyword "allOf" at /)"},
      {R"({"type":"array","uniqueItems":true})", R"("uniqueItems" (only false is supported))"},
      {R"({"type":"string","format":"email"})", R"(unsupported format "email" at /)"},
      {R"({"type":"objekt"})", R"(unknown type "objekt" at /)"},
      {R"({"type":"object","properties":{"a":{}},"required":["b"]})",
       R"(required property "b" at / is not listed in "properties")"},
      {R"({"$ref":"#/$defs/missing"})", R"("$ref" "#/$defs/missing" at / does not resolve)"},
      {R"({"$ref":"https://example.com/schema"})", R"(only local "$ref")"},
      {R"({"type":"string","pattern":"(ab"})", "invalid pattern at /: regex: unbalanced '(' at offset 0"},
      {R"({"enum":[]})", R"("enum" at / must be a non-empty array)"},
      {R"({"type":"array","minItems":5,"maxItems":2})", R"("minItems" 5 at / cannot be met)"},
      {R"({"type":"array","prefixItems":[{}],"minItems":3})", "cannot be met (at most 1 items allowed)"},
      {R"({"type":"array","items":[{"type":"string"}]})", "use \"prefixItems\""},
      {R"({"type":"string","maxLength":-1})", R"("maxLength" at / must be a non-negative integer)"},
      {R"({"type":"string","maxLength":1000000})", "exceeds the supported limit 10000"},
      {R"({"type":"object","properties":{"x":false}})", "schema false at /properties/x can never be satisfied"},
      {R"({"type":"string","pattern":"a","minLength":1})", R"("pattern" together with minLength/maxLength)"},
      {R"({"type":"string","enum":["a"],"maxLength":3})", R"("enum" together with "maxLength")"},
      {R"({"type":"integer","enum":["a"]})", R"(enum/const value "a" at / does not match "type")"},
      {R"({"anyOf":[{"type":"string"}],"type":"string"})", R"("anyOf" together with "type" is not supported)"},
      {R"({"$ref":"#/$defs/a","type":"string","$defs":{"a":{}}})", R"("$ref" together with "type")"},
      {R"({"properties":{"a":{}},"items":{}})", "cannot tell the type at /"},
      {R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})", "can never finish"},
      {R"({"type":"object","properties":{"a":{"$ref":"#"}},"required":["a"]})", "can never finish"},
      {R"({"type": "object",)", "json_schema: the schema is not valid JSON: parse error at line 1"},
      {R"([1,2])", "schema at / must be an object or a boolean"},
      {R"(false)", "schema false at / can never be satisfied"},
  };
  for (const auto& [text, message] : cases) {
    auto compiled = compile_constraint({ConstraintSpec::Kind::kJsonSchema, text}, trie);
    ASSERT_FALSE(compiled.has_value()) << text;
    EXPECT_EQ(compiled.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(compiled.status().message().find(message), std::string::npos)
        << text << "\ngave: " << compiled.status().message();
    EXPECT_EQ(compiled.status().message().rfind("json_schema: ", 0), 0u) << compiled.status().message();
  }
  // Deep nesting is refused before any recursion gets deep.
  std::string deep = "{}";
  for (int i = 0; i < 100; ++i) deep = R"({"type":"array","items":)" + deep + "}";
  auto compiled = compile_constraint({ConstraintSpec::Kind::kJsonSchema, deep}, trie);
  ASSERT_FALSE(compiled.has_value());
  EXPECT_NE(compiled.status().message().find("nested deeper than 64 levels"), std::string::npos)
      << compiled.status().message();
}

}  // namespace
}  // namespace tnl::test
