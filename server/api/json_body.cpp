#include "server/api/json_body.h"

#include <simdjson.h>

#include <string>

namespace tnl::server {
namespace {

using nlohmann::json;

// Depth is bounded by the parser's max_depth, so the recursion is too.
// The element's value as T: the type its type() reports, so get() cannot fail.
template <typename T>
T value_of(simdjson::dom::element e) {
  T v{};
  [[maybe_unused]] const simdjson::error_code error = e.get(v);
  return v;
}

json to_nlohmann(simdjson::dom::element e) {
  using Type = simdjson::dom::element_type;
  switch (e.type()) {
    case Type::OBJECT: {
      json o = json::object();
      for (const simdjson::dom::key_value_pair field : value_of<simdjson::dom::object>(e)) {
        o[std::string(field.key)] = to_nlohmann(field.value);
      }
      return o;
    }
    case Type::ARRAY: {
      json a = json::array();
      for (const simdjson::dom::element item : value_of<simdjson::dom::array>(e)) a.push_back(to_nlohmann(item));
      return a;
    }
    case Type::STRING:
      return std::string(value_of<std::string_view>(e));
    case Type::INT64:
      return value_of<int64_t>(e);
    case Type::UINT64:
      return value_of<uint64_t>(e);
    case Type::DOUBLE:
      return value_of<double>(e);
    case Type::BOOL:
      return value_of<bool>(e);
    case Type::NULL_VALUE:
      return nullptr;
  }
  return nullptr;
}

}  // namespace

ApiResult<json> parse_json_object_body(std::string_view text, int max_depth) {
  // A parser a call: it sizes its buffers to the body (no state shared between
  // the front end's threads).
  simdjson::dom::parser parser(simdjson::SIMDJSON_MAXSIZE_BYTES);
  if (parser.allocate(text.size(), size_t(max_depth)) != simdjson::SUCCESS) {
    return invalid_request("request body is too large to parse", "", "invalid_json");
  }
  simdjson::dom::element root;
  const simdjson::error_code error = parser.parse(text.data(), text.size()).get(root);
  if (error == simdjson::DEPTH_ERROR) {
    return invalid_request("request body nests deeper than " + std::to_string(max_depth) + " levels");
  }
  if (error != simdjson::SUCCESS) {
    return invalid_request(std::string("request body is not valid JSON (") + simdjson::error_message(error) + ")", "",
                           "invalid_json");
  }
  if (root.type() != simdjson::dom::element_type::OBJECT) {
    return invalid_request("request body must be a JSON object", "", "invalid_json");
  }
  return to_nlohmann(root);
}

}  // namespace tnl::server
