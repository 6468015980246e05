#include "server/http/http_session.h"

#include <array>

#include <spdlog/spdlog.h>

#include "server/http/completion_exchange.h"
#include "server/http/request_router.h"

namespace tnl::server {
namespace {

constexpr uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr size_t kMaxPipelinedBytes = 64 * 1024;  // read ahead while a generation runs
constexpr auto kLingerTimeout = std::chrono::seconds(2);

}  // namespace

HttpSession::HttpSession(tcp::socket&& socket, ServerContext& context, HttpLimits limits)
    : stream_(std::move(socket)), context_(context), limits_(limits) {
  context_.metrics().open_connections.fetch_add(1);
}

HttpSession::~HttpSession() { context_.metrics().open_connections.fetch_sub(1); }

void HttpSession::start() {
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
}

void HttpSession::read_request() {
  if (closed_) return;
  parser_.emplace();
  parser_->header_limit(kMaxHeaderBytes);
  parser_->body_limit(limits_.max_body_bytes);
  stream_.expires_after(limits_.header_timeout);
  http::async_read_header(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&HttpSession::on_header, shared_from_this()));
}

void HttpSession::on_header(beast::error_code ec, size_t) {
  if (ec) return on_read_error(ec);
  started_ = std::chrono::steady_clock::now();
  in_request_ = true;
  const auto& req = parser_->get();
  method_ = std::string(req.method_string());
  target_ = std::string(req.target());
  request_id_.clear();
  // State blobs are as large as a model's decode state (13 MB at the 385M shape,
  // 62 MB at 7B): their import takes up to the largest valid blob.
  if (target_ == "/v1/states/import") {
    parser_->body_limit(std::max<uint64_t>(limits_.max_body_bytes,
                                           uint64_t(max_state_blob_bytes(context_.engine().state_layout()))));
  }
  if (beast::iequals(req[http::field::expect], "100-continue")) {
    write("HTTP/1.1 100 Continue\r\n\r\n", /*completes_response=*/false);
  }
  stream_.expires_after(limits_.header_timeout);
  http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_body, shared_from_this()));
}

void HttpSession::on_body(beast::error_code ec, size_t) {
  if (ec) return on_read_error(ec);
  http::request<http::string_body> request = parser_->release();
  keep_alive_ = request.keep_alive();
  http10_ = request.version() < 11;
  stream_.expires_never();  // the router decides how long the answer may take
  context_.metrics().http_requests.fetch_add(1);
  request_id_ = context_.next_request_id("req");  // generation routes replace it with the completion id
  route_request(shared_from_this(), std::move(request));
}

void HttpSession::on_read_error(beast::error_code ec) {
  if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::operation_aborted ||
      ec == asio::error::connection_reset) {
    return close();
  }
  if (ec == beast::error::timeout) {
    if (in_request_) spdlog::info("{} {} slow client: request not received within --header-timeout", method_, target_);
    return close();
  }
  keep_alive_ = false;
  if (!in_request_) {
    in_request_ = true;
    started_ = std::chrono::steady_clock::now();
  }
  if (request_id_.empty()) request_id_ = context_.next_request_id("req");
  if (ec == http::error::body_limit) {
    return send_error(ApiError{413, "request body exceeds --max-body-bytes (" + std::to_string(limits_.max_body_bytes) +
                                        " bytes)",
                               "invalid_request_error", "", "body_too_large"});
  }
  if (ec == http::error::header_limit) {
    return send_error(ApiError{431, "request header too large", "invalid_request_error", "", "header_too_large"});
  }
  send_error(invalid_request("malformed HTTP request: " + ec.message(), "", "bad_http"));
}

void HttpSession::note_status(int status) {
  status_ = status;
  if (status >= 500) {
    context_.metrics().http_5xx.fetch_add(1);
  } else if (status >= 400) {
    context_.metrics().http_4xx.fetch_add(1);
    if (status == 429) context_.metrics().rejected_overload.fetch_add(1);
  }
}

static HeaderList with_request_id(HeaderList headers, const std::string& id) {
  if (!id.empty()) headers.emplace_back("X-Request-Id", id);
  return headers;
}

void HttpSession::send_response(int status, std::string_view content_type, std::string_view body, HeaderList headers) {
  note_status(status);
  write(format_response(status, content_type, body, with_request_id(std::move(headers), request_id_), keep_alive_),
        /*completes_response=*/true);
}

void HttpSession::send_error(const ApiError& error, HeaderList headers) {
  send_response(error.http_status, "application/json", error.to_json(), std::move(headers));
}

void HttpSession::begin_stream() {
  note_status(200);
  // An HTTP/1.0 client knows no chunked encoding: the stream's end is the connection's.
  raw_stream_ = http10_;
  if (raw_stream_) keep_alive_ = false;
  write(format_stream_head(with_request_id({}, request_id_), keep_alive_, /*chunked=*/!raw_stream_), false);
}

