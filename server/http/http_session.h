// HttpSession: one client connection. Reads requests with Beast's parser (header
// timeout, body limit), hands each to the router, and writes responses through one
// byte queue. While a generation runs it keeps a read pending on the socket so that
// a client that hangs up is noticed at once and its generation is cancelled; bytes
// of pipelined requests that this read brings in are kept and parsed, in order,
// once the current response is written (HTTP/1.1 pipelining).
//
// Bounds: a stream's unsent bytes (queued + in flight) may not exceed
// --stream-buffer-bytes; a client that stops reading past that is cut off and its
// generation cancelled, so a stalled reader costs a bounded amount of memory. An
// idle keep-alive connection is closed after --header-timeout.
//
// Threads: every member runs on the connection's strand (an io thread of the HTTP
// server's io_context); engine events reach it by asio::post onto that strand.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "server/api/api_error.h"
#include "server/core/server_context.h"
#include "server/http/http_response.h"

namespace tnl::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpLimits {
  uint64_t max_body_bytes = 8 << 20;
  std::chrono::milliseconds header_timeout{10'000};  // to receive a request's header, and then its body
  std::chrono::milliseconds write_timeout{60'000};   // for one write to drain into a slow client
  uint64_t stream_buffer_bytes = 1 << 20;             // unsent bytes of a stream before the client is cut off
};

class CompletionExchange;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, ServerContext& context, HttpLimits limits);
  ~HttpSession();
  void start();

  asio::any_io_executor executor() { return stream_.get_executor(); }
  ServerContext& context() { return context_; }
  const std::string& request_id() const { return request_id_; }
  void set_request_id(std::string id) { request_id_ = std::move(id); }

  // Responses (on the strand). Exactly one of send_response / send_error /
  // end_stream completes each request.
  void send_response(int status, std::string_view content_type, std::string_view body, HeaderList headers = {});
  void send_error(const ApiError& error, HeaderList headers = {});
  void begin_stream();
  void send_stream_data(std::string_view data);
  void end_stream();

  // A generation runs for the current request: watch the socket for a hang-up.
  void attach_exchange(std::shared_ptr<CompletionExchange> exchange);
  bool client_gone() const { return closed_; }

 private:
  void read_request();
  void on_header(beast::error_code ec, size_t bytes);
  void on_body(beast::error_code ec, size_t bytes);
  void on_read_error(beast::error_code ec);
  void write(std::string bytes, bool completes_response);
  void do_write();
  void on_write(beast::error_code ec, size_t bytes);
  void end_response();
  void watch_client();
  void on_watch(beast::error_code ec, size_t bytes);
  void cut_off_stalled_client();
  void linger_close();
  void drain_until_closed();
  void close();
  void log_access(int status);
  void note_status(int status);

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  ServerContext& context_;
  HttpLimits limits_;

  std::deque<std::string> write_queue_;
  std::string writing_bytes_;       // the buffer of the async_write in flight
  uint64_t unsent_bytes_ = 0;       // in write_queue_ and writing_bytes_
  bool writing_ = false;
  bool response_complete_ = false;  // the queued bytes end the current response
  bool watching_ = false;           // a hang-up watch read is pending
  bool closed_ = false;
  bool keep_alive_ = true;
  bool in_request_ = false;         // a request was read and is not yet answered
  bool http10_ = false;             // the current request is HTTP/1.0: streams are not chunked
  bool raw_stream_ = false;         // the current response streams without chunked framing
  bool read_after_watch_ = false;   // the response ended while the watch read was pending

  std::shared_ptr<CompletionExchange> exchange_;
  std::string request_id_;
  std::string method_;
  std::string target_;
  int status_ = 0;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace tnl::server
