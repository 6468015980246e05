// Server-sent events as OpenAI streams them: each chunk is `data: <json>\n\n`, the
// stream ends with `data: [DONE]\n\n`.
#pragma once

#include <string>
#include <string_view>

namespace tnl::server {

inline std::string sse_event(std::string_view json) {
  std::string event;
  event.reserve(json.size() + 8);
  event.append("data: ").append(json).append("\n\n");
  return event;
}

inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace tnl::server
