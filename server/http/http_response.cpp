#include "server/http/http_response.h"

#include <cstdio>

namespace tnl::server {
namespace {

void append_headers(std::string& out, const HeaderList& headers, bool keep_alive) {
  out.append("Server: tnl-server\r\n");
  out.append(keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
  for (const auto& [name, value] : headers) out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

const char* status_reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string format_response(int status, std::string_view content_type, std::string_view body,
                            const HeaderList& headers, bool keep_alive) {
  std::string out;
  out.reserve(body.size() + 256);
  out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(status_reason(status)).append("\r\n");
  out.append("Content-Type: ").append(content_type).append("\r\n");
  out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  append_headers(out, headers, keep_alive);
  out.append("\r\n").append(body);
  return out;
}

std::string format_stream_head(const HeaderList& headers, bool keep_alive, bool chunked) {
  std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n";
  if (chunked) out.append("Transfer-Encoding: chunked\r\n");
  append_headers(out, headers, keep_alive);
  out.append("\r\n");
  return out;
}

std::string format_chunk(std::string_view data) {
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out(size);
  out.append(data).append("\r\n");
  return out;
}

}  // namespace tnl::server
