// Parsing of OpenAI request bodies (/v1/completions, /v1/chat/completions) into a
// validated CompletionSpec. Pure: no engine, no tokenizer, no I/O — so it is unit
// tested and fuzzed on its own. Every malformed input gives an ApiError (4xx);
// nothing here throws past the function boundary.
#pragma once

#include <string_view>

#include "server/api/completion_spec.h"

namespace tnl::server {

ApiResult<CompletionSpec> parse_completion_request(std::string_view body, const SpecLimits& limits);
ApiResult<CompletionSpec> parse_chat_request(std::string_view body, const SpecLimits& limits);

}  // namespace tnl::server
