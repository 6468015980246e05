// Raw HTTP/1.1 response bytes. The server parses requests with Beast but writes
// every response through one byte queue per connection, so whole responses, stream
// heads and chunked-encoding frames are all just strings here.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tnl::server {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// A complete response with Content-Length.
std::string format_response(int status, std::string_view content_type, std::string_view body,
                             const HeaderList& headers, bool keep_alive);
// The head of a text/event-stream response: chunked for HTTP/1.1 clients; for an
// HTTP/1.0 client (`chunked` false) the body is raw and ends when the connection closes.
std::string format_stream_head(const HeaderList& headers, bool keep_alive, bool chunked = true);
// One chunked-encoding frame; an empty `data` would end the body, so callers never pass one.
std::string format_chunk(std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

const char* status_reason(int status);

}  // namespace tnl::server