void HttpSession::send_stream_data(std::string_view data) {
  if (data.empty() || closed_) return;
  if (unsent_bytes_ + data.size() > limits_.stream_buffer_bytes) return cut_off_stalled_client();
  write(raw_stream_ ? std::string(data) : format_chunk(data), false);
}

void HttpSession::end_stream() { write(raw_stream_ ? std::string() : std::string(kLastChunk), true); }

void HttpSession::cut_off_stalled_client() {
  spdlog::warn("{} {} client stopped reading: over --stream-buffer-bytes ({} bytes) unsent; cancelling its generation",
               method_, target_, limits_.stream_buffer_bytes);
  context_.metrics().stalled_clients.fetch_add(1);
  if (exchange_) exchange_->client_gone();
  log_access(499);
  close();
}

void HttpSession::attach_exchange(std::shared_ptr<CompletionExchange> exchange) {
  exchange_ = std::move(exchange);
  if (!watching_ && !closed_) watch_client();
}

void HttpSession::write(std::string bytes, bool completes_response) {
  if (closed_) return;
  unsent_bytes_ += bytes.size();
  write_queue_.push_back(std::move(bytes));
  if (completes_response) response_complete_ = true;
  if (!writing_) do_write();
}

void HttpSession::do_write() {
  // Coalesce: stream chunks produced during one engine step go out in one write.
  writing_bytes_.clear();
  while (!write_queue_.empty()) {
    writing_bytes_ += write_queue_.front();
    write_queue_.pop_front();
  }
  writing_ = true;
  stream_.expires_after(limits_.write_timeout);
  asio::async_write(stream_, asio::buffer(writing_bytes_),
                    beast::bind_front_handler(&HttpSession::on_write, shared_from_this()));
}

void HttpSession::on_write(beast::error_code ec, size_t) {
  writing_ = false;
  unsent_bytes_ -= writing_bytes_.size();
  writing_bytes_.clear();
  writing_bytes_.shrink_to_fit();  // a large answer's buffer is not kept for the connection's life
  if (ec) {
    if (exchange_) {
      exchange_->client_gone();
      context_.metrics().client_disconnects.fetch_add(1);
      log_access(499);
    }
    return close();
  }
  if (!write_queue_.empty()) return do_write();
  if (response_complete_) return end_response();
  // Mid-stream: no timer while waiting for the engine (a long prefill is not the client's fault).
  stream_.expires_never();
}

void HttpSession::end_response() {
  response_complete_ = false;
  log_access(status_);
  in_request_ = false;
  raw_stream_ = false;
  exchange_.reset();
  if (!keep_alive_) return linger_close();
  if (watching_) {
    // Stop the hang-up watch; its completion (aborted, or with bytes of a pipelined
    // request) starts the next read, which parses what is buffered first.
    read_after_watch_ = true;
    beast::error_code ec;
    stream_.socket().cancel(ec);
    return;
  }
  read_request();
}

void HttpSession::watch_client() {
  watching_ = true;
  stream_.async_read_some(buffer_.prepare(4096), beast::bind_front_handler(&HttpSession::on_watch, shared_from_this()));
}

void HttpSession::on_watch(beast::error_code ec, size_t bytes) {
  watching_ = false;
  if (closed_) return;
  if (!ec) buffer_.commit(bytes);
  if (read_after_watch_) {
    // The response ended meanwhile: read the next request (an error such as EOF
    // surfaces there and closes the connection).
    read_after_watch_ = false;
    if (!keep_alive_) return linger_close();
    return read_request();
  }
  if (ec) {
    // A client that closes right after the last bytes of its answer were queued has
    // not hung up on a generation: only count (and cancel) the ones still running.
    if (exchange_ && !response_complete_) {
      // The client hung up mid-generation: free its engine slots now.
      exchange_->client_gone();
      context_.metrics().client_disconnects.fetch_add(1);
      log_access(499);
    }
    return close();
  }
  // Bytes of a pipelined next request: kept in buffer_ for the parser.
  if (exchange_ || writing_ || response_complete_) {
    if (buffer_.size() < kMaxPipelinedBytes) watch_client();
    return;
  }
  read_request();
}

void HttpSession::linger_close() {
  // Half-close, then read until the client closes (or briefly): closing with unread
  // request bytes would reset the connection and could destroy our error response.
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (watching_) {
    // Stop the hang-up watch first; on_watch comes back here to drain.
    read_after_watch_ = true;
    stream_.socket().cancel(ec);
    return;
  }
  stream_.expires_after(kLingerTimeout);
  drain_until_closed();
}

void HttpSession::drain_until_closed() {
  auto drain = std::make_shared<std::array<char, 4096>>();
  stream_.async_read_some(asio::buffer(*drain), [self = shared_from_this(), drain](beast::error_code ec, size_t) {
    if (ec) return self->close();
    self->drain_until_closed();
  });
}

void HttpSession::close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
  exchange_.reset();
}

void HttpSession::log_access(int status) {
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
  spdlog::info("access id={} {} {} status={} latency_ms={:.1f}", request_id_.empty() ? "-" : request_id_, method_,
               target_, status, ms);
}

}  // namespace tnl::server
