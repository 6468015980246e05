// Request bodies → nlohmann::json, parsed by simdjson.
//
// The field readers (json_fields.h) work on nlohmann::json, but nlohmann's parser
// reads a string byte by byte: ~170 µs for a 25 KB conversation on this project's
// dev machine, paid again on every turn of a chat that resends its history.
// simdjson validates (UTF-8 included) and indexes the body with SIMD
// instructions; building the tree from its DOM costs per value, not per byte
// (~6 µs for the same body). The tree is the one nlohmann would build (numbers:
// int64, then uint64, else double; a repeated key keeps its last value) except
// that an integer beyond 64 bits is an error rather than a double.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "server/api/api_error.h"

namespace tnl::server {

inline constexpr int kMaxJsonDepth = 64;  // deeper request bodies are rejected

// The body as a JSON object. Errors (400): "request body nests deeper than
// `max_depth` levels"; "request body is not valid JSON (<why>)" and "request body
// must be a JSON object", both with code invalid_json.
ApiResult<nlohmann::json> parse_json_object_body(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace tnl::server
