#include "server/http/http_server.h"

#include <algorithm>

#include <boost/asio/strand.hpp>
#include <spdlog/spdlog.h>

namespace tnl::server {

HttpServer::HttpServer(asio::io_context& io, ServerContext& context, HttpLimits limits)
    : io_(io), context_(context), limits_(limits), acceptor_(asio::make_strand(io)),
      backoff_timer_(acceptor_.get_executor()) {}

Status HttpServer::listen(const std::string& host, uint16_t port) {
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) return invalid_argument("--host: '" + host + "' is not an IP address: " + ec.message());
  const tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  accept_next();
  return Status::ok();
}

void HttpServer::accept_next() {
  acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) return on_accept_error(ec);
    if (backoff_.count() > 0) {
      spdlog::info("accepting connections again (after {} failed accepts)", errors_since_log_);
      backoff_ = std::chrono::milliseconds(0);
      errors_since_log_ = 0;
    }
    socket.set_option(tcp::no_delay(true), ec);
    std::make_shared<HttpSession>(std::move(socket), context_, limits_)->start();
    accept_next();
  });
}

void HttpServer::on_accept_error(const beast::error_code& ec) {
  // EMFILE/ENFILE (out of descriptors), ENOBUFS/ENOMEM: retrying at once would spin.
  ++errors_since_log_;
  const auto now = std::chrono::steady_clock::now();
  if (backoff_.count() == 0 || now - last_error_log_ >= std::chrono::seconds(10)) {
    spdlog::warn("accept failed: {} ({} times since the last report); backing off{}", ec.message(),
                 errors_since_log_,
                 ec == asio::error::no_descriptors ? ": out of file descriptors, raise the limit (ulimit -n)" : "");
    last_error_log_ = now;
    errors_since_log_ = 0;
  }
  backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  backoff_timer_.expires_after(backoff_);
  backoff_timer_.async_wait([this](beast::error_code timer_ec) {
    if (timer_ec || !acceptor_.is_open()) return;
    accept_next();
  });
}

void HttpServer::stop_accepting() {
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    backoff_timer_.cancel();
    acceptor_.close(ec);
  });
}

}  // namespace tnl::server
