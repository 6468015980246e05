#include "server/http/http_server.h"

#include <boost/asio/strand.hpp>
#include <spdlog/spdlog.h>

namespace tnl::server {

HttpServer::HttpServer(asio::io_context& io, ServerContext& context, HttpLimits limits)
    : io_(io), context_(context), limits_(limits), acceptor_(asio::make_strand(io)) {}

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
    if (ec) {
      // e.g. EMFILE under a connection flood: log, keep accepting.
      spdlog::warn("accept failed: {}", ec.message());
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<HttpSession>(std::move(socket), context_, limits_)->start();
    }
    accept_next();
  });
}

void HttpServer::stop_accepting() {
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
}

}  // namespace tnl::server
